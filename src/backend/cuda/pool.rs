//! Pooling on CUDA. There is no kernel yet: each primitive runs the CPU backend on a
//! host copy and brings the result back ([`CudaStorage::via_host`]) — correct but
//! slow (the GPU-training issue adds `kernels/pool.cu`).

use super::storage::CudaStorage;
use crate::backend::{AdaptivePool2dParams, Pool2dParams, PoolOps};
use crate::shape::Layout;
use crate::Result;

impl PoolOps for CudaStorage {
    fn max_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<(CudaStorage, CudaStorage)> {
        let (x, l) = self.host_copy(layout)?;
        let (values, indices) = x.max_pool2d(&l, p)?;
        Ok((
            CudaStorage::from_cpu(self.cuda_device(), &values)?,
            CudaStorage::from_cpu(self.cuda_device(), &indices)?,
        ))
    }

    fn max_pool2d_backward(
        &self,
        gl: &Layout,
        indices: &CudaStorage,
        il: &Layout,
        p: &Pool2dParams,
    ) -> Result<CudaStorage> {
        let (i, il) = indices.host_copy(il)?;
        self.via_host(gl, |g, gl| g.max_pool2d_backward(gl, &i, &il, p))
    }

    fn avg_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        self.via_host(layout, |x, l| x.avg_pool2d(l, p))
    }

    fn avg_pool2d_backward(&self, gl: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        self.via_host(gl, |g, gl| g.avg_pool2d_backward(gl, p))
    }

    fn adaptive_avg_pool2d(
        &self,
        layout: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CudaStorage> {
        self.via_host(layout, |x, l| x.adaptive_avg_pool2d(l, p))
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        gl: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CudaStorage> {
        self.via_host(gl, |g, gl| g.adaptive_avg_pool2d_backward(gl, p))
    }
}
