//! Launches of `kernels/norm.cu`: batch-norm statistics and backward with one block
//! per channel, the normalisation as a grid-stride elementwise pass; layer norm and
//! RMS norm with one block per row, forward and backward one kernel each, plus a
//! small kernel that sums the backward's per-block weight/bias partials; group norm
//! with one block per (sample, group), its weight/bias partials per sample summed by
//! that same kernel.

use super::{BatchNormParams, GroupNormParams, LayerNormParams, NormOps};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig, THREADS};
use crate::backend::cuda::CudaStorage;
use crate::backend::fill::FillOps;
use crate::shape::Layout;
use crate::{DType, Result};

/// The dtype of the saved statistics: f64 for f64, else f32.
fn stat_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// One block per channel (at most 32 per multiprocessor; the kernels loop over the
/// rest), with a power of two in 32..=256 threads: fewer for short channels, so a
/// channel of 8 values does not idle 248 threads.
fn per_channel(p: &BatchNormParams, sm: u32) -> LaunchConfig {
    let values = p.n * p.s;
    LaunchConfig {
        grid: (p.c.min(sm as usize * 32).max(1) as u32, 1, 1),
        block: (
            values.next_power_of_two().clamp(32, THREADS as usize) as u32,
            1,
            1,
        ),
        shared_bytes: 0,
    }
}

/// Blocks of the layer-norm backward, i.e. partial sums per weight column: a function
/// of the shape only (not of the GPU), so the summation order, and thus the result,
/// is the same on every device.
const LAYER_NORM_PARTS: usize = 256;

/// One block per row (at most `blocks` blocks; the kernels loop over the rest), with a
/// power of two in 32..=256 threads, fewer for short rows.
fn per_row(p: &LayerNormParams, blocks: usize) -> LaunchConfig {
    LaunchConfig {
        grid: (p.rows.min(blocks).max(1) as u32, 1, 1),
        block: (
            p.d.next_power_of_two().clamp(32, THREADS as usize) as u32,
            1,
            1,
        ),
        shared_bytes: 0,
    }
}

/// An optional `(d)` operand made contiguous (a device copy when strided): the
/// pointer (0 when absent) and the copy that must outlive the launch.
fn contiguous_param(v: Option<(&CudaStorage, &Layout)>) -> Result<(u64, Option<CudaStorage>)> {
    v.map_or(Ok((0, None)), |(s, l)| s.contiguous_ptr(l))
}

/// A `(C)` operand as (address of its first element, element step); null when absent.
fn channel_arg(v: Option<(&CudaStorage, &Layout)>) -> [KernelArg; 2] {
    match v {
        Some((s, l)) => [
            KernelArg::Ptr(s.ptr_at(l.offset)),
            KernelArg::I64(l.strides[0] as i64),
        ],
        None => [KernelArg::Ptr(0), KernelArg::I64(0)],
    }
}

impl NormOps for CudaStorage {
    fn batch_norm_stats(
        &self,
        layout: &Layout,
        p: &BatchNormParams,
    ) -> Result<(CudaStorage, CudaStorage)> {
        let stats = KernelId::for_dtype("batch_norm_stats", self.dtype())?;
        let dev = self.cuda_device();
        let sd = stat_dtype(self.dtype());
        let (mean, var) = (
            CudaStorage::alloc(dev, p.c, sd)?,
            CudaStorage::alloc(dev, p.c, sd)?,
        );
        if p.c == 0 {
            return Ok((mean, var));
        }
        let (x, _copy) = self.contiguous_ptr(layout)?;
        dev.launch(
            stats,
            per_channel(p, dev.sm_count()),
            &[
                KernelArg::Ptr(x),
                KernelArg::U64(p.n as u64),
                KernelArg::U64(p.c as u64),
                KernelArg::U64(p.s as u64),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(var.ptr()),
            ],
        )?;
        Ok((mean, var))
    }

    fn batch_norm_apply(
        &self,
        layout: &Layout,
        mean: &CudaStorage,
        var: &CudaStorage,
        weight: Option<(&CudaStorage, &Layout)>,
        bias: Option<(&CudaStorage, &Layout)>,
        residual: Option<(&CudaStorage, &Layout)>,
        relu: bool,
        p: &BatchNormParams,
    ) -> Result<CudaStorage> {
        let apply = KernelId::for_dtype("batch_norm_apply", self.dtype())?;
        let dev = self.cuda_device();
        let total = p.n * p.c * p.s;
        let y = CudaStorage::alloc(dev, total, self.dtype())?;
        if total == 0 {
            return Ok(y);
        }
        let (x, _copy) = self.contiguous_ptr(layout)?;
        let (r, _r_copy) = contiguous_param(residual)?;
        let [w, ws] = channel_arg(weight);
        let [b, bs] = channel_arg(bias);
        dev.launch_grid_stride(
            apply,
            total,
            &[
                KernelArg::Ptr(x),
                KernelArg::U64(total as u64),
                KernelArg::U64(p.c as u64),
                KernelArg::U64(p.s as u64),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(var.ptr()),
                KernelArg::F64(p.eps),
                w,
                ws,
                b,
                bs,
                KernelArg::Ptr(r),
                KernelArg::U32(u32::from(relu)),
                KernelArg::Ptr(y.ptr()),
            ],
        )?;
        Ok(y)
    }

    fn batch_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &CudaStorage,
        x_layout: &Layout,
        mean: &CudaStorage,
        var: &CudaStorage,
        weight: Option<(&CudaStorage, &Layout)>,
        batch_stats: bool,
        relu_out: Option<&CudaStorage>,
        residual_grad: bool,
        p: &BatchNormParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage, Option<CudaStorage>)> {
        let dtype = x.dtype();
        let backward = KernelId::for_dtype("batch_norm_backward", dtype)?;
        let dev = self.cuda_device();
        let total = p.n * p.c * p.s;
        let dx = CudaStorage::alloc(dev, total, dtype)?;
        let (dweight, dbias) = (
            CudaStorage::alloc(dev, p.c, dtype)?,
            CudaStorage::alloc(dev, p.c, dtype)?,
        );
        let dres = residual_grad
            .then(|| CudaStorage::alloc(dev, total, dtype))
            .transpose()?;
        if p.c == 0 {
            return Ok((dx, dweight, dbias, dres));
        }
        let (g, _g_copy) = self.contiguous_ptr(grad_layout)?;
        let (xp, _x_copy) = x.contiguous_ptr(x_layout)?;
        let [w, ws] = channel_arg(weight);
        dev.launch(
            backward,
            per_channel(p, dev.sm_count()),
            &[
                KernelArg::Ptr(g),
                KernelArg::Ptr(xp),
                KernelArg::U64(p.n as u64),
                KernelArg::U64(p.c as u64),
                KernelArg::U64(p.s as u64),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(var.ptr()),
                KernelArg::F64(p.eps),
                w,
                ws,
                KernelArg::U32(u32::from(batch_stats)),
                KernelArg::Ptr(relu_out.map_or(0, CudaStorage::ptr)),
                KernelArg::Ptr(dx.ptr()),
                KernelArg::Ptr(dweight.ptr()),
                KernelArg::Ptr(dbias.ptr()),
                KernelArg::Ptr(dres.as_ref().map_or(0, CudaStorage::ptr)),
            ],
        )?;
        Ok((dx, dweight, dbias, dres))
    }

    fn layer_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&CudaStorage, &Layout)>,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let forward = KernelId::for_dtype("layer_norm_forward", self.dtype())?;
        let dev = self.cuda_device();
        let sd = stat_dtype(self.dtype());
        let y = CudaStorage::alloc(dev, p.rows * p.d, self.dtype())?;
        let mean = CudaStorage::alloc(dev, if p.rms { 0 } else { p.rows }, sd)?;
        let rstd = CudaStorage::alloc(dev, p.rows, sd)?;
        if p.rows == 0 {
            return Ok((y, mean, rstd));
        }
        let (x, _x_copy) = self.contiguous_ptr(layout)?;
        let (w, _w_copy) = contiguous_param(weight)?;
        let (b, _b_copy) = contiguous_param(bias)?;
        dev.launch(
            forward,
            per_row(p, dev.sm_count() as usize * 32),
            &[
                KernelArg::Ptr(x),
                KernelArg::U64(p.rows as u64),
                KernelArg::U64(p.d as u64),
                KernelArg::F64(p.eps),
                KernelArg::U32(u32::from(p.rms)),
                KernelArg::Ptr(w),
                KernelArg::Ptr(b),
                KernelArg::Ptr(y.ptr()),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(rstd.ptr()),
            ],
        )?;
        Ok((y, mean, rstd))
    }

    fn layer_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &CudaStorage,
        x_layout: &Layout,
        mean: &CudaStorage,
        rstd: &CudaStorage,
        weight: Option<(&CudaStorage, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let dtype = x.dtype();
        let backward = KernelId::for_dtype("layer_norm_backward", dtype)?;
        let param_grads = KernelId::for_dtype("layer_norm_param_grads", dtype)?;
        let dev = self.cuda_device();
        let dx = CudaStorage::alloc(dev, p.rows * p.d, dtype)?;
        if p.rows == 0 || p.d == 0 {
            // No rows: the weight and bias gradients are empty sums.
            let zeros = || CudaStorage::full(dev, p.d, 0.0, dtype);
            return Ok((dx, zeros()?, zeros()?));
        }
        let (g, _g_copy) = self.contiguous_ptr(grad_layout)?;
        let (xp, _x_copy) = x.contiguous_ptr(x_layout)?;
        let (w, _w_copy) = contiguous_param(weight)?;
        let cfg = per_row(p, LAYER_NORM_PARTS);
        let parts = cfg.grid.0 as usize;
        let sd = stat_dtype(dtype);
        let (part_w, part_b) = (
            CudaStorage::alloc(dev, parts * p.d, sd)?,
            CudaStorage::alloc(dev, parts * p.d, sd)?,
        );
        dev.launch(
            backward,
            cfg,
            &[
                KernelArg::Ptr(g),
                KernelArg::Ptr(xp),
                KernelArg::U64(p.rows as u64),
                KernelArg::U64(p.d as u64),
                KernelArg::U32(u32::from(p.rms)),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(rstd.ptr()),
                KernelArg::Ptr(w),
                KernelArg::Ptr(dx.ptr()),
                KernelArg::Ptr(part_w.ptr()),
                KernelArg::Ptr(part_b.ptr()),
            ],
        )?;
        let (dw, db) = (
            CudaStorage::alloc(dev, p.d, dtype)?,
            CudaStorage::alloc(dev, p.d, dtype)?,
        );
        dev.launch_grid_stride(
            param_grads,
            p.d,
            &[
                KernelArg::Ptr(part_w.ptr()),
                KernelArg::Ptr(part_b.ptr()),
                KernelArg::U64(parts as u64),
                KernelArg::U64(p.d as u64),
                KernelArg::Ptr(dw.ptr()),
                KernelArg::Ptr(db.ptr()),
            ],
        )?;
        Ok((dx, dw, db))
    }

    fn group_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&CudaStorage, &Layout)>,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let forward = KernelId::for_dtype("group_norm_forward", self.dtype())?;
        let dev = self.cuda_device();
        let sd = stat_dtype(self.dtype());
        let rows = p.rows();
        let y = CudaStorage::alloc(dev, rows * p.d(), self.dtype())?;
        let (mean, rstd) = (
            CudaStorage::alloc(dev, rows, sd)?,
            CudaStorage::alloc(dev, rows, sd)?,
        );
        if rows == 0 {
            return Ok((y, mean, rstd));
        }
        let (x, _x_copy) = self.contiguous_ptr(layout)?;
        let (w, _w_copy) = contiguous_param(weight)?;
        let (b, _b_copy) = contiguous_param(bias)?;
        dev.launch(
            forward,
            per_group_row(p, dev.sm_count() as usize * 32),
            &[
                KernelArg::Ptr(x),
                KernelArg::U64(rows as u64),
                KernelArg::U64(p.groups as u64),
                KernelArg::U64((p.c / p.groups) as u64),
                KernelArg::U64(p.s as u64),
                KernelArg::F64(p.eps),
                KernelArg::Ptr(w),
                KernelArg::Ptr(b),
                KernelArg::Ptr(y.ptr()),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(rstd.ptr()),
            ],
        )?;
        Ok((y, mean, rstd))
    }

    fn group_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &CudaStorage,
        x_layout: &Layout,
        mean: &CudaStorage,
        rstd: &CudaStorage,
        weight: Option<(&CudaStorage, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let dtype = x.dtype();
        let backward = KernelId::for_dtype("group_norm_backward", dtype)?;
        let param_grads = KernelId::for_dtype("layer_norm_param_grads", dtype)?;
        let dev = self.cuda_device();
        let rows = p.rows();
        let dx = CudaStorage::alloc(dev, rows * p.d(), dtype)?;
        if rows == 0 || p.s == 0 {
            // No values: the weight and bias gradients are empty sums.
            let zeros = || CudaStorage::full(dev, p.c, 0.0, dtype);
            return Ok((dx, zeros()?, zeros()?));
        }
        let (g, _g_copy) = self.contiguous_ptr(grad_layout)?;
        let (xp, _x_copy) = x.contiguous_ptr(x_layout)?;
        let (w, _w_copy) = contiguous_param(weight)?;
        let sd = stat_dtype(dtype);
        // One partial per (sample, channel), written by the block of its row.
        let (part_w, part_b) = (
            CudaStorage::alloc(dev, p.n * p.c, sd)?,
            CudaStorage::alloc(dev, p.n * p.c, sd)?,
        );
        dev.launch(
            backward,
            per_group_row(p, dev.sm_count() as usize * 32),
            &[
                KernelArg::Ptr(g),
                KernelArg::Ptr(xp),
                KernelArg::U64(rows as u64),
                KernelArg::U64(p.groups as u64),
                KernelArg::U64((p.c / p.groups) as u64),
                KernelArg::U64(p.s as u64),
                KernelArg::Ptr(mean.ptr()),
                KernelArg::Ptr(rstd.ptr()),
                KernelArg::Ptr(w),
                KernelArg::Ptr(dx.ptr()),
                KernelArg::Ptr(part_w.ptr()),
                KernelArg::Ptr(part_b.ptr()),
            ],
        )?;
        let (dw, db) = (
            CudaStorage::alloc(dev, p.c, dtype)?,
            CudaStorage::alloc(dev, p.c, dtype)?,
        );
        dev.launch_grid_stride(
            param_grads,
            p.c,
            &[
                KernelArg::Ptr(part_w.ptr()),
                KernelArg::Ptr(part_b.ptr()),
                KernelArg::U64(p.n as u64),
                KernelArg::U64(p.c as u64),
                KernelArg::Ptr(dw.ptr()),
                KernelArg::Ptr(db.ptr()),
            ],
        )?;
        Ok((dx, dw, db))
    }
}

/// Layer norm's launch shape ([`per_row`]) for the group-norm rows.
fn per_group_row(p: &GroupNormParams, blocks: usize) -> LaunchConfig {
    let rows = LayerNormParams {
        rows: p.rows(),
        d: p.d(),
        eps: p.eps,
        rms: false,
    };
    per_row(&rows, blocks)
}
