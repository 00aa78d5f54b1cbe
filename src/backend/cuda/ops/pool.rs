//! Launch of `kernels/pool.cu`: 2-D max pooling (dilated, with the index each output
//! took), average (with or without padding in the divisor) and adaptive average
//! pooling, and their gradients, on the device. Forward kernels run a thread per output; backward kernels a thread per input element that
//! gathers from the outputs covering it, so gradients need no atomics and add in the
//! CPU's order.

use super::{AdaptivePool2dParams, Pool2dParams, PoolOps};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

impl PoolOps for CudaStorage {
    /// [`PoolOps::max_pool2d`]: `max_pool2d_<dtype>`, a thread per output.
    fn max_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<(CudaStorage, CudaStorage)> {
        let op = "max_pool2d";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let x = self.contiguous_run_ptr(op, layout, p.input_len())?;
        let dev = self.cuda_device();
        let out = CudaStorage::alloc(dev, p.output_len(), self.dtype())?;
        let indices = CudaStorage::alloc(dev, p.output_len(), DType::I64)?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &window_args(p),
            &[KernelArg::Ptr(out.ptr()), KernelArg::Ptr(indices.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.output_len(), &args.concat())?;
        Ok((out, indices))
    }

    /// [`PoolOps::max_pool2d_backward`]: `max_pool2d_backward_<dtype>`, a thread per
    /// input element.
    fn max_pool2d_backward(
        &self,
        gl: &Layout,
        indices: &CudaStorage,
        il: &Layout,
        p: &Pool2dParams,
    ) -> Result<CudaStorage> {
        let op = "max_pool2d_backward";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        if indices.dtype() != DType::I64 {
            return Err(Error::DTypeMismatch {
                op,
                expected: DType::I64,
                got: indices.dtype(),
            });
        }
        let g = self.contiguous_run_ptr(op, gl, p.output_len())?;
        let idx = indices.contiguous_run_ptr(op, il, p.output_len())?;
        let gx = CudaStorage::alloc(self.cuda_device(), p.input_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(g), KernelArg::Ptr(idx)][..],
            &window_args(p),
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.input_len(), &args.concat())?;
        Ok(gx)
    }

    /// [`PoolOps::avg_pool2d`]: `avg_pool2d_<dtype>`, a thread per output.
    fn avg_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        let op = "avg_pool2d";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let x = self.contiguous_run_ptr(op, layout, p.input_len())?;
        let out = CudaStorage::alloc(self.cuda_device(), p.output_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &window_args(p),
            &[KernelArg::Ptr(out.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.output_len(), &args.concat())?;
        Ok(out)
    }

    /// [`PoolOps::avg_pool2d_backward`]: `avg_pool2d_backward_<dtype>`, a thread per
    /// input element.
    fn avg_pool2d_backward(&self, gl: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        let op = "avg_pool2d_backward";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let g = self.contiguous_run_ptr(op, gl, p.output_len())?;
        let gx = CudaStorage::alloc(self.cuda_device(), p.input_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(g)][..],
            &window_args(p),
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.input_len(), &args.concat())?;
        Ok(gx)
    }

    /// [`PoolOps::adaptive_avg_pool2d`]: `adaptive_avg_pool2d_<dtype>`, a thread per
    /// output.
    fn adaptive_avg_pool2d(
        &self,
        layout: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CudaStorage> {
        let op = "adaptive_avg_pool2d";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let (input_len, output_len) = (p.input_len(), p.output_len());
        let x = self.contiguous_run_ptr(op, layout, input_len)?;
        let out = CudaStorage::alloc(self.cuda_device(), output_len, self.dtype())?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &adaptive_args(p),
            &[KernelArg::Ptr(out.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, output_len, &args.concat())?;
        Ok(out)
    }

    /// [`PoolOps::adaptive_avg_pool2d_backward`]: `adaptive_avg_pool2d_backward_<dtype>`,
    /// a thread per input element.
    fn adaptive_avg_pool2d_backward(
        &self,
        gl: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CudaStorage> {
        let op = "adaptive_avg_pool2d_backward";
        let kernel = KernelId::for_dtype(op, self.dtype())?;
        let (input_len, output_len) = (p.input_len(), p.output_len());
        let g = self.contiguous_run_ptr(op, gl, output_len)?;
        let gx = CudaStorage::alloc(self.cuda_device(), input_len, self.dtype())?;
        let args = [
            &[KernelArg::Ptr(g)][..],
            &adaptive_args(p),
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, input_len, &args.concat())?;
        Ok(gx)
    }
}

/// `Pool2dParams` as the windowed kernels take it (the order of `Pool2d` in pool.cu).
fn window_args(p: &Pool2dParams) -> [KernelArg; 14] {
    [
        p.planes(),
        p.h,
        p.w,
        p.out_h,
        p.out_w,
        p.kh,
        p.kw,
        p.stride_h,
        p.stride_w,
        p.pad_h,
        p.pad_w,
        p.dilation_h,
        p.dilation_w,
        usize::from(p.count_include_pad),
    ]
    .map(|v| KernelArg::U64(v as u64))
}

/// `AdaptivePool2dParams` as the adaptive kernels take it.
fn adaptive_args(p: &AdaptivePool2dParams) -> [KernelArg; 5] {
    [p.planes(), p.h, p.w, p.out_h, p.out_w].map(|v| KernelArg::U64(v as u64))
}
