//! Launches of `kernels/sort.cu`: a bitonic network per line, in shared memory for
//! lines of up to `SORT_TILE` elements (one launch), with global merge steps between
//! shared-memory tiles for longer lines (see the kernel file), and the gradient's
//! scatter through the indices.

use super::{SortOps, SortParams};
use crate::backend::cuda::runtime::kernels::{defines, KernelId};
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

const TILE: usize = defines::SORT_TILE;
const THREADS: usize = defines::SORT_THREADS;

/// The launch of a block-per-tile kernel over `blocks` tiles of `tile` elements of
/// `dtype`: a thread per pair up to `SORT_THREADS`, at most 16 blocks per
/// multiprocessor (the kernels loop over the rest), a position and a key per element
/// in shared memory.
fn tile_config(blocks: usize, tile: usize, dtype: DType, sm_count: u32) -> LaunchConfig {
    let threads = (tile / 2).clamp(32, THREADS);
    LaunchConfig {
        grid: (blocks.clamp(1, sm_count as usize * 16) as u32, 1, 1),
        block: (threads as u32, 1, 1),
        shared_bytes: (tile * (8 + dtype.size_in_bytes())) as u32,
    }
}

fn u64s<const N: usize>(values: [usize; N]) -> [KernelArg; N] {
    values.map(|v| KernelArg::U64(v as u64))
}

impl SortOps for CudaStorage {
    fn sort(&self, layout: &Layout, p: &SortParams) -> Result<(CudaStorage, CudaStorage)> {
        let dtype = self.dtype();
        let dev = self.cuda_device();
        let vals = CudaStorage::alloc(dev, p.out_numel(), dtype)?;
        let idx = CudaStorage::alloc(dev, p.out_numel(), DType::I64)?;
        if p.out_numel() == 0 {
            return Ok((vals, idx));
        }
        let (x, _copy) = self.contiguous_ptr(layout)?;
        let padded = p.len.next_power_of_two();
        let tile = padded.min(TILE);
        let lines = p.lines();
        // Lines longer than a tile are merged in scratch memory (none otherwise).
        let scratch_len = if padded > tile { lines * padded } else { 0 };
        let keys = CudaStorage::alloc(dev, scratch_len, dtype)?;
        let pos = CudaStorage::alloc(dev, scratch_len, DType::I64)?;
        let [outer, len, inner, padded_arg, k] = u64s([p.outer, p.len, p.inner, padded, p.k]);
        let desc = KernelArg::U32(p.descending.into());
        let (scratch, outputs) = (
            [KernelArg::Ptr(keys.ptr()), KernelArg::Ptr(pos.ptr())],
            [KernelArg::Ptr(vals.ptr()), KernelArg::Ptr(idx.ptr())],
        );
        let blocks = lines * (padded / tile);
        let sm = dev.sm_count();
        let tile_args = [outer, len, inner, padded_arg, KernelArg::U64(tile as u64)];
        let tail = [outputs[0], outputs[1], k, desc];
        let args: Vec<KernelArg> = tile_args
            .into_iter()
            .chain([KernelArg::Ptr(x)])
            .chain(scratch)
            .chain(tail)
            .collect();
        let kernel = KernelId::for_dtype("sort_tile", dtype)?;
        dev.launch(kernel, tile_config(blocks, tile, dtype, sm), &args)?;
        // The stages above a tile: global steps down to a tile's stride, then the
        // rest of the stage in shared memory.
        let mut size = 2 * tile;
        while size <= padded {
            let mut stride = size / 2;
            while stride >= TILE {
                let sizes = u64s([lines, p.len, padded, size, stride]);
                let args: Vec<KernelArg> = sizes.into_iter().chain(scratch).chain([desc]).collect();
                let kernel = KernelId::for_dtype("sort_step", dtype)?;
                dev.launch_grid_stride(kernel, lines * padded / 2, &args)?;
                stride /= 2;
            }
            let sizes = [outer, len, inner, padded_arg, KernelArg::U64(size as u64)];
            let args: Vec<KernelArg> = sizes.into_iter().chain(scratch).chain(tail).collect();
            let kernel = KernelId::for_dtype("sort_merge", dtype)?;
            dev.launch(kernel, tile_config(blocks, TILE, dtype, sm), &args)?;
            size *= 2;
        }
        Ok((vals, idx))
    }

    fn sort_scatter(
        &mut self,
        p: &SortParams,
        idx: &CudaStorage,
        idx_layout: &Layout,
        g: &CudaStorage,
        g_layout: &Layout,
    ) -> Result<()> {
        for (expected, got) in [(self.dtype(), g.dtype()), (DType::I64, idx.dtype())] {
            if expected != got {
                return Err(Error::DTypeMismatch {
                    op: "sort_scatter",
                    expected,
                    got,
                });
            }
        }
        let kernel = KernelId::for_dtype("sort_scatter", self.dtype())?;
        let (ix, _ix_copy) = idx.contiguous_ptr(idx_layout)?;
        let (gp, _g_copy) = g.contiguous_ptr(g_layout)?;
        let [outer, k, len, inner] = u64s([p.outer, p.k, p.len, p.inner]);
        self.cuda_device().launch_grid_stride(
            kernel,
            p.out_numel(),
            &[
                outer,
                k,
                len,
                inner,
                KernelArg::Ptr(ix),
                KernelArg::Ptr(gp),
                KernelArg::Ptr(self.ptr()),
            ],
        )
    }
}
