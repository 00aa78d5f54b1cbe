//! Launches of `kernels/loss.cu`: the per-row forward (a warp per row) and the
//! elementwise backward of the class-index losses. Class weights are made contiguous
//! (a device copy when strided) before the launch.
//!
//! Out-of-range targets: the forward kernel lowers a device word to the first bad row
//! (atomicMin from `u64::MAX`), and the host reads that word back after the launch —
//! one 8-byte device→host copy per call, which waits for the kernel. An `Err` must be
//! returned by the call itself, so the host has to learn the outcome before returning;
//! the copy replaces the former separate min/max reductions of the targets and their
//! two reads. The bad index itself is fetched only on the error path.

use super::{CrossEntropyParams, LossOps};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig, THREADS};
use crate::backend::cuda::CudaStorage;
use crate::backend::fill::FillOps;
use crate::shape::Layout;
use crate::{DType, Result};

/// Rows handled by one block of the forward kernel (a warp each).
const ROWS_PER_BLOCK: usize = THREADS as usize / 32;

/// An optional `(classes)` weight made contiguous (a device copy when strided): the
/// pointer (0 when absent) and the copy that must outlive the launch.
fn weight_ptr(weight: Option<(&CudaStorage, &Layout)>) -> Result<(u64, Option<CudaStorage>)> {
    weight.map_or(Ok((0, None)), |(s, l)| s.contiguous_ptr(l))
}

impl LossOps for CudaStorage {
    fn cross_entropy_forward(
        &self,
        layout: &Layout,
        target: &CudaStorage,
        target_layout: &Layout,
        weight: Option<(&CudaStorage, &Layout)>,
        p: &CrossEntropyParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let forward = KernelId::for_dtype("cross_entropy_forward", self.dtype())?;
        let dev = self.cuda_device();
        let stat = if self.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let rows = p.rows();
        let loss = CudaStorage::alloc(dev, rows, stat)?;
        let lse = CudaStorage::alloc(dev, if p.from_logits { rows } else { 0 }, stat)?;
        let row_weight = CudaStorage::alloc(dev, rows, stat)?;
        if rows == 0 {
            return Ok((loss, lse, row_weight));
        }
        let (x, _x_copy) = self.contiguous_ptr(layout)?;
        let (t, _t_copy) = target.contiguous_ptr(target_layout)?;
        let (w, _w_copy) = weight_ptr(weight)?;
        // "No bad row" is u64::MAX, i.e. the i64 -1, written by the fill kernel rather
        // than uploaded: a training step copies nothing to the device but its batch.
        let bad_row = CudaStorage::full(dev, 1, -1.0, DType::I64)?;
        let (on_target, off_target) = p.target_weights();
        let sm = dev.sm_count() as usize;
        let cfg = LaunchConfig {
            grid: (rows.div_ceil(ROWS_PER_BLOCK).min(sm * 32) as u32, 1, 1),
            block: (THREADS, 1, 1),
            shared_bytes: 0,
        };
        dev.launch(
            forward,
            cfg,
            &[
                KernelArg::Ptr(x),
                KernelArg::Ptr(t),
                KernelArg::Ptr(w),
                KernelArg::U64(rows as u64),
                KernelArg::U64(p.classes as u64),
                KernelArg::U64(p.inner as u64),
                KernelArg::I64(p.ignore_index),
                KernelArg::F64(on_target),
                KernelArg::F64(off_target),
                KernelArg::U32(u32::from(p.from_logits)),
                KernelArg::Ptr(loss.ptr()),
                KernelArg::Ptr(lse.ptr()),
                KernelArg::Ptr(row_weight.ptr()),
                KernelArg::Ptr(bad_row.ptr()),
            ],
        )?;
        let mut word = [0u8; 8];
        dev.copy_dtoh(&mut word, bad_row.ptr())?;
        let row = u64::from_ne_bytes(word);
        if row != u64::MAX {
            dev.copy_dtoh(&mut word, t + row * 8)?;
            return Err(p.bad_target(i64::from_ne_bytes(word)));
        }
        Ok((loss, lse, row_weight))
    }

    fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &CudaStorage,
        target_layout: &Layout,
        weight: Option<(&CudaStorage, &Layout)>,
        weight_total: Option<(&CudaStorage, &Layout)>,
        lse: &CudaStorage,
        grad: &CudaStorage,
        grad_layout: &Layout,
        grad_per_row: bool,
        p: &CrossEntropyParams,
    ) -> Result<CudaStorage> {
        let backward = KernelId::for_dtype("cross_entropy_backward", self.dtype())?;
        let dev = self.cuda_device();
        let total = layout.numel();
        let out = CudaStorage::alloc(dev, total, self.dtype())?;
        if total == 0 {
            return Ok(out);
        }
        let (x, _x_copy) = self.contiguous_ptr(layout)?;
        let (t, _t_copy) = target.contiguous_ptr(target_layout)?;
        let (w, _w_copy) = weight_ptr(weight)?;
        let (g, _g_copy) = grad.contiguous_ptr(grad_layout)?;
        let w_total = weight_total.map_or(0, |(s, l)| s.ptr_at(l.offset));
        let (on_target, off_target) = p.target_weights();
        dev.launch_grid_stride(
            backward,
            total,
            &[
                KernelArg::Ptr(x),
                KernelArg::Ptr(t),
                KernelArg::Ptr(w),
                KernelArg::Ptr(w_total),
                KernelArg::Ptr(lse.ptr()),
                KernelArg::Ptr(g),
                KernelArg::U32(u32::from(grad_per_row)),
                KernelArg::U64(total as u64),
                KernelArg::U64(p.classes as u64),
                KernelArg::U64(p.inner as u64),
                KernelArg::I64(p.ignore_index),
                KernelArg::F64(on_target),
                KernelArg::F64(off_target),
                KernelArg::U32(u32::from(p.from_logits)),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
        Ok(out)
    }
}
