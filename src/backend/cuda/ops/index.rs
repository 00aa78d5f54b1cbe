//! Launches of `kernels/index.cu`: index validation, gather, scatter_add (owner
//! computes, deterministic: no atomics; the backward of index_select of rows, an
//! embedding's gradient, by `scatter_add_rows`), index_put of rows (the same kernel,
//! adding or replacing) and where_cond.
//!
//! Index validation runs on the device: `index_bounds` folds the index's min and max
//! in one block and the host reads those 16 bytes back (one small device-to-host copy
//! per validated index, like cross_entropy's target check), so an out-of-range index
//! is an `Err` naming the argument and the bad value, not a device fault.

use super::IndexOps;
use crate::backend::cuda::runtime::kernels::defines;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{plan, KernelArg, LaunchConfig, MAX_DIMS};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// Threads of the one block of `index_bounds` (`KILN_INDEX_BOUNDS_THREADS`).
const BOUNDS_THREADS: u32 = defines::KILN_INDEX_BOUNDS_THREADS as u32;

/// Threads per block of `scatter_add_rows` (`KILN_SCATTER_ROWS_THREADS`).
const ROWS_THREADS: u32 = defines::KILN_SCATTER_ROWS_THREADS as u32;

/// Whether a scatter_add is the backward of index_select of rows (an embedding's
/// gradient): along dim 0 of a 2-D output, with an index that is one id per src row,
/// broadcast (stride 0) over every column. `scatter_add_rows` serves that case in
/// V·N index reads instead of the general kernel's V·D·N.
fn is_row_scatter(layout: &Layout, dim: usize, idx_layout: &Layout) -> bool {
    dim == 0
        && layout.shape.len() == 2
        && idx_layout.shape.len() == 2
        && idx_layout.shape[1] == layout.shape[1]
        && idx_layout.strides[1] == 0
}

/// `out = base + rows of src scattered by idx` for the case of [`is_row_scatter`]
/// (`put: None`), or index_put's rows added (`Some(true)`) or written (`Some(false)`):
/// one block per output row (at most 16 per multiprocessor, the kernel loops over the
/// rest), `idx` read along its dim 0.
fn scatter_rows(
    (base, layout): (&CudaStorage, &Layout),
    (idx, idx_layout): (&CudaStorage, &Layout),
    (src, src_layout): (&CudaStorage, &Layout),
    out: &CudaStorage,
    put: Option<bool>,
) -> Result<()> {
    let family = match put {
        None => "scatter_add_rows",
        Some(_) => "index_put_rows",
    };
    let kernel = KernelId::for_dtype(family, base.dtype())?;
    let dev = base.cuda_device();
    let rows = layout.shape[0];
    let cfg = LaunchConfig {
        grid: (rows.clamp(1, dev.sm_count() as usize * 16) as u32, 1, 1),
        block: (ROWS_THREADS, 1, 1),
        shared_bytes: 0,
    };
    let stride = |l: &Layout, d: usize| KernelArg::I64(l.strides[d] as i64);
    let mut args = vec![
        KernelArg::U64(rows as u64),
        KernelArg::U64(layout.shape[1] as u64),
        KernelArg::Ptr(base.ptr_at(layout.offset)),
        stride(layout, 0),
        stride(layout, 1),
        KernelArg::Ptr(idx.ptr_at(idx_layout.offset)),
        stride(idx_layout, 0),
        KernelArg::U64(idx_layout.shape[0] as u64),
        KernelArg::Ptr(src.ptr_at(src_layout.offset)),
        stride(src_layout, 0),
        stride(src_layout, 1),
        KernelArg::Ptr(out.ptr()),
    ];
    args.extend(put.map(|accumulate| KernelArg::U32(accumulate.into())));
    dev.launch(kernel, cfg, &args)
}

/// A shape (innermost first), each operand's strides without dimension `dim`, and
/// each operand's stride along `dim`.
type Unmerged<const N: usize> = ([u64; MAX_DIMS], [[i64; MAX_DIMS]; N], [i64; N]);

/// A shape and strides of `op`'s operands unmerged, innermost first (as the index
/// kernels walk them), with the strides of dimension `dim` moved out of the
/// `Strides` structs into the second result (see kernels/index.cu).
fn unmerged<const N: usize>(
    op: &'static str,
    shape: &[usize],
    strides: [&[usize]; N],
    dim: usize,
) -> Result<Unmerged<N>> {
    let rank = shape.len();
    if rank > MAX_DIMS {
        return Err(Error::shape(
            op,
            format!("CUDA index kernels take at most {MAX_DIMS} dimensions, got {rank}"),
        ));
    }
    let mut dims = [1u64; MAX_DIMS];
    let mut st = [[0i64; MAX_DIMS]; N];
    let mut at_dim = [0i64; N];
    for d in 0..rank {
        let k = rank - 1 - d;
        dims[k] = shape[d] as u64;
        for (n, s) in strides.iter().enumerate() {
            if d == dim {
                at_dim[n] = s[d] as i64;
            } else {
                st[n][k] = s[d] as i64;
            }
        }
    }
    Ok((dims, st, at_dim))
}

fn check_i64(op: &'static str, s: &CudaStorage) -> Result<()> {
    if s.dtype() != DType::I64 {
        return Err(Error::DTypeMismatch {
            op,
            expected: DType::I64,
            got: s.dtype(),
        });
    }
    Ok(())
}

impl IndexOps for CudaStorage {
    fn index_bounds(&self, layout: &Layout) -> Result<Option<(i64, i64)>> {
        check_i64("index_bounds", self)?;
        let n = layout.numel();
        if n == 0 {
            return Ok(None);
        }
        let dev = self.cuda_device();
        let out = CudaStorage::alloc(dev, 2, DType::I64)?;
        let p = plan("index_bounds", &layout.shape, [&layout.strides])?;
        let [rank, dims] = p.shape_args();
        let cfg = LaunchConfig {
            grid: (1, 1, 1),
            block: (BOUNDS_THREADS, 1, 1),
            shared_bytes: 0,
        };
        dev.launch(
            KernelId::IndexBounds,
            cfg,
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                p.strides_arg(0),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
        let mut bytes = [0u8; 16];
        dev.copy_dtoh(&mut bytes, out.ptr())?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            i64::from_ne_bytes(w)
        };
        Ok(Some((word(0), word(1))))
    }

    fn gather(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &CudaStorage,
        idx_layout: &Layout,
    ) -> Result<CudaStorage> {
        check_i64("gather", idx)?;
        let kernel = KernelId::for_dtype("gather", self.dtype())?;
        let dev = self.cuda_device();
        let n = idx_layout.numel();
        let out = CudaStorage::alloc(dev, n, self.dtype())?;
        if n == 0 {
            return Ok(out);
        }
        let shape = &idx_layout.shape;
        // The source skips `dim` (its stride is passed apart); the index walks all.
        let (dims, [ss], [src_step]) = unmerged("gather", shape, [&layout.strides], dim)?;
        let (_, [is], _) = unmerged("gather", shape, [&idx_layout.strides], usize::MAX)?;
        dev.launch_grid_stride(
            kernel,
            n,
            &[
                KernelArg::U64(n as u64),
                KernelArg::I32(shape.len() as i32),
                KernelArg::Dims(dims),
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                KernelArg::Strides(ss),
                KernelArg::I64(src_step),
                KernelArg::I64(layout.shape[dim] as i64),
                KernelArg::Ptr(idx.ptr_at(idx_layout.offset)),
                KernelArg::Strides(is),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
        Ok(out)
    }

    fn scatter_add(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &CudaStorage,
        idx_layout: &Layout,
        src: &CudaStorage,
        src_layout: &Layout,
    ) -> Result<CudaStorage> {
        check_i64("scatter_add", idx)?;
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "scatter_add",
                expected: self.dtype(),
                got: src.dtype(),
            });
        }
        let kernel = KernelId::for_dtype("scatter_add", self.dtype())?;
        let dev = self.cuda_device();
        let n = layout.numel();
        let out = CudaStorage::alloc(dev, n, self.dtype())?;
        if n == 0 {
            return Ok(out);
        }
        if is_row_scatter(layout, dim, idx_layout) {
            scatter_rows(
                (self, layout),
                (idx, idx_layout),
                (src, src_layout),
                &out,
                None,
            )?;
            return Ok(out);
        }
        let (dims, [bs], _) =
            unmerged("scatter_add", &layout.shape, [&layout.strides], usize::MAX)?;
        let (idims, [is, ss], [idx_step, src_step]) = unmerged(
            "scatter_add",
            &idx_layout.shape,
            [&idx_layout.strides, &src_layout.strides],
            dim,
        )?;
        let rank = layout.shape.len();
        dev.launch_grid_stride(
            kernel,
            n,
            &[
                KernelArg::U64(n as u64),
                KernelArg::I32(rank as i32),
                KernelArg::Dims(dims),
                KernelArg::I32((rank - 1 - dim) as i32),
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                KernelArg::Strides(bs),
                KernelArg::Dims(idims),
                KernelArg::Ptr(idx.ptr_at(idx_layout.offset)),
                KernelArg::Strides(is),
                KernelArg::I64(idx_step),
                KernelArg::U64(idx_layout.shape[dim] as u64),
                KernelArg::Ptr(src.ptr_at(src_layout.offset)),
                KernelArg::Strides(ss),
                KernelArg::I64(src_step),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
        Ok(out)
    }

    fn index_put_rows(
        &self,
        layout: &Layout,
        idx: &CudaStorage,
        idx_layout: &Layout,
        src: &CudaStorage,
        src_layout: &Layout,
        accumulate: bool,
    ) -> Result<CudaStorage> {
        check_i64("index_put", idx)?;
        if src.dtype() != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "index_put",
                expected: self.dtype(),
                got: src.dtype(),
            });
        }
        let out = CudaStorage::alloc(self.cuda_device(), layout.numel(), self.dtype())?;
        if layout.numel() > 0 {
            scatter_rows(
                (self, layout),
                (idx, idx_layout),
                (src, src_layout),
                &out,
                Some(accumulate),
            )?;
        }
        Ok(out)
    }

    fn where_cond(
        &self,
        layout: &Layout,
        a: &CudaStorage,
        a_layout: &Layout,
        b: &CudaStorage,
        b_layout: &Layout,
    ) -> Result<CudaStorage> {
        if self.dtype() != DType::U8 {
            return Err(Error::DTypeMismatch {
                op: "where_cond",
                expected: DType::U8,
                got: self.dtype(),
            });
        }
        if a.dtype() != b.dtype() {
            return Err(Error::DTypeMismatch {
                op: "where_cond",
                expected: a.dtype(),
                got: b.dtype(),
            });
        }
        let kernel = KernelId::for_dtype("where_cond", a.dtype())?;
        let dev = self.cuda_device();
        let n = layout.numel();
        let out = CudaStorage::alloc(dev, n, a.dtype())?;
        if n == 0 {
            return Ok(out);
        }
        let p = plan(
            "where_cond",
            &layout.shape,
            [&layout.strides, &a_layout.strides, &b_layout.strides],
        )?;
        let [rank, dims] = p.shape_args();
        dev.launch_grid_stride(
            kernel,
            n,
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                p.strides_arg(0),
                KernelArg::Ptr(a.ptr_at(a_layout.offset)),
                p.strides_arg(1),
                KernelArg::Ptr(b.ptr_at(b_layout.offset)),
                p.strides_arg(2),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
        Ok(out)
    }
}
