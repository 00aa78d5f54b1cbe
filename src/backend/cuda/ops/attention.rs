//! Launches of `kernels/attention.cu`: the FlashAttention-style forward pass, and the
//! backward pass as three kernels (D = rowsum(dO ∘ O); dK and dV per key tile; dQ per
//! query tile), each output written by one owner, so results are deterministic.

use super::{AttentionLayouts, AttentionOps, AttentionParams};
use crate::backend::cuda::runtime::kernels::defines;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig, MAX_DIMS};
use crate::backend::cuda::CudaStorage;
use crate::backend::fill::FillOps;
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// The largest head dim (E and EV) the kernels hold (`ATTN_MAX_D`).
const MAX_HEAD_DIM: usize = defines::ATTN_MAX_D;

/// Rows per block of the kernels' tiles, per compute type, as `AttnCfg` in the `.cu`
/// file: (forward queries, dK/dV keys, dQ queries). Only the grid size depends on them
/// (the kernels loop over their tiles), so a mismatch would cost blocks, not results.
fn tile_rows(dtype: DType) -> (usize, usize, usize) {
    if dtype == DType::F64 {
        (8, 16, 8)
    } else {
        (16, 32, 16)
    }
}

/// The dtype of the logsumexp and of D: f64 for f64, else f32.
fn stat_dtype(dtype: DType) -> DType {
    if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    }
}

/// A 4-D operand's address and `Strides` (n, h, row, column).
fn strided(s: &CudaStorage, l: &Layout) -> [KernelArg; 2] {
    let mut st = [0i64; MAX_DIMS];
    for (d, &x) in st.iter_mut().zip(&l.strides) {
        *d = x as i64;
    }
    [KernelArg::Ptr(s.ptr_at(l.offset)), KernelArg::Strides(st)]
}

/// The arguments every attention kernel but the D kernel starts with: q, k, v, the
/// boolean and additive mask pointers (null when absent), the mask's strides, the
/// problem's dims, the scale and the causal flag.
fn problem_args(
    q: &CudaStorage,
    k: &CudaStorage,
    v: &CudaStorage,
    mask: Option<&CudaStorage>,
    l: &AttentionLayouts,
    p: &AttentionParams,
) -> Vec<KernelArg> {
    let mut args = Vec::with_capacity(16);
    args.extend(strided(q, l.q));
    args.extend(strided(k, l.k));
    args.extend(strided(v, l.v));
    let (bool_ptr, add_ptr, mask_strides) = match (mask, l.mask) {
        (Some(m), Some(ml)) => {
            let [ptr, st] = strided(m, ml);
            if m.dtype() == DType::U8 {
                (ptr, KernelArg::Ptr(0), st)
            } else {
                (KernelArg::Ptr(0), ptr, st)
            }
        }
        _ => (
            KernelArg::Ptr(0),
            KernelArg::Ptr(0),
            KernelArg::Strides([0; MAX_DIMS]),
        ),
    };
    args.extend([bool_ptr, add_ptr, mask_strides]);
    let mut dims = [0u64; MAX_DIMS];
    for (d, x) in dims.iter_mut().zip([p.n, p.h, p.l, p.s, p.e, p.ev]) {
        *d = x as u64;
    }
    args.extend([
        KernelArg::Dims(dims),
        KernelArg::F64(p.scale),
        KernelArg::U32(u32::from(p.causal)),
    ]);
    args
}

/// A grid-stride launch over `tasks` tiles of `threads` threads each.
fn tiles(tasks: usize, threads: usize, sm: u32) -> LaunchConfig {
    LaunchConfig {
        grid: (tasks.clamp(1, sm as usize * 16) as u32, 1, 1),
        block: (threads as u32, 1, 1),
        shared_bytes: 0,
    }
}

/// Err unless the head dims fit the kernels.
fn check_head_dims(p: &AttentionParams) -> Result<()> {
    if p.e > MAX_HEAD_DIM || p.ev > MAX_HEAD_DIM {
        return Err(Error::arg(
            "query",
            format!(
                "the CUDA attention kernels take head dims up to {MAX_HEAD_DIM}, got E = {} and EV = {}",
                p.e, p.ev
            ),
        ));
    }
    Ok(())
}

impl AttentionOps for CudaStorage {
    /// `ATTN_MAX_D` of kernels/attention.cu: the kernels keep a row of q, k and v in
    /// shared memory.
    fn fused_max_head_dim(&self) -> Option<usize> {
        Some(MAX_HEAD_DIM)
    }

    fn attention_forward(
        &self,
        k: &CudaStorage,
        v: &CudaStorage,
        mask: Option<&CudaStorage>,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(CudaStorage, CudaStorage)> {
        let dtype = self.dtype();
        let kernel = KernelId::for_dtype("attention_fwd", dtype)?;
        check_head_dims(p)?;
        let dev = self.cuda_device();
        let rows = p.n * p.h * p.l;
        let out = CudaStorage::alloc(dev, rows * p.ev, dtype)?;
        let lse = CudaStorage::alloc(dev, rows, stat_dtype(dtype))?;
        if rows == 0 {
            return Ok((out, lse));
        }
        let mut args = problem_args(self, k, v, mask, layouts, p);
        args.extend([KernelArg::Ptr(out.ptr()), KernelArg::Ptr(lse.ptr())]);
        let tasks = p.n * p.h * p.l.div_ceil(tile_rows(dtype).0);
        dev.launch(
            kernel,
            tiles(tasks, defines::ATTN_FWD_THREADS, dev.sm_count()),
            &args,
        )?;
        Ok((out, lse))
    }

    fn attention_backward(
        &self,
        k: &CudaStorage,
        v: &CudaStorage,
        mask: Option<&CudaStorage>,
        out: &CudaStorage,
        lse: &CudaStorage,
        dout: &CudaStorage,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(CudaStorage, CudaStorage, CudaStorage)> {
        let dtype = self.dtype();
        let delta_kernel = KernelId::for_dtype("attention_bwd_delta", dtype)?;
        let dkdv_kernel = KernelId::for_dtype("attention_bwd_dkdv", dtype)?;
        let dq_kernel = KernelId::for_dtype("attention_bwd_dq", dtype)?;
        check_head_dims(p)?;
        let dev = self.cuda_device();
        let bh = p.n * p.h;
        if bh == 0 || p.l == 0 || p.s == 0 {
            // No pair attends: every gradient is 0.
            let zeros = |n| CudaStorage::full(dev, n, 0.0, dtype);
            return Ok((
                zeros(bh * p.l * p.e)?,
                zeros(bh * p.s * p.e)?,
                zeros(bh * p.s * p.ev)?,
            ));
        }
        let dq = CudaStorage::alloc(dev, bh * p.l * p.e, dtype)?;
        let dk = CudaStorage::alloc(dev, bh * p.s * p.e, dtype)?;
        let dv = CudaStorage::alloc(dev, bh * p.s * p.ev, dtype)?;
        let sm = dev.sm_count();
        let rows = bh * p.l;
        let delta = CudaStorage::alloc(dev, rows, stat_dtype(dtype))?;
        dev.launch_grid_stride(
            delta_kernel,
            rows,
            &[
                KernelArg::Ptr(out.ptr()),
                KernelArg::Ptr(dout.ptr()),
                KernelArg::U64(rows as u64),
                KernelArg::U64(p.ev as u64),
                KernelArg::Ptr(delta.ptr()),
            ],
        )?;
        let mut args = problem_args(self, k, v, mask, layouts, p);
        args.extend([
            KernelArg::Ptr(dout.ptr()),
            KernelArg::Ptr(lse.ptr()),
            KernelArg::Ptr(delta.ptr()),
        ]);
        let (_, kv_rows, q_rows) = tile_rows(dtype);
        let mut dkdv_args = args.clone();
        dkdv_args.extend([KernelArg::Ptr(dk.ptr()), KernelArg::Ptr(dv.ptr())]);
        let kv_tasks = bh * p.s.div_ceil(kv_rows);
        dev.launch(
            dkdv_kernel,
            tiles(kv_tasks, defines::ATTN_BWD_THREADS, sm),
            &dkdv_args,
        )?;
        args.push(KernelArg::Ptr(dq.ptr()));
        let q_tasks = bh * p.l.div_ceil(q_rows);
        dev.launch(
            dq_kernel,
            tiles(q_tasks, defines::ATTN_BWD_THREADS, sm),
            &args,
        )?;
        Ok((dq, dk, dv))
    }
}
