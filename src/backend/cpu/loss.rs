//! Class-index losses on the CPU (the reference for `kernels/loss.cu`): each row's
//! loss from its max-shifted logsumexp (two passes over the row, as the CPU softmax),
//! its target's logit and weight and the weighted sum of its logits; the gradient
//! elementwise.

use super::{CrossEntropyParams, LossOps};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{compute_dtype, contiguous_as};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{vectorized, CpuStorage, PARALLEL_THRESHOLD};
use crate::shape::Layout;
use crate::{DType, Result};
use rayon::prelude::*;
use std::borrow::Cow;

impl LossOps for CpuStorage {
    fn cross_entropy_forward(
        &self,
        layout: &Layout,
        target: &CpuStorage,
        target_layout: &Layout,
        weight: Option<(&CpuStorage, &Layout)>,
        p: &CrossEntropyParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        let t = contiguous_as::<i64>(target, target_layout)?;
        if let Some(&bad) = t
            .iter()
            .find(|&&t| !p.ignored(t) && (t < 0 || t as usize >= p.classes))
        {
            return Err(p.bad_target(bad));
        }
        fn run<T: Float>(
            x: &CpuStorage,
            layout: &Layout,
            t: &[i64],
            weight: Option<(&CpuStorage, &Layout)>,
            p: &CrossEntropyParams,
        ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
            let x = contiguous_as::<T>(x, layout)?;
            let w = class_weights::<T>(weight, p)?;
            let rows = (0..p.rows()).into_par_iter().with_min_len(rows_per_task(p));
            let per_row: Vec<[T; 3]> = rows.map(|j| row_loss(&x, t[j], &w, j, p)).collect();
            let column = |c: usize| per_row.iter().map(|r| r[c]).collect::<Vec<T>>();
            let lse = if p.from_logits { column(1) } else { Vec::new() };
            Ok((T::wrap(column(0)), T::wrap(lse), T::wrap(column(2))))
        }
        match compute_dtype(p.op(), self.dtype())? {
            DType::F64 => run::<f64>(self, layout, &t, weight, p),
            _ => run::<f32>(self, layout, &t, weight, p),
        }
    }

    fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &CpuStorage,
        target_layout: &Layout,
        weight: Option<(&CpuStorage, &Layout)>,
        weight_total: Option<(&CpuStorage, &Layout)>,
        lse: &CpuStorage,
        grad: &CpuStorage,
        grad_layout: &Layout,
        grad_per_row: bool,
        p: &CrossEntropyParams,
    ) -> Result<CpuStorage> {
        let t = contiguous_as::<i64>(target, target_layout)?;
        let operands = Backward {
            x: self,
            layout,
            t: &t,
            weight,
            weight_total,
            lse,
            grad: (grad, grad_layout),
            grad_per_row,
        };
        let dtype = self.dtype();
        match compute_dtype(p.op(), dtype)? {
            DType::F64 => backward::<f64>(operands, p),
            _ => backward::<f32>(operands, p)?.convert(dtype),
        }
    }
}

/// The operands of [`LossOps::cross_entropy_backward`], targets already read.
struct Backward<'a> {
    x: &'a CpuStorage,
    layout: &'a Layout,
    t: &'a [i64],
    weight: Option<(&'a CpuStorage, &'a Layout)>,
    weight_total: Option<(&'a CpuStorage, &'a Layout)>,
    lse: &'a CpuStorage,
    grad: (&'a CpuStorage, &'a Layout),
    grad_per_row: bool,
}

/// [`LossOps::cross_entropy_backward`] in the compute type `T`.
fn backward<T: Float>(o: Backward, p: &CrossEntropyParams) -> Result<CpuStorage> {
    let x = contiguous_as::<T>(o.x, o.layout)?;
    let lse = contiguous_as::<T>(o.lse, &Layout::contiguous(&[o.lse.len()]))?;
    let grad = contiguous_as::<T>(o.grad.0, o.grad.1)?;
    let w = class_weights::<T>(o.weight, p)?;
    let total = match o.weight_total {
        Some((s, l)) => contiguous_as::<T>(s, l)?[0],
        None => T::from_f64(p.classes as f64),
    };
    let (on_target, off_target) = p.target_weights();
    let (on_target, off_target) = (T::from_f64(on_target), T::from_f64(off_target));
    let one = T::from_f64(1.0);
    let mut out = alloc::filled(x.len(), T::default())?;
    // Element i = (b·classes + k)·inner + q: class k of row j = b·inner + q.
    let element = |i: usize, j: usize, k: usize, o_i: &mut T| {
        let t = o.t[j];
        if p.ignored(t) {
            return;
        }
        let s = grad[if o.grad_per_row { j } else { 0 }];
        let w_of = |c: usize| w.as_ref().map_or(one, |w| w[c]);
        let w_t = w_of(t as usize);
        let hit = if t == k as i64 { w_t } else { T::default() };
        *o_i = if p.from_logits {
            let prob = (x[i] - lse[j]).exp();
            (prob * (on_target * w_t + off_target * total) - on_target * hit - off_target * w_of(k))
                * s
        } else {
            -hit * s
        };
    };
    // One outer index's classes × inner block at a time: no division per element.
    let block = p.classes * p.inner;
    let fill = |(b, out): (usize, &mut [T])| {
        if p.inner == 1 && p.from_logits {
            // A row of logits (the common (N, C) case): every class but the target
            // in one vectorized pass, then the target's element as above.
            let t = o.t[b];
            if p.ignored(t) {
                return;
            }
            let s = grad[if o.grad_per_row { b } else { 0 }];
            let w_t = w.as_ref().map_or(one, |w| w[t as usize]);
            vectorized(LogitRow {
                out: &mut *out,
                x: &x[b * block..(b + 1) * block],
                lse: lse[b],
                scale: on_target * w_t + off_target * total,
                off_target,
                weight: w.as_deref(),
                grad: s,
            });
            element(b * block + t as usize, b, t as usize, &mut out[t as usize]);
            return;
        }
        for (k, row) in out.chunks_mut(p.inner).enumerate() {
            for (q, o_i) in row.iter_mut().enumerate() {
                element((b * p.classes + k) * p.inner + q, b * p.inner + q, k, o_i);
            }
        }
    };
    if block == 0 {
        return Ok(T::wrap(out));
    }
    if out.len() >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(block)
            .enumerate()
            .with_min_len((PARALLEL_THRESHOLD / 8 / block).max(1))
            .for_each(fill);
    } else {
        out.chunks_mut(block).enumerate().for_each(fill);
    }
    Ok(T::wrap(out))
}

/// The cross-entropy gradient of one row of logits at its non-target classes:
/// `(e^(x - lse)·scale - off_target·w_k)·grad`, the terms `element` computes there
/// (its target term is zero), in the same order, so the bits agree.
struct LogitRow<'a, T> {
    out: &'a mut [T],
    x: &'a [T],
    lse: T,
    /// `on_target·w_t + off_target·total`.
    scale: T,
    off_target: T,
    weight: Option<&'a [T]>,
    grad: T,
}

impl<T: Float> pulp::WithSimd for LogitRow<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let (lse, scale, off, g) = (self.lse, self.scale, self.off_target, self.grad);
        let rows = self.out.iter_mut().zip(self.x);
        match self.weight {
            None => rows.for_each(|(o, &x)| *o = ((x - lse).exp() * scale - off) * g),
            Some(w) => rows
                .zip(w)
                .for_each(|((o, &x), &w)| *o = ((x - lse).exp() * scale - off * w) * g),
        }
    }
}

/// The optional `(classes)` weight as a contiguous slice of the compute type.
fn class_weights<'a, T: Float>(
    weight: Option<(&'a CpuStorage, &Layout)>,
    p: &CrossEntropyParams,
) -> Result<Option<Cow<'a, [T]>>> {
    weight
        .map(|(s, l)| {
            debug_assert_eq!(l.numel(), p.classes);
            contiguous_as::<T>(s, l)
        })
        .transpose()
}

/// Rows per parallel task: enough that a task reads about `PARALLEL_THRESHOLD / 8`
/// values.
fn rows_per_task(p: &CrossEntropyParams) -> usize {
    (PARALLEL_THRESHOLD / 8 / p.classes.max(1)).max(1)
}

/// `[loss, logsumexp, weight]` of row `j` with target `t` (in range or ignored;
/// checked by the caller).
fn row_loss<T: Float>(
    x: &[T],
    t: i64,
    w: &Option<Cow<[T]>>,
    j: usize,
    p: &CrossEntropyParams,
) -> [T; 3] {
    let base = j / p.inner * p.classes * p.inner + j % p.inner;
    let at = |k: usize| x[base + k * p.inner];
    let one = T::from_f64(1.0);
    let w_of = |c: usize| w.as_ref().map_or(one, |w| w[c]);
    let zero = T::default();
    if !p.from_logits {
        if p.ignored(t) {
            return [zero, zero, zero];
        }
        let w_t = w_of(t as usize);
        return [-(w_t * at(t as usize)), zero, w_t];
    }
    // The max-shifted logsumexp of the CPU softmax: the first NaN wins the max, and a
    // row of -inf is shifted by 0 (its sum is 0, its lse -inf, its loss NaN, as in
    // PyTorch).
    let mut max = at(0);
    for k in 1..p.classes {
        let v = at(k);
        if !max.is_nan() && (v.is_nan() || v > max) {
            max = v;
        }
    }
    let shift = if max == T::from_f64(f64::NEG_INFINITY) {
        zero
    } else {
        max
    };
    let sum = (0..p.classes).fold(zero, |acc, k| acc + (at(k) - shift).exp());
    let lse = shift + sum.ln();
    if p.ignored(t) {
        return [zero, lse, zero];
    }
    let (on_target, off_target) = p.target_weights();
    let w_t = w_of(t as usize);
    let mut loss = T::from_f64(on_target) * w_t * (lse - at(t as usize));
    if p.smoothing > 0.0 {
        let (sum_w, sum_wx) = (0..p.classes).fold((zero, zero), |(sw, swx), k| {
            (sw + w_of(k), swx + w_of(k) * at(k))
        });
        loss = loss + T::from_f64(off_target) * (sum_w * lse - sum_wx);
    }
    [loss, lse, w_t]
}
