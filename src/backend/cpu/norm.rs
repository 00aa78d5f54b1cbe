//! Batch normalisation, layer norm and RMS norm on the CPU (the reference for
//! `kernels/norm.cu`).
//!
//! Layer/RMS norm: rows of `d` values in parallel over rows, each row's statistics in
//! two passes (mean, then squared deviations); the weight and bias gradients are
//! column sums over the rows in row order (deterministic).
//!
//! The input is read as a contiguous `(n, c, s)` slice of the compute type (f16/bf16
//! widen to f32). Per-channel sums run in parallel over channels, each in a fixed
//! order (sample by sample, then along `s`), so results do not depend on the thread
//! count; the elementwise passes run in parallel over the `(sample, channel)` rows of
//! `s` values.

use super::{BatchNormParams, LayerNormParams, NormOps};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{compute_dtype, contiguous_as, float_kernel};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{CpuStorage, PARALLEL_THRESHOLD};
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Result};
use rayon::prelude::*;
use std::borrow::Cow;

impl NormOps for CpuStorage {
    fn batch_norm_stats(
        &self,
        layout: &Layout,
        p: &BatchNormParams,
    ) -> Result<(CpuStorage, CpuStorage)> {
        fn run<T: Float>(
            s: &CpuStorage,
            layout: &Layout,
            p: &BatchNormParams,
        ) -> Result<(CpuStorage, CpuStorage)> {
            let x = contiguous_as::<T>(s, layout)?;
            let count = T::from_f64((p.n * p.s) as f64);
            let (mean, var): (Vec<T>, Vec<T>) = (0..p.c)
                .into_par_iter()
                .map(|c| {
                    let mean = channel_sum(p, c, |i| x[i]) / count;
                    let var = channel_sum(p, c, |i| (x[i] - mean) * (x[i] - mean)) / count;
                    (mean, var)
                })
                .unzip();
            Ok((T::wrap(mean), T::wrap(var)))
        }
        match compute_dtype("batch_norm", self.dtype())? {
            DType::F64 => run::<f64>(self, layout, p),
            _ => run::<f32>(self, layout, p),
        }
    }

    fn batch_norm_apply(
        &self,
        layout: &Layout,
        mean: &CpuStorage,
        var: &CpuStorage,
        weight: Option<(&CpuStorage, &Layout)>,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &BatchNormParams,
    ) -> Result<CpuStorage> {
        Ok(float_kernel!("batch_norm", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            let (w, b) = (channel_vec::<T>(weight, p)?, channel_vec::<T>(bias, p)?);
            let (mean, inv_std) = (stat::<T>(mean, p)?, inv_std::<T>(var, p)?);
            let mut y = alloc::filled(x.len(), T::default())?;
            for_each_row(&mut y, p, |c, i, y| {
                let x_hat = (x[i] - mean[c]) * inv_std[c];
                *y = x_hat * w.as_ref().map_or(T::from_f64(1.0), |w| w[c])
                    + b.as_ref().map_or(T::default(), |b| b[c]);
            });
            y
        }))
    }

    fn batch_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &CpuStorage,
        x_layout: &Layout,
        mean: &CpuStorage,
        var: &CpuStorage,
        weight: Option<(&CpuStorage, &Layout)>,
        batch_stats: bool,
        p: &BatchNormParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        /// `(grad_x, grad_weight, grad_bias)` in the compute type `T`.
        #[allow(clippy::too_many_arguments)] // the trait method's operands, unwrapped
        fn run<T: Float>(
            g: &CpuStorage,
            grad_layout: &Layout,
            x: &CpuStorage,
            x_layout: &Layout,
            stats: (&CpuStorage, &CpuStorage),
            weight: Option<(&CpuStorage, &Layout)>,
            batch_stats: bool,
            p: &BatchNormParams,
        ) -> Result<[CpuStorage; 3]> {
            let g = contiguous_as::<T>(g, grad_layout)?;
            let x = contiguous_as::<T>(x, x_layout)?;
            let w = channel_vec::<T>(weight, p)?;
            let (mean, inv_std) = (stat::<T>(stats.0, p)?, inv_std::<T>(stats.1, p)?);
            let x_hat = |c: usize, i: usize| (x[i] - mean[c]) * inv_std[c];
            let (sum_g, sum_gx): (Vec<T>, Vec<T>) = (0..p.c)
                .into_par_iter()
                .map(|c| {
                    (
                        channel_sum(p, c, |i| g[i]),
                        channel_sum(p, c, |i| g[i] * x_hat(c, i)),
                    )
                })
                .unzip();
            let count = T::from_f64((p.n * p.s) as f64);
            let mut dx = alloc::filled(g.len(), T::default())?;
            for_each_row(&mut dx, p, |c, i, dx| {
                let scale = w.as_ref().map_or(inv_std[c], |w| w[c] * inv_std[c]);
                *dx = if batch_stats {
                    (g[i] - sum_g[c] / count - x_hat(c, i) * (sum_gx[c] / count)) * scale
                } else {
                    g[i] * scale
                };
            });
            Ok([T::wrap(dx), T::wrap(sum_gx), T::wrap(sum_g)])
        }
        let dtype = x.dtype();
        let stats = (mean, var);
        let grads = match compute_dtype("batch_norm_backward", dtype)? {
            DType::F64 => run::<f64>(
                self,
                grad_layout,
                x,
                x_layout,
                stats,
                weight,
                batch_stats,
                p,
            ),
            _ => run::<f32>(
                self,
                grad_layout,
                x,
                x_layout,
                stats,
                weight,
                batch_stats,
                p,
            ),
        }?;
        let [dx, grad_weight, grad_bias] = grads;
        Ok((
            dx.convert(dtype)?,
            grad_weight.convert(dtype)?,
            grad_bias.convert(dtype)?,
        ))
    }

    fn layer_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&CpuStorage, &Layout)>,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        let dtype = self.dtype();
        Ok(match compute_dtype(p.op(), dtype)? {
            DType::F64 => layer_norm_forward::<f64>(self, layout, weight, bias, p)?,
            _ => {
                let (y, mean, rstd) = layer_norm_forward::<f32>(self, layout, weight, bias, p)?;
                (y.convert(dtype)?, mean, rstd)
            }
        })
    }

    fn layer_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &CpuStorage,
        x_layout: &Layout,
        mean: &CpuStorage,
        rstd: &CpuStorage,
        weight: Option<(&CpuStorage, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        let dtype = x.dtype();
        let operands = (self, grad_layout, x, x_layout, mean, rstd, weight);
        let [dx, dw, db] = match compute_dtype(p.op(), dtype)? {
            DType::F64 => layer_norm_backward::<f64>(operands, p)?,
            _ => layer_norm_backward::<f32>(operands, p)?,
        };
        Ok((dx.convert(dtype)?, dw.convert(dtype)?, db.convert(dtype)?))
    }
}

/// [`NormOps::layer_norm_forward`] in the compute type `T`.
fn layer_norm_forward<T: Float>(
    x: &CpuStorage,
    layout: &Layout,
    weight: Option<(&CpuStorage, &Layout)>,
    bias: Option<(&CpuStorage, &Layout)>,
    p: &LayerNormParams,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    let x = contiguous_as::<T>(x, layout)?;
    let w = weight.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let b = bias.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    // Empty rows (d = 0) get PyTorch's statistics of nothing: 0/0, NaN.
    let stats: Vec<(T, T)> = (0..p.rows)
        .into_par_iter()
        .with_min_len(rows_per_task(p))
        .map(|r| row_stats(&x[r * p.d..(r + 1) * p.d], p))
        .collect();
    let mut y = alloc::filled(p.rows * p.d, T::default())?;
    if p.d > 0 {
        y.par_chunks_mut(p.d)
            .enumerate()
            .with_min_len(rows_per_task(p))
            .for_each(|(r, y)| {
                let (mu, inv) = stats[r];
                for (j, (o, &v)) in y.iter_mut().zip(&x[r * p.d..]).enumerate() {
                    let mut h = (v - mu) * inv;
                    if let Some(w) = &w {
                        h = h * w[j];
                    }
                    if let Some(b) = &b {
                        h = h + b[j];
                    }
                    *o = h;
                }
            });
    }
    let (mean, rstd): (Vec<T>, Vec<T>) = stats.into_iter().unzip();
    let mean = if p.rms { Vec::new() } else { mean };
    Ok((T::wrap(y), T::wrap(mean), T::wrap(rstd)))
}

/// Rows per parallel task of the layer-norm passes: about `PARALLEL_THRESHOLD / 8`
/// values each.
fn rows_per_task(p: &LayerNormParams) -> usize {
    (PARALLEL_THRESHOLD / 8 / p.d.max(1)).max(1)
}

/// `(mean, rstd)` of one row: two passes for layer norm (the mean, then the squared
/// deviations from it); the mean square for RMS norm (whose mean is reported as 0).
fn row_stats<T: Float>(xr: &[T], p: &LayerNormParams) -> (T, T) {
    let n = T::from_f64(p.d as f64);
    let mu = if p.rms {
        T::default()
    } else {
        xr.iter().fold(T::default(), |a, &v| a + v) / n
    };
    let var = xr
        .iter()
        .fold(T::default(), |a, &v| a + (v - mu) * (v - mu))
        / n;
    (mu, T::from_f64(1.0) / (var + T::from_f64(p.eps)).sqrt())
}

/// The operands of [`NormOps::layer_norm_backward`]: `(g, g's layout, x, x's layout,
/// mean, rstd, weight)`.
type LayerNormGrads<'a> = (
    &'a CpuStorage,
    &'a Layout,
    &'a CpuStorage,
    &'a Layout,
    &'a CpuStorage,
    &'a CpuStorage,
    Option<(&'a CpuStorage, &'a Layout)>,
);

/// [`NormOps::layer_norm_backward`] in the compute type `T`.
fn layer_norm_backward<T: Float>(
    (g, grad_layout, x, x_layout, mean, rstd, weight): LayerNormGrads,
    p: &LayerNormParams,
) -> Result<[CpuStorage; 3]> {
    let g = contiguous_as::<T>(g, grad_layout)?;
    let x = contiguous_as::<T>(x, x_layout)?;
    let rstd = contiguous_as::<T>(rstd, &Layout::contiguous(&[p.rows]))?;
    let mean = if p.rms {
        None
    } else {
        Some(contiguous_as::<T>(mean, &Layout::contiguous(&[p.rows]))?)
    };
    let w = weight.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let x_hat = |r: usize, i: usize| {
        let mu = mean.as_ref().map_or(T::default(), |m| m[r]);
        (x[i] - mu) * rstd[r]
    };
    let n = T::from_f64(p.d as f64);
    let mut dx = alloc::filled(p.rows * p.d, T::default())?;
    if p.d > 0 {
        dx.par_chunks_mut(p.d)
            .enumerate()
            .with_min_len(rows_per_task(p))
            .for_each(|(r, dxr)| {
                let base = r * p.d;
                let wg = |j: usize| w.as_ref().map_or(g[base + j], |w| g[base + j] * w[j]);
                let (mut sum_wg, mut sum_wgx) = (T::default(), T::default());
                for j in 0..p.d {
                    sum_wg = sum_wg + wg(j);
                    sum_wgx = sum_wgx + wg(j) * x_hat(r, base + j);
                }
                let mean_wg = if p.rms { T::default() } else { sum_wg / n };
                let mean_wgx = sum_wgx / n;
                for (j, o) in dxr.iter_mut().enumerate() {
                    *o = rstd[r] * (wg(j) - mean_wg - x_hat(r, base + j) * mean_wgx);
                }
            });
    }
    let (dw, db): (Vec<T>, Vec<T>) = (0..p.d)
        .into_par_iter()
        .map(|j| {
            (0..p.rows).fold((T::default(), T::default()), |(dw, db), r| {
                let i = r * p.d + j;
                (dw + g[i] * x_hat(r, i), db + g[i])
            })
        })
        .unzip();
    Ok([T::wrap(dx), T::wrap(dw), T::wrap(db)])
}

/// Σ of `f(i)` over the flat indices `i` of channel `c`'s `n·s` values, sample by
/// sample: a fixed order, so the reference is deterministic (the CUDA kernel's block
/// reduction has another fixed order; the two agree within rounding).
fn channel_sum<T: Float>(p: &BatchNormParams, c: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = T::default();
    for sample in 0..p.n {
        let start = (sample * p.c + c) * p.s;
        for i in start..start + p.s {
            acc = acc + f(i);
        }
    }
    acc
}

/// Calls `f(channel, flat index, element)` for every element of `out`, a contiguous
/// `(n, c, s)` buffer, in parallel over its rows of `s` when it is large.
fn for_each_row<T: Float>(
    out: &mut [T],
    p: &BatchNormParams,
    f: impl Fn(usize, usize, &mut T) + Sync,
) {
    let row = |(r, chunk): (usize, &mut [T])| {
        for (k, o) in chunk.iter_mut().enumerate() {
            f(r % p.c, r * p.s + k, o);
        }
    };
    if out.len() >= PARALLEL_THRESHOLD {
        let rows_per_task = (PARALLEL_THRESHOLD / 8 / p.s).max(1);
        out.par_chunks_mut(p.s)
            .with_min_len(rows_per_task)
            .enumerate()
            .for_each(row);
    } else {
        out.chunks_mut(p.s).enumerate().for_each(row);
    }
}

/// A `(C)` operand (weight or bias) as a contiguous slice of the compute type.
fn channel_vec<'a, T: Float>(
    v: Option<(&'a CpuStorage, &Layout)>,
    p: &BatchNormParams,
) -> Result<Option<Cow<'a, [T]>>> {
    v.map(|(s, l)| {
        debug_assert_eq!(l.numel(), p.c);
        contiguous_as::<T>(s, l)
    })
    .transpose()
}

/// A saved `(C)` statistic (already the compute type, contiguous).
fn stat<'a, T: Float>(s: &'a CpuStorage, p: &BatchNormParams) -> Result<Cow<'a, [T]>> {
    contiguous_as::<T>(s, &Layout::contiguous(&[p.c]))
}

/// `1 / √(var + eps)` per channel.
fn inv_std<T: Float>(var: &CpuStorage, p: &BatchNormParams) -> Result<Vec<T>> {
    let eps = T::from_f64(p.eps);
    let one = T::from_f64(1.0);
    Ok(stat::<T>(var, p)?
        .iter()
        .map(|&v| one / (v + eps).sqrt())
        .collect())
}
