//! Launch of `kernels/pad.cu`: padding (constant, reflect, replicate, circular) and
//! its gradient on the device. The forward kernel runs a thread per output; the
//! backward kernel a thread per input element that gathers from the outputs that
//! copied it, so the gradient needs no atomics and adds in the CPU's order.

use super::{Pad2dParams, PadOps};
use crate::backend::cuda::runtime::kernels::{code_of, KernelId};
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::Result;

impl PadOps for CudaStorage {
    /// [`PadOps::pad2d`]: `pad2d_<dtype>`, a thread per output.
    fn pad2d(&self, layout: &Layout, p: &Pad2dParams) -> Result<CudaStorage> {
        let op = "pad2d";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let x = self.contiguous_run_ptr(op, layout, p.input_len())?;
        let out = CudaStorage::alloc(self.cuda_device(), p.output_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &geometry_args(p)?,
            &[KernelArg::F64(p.value), KernelArg::Ptr(out.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.output_len(), &args.concat())?;
        Ok(out)
    }

    /// [`PadOps::pad2d_backward`]: `pad2d_backward_<dtype>`, a thread per input element.
    fn pad2d_backward(&self, gl: &Layout, p: &Pad2dParams) -> Result<CudaStorage> {
        let op = "pad2d_backward";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let g = self.contiguous_run_ptr(op, gl, p.output_len())?;
        let gx = CudaStorage::alloc(self.cuda_device(), p.input_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(g)][..],
            &geometry_args(p)?,
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.input_len(), &args.concat())?;
        Ok(gx)
    }
}

/// The geometry and the mode's code, in the order of the kernels' parameters.
fn geometry_args(p: &Pad2dParams) -> Result<[KernelArg; 8]> {
    let sizes = [p.planes, p.h, p.w, p.top, p.bottom, p.left, p.right].map(|v| v as u64);
    let code = code_of("PadCode", p.kind.name())?;
    let [a, b, c, d, e, f, g] = sizes.map(KernelArg::U64);
    Ok([a, b, c, d, e, f, g, KernelArg::U32(code)])
}
