//! Launch of `kernels/pool.cu`: max pooling (dilated, with the index each output took)
//! and average pooling (with or without padding in the divisor) over fixed or adaptive
//! windows, and their gradients, on the device. Forward kernels run a thread per
//! output; backward kernels a thread per input element that gathers from the outputs
//! covering it, so gradients need no atomics and add in the CPU's order.

use super::{PoolOps, PoolParams, Windows};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{KernelArg, MAX_DIMS};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

impl PoolOps for CudaStorage {
    /// [`PoolOps::max_pool`]: `[adaptive_]max_pool_<dtype>`, a thread per output.
    fn max_pool(&self, layout: &Layout, p: &PoolParams) -> Result<(CudaStorage, CudaStorage)> {
        let (kernel, geometry) = kernel_of(["max_pool", "adaptive_max_pool"], self.dtype(), p)?;
        let x = self.contiguous_run_ptr("max_pool", layout, p.input_len())?;
        let dev = self.cuda_device();
        let out = CudaStorage::alloc(dev, p.output_len(), self.dtype())?;
        let indices = CudaStorage::alloc(dev, p.output_len(), DType::I64)?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &geometry,
            &[KernelArg::Ptr(out.ptr()), KernelArg::Ptr(indices.ptr())],
        ];
        dev.launch_grid_stride(kernel, p.output_len(), &args.concat())?;
        Ok((out, indices))
    }

    /// [`PoolOps::max_pool_backward`]: `[adaptive_]max_pool_backward_<dtype>`, a thread
    /// per input element.
    fn max_pool_backward(
        &self,
        gl: &Layout,
        indices: &CudaStorage,
        il: &Layout,
        p: &PoolParams,
    ) -> Result<CudaStorage> {
        let op = "max_pool_backward";
        let names = [op, "adaptive_max_pool_backward"];
        let (kernel, geometry) = kernel_of(names, self.dtype(), p)?;
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
            &geometry,
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.input_len(), &args.concat())?;
        Ok(gx)
    }

    /// [`PoolOps::avg_pool`]: `[adaptive_]avg_pool_<dtype>`, a thread per output.
    fn avg_pool(&self, layout: &Layout, p: &PoolParams) -> Result<CudaStorage> {
        let (kernel, geometry) = kernel_of(["avg_pool", "adaptive_avg_pool"], self.dtype(), p)?;
        let x = self.contiguous_run_ptr("avg_pool", layout, p.input_len())?;
        let out = CudaStorage::alloc(self.cuda_device(), p.output_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(x)][..],
            &geometry,
            &[KernelArg::Ptr(out.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.output_len(), &args.concat())?;
        Ok(out)
    }

    /// [`PoolOps::avg_pool_backward`]: `[adaptive_]avg_pool_backward_<dtype>`, a thread
    /// per input element.
    fn avg_pool_backward(&self, gl: &Layout, p: &PoolParams) -> Result<CudaStorage> {
        let op = "avg_pool_backward";
        let names = [op, "adaptive_avg_pool_backward"];
        let (kernel, geometry) = kernel_of(names, self.dtype(), p)?;
        let g = self.contiguous_run_ptr(op, gl, p.output_len())?;
        let gx = CudaStorage::alloc(self.cuda_device(), p.input_len(), self.dtype())?;
        let args = [
            &[KernelArg::Ptr(g)][..],
            &geometry,
            &[KernelArg::Ptr(gx.ptr())],
        ];
        self.cuda_device()
            .launch_grid_stride(kernel, p.input_len(), &args.concat())?;
        Ok(gx)
    }
}

/// The kernel for `dtype` and `p`'s windows (`names`: the fixed-window family, then
/// the adaptive one), and the geometry arguments it takes: `planes, shape = (in, out)`,
/// and for fixed windows `ks = (kernel, stride), pd = (padding, dilation),
/// include_pad`, each triple in (d, h, w) order, as `make_pool` in pool.cu reads them.
fn kernel_of(
    [strided, adaptive]: [&'static str; 2],
    dtype: DType,
    p: &PoolParams,
) -> Result<(KernelId, Vec<KernelArg>)> {
    let dims = |a: [usize; 3], b: [usize; 3]| {
        let mut d = [0u64; MAX_DIMS];
        for (slot, v) in d.iter_mut().zip(a.iter().chain(&b)) {
            *slot = *v as u64;
        }
        KernelArg::Dims(d)
    };
    let mut args = vec![KernelArg::U64(p.planes as u64), dims(p.input, p.output)];
    let kernel = match p.windows {
        Windows::Adaptive => KernelId::for_dtype(adaptive, dtype)?,
        Windows::Strided {
            kernel,
            stride,
            pad,
            dilation,
            count_include_pad,
        } => {
            args.extend([
                dims(kernel, stride),
                dims(pad, dilation),
                KernelArg::U64(u64::from(count_include_pad)),
            ]);
            KernelId::for_dtype(strided, dtype)?
        }
    };
    Ok((kernel, args))
}
