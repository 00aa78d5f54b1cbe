//! Batch normalisation, layer norm, RMS norm and group norm on the CPU (the reference
//! for `kernels/norm.cu`); the layer/RMS norm kernels are in `layer_norm.rs`, group
//! norm's in `group_norm.rs`.
//!
//! The input is read as a contiguous `(n, c, s)` slice of the compute type (f16/bf16
//! widen to f32). Per-channel sums run in parallel over channels, each in a fixed
//! order (sample by sample, then along `s`), so results do not depend on the thread
//! count; the elementwise passes run in parallel over the `(sample, channel)` rows of
//! `s` values.

// The layer/RMS norm kernels (a file of their own), declared from here: this file is
// the norm family's CPU implementation.
#[path = "group_norm.rs"]
mod group_norm;
#[path = "layer_norm.rs"]
mod layer_norm;

use super::{BatchNormParams, GroupNormParams, LayerNormParams, NormOps};
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
        residual: Option<(&CpuStorage, &Layout)>,
        relu: bool,
        p: &BatchNormParams,
    ) -> Result<CpuStorage> {
        Ok(float_kernel!("batch_norm", self.dtype(), |T| {
            let x = contiguous_as::<T>(self, layout)?;
            let (w, b) = (channel_vec::<T>(weight, p)?, channel_vec::<T>(bias, p)?);
            let residual = residual
                .map(|(r, l)| contiguous_as::<T>(r, l))
                .transpose()?;
            let (mean, inv_std) = (stat::<T>(mean, p)?, inv_std::<T>(var, p)?);
            let zero = T::default();
            let mut y = alloc::filled(x.len(), zero)?;
            for_each_row(&mut y, p, |c, i, y| {
                let x_hat = (x[i] - mean[c]) * inv_std[c];
                let v = x_hat * w.as_ref().map_or(T::from_f64(1.0), |w| w[c])
                    + b.as_ref().map_or(zero, |b| b[c]);
                let v = residual.as_ref().map_or(v, |r| v + r[i]);
                // `v <= 0` is false for NaN, which passes as through `relu`.
                *y = if relu && v <= zero { zero } else { v };
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
        relu_out: Option<&CpuStorage>,
        residual_grad: bool,
        p: &BatchNormParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage, Option<CpuStorage>)> {
        /// `(grad_x, grad_weight, grad_bias, grad_residual)` in the compute type `T`.
        #[allow(clippy::too_many_arguments)] // the trait method's operands, unwrapped
        fn run<T: Float>(
            g: &CpuStorage,
            grad_layout: &Layout,
            x: &CpuStorage,
            x_layout: &Layout,
            stats: (&CpuStorage, &CpuStorage),
            weight: Option<(&CpuStorage, &Layout)>,
            batch_stats: bool,
            relu_out: Option<&CpuStorage>,
            residual_grad: bool,
            p: &BatchNormParams,
        ) -> Result<([CpuStorage; 3], Option<CpuStorage>)> {
            let g = contiguous_as::<T>(g, grad_layout)?;
            // relu's backward first: the gradient is 0 where the output is <= 0.
            let g = match relu_out {
                Some(y) => {
                    let y = contiguous_as::<T>(y, &Layout::contiguous(&[g.len()]))?;
                    let zero = T::default();
                    let masked = g.iter().zip(y.iter());
                    Cow::Owned(
                        masked
                            .map(|(&g, &y)| if y <= zero { zero } else { g })
                            .collect(),
                    )
                }
                None => g,
            };
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
            let grad_residual = residual_grad.then(|| T::wrap(g.into_owned()));
            Ok((
                [T::wrap(dx), T::wrap(sum_gx), T::wrap(sum_g)],
                grad_residual,
            ))
        }
        let dtype = x.dtype();
        let (g, gl, stats, rg) = (self, grad_layout, (mean, var), residual_grad);
        let grads = match compute_dtype("batch_norm_backward", dtype)? {
            DType::F64 => run::<f64>(
                g,
                gl,
                x,
                x_layout,
                stats,
                weight,
                batch_stats,
                relu_out,
                rg,
                p,
            ),
            _ => run::<f32>(
                g,
                gl,
                x,
                x_layout,
                stats,
                weight,
                batch_stats,
                relu_out,
                rg,
                p,
            ),
        }?;
        let ([dx, grad_weight, grad_bias], grad_residual) = grads;
        Ok((
            dx.convert(dtype)?,
            grad_weight.convert(dtype)?,
            grad_bias.convert(dtype)?,
            grad_residual.map(|r| r.convert(dtype)).transpose()?,
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
            DType::F64 => layer_norm::forward::<f64>(self, layout, weight, bias, p)?,
            _ => {
                let (y, mean, rstd) = layer_norm::forward::<f32>(self, layout, weight, bias, p)?;
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
            DType::F64 => layer_norm::backward::<f64>(operands, p)?,
            _ => layer_norm::backward::<f32>(operands, p)?,
        };
        Ok((dx.convert(dtype)?, dw.convert(dtype)?, db.convert(dtype)?))
    }

    fn group_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&CpuStorage, &Layout)>,
        bias: Option<(&CpuStorage, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        let dtype = self.dtype();
        Ok(match compute_dtype("group_norm", dtype)? {
            DType::F64 => group_norm::forward::<f64>(self, layout, weight, bias, p)?,
            _ => {
                let (y, mean, rstd) = group_norm::forward::<f32>(self, layout, weight, bias, p)?;
                (y.convert(dtype)?, mean, rstd)
            }
        })
    }

    fn group_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &CpuStorage,
        x_layout: &Layout,
        mean: &CpuStorage,
        rstd: &CpuStorage,
        weight: Option<(&CpuStorage, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        let dtype = x.dtype();
        let operands = (self, grad_layout, x, x_layout, mean, rstd, weight);
        let [dx, dw, db] = match compute_dtype("group_norm", dtype)? {
            DType::F64 => group_norm::backward::<f64>(operands, p)?,
            _ => group_norm::backward::<f32>(operands, p)?,
        };
        Ok((dx.convert(dtype)?, dw.convert(dtype)?, db.convert(dtype)?))
    }
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
