//! Launch of `kernels/upsample.cu`: nearest and linear resampling, a thread per output,
//! and their gradients, a thread per input element gathering from the outputs that
//! read it (no atomics).

use super::{UpsampleMode, UpsampleOps, UpsampleParams};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::Result;

impl UpsampleOps for CudaStorage {
    /// [`UpsampleOps::upsample`]: `upsample_<mode>_<dtype>`, a thread per output.
    fn upsample(&self, layout: &Layout, p: &UpsampleParams) -> Result<CudaStorage> {
        let op = match p.mode {
            UpsampleMode::Nearest => "upsample_nearest",
            UpsampleMode::Linear => "upsample_linear",
        };
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let x = self.contiguous_run_ptr(op, layout, p.input_len())?;
        let out = CudaStorage::alloc(self.cuda_device(), p.output_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &geometry_args(p),
            &[KernelArg::Ptr(out.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.output_len(), &args.concat())?;
        Ok(out)
    }

    /// [`UpsampleOps::upsample_backward`]: `upsample_<mode>_backward_<dtype>`, a thread
    /// per input element.
    fn upsample_backward(&self, gl: &Layout, p: &UpsampleParams) -> Result<CudaStorage> {
        let op = match p.mode {
            UpsampleMode::Nearest => "upsample_nearest_backward",
            UpsampleMode::Linear => "upsample_linear_backward",
        };
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let g = self.contiguous_run_ptr(op, gl, p.output_len())?;
        let gx = CudaStorage::alloc(self.cuda_device(), p.input_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(g)][..],
            &geometry_args(p),
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.input_len(), &args.concat())?;
        Ok(gx)
    }
}

/// `UpsampleParams` as the kernels take it: planes, input sizes, output sizes, scale
/// factors (0 for none), align_corners.
fn geometry_args(p: &UpsampleParams) -> Vec<KernelArg> {
    let mut args = vec![KernelArg::U64(p.planes as u64)];
    args.extend(p.axes.iter().map(|a| KernelArg::U64(a.input as u64)));
    args.extend(p.axes.iter().map(|a| KernelArg::U64(a.output as u64)));
    args.extend(
        p.axes
            .iter()
            .map(|a| KernelArg::F64(a.scale.unwrap_or(0.0))),
    );
    args.push(KernelArg::U64(p.align_corners.into()));
    args
}
