//! Dropout on CUDA: `kernels/dropout.cu` runs the Philox stream on the device, so
//! its masks are bit-identical to the CPU backend's for the same (seed, offset).
//! A contiguous input takes `dropout_contig_<dt>` (four adjacent elements per Philox
//! block, vector loads and stores where aligned); any other layout `dropout_<dt>`.

use super::DropoutOps;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{plan, KernelArg};
use crate::backend::cuda::CudaStorage;
use crate::rng::{keep_threshold, PhiloxStream};
use crate::shape::Layout;
use crate::Result;

impl DropoutOps for CudaStorage {
    fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<CudaStorage> {
        let dtype = self.dtype();
        let n = layout.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let dev = self.cuda_device();
        // A thread per Philox block of four elements.
        let blocks = n.div_ceil(4);
        let random = [
            KernelArg::U64(stream.seed),
            KernelArg::U64(stream.offset),
            KernelArg::U64(keep_threshold(p)),
            KernelArg::F64(1.0 / (1.0 - p)),
        ];
        let x = KernelArg::Ptr(self.ptr_at(layout.offset));
        let y = KernelArg::Ptr(out.ptr());
        if layout.is_contiguous() {
            let kernel = KernelId::for_dtype("dropout_contig", dtype)?;
            let args = [KernelArg::U64(n as u64), x, y];
            dev.launch_grid_stride(kernel, blocks, &[&args[..], &random[..]].concat())?;
        } else {
            let kernel = KernelId::for_dtype("dropout", dtype)?;
            let pl = plan("dropout", &layout.shape, [&layout.strides])?;
            let [rank, dims] = pl.shape_args();
            let args = [
                KernelArg::U64(n as u64),
                rank,
                dims,
                x,
                pl.strides_arg(0),
                y,
            ];
            dev.launch_grid_stride(kernel, blocks, &[&args[..], &random[..]].concat())?;
        }
        Ok(out)
    }

    fn bias_dropout_add(
        &self,
        layout: &Layout,
        bias: (&CudaStorage, &Layout),
        residual: (&CudaStorage, &Layout),
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        let kernel = KernelId::for_dtype("bias_dropout_add", dtype)?;
        let dev = self.cuda_device();
        let n = layout.numel();
        let out = CudaStorage::alloc(dev, n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let (x, _x_copy) = self.contiguous_ptr(layout)?;
        let (b, _b_copy) = bias.0.contiguous_ptr(bias.1)?;
        let (r, _r_copy) = residual.0.contiguous_ptr(residual.1)?;
        let args = [
            KernelArg::U64(n as u64),
            KernelArg::U64(bias.1.numel() as u64),
            KernelArg::Ptr(x),
            KernelArg::Ptr(b),
            KernelArg::Ptr(r),
            KernelArg::Ptr(out.ptr()),
        ];
        dev.launch_grid_stride(kernel, n, &[&args[..], &mask_args(mask)[..]].concat())?;
        Ok(out)
    }

    fn bias_dropout_add_backward(
        &self,
        layout: &Layout,
        d: usize,
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<(Option<CudaStorage>, CudaStorage)> {
        let dtype = self.dtype();
        let kernel = KernelId::for_dtype("bias_dropout_add_backward", dtype)?;
        let dev = self.cuda_device();
        let n = layout.numel();
        let gx = mask
            .map(|_| CudaStorage::alloc(dev, n, dtype))
            .transpose()?;
        let gbias = CudaStorage::alloc(dev, d, dtype)?;
        if d == 0 {
            return Ok((gx, gbias));
        }
        let (g, _g_copy) = self.contiguous_ptr(layout)?;
        let args = [
            KernelArg::U64((n / d) as u64),
            KernelArg::U64(d as u64),
            KernelArg::Ptr(g),
            KernelArg::Ptr(gx.as_ref().map_or(0, CudaStorage::ptr)),
            KernelArg::Ptr(gbias.ptr()),
        ];
        dev.launch_grid_stride(kernel, d, &[&args[..], &mask_args(mask)[..]].concat())?;
        Ok((gx, gbias))
    }
}

/// The `(seed, offset, threshold, scale)` arguments of the bias-dropout-add kernels:
/// dropout's for `mask`, or a threshold of 2^32 that keeps every element (no words
/// drawn) and scale 1.
fn mask_args(mask: Option<(PhiloxStream, f64)>) -> [KernelArg; 4] {
    let (stream, threshold, scale) = match mask {
        Some((stream, p)) => (stream, keep_threshold(p), 1.0 / (1.0 - p)),
        None => (PhiloxStream { seed: 0, offset: 0 }, 1 << 32, 1.0),
    };
    [
        KernelArg::U64(stream.seed),
        KernelArg::U64(stream.offset),
        KernelArg::U64(threshold),
        KernelArg::F64(scale),
    ]
}
