//! Dropout on CUDA: `kernels/dropout.cu` runs the Philox stream on the device, so
//! its masks are bit-identical to the CPU backend's for the same (seed, offset).
//! A contiguous input takes `dropout_contig_<dt>` (four adjacent elements per Philox
//! block, vector loads and stores where aligned); any other layout `dropout_<dt>`.

use super::DropoutOps;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{plan, KernelArg};
use crate::backend::cuda::CudaStorage;
use crate::rng::{keep_threshold, PhiloxStream};
use crate::shape::Layout;
use crate::Result;

impl DropoutOps for CudaStorage {
    fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<CudaStorage> {
        let dtype = self.dtype();
        let n = layout.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let dev = self.cuda_device();
        // A thread per Philox block of four elements.
        let blocks = n.div_ceil(4);
        let random = [
            KernelArg::U64(stream.seed),
            KernelArg::U64(stream.offset),
            KernelArg::U64(keep_threshold(p)),
            KernelArg::F64(1.0 / (1.0 - p)),
        ];
        let x = KernelArg::Ptr(self.ptr_at(layout.offset));
        let y = KernelArg::Ptr(out.ptr());
        if layout.is_contiguous() {
            let kernel = KernelId::for_dtype("dropout_contig", dtype)?;
            let args = [KernelArg::U64(n as u64), x, y];
            dev.launch_grid_stride(kernel, blocks, &[&args[..], &random[..]].concat())?;
        } else {
            let kernel = KernelId::for_dtype("dropout", dtype)?;
            let pl = plan("dropout", &layout.shape, [&layout.strides])?;
            let [rank, dims] = pl.shape_args();
            let args = [
                KernelArg::U64(n as u64),
                rank,
                dims,
                x,
                pl.strides_arg(0),
                y,
            ];
            dev.launch_grid_stride(kernel, blocks, &[&args[..], &random[..]].concat())?;
        }
        Ok(out)
    }
}
