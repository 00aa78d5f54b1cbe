//! Reductions over one dimension.
//!
//! The input is viewed as (outer, len, inner) with `len` the reduced dimension.
//! Float sums accumulate in f64 (close to PyTorch's cascade summation in accuracy);
//! integer sums accumulate in i64 and give I64, like PyTorch.

use super::{gather, Num, PARALLEL_THRESHOLD};
use crate::backend::{CpuStorage, ReduceOp};
use crate::shape::Layout;
use rayon::prelude::*;

pub(crate) fn reduce<T: Num>(v: &[T], layout: &Layout, dim: usize, op: ReduceOp) -> CpuStorage {
    // Contiguous inputs are read in place; only strided views are gathered first.
    let data: std::borrow::Cow<'_, [T]> = match layout.contiguous_range() {
        Some(r) => std::borrow::Cow::Borrowed(&v[r]),
        None => std::borrow::Cow::Owned(gather(v, layout)),
    };
    let shape = &layout.shape;
    let len = shape[dim];
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let at = |o: usize, k: usize, i: usize| data[(o * len + k) * inner + i];
    match op {
        ReduceOp::Sum if T::DTYPE.is_float() => T::wrap(
            sum(&data, outer, len, inner)
                .into_iter()
                .map(T::from_f64)
                .collect(),
        ),
        ReduceOp::Sum => CpuStorage::I64(per_output(outer, inner, |o, i| {
            (0..len).fold(0i64, |acc, k| acc.wrapping_add(at(o, k, i).to_f64() as i64))
        })),
        ReduceOp::Max => T::wrap(per_output(outer, inner, |o, i| {
            at(o, best_index(len, |k| at(o, k, i), |a, b| a > b), i)
        })),
        ReduceOp::Min => T::wrap(per_output(outer, inner, |o, i| {
            at(o, best_index(len, |k| at(o, k, i), |a, b| a < b), i)
        })),
        ReduceOp::ArgMax => CpuStorage::I64(per_output(outer, inner, |o, i| {
            best_index(len, |k| at(o, k, i), |a, b| a > b) as i64
        })),
        ReduceOp::ArgMin => CpuStorage::I64(per_output(outer, inner, |o, i| {
            best_index(len, |k| at(o, k, i), |a, b| a < b) as i64
        })),
    }
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

fn per_output<U: Send>(outer: usize, inner: usize, f: impl Fn(usize, usize) -> U + Sync) -> Vec<U> {
    let n = outer * inner;
    if n >= 256 {
        (0..n)
            .into_par_iter()
            .map(|j| f(j / inner, j % inner))
            .collect()
    } else {
        (0..n).map(|j| f(j / inner, j % inner)).collect()
    }
}

fn sum<T: Num>(data: &[T], outer: usize, len: usize, inner: usize) -> Vec<f64> {
    if inner == 1 {
        return if outer == 1 {
            vec![sum_slice(data)]
        } else {
            per_output(outer, 1, |o, _| {
                data[o * len..(o + 1) * len]
                    .iter()
                    .map(|x| x.to_f64())
                    .sum()
            })
        };
    }
    let block = |o: usize| {
        let mut acc = vec![0f64; inner];
        for row in data[o * len * inner..(o + 1) * len * inner].chunks(inner) {
            acc.iter_mut().zip(row).for_each(|(a, x)| *a += x.to_f64());
        }
        acc
    };
    if outer * len * inner >= PARALLEL_THRESHOLD && outer > 1 {
        (0..outer).into_par_iter().flat_map_iter(block).collect()
    } else {
        (0..outer).flat_map(block).collect()
    }
}

fn sum_slice<T: Num>(v: &[T]) -> f64 {
    if v.len() >= PARALLEL_THRESHOLD {
        v.par_chunks(PARALLEL_THRESHOLD)
            .map(|c| c.iter().map(|x| x.to_f64()).sum::<f64>())
            .sum()
    } else {
        v.iter().map(|x| x.to_f64()).sum()
    }
}
