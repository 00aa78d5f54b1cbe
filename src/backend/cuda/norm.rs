//! Launches of `kernels/norm.cu`: batch-norm statistics and backward with one block
//! per channel, the normalisation as a grid-stride elementwise pass.

use super::kernels::KernelId;
use super::launch::{KernelArg, LaunchConfig, THREADS};
use super::storage::CudaStorage;
use crate::backend::{BatchNormParams, NormOps};
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
        let [w, ws] = channel_arg(weight);
        let [b, bs] = channel_arg(bias);
        dev.launch(
            apply,
            LaunchConfig::elementwise(total as u64, dev.sm_count()),
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
        p: &BatchNormParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let dtype = x.dtype();
        let backward = KernelId::for_dtype("batch_norm_backward", dtype)?;
        let dev = self.cuda_device();
        let dx = CudaStorage::alloc(dev, p.n * p.c * p.s, dtype)?;
        let (dweight, dbias) = (
            CudaStorage::alloc(dev, p.c, dtype)?,
            CudaStorage::alloc(dev, p.c, dtype)?,
        );
        if p.c == 0 {
            return Ok((dx, dweight, dbias));
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
                KernelArg::Ptr(dx.ptr()),
                KernelArg::Ptr(dweight.ptr()),
                KernelArg::Ptr(dbias.ptr()),
            ],
        )?;
        Ok((dx, dweight, dbias))
    }
}
