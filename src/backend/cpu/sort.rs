//! Sorting on the CPU: each line is copied out as (value, position) pairs and sorted
//! by the family's total order (values with NaN greatest, then position), so an
//! unstable sort gives the stable sort's result and the CUDA network's, element for
//! element. A `topk` (k < len) selects its first k in linear time before sorting
//! them, or, for a k small against the line, keeps them in a sorted buffer while
//! streaming over it. Parallel over lines.

use super::{SortOps, SortParams};
use crate::backend::cpu::dtype::{contiguous_as, dispatch_dtype, same_dtype};
use crate::backend::cpu::{alloc, CpuStorage};
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use half::{bf16, f16};
use rayon::prelude::*;
use std::cmp::Ordering;

/// An element type's ascending order, NaN after every number and NaNs equal (the
/// position decides between them).
trait SortKey: WithDType + Default {
    fn order(a: Self, b: Self) -> Ordering;
}

macro_rules! float_key {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            fn order(a: $t, b: $t) -> Ordering {
                a.partial_cmp(&b).unwrap_or_else(|| a.is_nan().cmp(&b.is_nan()))
            }
        }
    )*};
}
float_key!(f32, f64, f16, bf16);

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl SortKey for $t {
            fn order(a: $t, b: $t) -> Ordering {
                a.cmp(&b)
            }
        }
    )*};
}
int_key!(i64, u8);

impl SortOps for CpuStorage {
    fn sort(&self, layout: &Layout, p: &SortParams) -> Result<(CpuStorage, CpuStorage)> {
        dispatch_dtype!(self.dtype(), T => {
            let x = contiguous_as::<T>(self, layout)?;
            let (vals, idx) = sort_lines::<T>(&x, p)?;
            Ok((CpuStorage::from_vec(vals), CpuStorage::from_vec(idx)))
        })
    }

    fn sort_scatter(
        &mut self,
        p: &SortParams,
        idx: &CpuStorage,
        idx_layout: &Layout,
        g: &CpuStorage,
        g_layout: &Layout,
    ) -> Result<()> {
        let dtype = self.dtype();
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op: "sort_scatter",
                dtype,
            });
        }
        same_dtype("sort_scatter", dtype, g.dtype())?;
        same_dtype("sort_scatter", DType::I64, idx.dtype())?;
        let ix = contiguous_as::<i64>(idx, idx_layout)?;
        dispatch_dtype!(dtype, T => {
            let gv = contiguous_as::<T>(g, g_layout)?;
            let out = self.as_mut_slice::<T>().ok_or(Error::DTypeMismatch {
                op: "sort_scatter",
                expected: dtype,
                got: g.dtype(),
            })?;
            scatter_lines(out, &ix, &gv, p);
            Ok(())
        })
    }
}

/// The family's total order on (value, position) pairs: by value (descending or not,
/// NaN as [`SortKey`] places it), then by position, so equal values keep their order.
fn pair_order<T: SortKey>(descending: bool) -> impl Fn(&(T, usize), &(T, usize)) -> Ordering {
    move |a, b| {
        let by_value = if descending {
            T::order(b.0, a.0)
        } else {
            T::order(a.0, b.0)
        };
        by_value.then(a.1.cmp(&b.1))
    }
}

/// Sorts one line of (value, position) pairs and keeps its first `k`.
fn sort_line<T: SortKey>(line: &mut Vec<(T, usize)>, k: usize, descending: bool) {
    let order = pair_order::<T>(descending);
    if k > 0 && k < line.len() {
        line.select_nth_unstable_by(k - 1, &order);
    }
    line.truncate(k);
    line.sort_unstable_by(order);
}

/// The first `k` of a line read by `at(j)` for `j < len`, in order, kept in a sorted
/// buffer while streaming: most elements cost one comparison with the k-th best so
/// far, and nothing the size of the line is allocated. For a small `k`.
fn top_k_streaming<T: SortKey>(
    len: usize,
    at: impl Fn(usize) -> T,
    k: usize,
    descending: bool,
) -> Vec<(T, usize)> {
    let order = pair_order::<T>(descending);
    let mut best: Vec<(T, usize)> = Vec::with_capacity(k + 1);
    for j in 0..len {
        let e = (at(j), j);
        if best.len() == k && order(&e, &best[k - 1]) != Ordering::Less {
            continue;
        }
        let to = best.partition_point(|b| order(b, &e) == Ordering::Less);
        best.insert(to, e);
        best.truncate(k);
    }
    best
}

/// Whether a topk of `k` out of `len` streams ([`top_k_streaming`]) rather than
/// selecting: when k is small against the line, so that insertions stay rare.
fn streams(k: usize, len: usize) -> bool {
    k > 0 && k <= 64 && k * 8 <= len
}

/// Line `i` of the block `src` (`len * inner` elements), sorted and cut to `k`.
fn sorted_line<T: SortKey>(src: &[T], i: usize, p: &SortParams) -> Vec<(T, usize)> {
    if streams(p.k, p.len) {
        return top_k_streaming(p.len, |j| src[j * p.inner + i], p.k, p.descending);
    }
    let mut line: Vec<(T, usize)> = (0..p.len).map(|j| (src[j * p.inner + i], j)).collect();
    sort_line(&mut line, p.k, p.descending);
    line
}

/// [`SortOps::sort`] of one dtype over the contiguous input `x`.
fn sort_lines<T: SortKey>(x: &[T], p: &SortParams) -> Result<(Vec<T>, Vec<i64>)> {
    let n = p.out_numel();
    let mut vals = alloc::filled(n, T::default())?;
    let mut idx = alloc::filled(n, 0i64)?;
    if n == 0 {
        return Ok((vals, idx));
    }
    let (block, out_block) = (p.len * p.inner, p.k * p.inner);
    if p.inner == 1 {
        // Lines are contiguous in the input and in both outputs.
        vals.par_chunks_mut(p.k)
            .zip(idx.par_chunks_mut(p.k))
            .enumerate()
            .for_each(|(o, (vs, is))| {
                let line = sorted_line(&x[o * block..(o + 1) * block], 0, p);
                for (j, (v, at)) in line.into_iter().enumerate() {
                    (vs[j], is[j]) = (v, at as i64);
                }
            });
        return Ok((vals, idx));
    }
    // Strided lines: sorted in parallel, then written out.
    let lines: Vec<Vec<(T, usize)>> = (0..p.lines())
        .into_par_iter()
        .map(|l| {
            let (o, i) = (l / p.inner, l % p.inner);
            sorted_line(&x[o * block..(o + 1) * block], i, p)
        })
        .collect();
    for (l, line) in lines.into_iter().enumerate() {
        let (o, i) = (l / p.inner, l % p.inner);
        for (j, (v, at)) in line.into_iter().enumerate() {
            let to = o * out_block + j * p.inner + i;
            (vals[to], idx[to]) = (v, at as i64);
        }
    }
    Ok((vals, idx))
}

/// [`SortOps::sort_scatter`] of one dtype: `out` is (outer, len, inner), `ix` and `g`
/// (outer, k, inner), all contiguous.
fn scatter_lines<T: Copy + Send + Sync>(out: &mut [T], ix: &[i64], g: &[T], p: &SortParams) {
    let (block, in_block) = (p.len * p.inner, p.k * p.inner);
    if block == 0 || in_block == 0 {
        return;
    }
    out.par_chunks_mut(block).enumerate().for_each(|(o, dst)| {
        let (ix, g) = (&ix[o * in_block..], &g[o * in_block..]);
        for n in 0..in_block {
            if let Ok(j) = usize::try_from(ix[n]) {
                if j < p.len {
                    dst[j * p.inner + n % p.inner] = g[n];
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streaming topk keeps exactly the selecting one's first k, ties (by
    /// position), NaN and infinities included, both directions.
    #[test]
    fn streaming_topk_agrees_with_selection() {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0];
        let mut s = 12345u64;
        let line: Vec<f32> = (0..257)
            .map(|j| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                match j % 23 {
                    0..=4 => specials[j % 23],
                    _ => ((s >> 33) % 9) as f32 - 4.0,
                }
            })
            .collect();
        for k in [1, 2, 7, 32] {
            for descending in [false, true] {
                let streamed = top_k_streaming(line.len(), |j| line[j], k, descending);
                let mut selected: Vec<(f32, usize)> = line.iter().copied().zip(0..).collect();
                sort_line(&mut selected, k, descending);
                let bits = |v: &[(f32, usize)]| -> Vec<(u32, usize)> {
                    v.iter().map(|&(x, j)| (x.to_bits(), j)).collect()
                };
                assert_eq!(
                    bits(&streamed),
                    bits(&selected),
                    "k {k}, descending {descending}"
                );
            }
        }
    }
}
