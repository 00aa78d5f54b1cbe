//! The row work of one attention block, vectorized: each kernel is a
//! [`pulp::WithSimd`] run through [`vectorized`], so its loops (and the inlined f32
//! `exp` of `cpu/math.rs`) compile for the CPU's widest instruction set; sums are the
//! fixed-order lane reductions of `cpu/lanes.rs`.

use super::AttnFloat;
use crate::backend::cpu::lanes::{dot, map_sum, max};
use crate::backend::cpu::vectorized;

/// `x *= a`.
#[inline(always)]
fn scale<T: AttnFloat>(x: &mut [T], a: T) {
    x.iter_mut().for_each(|v| *v = *v * a);
}

/// The online-softmax update of one forward block, per row: the new running max
/// `m`, the scores turned into `exp(s - m)`, the running sum `l` and the output
/// accumulated so far (`out`, `ev` columns per row) rescaled by `exp(m_old - m)`.
pub(super) struct SoftmaxStep<'a, T> {
    /// The block's scores, `m.len()` rows of `cols` at row stride `bc`.
    pub s: &'a mut [T],
    pub bc: usize,
    pub cols: usize,
    pub m: &'a mut [T],
    pub l: &'a mut [T],
    pub out: &'a mut [T],
    pub ev: usize,
}

impl<T: AttnFloat> pulp::WithSimd for SoftmaxStep<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let SoftmaxStep {
            s,
            bc,
            cols,
            m,
            l,
            out,
            ev,
        } = self;
        let (one, neg_inf) = (T::from_f64(1.0), T::from_f64(f64::NEG_INFINITY));
        for (r, (m, l)) in m.iter_mut().zip(l.iter_mut()).enumerate() {
            let row = &mut s[r * bc..][..cols];
            let new = max(row);
            let new = if new > *m { new } else { *m };
            // A row that may see no key yet keeps max -inf: shift by 0, so its
            // weights are exp(-inf) = 0 rather than NaN.
            let shift = if new == neg_inf { T::default() } else { new };
            let alpha = (*m - shift).exp();
            *l = *l * alpha + map_sum(row, |x| (x - shift).exp());
            *m = new;
            if alpha != one {
                scale(&mut out[r * ev..][..ev], alpha);
            }
        }
    }
}

/// Runs [`SoftmaxStep`] vectorized.
pub(super) fn softmax_step<T: AttnFloat>(step: SoftmaxStep<'_, T>) {
    vectorized(step)
}

/// The end of the forward pass for a query tile: each output row divided by its sum
/// `l`, and the row's logsumexp `m + ln l` — or, for a row that sees no key (`l` is
/// 0), an output of 0 and a logsumexp of `-inf` (PyTorch's behaviour).
pub(super) struct Finish<'a, T> {
    pub m: &'a [T],
    pub l: &'a [T],
    pub out: &'a mut [T],
    pub ev: usize,
    pub lse: &'a mut [T],
}

impl<T: AttnFloat> pulp::WithSimd for Finish<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Finish { m, l, out, ev, lse } = self;
        for (r, lse) in lse.iter_mut().enumerate() {
            let row = &mut out[r * ev..][..ev];
            if l[r] == T::default() {
                row.fill(T::default());
                *lse = T::from_f64(f64::NEG_INFINITY);
            } else {
                scale(row, T::from_f64(1.0) / l[r]);
                *lse = m[r] + l[r].ln();
            }
        }
    }
}

/// Runs [`Finish`] vectorized.
pub(super) fn finish<T: AttnFloat>(f: Finish<'_, T>) {
    vectorized(f)
}

/// The weights and score gradients of one backward block, per row `r`:
/// `P = exp(s - lse[r])` into `s` (0 for a row whose `lse` is `-inf`: it attends
/// nowhere) and `dS = P ∘ (dp - delta[r])` into `dp`.
pub(super) struct BlockGrads<'a, T> {
    pub s: &'a mut [T],
    pub dp: &'a mut [T],
    pub bc: usize,
    pub cols: usize,
    pub lse: &'a [T],
    pub delta: &'a [T],
}

impl<T: AttnFloat> pulp::WithSimd for BlockGrads<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let BlockGrads {
            s,
            dp,
            bc,
            cols,
            lse,
            delta,
        } = self;
        let neg_inf = T::from_f64(f64::NEG_INFINITY);
        for (r, (&lse, &d)) in lse.iter().zip(delta).enumerate() {
            let (p, g) = (&mut s[r * bc..][..cols], &mut dp[r * bc..][..cols]);
            if lse == neg_inf {
                p.fill(T::default());
                g.fill(T::default());
                continue;
            }
            for (p, g) in p.iter_mut().zip(g.iter_mut()) {
                *p = (*p - lse).exp();
                *g = *p * (*g - d);
            }
        }
    }
}

/// Runs [`BlockGrads`] vectorized.
pub(super) fn block_grads<T: AttnFloat>(b: BlockGrads<'_, T>) {
    vectorized(b)
}

/// `D[r] = Σ dout[r] ∘ out[r]` over rows of `ev` elements, into `delta`.
pub(super) struct Deltas<'a, T> {
    pub out: &'a [T],
    pub dout: &'a [T],
    pub ev: usize,
    pub delta: &'a mut [T],
}

impl<T: AttnFloat> pulp::WithSimd for Deltas<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Deltas {
            out,
            dout,
            ev,
            delta,
        } = self;
        for (r, d) in delta.iter_mut().enumerate() {
            *d = dot(&out[r * ev..][..ev], &dout[r * ev..][..ev]);
        }
    }
}

/// Runs [`Deltas`] vectorized.
pub(super) fn deltas<T: AttnFloat>(d: Deltas<'_, T>) {
    vectorized(d)
}

/// `x *= a` over a whole buffer, vectorized.
pub(super) fn scale_all<T: AttnFloat>(x: &mut [T], a: T) {
    struct Scale<'a, T>(&'a mut [T], T);
    impl<T: AttnFloat> pulp::WithSimd for Scale<'_, T> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            scale(self.0, self.1)
        }
    }
    vectorized(Scale(x, a))
}
