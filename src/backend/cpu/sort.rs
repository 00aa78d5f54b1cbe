//! Sorting on the CPU: each line is copied out as (value, position) pairs and sorted
//! by the family's total order (values with NaN greatest, then position), so an
//! unstable sort gives the stable sort's result and the CUDA network's, element for
//! element. A `topk` (k < len) selects its first k in linear time before sorting
//! them. Parallel over lines.

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

/// Sorts one line of (value, position) pairs and keeps its first `k`.
fn sort_line<T: SortKey>(line: &mut Vec<(T, usize)>, k: usize, descending: bool) {
    let order = |a: &(T, usize), b: &(T, usize)| {
        let by_value = if descending {
            T::order(b.0, a.0)
        } else {
            T::order(a.0, b.0)
        };
        by_value.then(a.1.cmp(&b.1))
    };
    if k > 0 && k < line.len() {
        line.select_nth_unstable_by(k - 1, order);
    }
    line.truncate(k);
    line.sort_unstable_by(order);
}

/// Line `i` of the block `src` (`len * inner` elements), sorted and cut to `k`.
fn sorted_line<T: SortKey>(src: &[T], i: usize, p: &SortParams) -> Vec<(T, usize)> {
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
