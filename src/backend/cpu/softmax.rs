//! Softmax and log-softmax along one dimension of contiguous data.
//!
//! The data is seen as `(outer, len, inner)` with `len` the softmax dimension. With
//! `inner == 1` each row of `len` elements is handled alone; otherwise a block of
//! `len` rows of `inner` elements is handled column-wise, a strip of columns at a
//! time, so every pass reads contiguous memory and no transpose is needed. Each
//! column's maximum is subtracted before `exp`, so large logits do not overflow.

use super::SoftmaxOps;
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{alloc, gather, PARALLEL_THRESHOLD};
use crate::backend::CpuStorage;
use crate::shape::Layout;
use crate::{Error, Result};
use rayon::prelude::*;

impl SoftmaxOps for CpuStorage {
    fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Result<CpuStorage> {
        let dtype = self.dtype();
        let op = if log { "log_softmax" } else { "softmax" };
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType { op, dtype });
        }
        let shape = &layout.shape;
        if dim >= shape.len() {
            return Err(Error::DimOutOfRange {
                op,
                dim,
                rank: shape.len(),
            });
        }
        let outer: usize = shape[..dim].iter().product();
        let inner: usize = shape[dim + 1..].iter().product();
        let (s, l) = self.widened(layout)?;
        fn run<T: crate::backend::cpu::math::Float>(
            v: &[T],
            l: &Layout,
            sizes: (usize, usize, usize),
            log: bool,
        ) -> Result<Vec<T>> {
            let (outer, len, inner) = sizes;
            match l.contiguous_range() {
                Some(r) => softmax(&v[r], outer, len, inner, log),
                None => softmax(&gather(v, l)?, outer, len, inner, log),
            }
        }
        let sizes = (outer, shape[dim], inner);
        let out = match s.as_ref() {
            CpuStorage::F32(v) => CpuStorage::F32(run(v, &l, sizes, log)?),
            CpuStorage::F64(v) => CpuStorage::F64(run(v, &l, sizes, log)?),
            _ => unreachable!("float dtypes checked above, f16/bf16 widened"),
        };
        out.convert(dtype)
    }
}

/// Columns handled together in the column-wise path (one strip per task).
const STRIP: usize = 256;

/// Softmax (or log-softmax when `log`) along the middle axis of `data` seen as
/// `(outer, len, inner)`.
pub(crate) fn softmax<T: Float>(
    data: &[T],
    outer: usize,
    len: usize,
    inner: usize,
    log: bool,
) -> Result<Vec<T>> {
    let mut out = alloc::filled(data.len(), T::default())?;
    if data.is_empty() {
        return Ok(out);
    }
    let parallel = data.len() >= PARALLEL_THRESHOLD;
    if inner == 1 {
        let row = |(o, x): (&mut [T], &[T])| softmax_row(x, o, log);
        if parallel {
            // Several rows per task so that short rows do not drown in scheduling.
            let rows_per_task = (PARALLEL_THRESHOLD / 8 / len).max(1);
            out.par_chunks_mut(len * rows_per_task)
                .zip(data.par_chunks(len * rows_per_task))
                .for_each(|(o, x)| o.chunks_mut(len).zip(x.chunks(len)).for_each(row));
        } else {
            out.chunks_mut(len).zip(data.chunks(len)).for_each(row);
        }
        return Ok(out);
    }
    let block = len * inner;
    if !parallel || outer >= rayon::current_num_threads() * 2 {
        // Whole blocks per task: enough of them to keep every thread busy.
        let run = |(o, x): (&mut [T], &[T])| softmax_strip(x, o, len, inner, log);
        if parallel {
            out.par_chunks_mut(block)
                .zip(data.par_chunks(block))
                .for_each(run);
        } else {
            out.chunks_mut(block).zip(data.chunks(block)).for_each(run);
        }
        return Ok(out);
    }
    // Few large blocks (softmax over a leading dim): split each block into strips of
    // columns. A strip's output is scattered over the block's rows, so each task
    // writes a private buffer that is copied into place afterwards.
    let strips = inner.div_ceil(STRIP);
    let results: Vec<(usize, usize, Vec<T>)> = (0..outer * strips)
        .into_par_iter()
        .map(|task| {
            let (o, s) = (task / strips, task % strips);
            let (start, width) = (s * STRIP, STRIP.min(inner - s * STRIP));
            let src = &data[o * block..(o + 1) * block];
            let mut strip = alloc::buffer(len * width)?;
            for k in 0..len {
                strip.extend_from_slice(&src[k * inner + start..k * inner + start + width]);
            }
            let mut res = alloc::filled(strip.len(), T::default())?;
            softmax_strip(&strip, &mut res, len, width, log);
            Ok((o, start, res))
        })
        .collect::<Result<_>>()?;
    for (o, start, res) in results {
        let width = res.len() / len;
        for (k, row) in res.chunks(width).enumerate() {
            let at = o * block + k * inner + start;
            out[at..at + width].copy_from_slice(row);
        }
    }
    Ok(out)
}

/// Softmax of one contiguous row (the `inner == 1` path, without per-column state).
fn softmax_row<T: Float>(x: &[T], out: &mut [T], log: bool) {
    // A NaN anywhere makes the row NaN (as in PyTorch): the first NaN wins the max.
    let mut max = x[0];
    for &v in x {
        if max.is_nan() {
            break;
        }
        if v.is_nan() || v > max {
            max = v;
        }
    }
    // See `softmax_strip` for why a row of -inf is shifted by 0.
    let shift = if max == T::from_f64(f64::NEG_INFINITY) {
        T::default()
    } else {
        max
    };
    if log {
        let sum = x
            .iter()
            .fold(T::default(), |acc, &v| acc + (v - shift).exp());
        let log_sum = sum.ln();
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v - shift - log_sum;
        }
    } else {
        let mut sum = T::default();
        for (o, &v) in out.iter_mut().zip(x) {
            let e = (v - shift).exp();
            *o = e;
            sum = sum + e;
        }
        let inv = T::from_f64(1.0) / sum;
        out.iter_mut().for_each(|o| *o = *o * inv);
    }
}

/// Softmax along the rows of `x` seen as `(len, width)`: each of the `width`
/// columns is normalised independently.
fn softmax_strip<T: Float>(x: &[T], out: &mut [T], len: usize, width: usize, log: bool) {
    let neg_inf = T::from_f64(f64::NEG_INFINITY);
    // Column maxima; a NaN anywhere makes its column NaN (as in PyTorch): the first
    // NaN wins the max and survives the arithmetic below.
    let mut max = x[..width].to_vec();
    for row in x.chunks(width).skip(1) {
        for (m, &v) in max.iter_mut().zip(row) {
            if !m.is_nan() && (v.is_nan() || v > *m) {
                *m = v;
            }
        }
    }
    // In a column of -inf, shifting by the max would compute (-inf) - (-inf); shift
    // by 0 instead, so the column's sum is 0 and the result NaN, as in PyTorch.
    let shift: Vec<T> = max
        .into_iter()
        .map(|m| if m == neg_inf { T::default() } else { m })
        .collect();
    let mut sum = vec![T::default(); width];
    if log {
        for row in x.chunks(width).take(len) {
            for ((s, &v), &c) in sum.iter_mut().zip(row).zip(&shift) {
                *s = *s + (v - c).exp();
            }
        }
        let log_sum: Vec<T> = sum.into_iter().map(T::ln).collect();
        for (o_row, row) in out.chunks_mut(width).zip(x.chunks(width)) {
            for (((o, &v), &c), &l) in o_row.iter_mut().zip(row).zip(&shift).zip(&log_sum) {
                *o = v - c - l;
            }
        }
    } else {
        for (o_row, row) in out.chunks_mut(width).zip(x.chunks(width)) {
            for (((o, &v), &c), s) in o_row.iter_mut().zip(row).zip(&shift).zip(sum.iter_mut()) {
                let e = (v - c).exp();
                *o = e;
                *s = *s + e;
            }
        }
        let one = T::from_f64(1.0);
        let inv: Vec<T> = sum.into_iter().map(|s| one / s).collect();
        for o_row in out.chunks_mut(width) {
            for (o, &i) in o_row.iter_mut().zip(&inv) {
                *o = *o * i;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Softmax of one column by the definition, in f64.
    fn reference(col: &[f64]) -> Vec<f64> {
        let m = col.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = col.iter().map(|v| (v - m).exp()).collect();
        let total: f64 = e.iter().sum();
        e.iter().map(|v| v / total).collect()
    }

    #[test]
    fn rows_sum_to_one_and_survive_large_logits() {
        let x = [1000.0f64, 1001.0, 1002.0, -1.0, 0.0, 1.0];
        let p = softmax(&x, 2, 3, 1, false).unwrap();
        // Both rows hold the same differences, so the same probabilities.
        let want = reference(&[-2.0, -1.0, 0.0]);
        for k in 0..3 {
            assert!((p[k] - want[k]).abs() < 1e-15);
            assert!((p[3 + k] - want[k]).abs() < 1e-15);
        }
        let lp = softmax(&x, 2, 3, 1, true).unwrap();
        for k in 0..6 {
            assert!((lp[k] - p[k].ln()).abs() < 1e-12);
        }
    }

    #[test]
    fn nan_poisons_its_row_only() {
        let x = [f32::NAN, 1.0, 2.0, 3.0];
        let p = softmax(&x, 2, 2, 1, false).unwrap();
        assert!(p[0].is_nan() && p[1].is_nan());
        assert!((p[2] + p[3] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn column_paths_agree_with_the_definition() {
        // (outer, len, inner) small (serial blocks), many blocks (parallel blocks) and
        // one large block (parallel strips with a partial last strip).
        for (outer, len, inner) in [(3, 4, 5), (64, 8, 70), (1, 40, 1000)] {
            let n = outer * len * inner;
            let x: Vec<f64> = (0..n)
                .map(|i| ((i * 7919) % 101) as f64 * 0.37 - 15.0)
                .collect();
            for log in [false, true] {
                let p = softmax(&x, outer, len, inner, log).unwrap();
                for o in 0..outer {
                    for i in (0..inner).step_by(7) {
                        let at = |k: usize| (o * len + k) * inner + i;
                        let col: Vec<f64> = (0..len).map(|k| x[at(k)]).collect();
                        for (k, want) in reference(&col).into_iter().enumerate() {
                            let got = if log { p[at(k)].exp() } else { p[at(k)] };
                            assert!(
                                (got - want).abs() < 1e-13,
                                "{outer}x{len}x{inner} log {log}"
                            );
                        }
                    }
                }
            }
        }
    }
}
