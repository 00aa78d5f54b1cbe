//! Reductions over one dimension.
//!
//! The input is viewed as (outer, len, inner) with `len` the reduced dimension.
//! Float sums accumulate in f64 above runs of 8 elements per lane (at least as
//! accurate as PyTorch's cascade summation);
//! integer sums accumulate in i64 and give I64, like PyTorch.

use super::{ReduceOp, ReduceOps};
use crate::backend::cpu::{alloc, gather, vectorized, Num, PARALLEL_THRESHOLD};
use crate::backend::CpuStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use rayon::prelude::*;

impl ReduceOps for CpuStorage {
    fn reduce(&self, op: ReduceOp, layout: &Layout, dim: usize) -> Result<CpuStorage> {
        let dtype = self.dtype();
        let (s, l) = self.widened(layout)?;
        let out = match s.as_ref() {
            CpuStorage::F32(v) => reduce(v, &l, dim, op)?,
            CpuStorage::F64(v) => reduce(v, &l, dim, op)?,
            CpuStorage::I64(v) => reduce(v, &l, dim, op)?,
            CpuStorage::U8(v) => reduce(v, &l, dim, op)?,
            CpuStorage::F16(_) | CpuStorage::BF16(_) => unreachable!("widened to f32"),
        };
        Ok(match (op, dtype) {
            (ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min, DType::F16 | DType::BF16) => {
                out.convert(dtype)?
            }
            _ => out,
        })
    }
}

pub(crate) fn reduce<T: Num>(
    v: &[T],
    layout: &Layout,
    dim: usize,
    op: ReduceOp,
) -> Result<CpuStorage> {
    let shape = &layout.shape;
    let len = shape[dim];
    // The input's element count fits in usize, but with `len == 0` the output's need
    // not (`[usize::MAX, 0, 2]` summed over dim 1).
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    if outer.checked_mul(inner).is_none() {
        return Err(Error::shape(
            "reduce",
            format!("reducing dim {dim} of {shape:?} leaves more elements than can be addressed"),
        ));
    }
    // Contiguous inputs are read in place; only strided views are gathered first.
    let data: std::borrow::Cow<'_, [T]> = match layout.contiguous_range() {
        Some(r) => std::borrow::Cow::Borrowed(&v[r]),
        None => std::borrow::Cow::Owned(gather(v, layout)?),
    };
    let at = |o: usize, k: usize, i: usize| data[(o * len + k) * inner + i];
    Ok(match op {
        ReduceOp::Sum if T::DTYPE.is_float() => {
            let sums = sum(&data, outer, len, inner)?;
            T::wrap(alloc::collect(sums.into_iter().map(T::from_f64))?)
        }
        // Integers add as i64 (wrapping, like PyTorch's int64 sum): exact, unlike a
        // trip through f64, which loses integers above 2^53.
        ReduceOp::Sum => CpuStorage::I64(per_output(outer, inner, |o, i| {
            (0..len).fold(0i64, |acc, k| acc.wrapping_add(at(o, k, i).to_i64()))
        })?),
        ReduceOp::Max => T::wrap(per_output(outer, inner, |o, i| {
            at(o, best_index(len, |k| at(o, k, i), |a, b| a > b), i)
        })?),
        ReduceOp::Min => T::wrap(per_output(outer, inner, |o, i| {
            at(o, best_index(len, |k| at(o, k, i), |a, b| a < b), i)
        })?),
        ReduceOp::ArgMax => CpuStorage::I64(per_output(outer, inner, |o, i| {
            best_index(len, |k| at(o, k, i), |a, b| a > b) as i64
        })?),
        ReduceOp::ArgMin => CpuStorage::I64(per_output(outer, inner, |o, i| {
            best_index(len, |k| at(o, k, i), |a, b| a < b) as i64
        })?),
    })
}

/// Index of the first element that beats every other under `better`; a NaN wins
/// (and the first NaN is kept), as PyTorch's max/argmax propagate NaN.
fn best_index<T: Num>(
    len: usize,
    get: impl Fn(usize) -> T,
    better: impl Fn(T, T) -> bool,
) -> usize {
    let mut best = 0;
    for k in 1..len {
        let (cand, cur) = (get(k), get(best));
        if cur.is_nan() {
            break;
        }
        if cand.is_nan() || better(cand, cur) {
            best = k;
        }
    }
    best
}

/// `f(o, i)` for every output `(o, i)` (`outer * inner` of them, which the caller
/// checked fits in usize), in row-major order.
fn per_output<U: Send + 'static>(
    outer: usize,
    inner: usize,
    f: impl Fn(usize, usize) -> U + Sync,
) -> Result<Vec<U>> {
    let n = outer * inner;
    if n >= 256 {
        alloc::par_collect((0..n).into_par_iter().map(|j| f(j / inner, j % inner)))
    } else {
        alloc::collect((0..n).map(|j| f(j / inner, j % inner)))
    }
}

fn sum<T: Num>(data: &[T], outer: usize, len: usize, inner: usize) -> Result<Vec<f64>> {
    if inner == 1 {
        return if outer == 1 {
            alloc::filled(1, sum_slice(data))
        } else {
            per_output(outer, 1, |o, _| {
                vectorized(LaneSum(&data[o * len..(o + 1) * len]))
            })
        };
    }
    let mut out = alloc::filled(outer * inner, 0f64)?;
    if out.is_empty() {
        return Ok(out);
    }
    let block = |(o, acc): (usize, &mut [f64])| {
        vectorized(ColumnSums {
            acc,
            rows: &data[o * len * inner..(o + 1) * len * inner],
        })
    };
    if outer * len * inner >= PARALLEL_THRESHOLD && outer > 1 {
        out.par_chunks_mut(inner).enumerate().for_each(block);
    } else {
        out.chunks_mut(inner).enumerate().for_each(block);
    }
    Ok(out)
}

fn sum_slice<T: Num>(v: &[T]) -> f64 {
    if v.len() >= PARALLEL_THRESHOLD {
        v.par_chunks(PARALLEL_THRESHOLD)
            .map(|c| vectorized(LaneSum(c)))
            .sum()
    } else {
        vectorized(LaneSum(v))
    }
}

/// Independent accumulators in [`sum_serial`]: one running sum would be a chain of
/// dependent adds the compiler may not reorder; separate lanes vectorize.
const SUM_LANES: usize = 16;

/// Elements each lane adds in the input type before its partial sum moves to f64.
/// Converting every f32 element to f64 made the sum compute-bound; runs of 8 keep
/// the rounding error of a partial sum within 7 ulp of its 8 terms (tighter than
/// a cascade sum over the whole tensor), and everything above is f64.
const SUM_RUN: usize = 8;

/// Sum of `v` as f64: [`SUM_LANES`] interleaved partial sums, each adding runs of
/// [`SUM_RUN`] elements in the input type and accumulating the runs in f64.
#[inline(always)]
fn sum_serial<T: Num>(v: &[T]) -> f64 {
    let mut acc = [0f64; SUM_LANES];
    let blocks = v.chunks_exact(SUM_LANES * SUM_RUN);
    let tail: f64 = blocks.remainder().iter().map(|x| x.to_f64()).sum();
    for block in blocks {
        let mut run = [T::default(); SUM_LANES];
        for chunk in block.chunks_exact(SUM_LANES) {
            for (r, &x) in run.iter_mut().zip(chunk) {
                *r = r.add(x);
            }
        }
        for (a, r) in acc.iter_mut().zip(run) {
            *a += r.to_f64();
        }
    }
    acc.iter().sum::<f64>() + tail
}

/// [`sum_serial`] of a slice, for [`vectorized`].
struct LaneSum<'a, T>(&'a [T]);

impl<T: Num> pulp::WithSimd for LaneSum<'_, T> {
    type Output = f64;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> f64 {
        sum_serial(self.0)
    }
}

/// Adds each row of `rows` (rows of `acc.len()` elements) into `acc`: every column
/// accumulates in its own lane, so the loop vectorizes as it is.
struct ColumnSums<'a, T> {
    acc: &'a mut [f64],
    rows: &'a [T],
}

impl<T: Num> pulp::WithSimd for ColumnSums<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        for row in self.rows.chunks(self.acc.len()) {
            self.acc
                .iter_mut()
                .zip(row)
                .for_each(|(a, x)| *a += x.to_f64());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sum_matches_a_plain_sum_for_every_tail_length() {
        for n in [0, 1, 15, 16, 17, 127, 128, 129, 1000, 5000] {
            let v: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 2.5).collect();
            let plain: f64 = v.iter().map(|&x| x as f64).sum();
            assert_eq!(sum_serial(&v), plain, "n = {n}");
        }
    }

    #[test]
    fn long_f32_sums_keep_f64_accuracy() {
        // One running f32 sum of a million 0.1s is off by about 1%.
        let v = vec![0.1f32; 1 << 20];
        let exact = (1 << 20) as f64 * 0.1f32 as f64;
        let got = sum_slice(&v);
        assert!((got - exact).abs() / exact < 1e-7, "{got} vs {exact}");
    }

    #[test]
    fn sums_of_a_transposed_view_match_the_copied_tensor() {
        // x = [[0, 1, 2], [3, 4, 5]] stored transposed: shape [2, 3], strides [1, 2].
        let storage = [0f32, 3., 1., 4., 2., 5.];
        let layout = Layout {
            shape: vec![2, 3],
            strides: vec![1, 2],
            offset: 0,
        };
        let rows = reduce(&storage, &layout, 1, ReduceOp::Sum).unwrap();
        let cols = reduce(&storage, &layout, 0, ReduceOp::Sum).unwrap();
        assert_eq!(rows, CpuStorage::F32(vec![3., 12.]));
        assert_eq!(cols, CpuStorage::F32(vec![3., 5., 7.]));
    }
}
