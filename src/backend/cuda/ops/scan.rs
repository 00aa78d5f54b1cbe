//! Launch of `kernels/scan.cu`: a thread per line of the (outer, len, inner) view, each
//! walking its line in order with the CPU's accumulator.

use super::{ScanOp, ScanOps, ScanParams};
use crate::backend::cuda::runtime::kernels::{code_of, KernelId};
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{Error, Result};

/// The sizes of `p`, the kernels' first three arguments.
fn size_args(p: &ScanParams) -> [KernelArg; 3] {
    [p.outer, p.len, p.inner].map(|v| KernelArg::U64(v as u64))
}

impl ScanOps for CudaStorage {
    fn scan(&self, layout: &Layout, p: &ScanParams, op: ScanOp, reverse: bool) -> Result<Self> {
        let dtype = self.dtype();
        let kernel = KernelId::for_dtype("scan", dtype)?;
        let code = code_of("ScanCode", op.name())?;
        let (x, _copy) = self.contiguous_ptr(layout)?;
        let dev = self.cuda_device();
        let out = CudaStorage::alloc(dev, p.numel(), dtype)?;
        let [outer, len, inner] = size_args(p);
        let args = [
            outer,
            len,
            inner,
            KernelArg::Ptr(x),
            KernelArg::Ptr(out.ptr()),
            KernelArg::U32(code),
            KernelArg::U32(reverse.into()),
        ];
        dev.launch_grid_stride(kernel, p.lines(), &args)?;
        Ok(out)
    }

    fn cumprod_backward(
        &self,
        [xl, ol, gl]: [&Layout; 3],
        out: &CudaStorage,
        grad: &CudaStorage,
        p: &ScanParams,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        for other in [out.dtype(), grad.dtype()] {
            if other != dtype {
                return Err(Error::DTypeMismatch {
                    op: "cumprod_backward",
                    expected: dtype,
                    got: other,
                });
            }
        }
        let kernel = KernelId::for_dtype("cumprod_backward", dtype)?;
        let (x, _x_copy) = self.contiguous_ptr(xl)?;
        let (o, _o_copy) = out.contiguous_ptr(ol)?;
        let (g, _g_copy) = grad.contiguous_ptr(gl)?;
        let dev = self.cuda_device();
        let gx = CudaStorage::alloc(dev, p.numel(), dtype)?;
        let [outer, len, inner] = size_args(p);
        let args = [
            outer,
            len,
            inner,
            KernelArg::Ptr(x),
            KernelArg::Ptr(o),
            KernelArg::Ptr(g),
            KernelArg::Ptr(gx.ptr()),
        ];
        dev.launch_grid_stride(kernel, p.lines(), &args)?;
        Ok(gx)
    }
}

#[cfg(test)]
mod tests {
    use super::ScanOp;
    use crate::backend::cuda::runtime::kernels::assert_distinct_codes;

    /// Every scan op has a code in `ScanCode`, and no two share one.
    #[test]
    fn every_scan_op_has_a_distinct_code() {
        assert_distinct_codes("ScanCode", &ScanOp::ALL.map(|o| o.name()));
    }
}
