//! Class-index losses on the CPU (the reference for `kernels/loss.cu`): each row's
//! loss from its max-shifted logsumexp (two passes over the row, as the CPU softmax),
//! its target's logit and the sum of its logits; the gradient elementwise.

use super::alloc;
use super::dtype::{compute_dtype, contiguous_as};
use super::elementwise::Float;
use super::{CpuStorage, PARALLEL_THRESHOLD};
use crate::backend::{CrossEntropyParams, LossOps};
use crate::shape::Layout;
use crate::{DType, Result};
use rayon::prelude::*;

impl LossOps for CpuStorage {
    fn cross_entropy_forward(
        &self,
        layout: &Layout,
        target: &CpuStorage,
        target_layout: &Layout,
        p: &CrossEntropyParams,
    ) -> Result<(CpuStorage, CpuStorage)> {
        let t = contiguous_as::<i64>(target, target_layout)?;
        if let Some(&bad) = t.iter().find(|&&t| t < 0 || t as usize >= p.classes) {
            return Err(p.bad_target(bad));
        }
        fn run<T: Float>(x: &[T], t: &[i64], p: &CrossEntropyParams) -> (CpuStorage, CpuStorage) {
            let rows = (0..p.rows()).into_par_iter().with_min_len(rows_per_task(p));
            let (loss, lse): (Vec<T>, Vec<T>) = rows.map(|j| row_loss(x, t[j], j, p)).unzip();
            let lse = if p.from_logits { lse } else { Vec::new() };
            (T::wrap(loss), T::wrap(lse))
        }
        Ok(match compute_dtype(p.op(), self.dtype())? {
            DType::F64 => run(&contiguous_as::<f64>(self, layout)?, &t, p),
            _ => run(&contiguous_as::<f32>(self, layout)?, &t, p),
        })
    }

    fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &CpuStorage,
        target_layout: &Layout,
        lse: &CpuStorage,
        grad: &CpuStorage,
        grad_layout: &Layout,
        scale: f64,
        p: &CrossEntropyParams,
    ) -> Result<CpuStorage> {
        let t = contiguous_as::<i64>(target, target_layout)?;
        #[allow(clippy::too_many_arguments)] // the trait method's operands, unwrapped
        fn run<T: Float>(
            x: &CpuStorage,
            layout: &Layout,
            t: &[i64],
            lse: &CpuStorage,
            grad: &CpuStorage,
            grad_layout: &Layout,
            scale: f64,
            p: &CrossEntropyParams,
        ) -> Result<CpuStorage> {
            let x = contiguous_as::<T>(x, layout)?;
            let lse = contiguous_as::<T>(lse, &Layout::contiguous(&[lse.len()]))?;
            let s = contiguous_as::<T>(grad, grad_layout)?[0] * T::from_f64(scale);
            let (on_target, off_target) = p.target_weights();
            let (on_target, off_target) = (T::from_f64(on_target), T::from_f64(off_target));
            let mut out = alloc::filled(x.len(), T::default())?;
            let element = |(i, o): (usize, &mut T)| {
                let (k, j) = (
                    (i / p.inner) % p.classes,
                    i / (p.classes * p.inner) * p.inner + i % p.inner,
                );
                let q = if t[j] == k as i64 {
                    on_target + off_target
                } else {
                    off_target
                };
                let prob = if p.from_logits {
                    (x[i] - lse[j]).exp()
                } else {
                    T::default()
                };
                *o = (prob - q) * s;
            };
            if out.len() >= PARALLEL_THRESHOLD {
                out.par_iter_mut()
                    .enumerate()
                    .with_min_len(PARALLEL_THRESHOLD / 8)
                    .for_each(element);
            } else {
                out.iter_mut().enumerate().for_each(element);
            }
            Ok(T::wrap(out))
        }
        let dtype = self.dtype();
        match compute_dtype(p.op(), dtype)? {
            DType::F64 => run::<f64>(self, layout, &t, lse, grad, grad_layout, scale, p),
            _ => run::<f32>(self, layout, &t, lse, grad, grad_layout, scale, p)?.convert(dtype),
        }
    }
}

/// Rows per parallel task: enough that a task reads about `PARALLEL_THRESHOLD / 8`
/// values.
fn rows_per_task(p: &CrossEntropyParams) -> usize {
    (PARALLEL_THRESHOLD / 8 / p.classes.max(1)).max(1)
}

/// (loss, logsumexp) of row `j` with target `t` (in range; checked by the caller).
fn row_loss<T: Float>(x: &[T], t: i64, j: usize, p: &CrossEntropyParams) -> (T, T) {
    let base = j / p.inner * p.classes * p.inner + j % p.inner;
    let at = |k: usize| x[base + k * p.inner];
    let x_t = at(t as usize);
    if !p.from_logits {
        return (-x_t, T::default());
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
        T::default()
    } else {
        max
    };
    let sum = (0..p.classes).fold(T::default(), |acc, k| acc + (at(k) - shift).exp());
    let lse = shift + sum.ln();
    let (on_target, off_target) = p.target_weights();
    let mut loss = lse - T::from_f64(on_target) * x_t;
    if p.smoothing > 0.0 {
        let sum_x = (0..p.classes).fold(T::default(), |acc, k| acc + at(k));
        loss = loss - T::from_f64(off_target) * sum_x;
    }
    (loss, lse)
}
