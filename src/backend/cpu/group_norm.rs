//! Group norm on the CPU (the reference for `kernels/norm.cu`'s group-norm kernels):
//! the input is a contiguous `(n, groups, c / groups, s)` slice; a row is one
//! `(sample, group)` of `d = (c / groups)·s` values with its own statistics (two
//! passes, as layer norm's rows), then a per-channel scale and shift.
//!
//! Rows run in parallel. The backward sums `g` and `g·x̂` per `(sample, channel)`
//! first: their weighted sums over a row are what `grad_x` needs, and their sums over
//! the samples (in sample order, so the result does not depend on the thread count)
//! are the weight and bias gradients.

use super::layer_norm::{row_stats, Grads};
use super::{GroupNormParams, LayerNormParams};
use crate::backend::cpu::dtype::contiguous_as;
use crate::backend::cpu::lanes::{dot, sum_by};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{alloc, CpuStorage, PARALLEL_THRESHOLD};
use crate::shape::Layout;
use crate::Result;
use rayon::prelude::*;

/// The rows of a group-norm problem as layer norm's [`row_stats`] sees them.
fn as_rows(p: &GroupNormParams) -> LayerNormParams {
    LayerNormParams {
        rows: p.rows(),
        d: p.d(),
        eps: p.eps,
        rms: false,
    }
}

/// Rows per parallel task: enough values per task to be worth a thread.
fn rows_per_task(p: &GroupNormParams) -> usize {
    (PARALLEL_THRESHOLD / p.d().max(1)).max(1)
}

/// The weight and bias of channel `ch` (1 and 0 when absent).
fn affine<T: Float>(w: Option<&[T]>, b: Option<&[T]>, ch: usize) -> (T, T) {
    (
        w.map_or(T::from_f64(1.0), |w| w[ch]),
        b.map_or(T::default(), |b| b[ch]),
    )
}

/// `(y, mean, rstd)` in the compute type `T` (see `NormOps::group_norm_forward`).
pub(super) fn forward<T: Float>(
    x: &CpuStorage,
    layout: &Layout,
    weight: Option<(&CpuStorage, &Layout)>,
    bias: Option<(&CpuStorage, &Layout)>,
    p: &GroupNormParams,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    let x = contiguous_as::<T>(x, layout)?;
    let w = weight.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let b = bias.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let (rows, d, cpg) = (p.rows(), p.d(), p.c / p.groups);
    let lp = as_rows(p);
    // Empty rows (s = 0) get PyTorch's statistics of nothing: 0/0, NaN.
    let stats: Vec<(T, T)> = (0..rows)
        .into_par_iter()
        .with_min_len(rows_per_task(p))
        .map(|r| row_stats(&x[r * d..(r + 1) * d], &lp))
        .collect();
    let mut y = alloc::filled(rows * d, T::default())?;
    if d > 0 {
        y.par_chunks_mut(d)
            .enumerate()
            .with_min_len(rows_per_task(p))
            .for_each(|(r, yr)| {
                let (mu, inv) = stats[r];
                let first = (r % p.groups) * cpg;
                let xr = &x[r * d..(r + 1) * d];
                for (k, (yc, xc)) in yr.chunks_mut(p.s).zip(xr.chunks(p.s)).enumerate() {
                    // y = x·scale + shift, PyTorch's fused form of (x - μ)·rstd·w + b.
                    let (wk, bk) = affine(w.as_deref(), b.as_deref(), first + k);
                    let scale = inv * wk;
                    let shift = bk - mu * scale;
                    for (o, &v) in yc.iter_mut().zip(xc) {
                        *o = v * scale + shift;
                    }
                }
            });
    }
    let (mean, rstd): (Vec<T>, Vec<T>) = stats.into_iter().unzip();
    Ok((T::wrap(y), T::wrap(mean), T::wrap(rstd)))
}

/// `[dx, dw, db]` in the compute type `T` (see `NormOps::group_norm_backward`;
/// operands as layer norm's).
pub(super) fn backward<T: Float>(
    (g, grad_layout, x, x_layout, mean, rstd, weight): Grads,
    p: &GroupNormParams,
) -> Result<[CpuStorage; 3]> {
    let (rows, d, cpg) = (p.rows(), p.d(), p.c / p.groups);
    let g = contiguous_as::<T>(g, grad_layout)?;
    let x = contiguous_as::<T>(x, x_layout)?;
    let mean = contiguous_as::<T>(mean, &Layout::contiguous(&[rows]))?;
    let rstd = contiguous_as::<T>(rstd, &Layout::contiguous(&[rows]))?;
    let w = weight.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let mut dx = alloc::filled(rows * d, T::default())?;
    // Per (sample, channel): Σ g·x̂ and Σ g. Row r holds the channels
    // `(r % groups)·cpg ..` of sample `r / groups`: entries `r·cpg ..`.
    let mut sum_gx = alloc::filled(p.n * p.c, T::default())?;
    let mut sum_g = alloc::filled(p.n * p.c, T::default())?;
    if d > 0 {
        let count = T::from_f64(d as f64);
        dx.par_chunks_mut(d)
            .zip(sum_gx.par_chunks_mut(cpg))
            .zip(sum_g.par_chunks_mut(cpg))
            .enumerate()
            .with_min_len(rows_per_task(p))
            .for_each(|(r, ((dxr, sgx), sg))| {
                let (mu, rs) = (mean[r], rstd[r]);
                let span = r * d..(r + 1) * d;
                let (gr, xr) = (&g[span.clone()], &x[span]);
                let first = (r % p.groups) * cpg;
                let wk = |k: usize| affine(w.as_deref(), None, first + k).0;
                let (mut sum_wg, mut sum_wgx) = (T::default(), T::default());
                for k in 0..cpg {
                    let ch = k * p.s..(k + 1) * p.s;
                    let sum_gk = sum_by(&gr[ch.clone()], |v| v);
                    // Σ g·(x - μ)·rstd = rstd·(Σ g·x - μ·Σ g)
                    let sum_gxk = rs * (dot(&gr[ch.clone()], &xr[ch]) - mu * sum_gk);
                    (sgx[k], sg[k]) = (sum_gxk, sum_gk);
                    sum_wg = sum_wg + wk(k) * sum_gk;
                    sum_wgx = sum_wgx + wk(k) * sum_gxk;
                }
                let (mean_wg, mean_wgx) = (sum_wg / count, sum_wgx / count);
                let channels = gr.chunks(p.s).zip(xr.chunks(p.s));
                for (k, (dc, (gc, xc))) in dxr.chunks_mut(p.s).zip(channels).enumerate() {
                    let a = rs * wk(k);
                    for (o, (&gi, &xi)) in dc.iter_mut().zip(gc.iter().zip(xc)) {
                        *o = a * gi - rs * (mean_wg + (xi - mu) * rs * mean_wgx);
                    }
                }
            });
    }
    // Channel sums over the samples, in sample order.
    let (dw, db): (Vec<T>, Vec<T>) = (0..p.c)
        .map(|ch| {
            (0..p.n).fold((T::default(), T::default()), |(a, b), s| {
                (a + sum_gx[s * p.c + ch], b + sum_g[s * p.c + ch])
            })
        })
        .unzip();
    Ok([T::wrap(dx), T::wrap(dw), T::wrap(db)])
}
