//! Dropout on CUDA: `kernels/dropout.cu` runs the Philox stream on the device, so
//! its masks are bit-identical to the CPU backend's for the same (seed, offset).

use super::kernels::KernelId;
use super::launch::{plan, KernelArg, LaunchConfig};
use super::storage::CudaStorage;
use crate::backend::DropoutOps;
use crate::rng::{keep_threshold, PhiloxStream};
use crate::shape::Layout;
use crate::Result;

impl DropoutOps for CudaStorage {
    fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<CudaStorage> {
        let dtype = self.dtype();
        let kernel = KernelId::for_dtype("dropout", dtype)?;
        let n = layout.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let pl = plan("dropout", &layout.shape, [&layout.strides])?;
        let [rank, dims] = pl.shape_args();
        let dev = self.cuda_device();
        dev.launch(
            kernel,
            LaunchConfig::elementwise(n.div_ceil(4) as u64, dev.sm_count()),
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                pl.strides_arg(0),
                KernelArg::Ptr(out.ptr()),
                KernelArg::U64(stream.seed),
                KernelArg::U64(stream.offset),
                KernelArg::U64(keep_threshold(p)),
                KernelArg::F64(1.0 / (1.0 - p)),
            ],
        )?;
        Ok(out)
    }
}
