//! Reductions over a slice that vectorize: [`LANES`] partial results (one 256-bit
//! register of f32), combined in a fixed order at the end, so a sum gives the same
//! bits on every run and thread count. Call them from inside a [`pulp::WithSimd`]
//! (see `cpu::vectorized`), where they are inlined and compiled for the CPU's widest
//! instruction set.

use super::math::Float;

/// Partial results per reduction.
pub(crate) const LANES: usize = 8;

/// `Σ f(x[i])`.
#[inline(always)]
pub(crate) fn sum_by<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::default(); LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(T::default(), |s, &v| s + f(v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = *a + f(v);
        }
    }
    acc.iter().fold(tail, |s, &a| s + a)
}

/// `Σ a[i]·b[i]` over the shorter length.
#[inline(always)]
pub(crate) fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [T::default(); LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .fold(T::default(), |s, (&x, &y)| s + x * y);
    for (ac, bc) in ac.zip(bc) {
        for ((s, &x), &y) in acc.iter_mut().zip(ac).zip(bc) {
            *s = *s + x * y;
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

/// `x[i] = f(x[i])` for every element, returning the sum of the new values.
#[inline(always)]
pub(crate) fn map_sum<T: Float>(x: &mut [T], f: impl Fn(T) -> T) -> T {
    let mut acc = [T::default(); LANES];
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *v = f(*v);
            *a = *a + *v;
        }
    }
    let tail = chunks
        .into_remainder()
        .iter_mut()
        .fold(T::default(), |s, v| {
            *v = f(*v);
            s + *v
        });
    acc.iter().fold(tail, |s, &a| s + a)
}

/// The largest element (`-inf` for none; NaN elements are passed over).
#[inline(always)]
pub(crate) fn max<T: Float>(x: &[T]) -> T {
    let neg_inf = T::from_f64(f64::NEG_INFINITY);
    let bigger = |m: T, v: T| if v > m { v } else { m };
    let mut acc = [neg_inf; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(neg_inf, |m, &v| bigger(m, v));
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = bigger(*a, v);
        }
    }
    acc.iter().fold(tail, |m, &v| bigger(m, v))
}
