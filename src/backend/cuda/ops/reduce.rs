//! Launches of `kernels/reduce.cu`: one dimension reduced away, by a block per output
//! row (contiguous rows: warp-shuffle + shared-memory block reduction) or a thread per
//! output (strided reduced dimension: neighbouring threads read neighbouring
//! outputs), with the reduced dimension split into chunks and a second pass when there
//! are too few outputs to fill the GPU.

use super::{ReduceOp, ReduceOps};
use crate::backend::cuda::runtime::kernels::{code_of, KernelId};
use crate::backend::cuda::runtime::launch::THREADS;
use crate::backend::cuda::runtime::launch::{plan, KernelArg, LaunchConfig};
use crate::backend::cuda::CudaStorage;
use crate::backend::fill::FillOps;
use crate::shape::{check_dim, Layout};
use crate::{DType, Error, Result};

/// Bytes of the accumulator type (f32 for f32/f16/bf16, else 8).
fn acc_bytes(dtype: DType) -> usize {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => 4,
        _ => 8,
    }
}

/// Threads per block for rows of `len` items: a power of two in 32..=256.
fn block_threads(len: usize) -> u32 {
    len.next_power_of_two().clamp(32, THREADS as usize) as u32
}

/// How the work is split: `chunks` items per output, each of `chunk_len` elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Split {
    pub by_block: bool,
    pub threads: u32,
    pub chunks: usize,
    pub chunk_len: usize,
}

/// Chooses the mapping for `n_out` outputs of `len` elements (reduced stride
/// `rstride`) on a GPU with `sm` multiprocessors.
pub(crate) fn split(n_out: usize, len: usize, rstride: usize, sm: usize) -> Split {
    let by_block = len > 16 && (rstride == 1 || n_out < 64);
    let (threads, chunks) = if by_block {
        let threads = block_threads(len);
        let target = 2 * sm;
        let chunks = if n_out >= target {
            1
        } else {
            target
                .div_ceil(n_out)
                .min(len.div_ceil(threads as usize * 4))
        };
        (threads, chunks)
    } else {
        let target = sm * 2048;
        let chunks = if n_out >= target {
            1
        } else {
            target.div_ceil(n_out).min(len.div_ceil(32))
        };
        (THREADS, chunks)
    };
    let chunk_len = len.div_ceil(chunks.max(1)).max(1);
    Split {
        by_block,
        threads,
        chunks: len.div_ceil(chunk_len).max(1),
        chunk_len,
    }
}

impl ReduceOps for CudaStorage {
    fn reduce(&self, op: ReduceOp, layout: &Layout, dim: usize) -> Result<CudaStorage> {
        check_dim(op.name(), dim, layout.shape.len())?;
        let dtype = self.dtype();
        let (len, rstride) = (layout.shape[dim], layout.strides[dim]);
        let mut kept_shape = layout.shape.clone();
        let mut kept_strides = layout.strides.clone();
        kept_shape.remove(dim);
        kept_strides.remove(dim);
        let n_out: usize = kept_shape.iter().product();
        let out_dtype = op.output_dtype(dtype);
        let out = CudaStorage::alloc(self.cuda_device(), n_out, out_dtype)?;
        if n_out == 0 {
            return Ok(out);
        }
        if len == 0 {
            if op != ReduceOp::Sum {
                return Err(Error::shape(
                    op.name(),
                    format!(
                        "cannot reduce dimension {dim} of size 0 of shape {:?}",
                        layout.shape
                    ),
                ));
            }
            return <CudaStorage as FillOps>::full(self.cuda_device(), n_out, 0.0, out_dtype);
        }
        let p = plan(op.name(), &kept_shape, [&kept_strides])?;
        let dev = self.cuda_device().clone();
        let sm = dev.sm_count() as usize;
        let s = split(n_out, len, rstride, sm);
        let by_block = KernelId::for_dtype("reduce_block", dtype)?;
        let by_thread = KernelId::for_dtype("reduce_thread", dtype)?;
        let partials = KernelId::for_dtype("reduce_partials", dtype)?;
        let code = code_of("ReduceCode", op.name())?;
        let items = n_out * s.chunks;
        let scratch = if s.chunks > 1 {
            Some((dev.alloc(items * acc_bytes(dtype))?, dev.alloc(items * 8)?))
        } else {
            None
        };
        let (pv, pi) = scratch.as_ref().map_or((0, 0), |(v, i)| (v.ptr(), i.ptr()));
        let [rank, dims] = p.shape_args();
        let args = [
            KernelArg::Ptr(self.ptr_at(layout.offset)),
            rank,
            dims,
            p.strides_arg(0),
            KernelArg::U64(n_out as u64),
            KernelArg::U64(len as u64),
            KernelArg::I64(rstride as i64),
            KernelArg::U64(s.chunks as u64),
            KernelArg::U64(s.chunk_len as u64),
            KernelArg::U32(code),
            KernelArg::Ptr(out.ptr()),
            KernelArg::Ptr(pv),
            KernelArg::Ptr(pi),
        ];
        if s.by_block {
            let cfg = LaunchConfig {
                grid: (items.min(sm * 32) as u32, 1, 1),
                block: (s.threads, 1, 1),
                shared_bytes: 0,
            };
            dev.launch(by_block, cfg, &args)?;
        } else {
            let cfg = LaunchConfig::grid_stride(items as u64, s.threads, (sm * 16) as u32);
            dev.launch(by_thread, cfg, &args)?;
        }
        if s.chunks > 1 {
            let cfg = LaunchConfig {
                grid: (n_out.min(sm * 32) as u32, 1, 1),
                block: (block_threads(s.chunks), 1, 1),
                shared_bytes: 0,
            };
            dev.launch(
                partials,
                cfg,
                &[
                    KernelArg::U64(n_out as u64),
                    KernelArg::U64(s.chunks as u64),
                    KernelArg::U32(code),
                    KernelArg::Ptr(pv),
                    KernelArg::Ptr(pi),
                    KernelArg::Ptr(out.ptr()),
                ],
            )?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::cuda::runtime::kernels::assert_distinct_codes;

    /// Every reduction has a code in `ReduceCode`, and no two share one.
    #[test]
    fn every_reduction_has_a_distinct_code() {
        assert_distinct_codes("ReduceCode", &ReduceOp::ALL.map(|o| o.name()));
    }

    #[test]
    fn contiguous_rows_use_blocks_and_split_when_outputs_are_few() {
        let s = split(1, 10_000_000, 1, 132);
        assert!(s.by_block);
        assert_eq!(s.threads, 256);
        assert_eq!(s.chunks, 264);
        assert!(s.chunks * s.chunk_len >= 10_000_000);
        assert!((s.chunks - 1) * s.chunk_len < 10_000_000, "no empty chunk");
        let s = split(4096, 1000, 1, 132);
        assert_eq!((s.by_block, s.chunks, s.threads), (true, 1, 256));
        let s = split(1000, 40, 1, 132);
        assert_eq!((s.by_block, s.threads), (true, 64));
    }

    #[test]
    fn strided_or_short_rows_use_threads() {
        let s = split(1000, 4096, 1000, 132);
        assert!(!s.by_block);
        assert!(s.chunks > 1 && s.chunk_len >= 32);
        let s = split(1 << 20, 8, 1, 132);
        assert_eq!((s.by_block, s.chunks, s.chunk_len), (false, 1, 8));
    }

    #[test]
    fn result_dtypes_follow_the_cpu() {
        assert_eq!(ReduceOp::Sum.output_dtype(DType::U8), DType::I64);
        assert_eq!(ReduceOp::Sum.output_dtype(DType::F16), DType::F16);
        assert_eq!(ReduceOp::Max.output_dtype(DType::U8), DType::U8);
        assert_eq!(ReduceOp::ArgMin.output_dtype(DType::F32), DType::I64);
    }
}
