//! Softmax and log-softmax over contiguous rows (the last dimension).
//!
//! Each row is handled in three passes over cache-resident data: its maximum, the
//! sum of `exp(x - max)`, then the output. Subtracting the maximum keeps `exp` from
//! overflowing, so large logits give the exact probabilities rather than NaN.

use super::elementwise::Float;
use super::PARALLEL_THRESHOLD;
use rayon::prelude::*;

/// Softmax (or log-softmax when `log`) of each row of `len` elements of `data`.
pub(crate) fn softmax_rows<T: Float>(data: &[T], len: usize, log: bool) -> Vec<T> {
    let mut out = vec![T::default(); data.len()];
    if len == 0 || data.is_empty() {
        return out;
    }
    let row = |(o, x): (&mut [T], &[T])| softmax_row(x, o, log);
    if data.len() >= PARALLEL_THRESHOLD {
        // Several rows per task so that short rows do not drown in scheduling.
        let rows_per_task = (PARALLEL_THRESHOLD / 8 / len).max(1);
        out.par_chunks_mut(len * rows_per_task)
            .zip(data.par_chunks(len * rows_per_task))
            .for_each(|(o, x)| o.chunks_mut(len).zip(x.chunks(len)).for_each(row));
    } else {
        out.chunks_mut(len).zip(data.chunks(len)).for_each(row);
    }
    out
}

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
    // In a row of -inf, shifting by the max would compute (-inf) - (-inf); shift by 0
    // instead, so the row's sum is 0 and the result NaN, as in PyTorch.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one_and_survive_large_logits() {
        let x = [1000.0f64, 1001.0, 1002.0, -1.0, 0.0, 1.0];
        let p = softmax_rows(&x, 3, false);
        // Both rows hold the same differences, so the same probabilities.
        for k in 0..3 {
            assert!((p[k] - p[3 + k]).abs() < 1e-15);
        }
        let e: Vec<f64> = [-2.0f64, -1.0, 0.0].iter().map(|v| v.exp()).collect();
        let total: f64 = e.iter().sum();
        for k in 0..3 {
            assert!((p[k] - e[k] / total).abs() < 1e-15);
        }
        let lp = softmax_rows(&x, 3, true);
        for k in 0..6 {
            assert!((lp[k] - p[k].ln()).abs() < 1e-12);
        }
    }

    #[test]
    fn nan_poisons_its_row_only() {
        let x = [f32::NAN, 1.0, 2.0, 3.0];
        let p = softmax_rows(&x, 2, false);
        assert!(p[0].is_nan() && p[1].is_nan());
        assert!((p[2] + p[3] - 1.0).abs() < 1e-6);
    }
}
