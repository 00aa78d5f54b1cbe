//! Image transforms on CUDA: `kernels/image.cu`'s crop-and-flip gather, one launch per
//! batch, the per-sample offsets read from the (N, 3) I64 params on the device.

use super::{CropFlipParams, ImageOps};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

impl ImageOps for CudaStorage {
    fn crop_flip(
        &self,
        layout: &Layout,
        params: &CudaStorage,
        params_layout: &Layout,
        p: &CropFlipParams,
    ) -> Result<CudaStorage> {
        if params.dtype() != DType::I64 {
            return Err(Error::DTypeMismatch {
                op: "crop_flip",
                expected: DType::I64,
                got: params.dtype(),
            });
        }
        let total = p.n * p.c * p.out_h * p.out_w;
        let out = CudaStorage::alloc(self.cuda_device(), total, self.dtype())?;
        if total == 0 {
            return Ok(out);
        }
        let (x, _x_copy) = self.contiguous_ptr(layout)?;
        let (q, _q_copy) = params.contiguous_ptr(params_layout)?;
        let dev = self.cuda_device();
        let size = |v: usize| KernelArg::U64(v as u64);
        dev.launch_grid_stride(
            KernelId::for_dtype("crop_flip", self.dtype())?,
            total,
            &[
                size(total),
                KernelArg::Ptr(x),
                KernelArg::Ptr(q),
                KernelArg::Ptr(out.ptr()),
                size(p.c),
                size(p.h),
                size(p.w),
                size(p.out_h),
                size(p.out_w),
                size(p.pad),
            ],
        )?;
        Ok(out)
    }
}
