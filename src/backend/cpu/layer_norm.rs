//! Layer norm and RMS norm on the CPU (the reference for `kernels/norm.cu`): rows of
//! `d` values, in parallel over blocks of rows, each row vectorized (`cpu/lanes.rs`).
//!
//! A row's statistics take two passes (the mean, then the squared deviations from
//! it). The weight and bias gradients are column sums: each block of rows sums its
//! rows into a partial vector, row-major and vectorized across the columns, and the
//! partials are added in block order. The blocks are fixed by the row count, so the
//! results do not depend on the thread count.

use super::LayerNormParams;
use crate::backend::cpu::dtype::contiguous_as;
use crate::backend::cpu::lanes::{dot, sum_by};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{alloc, vectorized, CpuStorage, PARALLEL_THRESHOLD};
use crate::shape::Layout;
use crate::Result;
use rayon::prelude::*;
use std::borrow::Cow;

/// Blocks of rows the column sums of the backward pass are split into (fewer when
/// there are fewer rows): enough tasks for the threads, few enough partial vectors.
const BLOCKS: usize = 64;

/// The row ranges of the backward pass's blocks.
fn blocks(rows: usize) -> Vec<std::ops::Range<usize>> {
    let n = rows.clamp(1, BLOCKS);
    (0..n).map(|b| b * rows / n..(b + 1) * rows / n).collect()
}

/// Runs `f` on each item of `items`, in parallel when the whole pass covers at least
/// `PARALLEL_THRESHOLD` values.
fn for_each<I: Send>(items: Vec<I>, values: usize, f: impl Fn(I) + Sync + Send) {
    if values >= PARALLEL_THRESHOLD {
        items.into_par_iter().for_each(f);
    } else {
        items.into_iter().for_each(f);
    }
}

/// `(y, mean, rstd)` in the compute type `T` (see `NormOps::layer_norm_forward`).
pub(super) fn forward<T: Float>(
    x: &CpuStorage,
    layout: &Layout,
    weight: Option<(&CpuStorage, &Layout)>,
    bias: Option<(&CpuStorage, &Layout)>,
    p: &LayerNormParams,
) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
    let x = contiguous_as::<T>(x, layout)?;
    let w = weight.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let b = bias.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    let mut y = alloc::filled(p.rows * p.d, T::default())?;
    let mut mean = alloc::filled(p.rows, T::default())?;
    let mut rstd = alloc::filled(p.rows, T::default())?;
    let ranges = blocks(p.rows);
    let pieces = split(&mut y, &ranges, p.d)
        .into_iter()
        .zip(split(&mut mean, &ranges, 1))
        .zip(split(&mut rstd, &ranges, 1))
        .zip(ranges.iter().cloned());
    for_each(
        pieces.collect(),
        p.rows * p.d,
        |(((y, mean), rstd), rows)| {
            vectorized(ForwardRows {
                x: &x[rows.start * p.d..rows.end * p.d],
                w: w.as_deref(),
                b: b.as_deref(),
                y,
                mean,
                rstd,
                p,
            })
        },
    );
    let mean = if p.rms { Vec::new() } else { mean };
    Ok((T::wrap(y), T::wrap(mean), T::wrap(rstd)))
}

/// `v` cut at the row ranges `ranges` (rows of `row_len` values).
fn split<'a, T>(
    mut v: &'a mut [T],
    ranges: &[std::ops::Range<usize>],
    row_len: usize,
) -> Vec<&'a mut [T]> {
    ranges
        .iter()
        .map(|r| {
            let (piece, rest) = std::mem::take(&mut v).split_at_mut(r.len() * row_len);
            v = rest;
            piece
        })
        .collect()
}

/// The forward pass over a block of rows.
struct ForwardRows<'a, T> {
    x: &'a [T],
    w: Option<&'a [T]>,
    b: Option<&'a [T]>,
    y: &'a mut [T],
    mean: &'a mut [T],
    rstd: &'a mut [T],
    p: &'a LayerNormParams,
}

impl<T: Float> pulp::WithSimd for ForwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let ForwardRows {
            x,
            w,
            b,
            y,
            mean,
            rstd,
            p,
        } = self;
        let d = p.d;
        for (r, (mu, rs)) in mean.iter_mut().zip(rstd.iter_mut()).enumerate() {
            let (xr, yr) = (&x[r * d..][..d], &mut y[r * d..][..d]);
            (*mu, *rs) = row_stats(xr, p);
            let (m, s) = (*mu, *rs);
            for (o, &v) in yr.iter_mut().zip(xr) {
                *o = (v - m) * s;
            }
            if let Some(w) = w {
                yr.iter_mut().zip(w).for_each(|(o, &w)| *o = *o * w);
            }
            if let Some(b) = b {
                yr.iter_mut().zip(b).for_each(|(o, &b)| *o = *o + b);
            }
        }
    }
}

/// `(mean, rstd)` of one row: two passes for layer norm (the mean, then the squared
/// deviations from it); the mean square for RMS norm (whose mean is reported as 0).
/// Empty rows (d = 0) get PyTorch's statistics of nothing: 0/0, NaN.
#[inline(always)]
pub(super) fn row_stats<T: Float>(xr: &[T], p: &LayerNormParams) -> (T, T) {
    let n = T::from_f64(p.d as f64);
    let mu = if p.rms {
        T::default()
    } else {
        sum_by(xr, |v| v) / n
    };
    let var = sum_by(xr, |v| (v - mu) * (v - mu)) / n;
    (mu, T::from_f64(1.0) / (var + T::from_f64(p.eps)).sqrt())
}

/// A saved per-row statistic (already the compute type, contiguous).
fn stat<'a, T: Float>(s: &'a CpuStorage, p: &LayerNormParams) -> Result<Cow<'a, [T]>> {
    contiguous_as::<T>(s, &Layout::contiguous(&[p.rows]))
}

/// The operands of `NormOps::layer_norm_backward`: `(g, g's layout, x, x's layout,
/// mean, rstd, weight)`.
pub(super) type Grads<'a> = (
    &'a CpuStorage,
    &'a Layout,
    &'a CpuStorage,
    &'a Layout,
    &'a CpuStorage,
    &'a CpuStorage,
    Option<(&'a CpuStorage, &'a Layout)>,
);

/// `[dx, dw, db]` in the compute type `T` (see `NormOps::layer_norm_backward`).
pub(super) fn backward<T: Float>(
    (g, grad_layout, x, x_layout, mean, rstd, weight): Grads,
    p: &LayerNormParams,
) -> Result<[CpuStorage; 3]> {
    let g = contiguous_as::<T>(g, grad_layout)?;
    let x = contiguous_as::<T>(x, x_layout)?;
    let rstd = stat::<T>(rstd, p)?;
    let mean = if p.rms {
        None
    } else {
        Some(stat::<T>(mean, p)?)
    };
    let w = weight.map(|(s, l)| contiguous_as::<T>(s, l)).transpose()?;
    if p.d == 0 {
        return Ok([
            T::wrap(Vec::new()),
            T::wrap(Vec::new()),
            T::wrap(Vec::new()),
        ]);
    }
    let ranges = blocks(p.rows);
    let mut dx = alloc::filled(p.rows * p.d, T::default())?;
    // Per block: its partial (dw, db), 2·d values.
    let mut partials = alloc::filled(ranges.len() * 2 * p.d, T::default())?;
    let pieces = split(&mut dx, &ranges, p.d)
        .into_iter()
        .zip(partials.chunks_mut(2 * p.d))
        .zip(ranges.iter().cloned());
    for_each(pieces.collect(), p.rows * p.d, |((dx, partial), rows)| {
        let span = rows.start * p.d..rows.end * p.d;
        vectorized(BackwardRows {
            g: &g[span.clone()],
            x: &x[span],
            mean: mean.as_ref().map(|m| &m[rows.clone()]),
            rstd: &rstd[rows],
            w: w.as_deref(),
            dx,
            partial,
            d: p.d,
        })
    });
    let (mut dw, mut db) = (vec![T::default(); p.d], vec![T::default(); p.d]);
    for partial in partials.chunks_exact(2 * p.d) {
        let (pw, pb) = partial.split_at(p.d);
        dw.iter_mut().zip(pw).for_each(|(a, &v)| *a = *a + v);
        db.iter_mut().zip(pb).for_each(|(a, &v)| *a = *a + v);
    }
    Ok([T::wrap(dx), T::wrap(dw), T::wrap(db)])
}

/// The backward pass over a block of rows: `dx` for each row, and the block's column
/// sums `Σ g·x̂` and `Σ g` into `partial` (`2·d` values).
struct BackwardRows<'a, T> {
    g: &'a [T],
    x: &'a [T],
    mean: Option<&'a [T]>,
    rstd: &'a [T],
    w: Option<&'a [T]>,
    dx: &'a mut [T],
    partial: &'a mut [T],
    d: usize,
}

impl<T: Float> pulp::WithSimd for BackwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let BackwardRows {
            g,
            x,
            mean,
            rstd,
            w,
            dx,
            partial,
            d,
        } = self;
        let n = T::from_f64(d as f64);
        let (sum_gx, sum_g) = partial.split_at_mut(d);
        // x̂ and ĝ = g·w of the current row.
        let (mut xh, mut wg) = (vec![T::default(); d], vec![T::default(); d]);
        for (r, &rs) in rstd.iter().enumerate() {
            let (gr, xr) = (&g[r * d..][..d], &x[r * d..][..d]);
            let mu = mean.map_or(T::default(), |m| m[r]);
            xh.iter_mut().zip(xr).for_each(|(h, &v)| *h = (v - mu) * rs);
            match w {
                Some(w) => wg
                    .iter_mut()
                    .zip(gr)
                    .zip(w)
                    .for_each(|((o, &g), &w)| *o = g * w),
                None => wg.copy_from_slice(gr),
            }
            let mean_wg = match mean {
                Some(_) => sum_by(&wg, |v| v) / n,
                None => T::default(),
            };
            let mean_wgx = dot(&wg, &xh) / n;
            for ((o, &wg), &h) in dx[r * d..][..d].iter_mut().zip(&wg).zip(&xh) {
                *o = rs * (wg - mean_wg - h * mean_wgx);
            }
            for ((s, &g), &h) in sum_gx.iter_mut().zip(gr).zip(&xh) {
                *s = *s + g * h;
            }
            sum_g.iter_mut().zip(gr).for_each(|(s, &g)| *s = *s + g);
        }
    }
}
