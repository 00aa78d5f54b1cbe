//! Launch of `kernels/softmax.cu`: softmax / log-softmax along one dimension.

use super::SoftmaxOps;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::THREADS;
use crate::backend::cuda::runtime::launch::{plan, KernelArg, LaunchConfig};
use crate::backend::cuda::CudaStorage;
use crate::shape::{check_dim, Layout};
use crate::{DType, Error, Result};

impl SoftmaxOps for CudaStorage {
    fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Result<CudaStorage> {
        let op = if log { "log_softmax" } else { "softmax" };
        let dtype = self.dtype();
        use KernelId::*;
        let (by_block, by_thread) = match dtype {
            DType::F32 => (SoftmaxBlockF32, SoftmaxThreadF32),
            DType::F64 => (SoftmaxBlockF64, SoftmaxThreadF64),
            DType::F16 => (SoftmaxBlockF16, SoftmaxThreadF16),
            DType::BF16 => (SoftmaxBlockBf16, SoftmaxThreadBf16),
            DType::I64 | DType::U8 => return Err(Error::UnsupportedDType { op, dtype }),
        };
        check_dim(op, dim, layout.shape.len())?;
        let n = layout.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let (len, rstride) = (layout.shape[dim], layout.strides[dim]);
        let inner: usize = layout.shape[dim + 1..].iter().product();
        let mut kept_shape = layout.shape.clone();
        let mut kept_strides = layout.strides.clone();
        kept_shape.remove(dim);
        kept_strides.remove(dim);
        let n_rows = n / len;
        let p = plan(op, &kept_shape, [&kept_strides])?;
        let [rank, dims] = p.shape_args();
        let dev = self.cuda_device();
        let sm = dev.sm_count();
        let args = [
            KernelArg::Ptr(self.ptr_at(layout.offset)),
            rank,
            dims,
            p.strides_arg(0),
            KernelArg::U64(n_rows as u64),
            KernelArg::U64(len as u64),
            KernelArg::I64(rstride as i64),
            KernelArg::U64(inner as u64),
            KernelArg::Ptr(out.ptr()),
            KernelArg::U32(u32::from(log)),
        ];
        if len > 16 && (rstride == 1 || n_rows < 64) {
            let threads = len.next_power_of_two().clamp(32, THREADS as usize) as u32;
            let cfg = LaunchConfig {
                grid: (n_rows.min(sm as usize * 32) as u32, 1, 1),
                block: (threads, 1, 1),
                shared_bytes: 0,
            };
            dev.launch(by_block, cfg, &args)?;
        } else {
            dev.launch_grid_stride(by_thread, n_rows, &args)?;
        }
        Ok(out)
    }
}
