//! The fused non-finite check and unscale on CUDA: one launch of `kernels/amp.cu`
//! per gradient, all of a device's gradients setting one `found_inf` flag there.

use super::{check_unscale_operands, AmpOps};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::backend::BackendStorage;
use crate::shape::Layout;
use crate::Result;

impl AmpOps for CudaStorage {
    fn amp_unscale(&self, layout: &Layout, found_inf: &mut Self, inv_scale: f64) -> Result<Self> {
        let dtype = self.dtype();
        check_unscale_operands(dtype, found_inf.dtype(), found_inf.len())?;
        let kernel = KernelId::for_dtype("amp_unscale", dtype)?;
        // The kernel reads a contiguous run; a strided gradient is gathered first.
        let gathered;
        let (src, start) = match layout.contiguous_range() {
            Some(range) => (self, range.start),
            None => {
                gathered = self.copy_as(layout, dtype)?;
                (&gathered, 0)
            }
        };
        let n = layout.numel();
        let dev = self.cuda_device();
        let out = CudaStorage::alloc(dev, n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let args = [
            KernelArg::U64(n as u64),
            KernelArg::Ptr(src.ptr_at(start)),
            KernelArg::Ptr(out.ptr()),
            KernelArg::Ptr(found_inf.ptr()),
            KernelArg::F64(inv_scale),
        ];
        dev.launch_grid_stride(kernel, n, &args)?;
        Ok(out)
    }
}
