//! Convolution on CUDA. There is no kernel yet: each primitive runs the CPU backend
//! on host copies and brings the result back ([`CudaStorage::via_host`]) — correct,
//! so every op is usable on a CUDA tensor, but slow (the GPU-training issue adds
//! `kernels/conv.cu`).

use super::storage::CudaStorage;
use crate::backend::{Conv2dParams, ConvOps};
use crate::shape::Layout;
use crate::Result;

impl ConvOps for CudaStorage {
    fn conv2d(
        &self,
        xl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        let (x, xl) = self.host_copy(xl)?;
        let (w, wl) = w.host_copy(wl)?;
        let bias = bias.map(|(b, bl)| b.host_copy(bl)).transpose()?;
        let out = x.conv2d(&xl, &w, &wl, bias.as_ref().map(|(b, l)| (b, l)), p)?;
        CudaStorage::from_cpu(self.cuda_device(), &out)
    }

    fn conv2d_backward_input(
        &self,
        gl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        let (w, wl) = w.host_copy(wl)?;
        self.via_host(gl, |g, gl| g.conv2d_backward_input(gl, &w, &wl, p))
    }

    fn conv2d_backward_weight(
        &self,
        xl: &Layout,
        g: &CudaStorage,
        gl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        let (g, gl) = g.host_copy(gl)?;
        self.via_host(xl, |x, xl| x.conv2d_backward_weight(xl, &g, &gl, p))
    }
}
