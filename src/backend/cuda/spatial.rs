//! Convolution, pooling and dropout on CUDA.
//!
//! Dropout runs `kernels/dropout.cu` (the Philox stream on the device, bit-identical
//! masks). Convolution and pooling have no kernels yet: they run the CPU backend on
//! host copies and bring the result back ([`CudaStorage::via_host`]), which is correct
//! and keeps every op usable on a CUDA tensor, but slow.

use super::kernels::KernelId;
use super::launch::{plan, KernelArg, LaunchConfig};
use super::storage::{CudaStorage, THREADS};
use crate::backend::{AdaptivePool2dParams, Conv2dParams, CpuStorage, Pool2dParams};
use crate::rng::{keep_threshold, PhiloxStream};
use crate::shape::Layout;
use crate::Result;

/// A host copy of `s` at `l`, with its (contiguous) layout.
fn host(s: &CudaStorage, l: &Layout) -> Result<(CpuStorage, Layout)> {
    Ok((s.to_cpu(l)?, Layout::contiguous(&l.shape)))
}

impl CudaStorage {
    pub(crate) fn dropout(
        &self,
        layout: &Layout,
        stream: PhiloxStream,
        p: f64,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        let kernel = KernelId::for_dtype("dropout", dtype)?;
        let n = layout.numel();
        let out = CudaStorage::alloc(self.device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let pl = plan("dropout", &layout.shape, [&layout.strides])?;
        let [rank, dims] = pl.shape_args();
        let dev = self.device();
        dev.launch(
            kernel,
            LaunchConfig::grid_stride(n.div_ceil(4) as u64, THREADS, dev.sm_count() * 16),
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                pl.strides_arg(0),
                KernelArg::Ptr(out.ptr()),
                KernelArg::U64(stream.seed),
                KernelArg::U64(stream.offset),
                KernelArg::U64(keep_threshold(p)),
                KernelArg::F64(1.0 / (1.0 - p)),
            ],
        )?;
        Ok(out)
    }

    pub(crate) fn conv2d(
        &self,
        xl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        self.check_same_device("conv2d", w)?;
        let (x, xl) = host(self, xl)?;
        let (w, wl) = host(w, wl)?;
        let bias = match bias {
            Some((b, bl)) => {
                self.check_same_device("conv2d", b)?;
                Some(host(b, bl)?)
            }
            None => None,
        };
        let out = x.conv2d(&xl, &w, &wl, bias.as_ref().map(|(b, l)| (b, l)), p)?;
        CudaStorage::from_cpu(self.device(), &out)
    }

    pub(crate) fn conv2d_backward_input(
        &self,
        gl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        self.check_same_device("conv2d_backward_input", w)?;
        let (w, wl) = host(w, wl)?;
        self.via_host(gl, |g, gl| g.conv2d_backward_input(gl, &w, &wl, p))
    }

    pub(crate) fn conv2d_backward_weight(
        &self,
        xl: &Layout,
        g: &CudaStorage,
        gl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        self.check_same_device("conv2d_backward_weight", g)?;
        let (g, gl) = host(g, gl)?;
        self.via_host(xl, |x, xl| x.conv2d_backward_weight(xl, &g, &gl, p))
    }

    pub(crate) fn max_pool2d(
        &self,
        layout: &Layout,
        p: &Pool2dParams,
    ) -> Result<(CudaStorage, CudaStorage)> {
        let (x, l) = host(self, layout)?;
        let (values, indices) = x.max_pool2d(&l, p)?;
        Ok((
            CudaStorage::from_cpu(self.device(), &values)?,
            CudaStorage::from_cpu(self.device(), &indices)?,
        ))
    }

    pub(crate) fn max_pool2d_backward(
        &self,
        gl: &Layout,
        indices: &CudaStorage,
        il: &Layout,
        p: &Pool2dParams,
    ) -> Result<CudaStorage> {
        self.check_same_device("max_pool2d_backward", indices)?;
        let (i, il) = host(indices, il)?;
        self.via_host(gl, |g, gl| g.max_pool2d_backward(gl, &i, &il, p))
    }

    pub(crate) fn avg_pool2d(&self, layout: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        self.via_host(layout, |x, l| x.avg_pool2d(l, p))
    }

    pub(crate) fn avg_pool2d_backward(&self, gl: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
        self.via_host(gl, |g, gl| g.avg_pool2d_backward(gl, p))
    }

    pub(crate) fn adaptive_avg_pool2d(
        &self,
        layout: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CudaStorage> {
        self.via_host(layout, |x, l| x.adaptive_avg_pool2d(l, p))
    }

    pub(crate) fn adaptive_avg_pool2d_backward(
        &self,
        gl: &Layout,
        p: &AdaptivePool2dParams,
    ) -> Result<CudaStorage> {
        self.via_host(gl, |g, gl| g.adaptive_avg_pool2d_backward(gl, p))
    }
}
