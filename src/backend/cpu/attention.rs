//! Fused scaled-dot-product attention on the CPU (the reference for
//! `kernels/attention.cu`).
//!
//! q, k and v are read as contiguous `(N·H, rows, cols)` slices of the compute type
//! (f16/bf16 widen to f32); the mask is read through its broadcast layout, so a
//! `(L, S)` mask shared by every head is never expanded. Each `(batch, head)` runs on
//! its own task, one query row at a time: the row's `S` scores are the only ones in
//! memory. Each output has one owner and is summed in a fixed order, so the results
//! do not depend on the thread count.

use super::{AttentionLayouts, AttentionOps, AttentionParams};
use crate::backend::cpu::alloc;
use crate::backend::cpu::dtype::{compute_dtype, contiguous_as};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::CpuStorage;
use crate::shape::Layout;
use crate::{DType, Result};
use rayon::prelude::*;
use std::borrow::Cow;

/// The mask as the kernels read it.
enum Mask<'a, T: Clone> {
    /// No mask.
    None,
    /// U8: 0 forbids the pair. The whole storage, read through `layout`.
    Bool(&'a [u8], &'a Layout),
    /// Added to the scores. The whole storage in the compute type, read through `layout`.
    Add(Cow<'a, [T]>, &'a Layout),
}

/// The operands of one problem in the compute type `T`.
struct Problem<'a, T: Clone> {
    q: Cow<'a, [T]>,
    k: Cow<'a, [T]>,
    v: Cow<'a, [T]>,
    mask: Mask<'a, T>,
    p: AttentionParams,
}

impl<'a, T: Float> Problem<'a, T> {
    fn new(
        q: &'a CpuStorage,
        k: &'a CpuStorage,
        v: &'a CpuStorage,
        mask: Option<&'a CpuStorage>,
        l: &AttentionLayouts<'a>,
        p: &AttentionParams,
    ) -> Result<Self> {
        let mask = match (mask, l.mask) {
            (Some(CpuStorage::U8(m)), Some(layout)) => Mask::Bool(m, layout),
            (Some(m), Some(layout)) => Mask::Add(whole::<T>(m)?, layout),
            _ => Mask::None,
        };
        Ok(Problem {
            q: contiguous_as::<T>(q, l.q)?,
            k: contiguous_as::<T>(k, l.k)?,
            v: contiguous_as::<T>(v, l.v)?,
            mask,
            p: *p,
        })
    }

    /// The masked, scaled scores of query `i` of problem `bh` against every key.
    fn scores(&self, bh: usize, i: usize, out: &mut [T]) {
        let p = &self.p;
        let (n, h) = (bh / p.h, bh % p.h);
        let q = &self.q[(bh * p.l + i) * p.e..][..p.e];
        let scale = T::from_f64(p.scale);
        let neg_inf = T::from_f64(f64::NEG_INFINITY);
        let mask_at = |layout: &Layout, j: usize| {
            let st = &layout.strides;
            layout.offset + n * st[0] + h * st[1] + i * st[2] + j * st[3]
        };
        for (j, s) in out.iter_mut().enumerate() {
            *s = if p.causal && j > i {
                neg_inf
            } else {
                let k = &self.k[(bh * p.s + j) * p.e..][..p.e];
                let dot = dot(q, k) * scale;
                match &self.mask {
                    Mask::None => dot,
                    Mask::Bool(m, layout) if m[mask_at(layout, j)] == 0 => neg_inf,
                    Mask::Bool(..) => dot,
                    Mask::Add(m, layout) => dot + m[mask_at(layout, j)],
                }
            };
        }
    }

    /// Output rows `(L, EV)` and logsumexps `(L)` of problem `bh`.
    fn forward(&self, bh: usize, out: &mut [T], lse: &mut [T]) {
        let p = &self.p;
        let mut s = vec![T::default(); p.s];
        for i in 0..p.l {
            self.scores(bh, i, &mut s);
            let max = s.iter().fold(
                T::from_f64(f64::NEG_INFINITY),
                |m, &x| if x > m { x } else { m },
            );
            let row = &mut out[i * p.ev..][..p.ev];
            if max == T::from_f64(f64::NEG_INFINITY) {
                // Attends nowhere: 0, as PyTorch 2.15.
                row.fill(T::default());
                lse[i] = max;
                continue;
            }
            let mut sum = T::default();
            row.fill(T::default());
            for (j, &x) in s.iter().enumerate() {
                let e = (x - max).exp();
                sum = sum + e;
                axpy(row, e, &self.v[(bh * p.s + j) * p.ev..][..p.ev]);
            }
            let inv = T::from_f64(1.0) / sum;
            row.iter_mut().for_each(|o| *o = *o * inv);
            lse[i] = max + sum.ln();
        }
    }

    /// `(dq, dk, dv)` of problem `bh` (see `AttentionOps::attention_backward`).
    fn backward(
        &self,
        bh: usize,
        saved: (&[T], &[T], &[T]),
        grads: (&mut [T], &mut [T], &mut [T]),
    ) {
        let p = &self.p;
        let (out, lse, dout) = saved;
        let (dq, dk, dv) = grads;
        let mut s = vec![T::default(); p.s];
        for i in 0..p.l {
            if lse[i] == T::from_f64(f64::NEG_INFINITY) {
                continue; // attends nowhere: no gradient
            }
            self.scores(bh, i, &mut s);
            let g = &dout[(bh * p.l + i) * p.ev..][..p.ev];
            let delta = dot(g, &out[(bh * p.l + i) * p.ev..][..p.ev]);
            let q = &self.q[(bh * p.l + i) * p.e..][..p.e];
            let dq_row = &mut dq[i * p.e..][..p.e];
            for (j, &x) in s.iter().enumerate() {
                let pr = (x - lse[i]).exp();
                let v = &self.v[(bh * p.s + j) * p.ev..][..p.ev];
                let ds = pr * (dot(g, v) - delta);
                axpy(&mut dv[j * p.ev..][..p.ev], pr, g);
                axpy(dq_row, ds, &self.k[(bh * p.s + j) * p.e..][..p.e]);
                axpy(&mut dk[j * p.e..][..p.e], ds, q);
            }
        }
        let scale = T::from_f64(p.scale);
        dq.iter_mut()
            .chain(dk.iter_mut())
            .for_each(|x| *x = *x * scale);
    }
}

fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    a.iter()
        .zip(b)
        .fold(T::default(), |acc, (&x, &y)| acc + x * y)
}

/// `y += a·x`.
fn axpy<T: Float>(y: &mut [T], a: T, x: &[T]) {
    y.iter_mut().zip(x).for_each(|(y, &x)| *y = *y + a * x);
}

/// Every element of a (contiguous) storage in the compute type `T`.
fn whole<T: Float>(s: &CpuStorage) -> Result<Cow<'_, [T]>> {
    contiguous_as::<T>(s, &Layout::contiguous(&[s.len()]))
}

/// Wraps a result of the compute type `T`, converting a tensor result to `dtype`.
fn wrap<T: Float>(v: Vec<T>, dtype: DType) -> Result<CpuStorage> {
    T::wrap(v).convert(dtype)
}

impl AttentionOps for CpuStorage {
    /// The CPU takes any head dim.
    fn fused_max_head_dim(&self) -> Option<usize> {
        None
    }

    fn attention_forward(
        &self,
        k: &CpuStorage,
        v: &CpuStorage,
        mask: Option<&CpuStorage>,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(CpuStorage, CpuStorage)> {
        fn run<T: Float>(
            q: &CpuStorage,
            k: &CpuStorage,
            v: &CpuStorage,
            mask: Option<&CpuStorage>,
            l: &AttentionLayouts,
            p: &AttentionParams,
        ) -> Result<(CpuStorage, CpuStorage)> {
            let prob = Problem::<T>::new(q, k, v, mask, l, p)?;
            let bh = p.n * p.h;
            let mut out = alloc::filled(bh * p.l * p.ev, T::default())?;
            let mut lse = alloc::filled(bh * p.l, T::default())?;
            if p.l > 0 {
                out.par_chunks_mut((p.l * p.ev).max(1))
                    .zip(lse.par_chunks_mut(p.l))
                    .enumerate()
                    .for_each(|(b, (o, l))| prob.forward(b, o, l));
            }
            Ok((wrap(out, q.dtype())?, T::wrap(lse)))
        }
        match compute_dtype("scaled_dot_product_attention", self.dtype())? {
            DType::F64 => run::<f64>(self, k, v, mask, layouts, p),
            _ => run::<f32>(self, k, v, mask, layouts, p),
        }
    }

    fn attention_backward(
        &self,
        k: &CpuStorage,
        v: &CpuStorage,
        mask: Option<&CpuStorage>,
        out: &CpuStorage,
        lse: &CpuStorage,
        dout: &CpuStorage,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
        #[allow(clippy::too_many_arguments)] // the trait method's operands, unwrapped
        fn run<T: Float>(
            q: &CpuStorage,
            k: &CpuStorage,
            v: &CpuStorage,
            mask: Option<&CpuStorage>,
            saved: (&CpuStorage, &CpuStorage, &CpuStorage),
            l: &AttentionLayouts,
            p: &AttentionParams,
        ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
            let prob = Problem::<T>::new(q, k, v, mask, l, p)?;
            let (out, lse, dout) = (whole(saved.0)?, whole(saved.1)?, whole(saved.2)?);
            let bh = p.n * p.h;
            let mut dq = alloc::filled(bh * p.l * p.e, T::default())?;
            let mut dk = alloc::filled(bh * p.s * p.e, T::default())?;
            let mut dv = alloc::filled(bh * p.s * p.ev, T::default())?;
            if p.l > 0 && p.s > 0 && p.e > 0 {
                dq.par_chunks_mut(p.l * p.e)
                    .zip(dk.par_chunks_mut(p.s * p.e))
                    .zip(dv.par_chunks_mut((p.s * p.ev).max(1)))
                    .enumerate()
                    .for_each(|(b, ((dq, dk), dv))| {
                        let lse = &lse[b * p.l..][..p.l];
                        prob.backward(b, (&out, lse, &dout), (dq, dk, dv))
                    });
            }
            let dtype = q.dtype();
            Ok((wrap(dq, dtype)?, wrap(dk, dtype)?, wrap(dv, dtype)?))
        }
        match compute_dtype("scaled_dot_product_attention", self.dtype())? {
            DType::F64 => run::<f64>(self, k, v, mask, (out, lse, dout), layouts, p),
            _ => run::<f32>(self, k, v, mask, (out, lse, dout), layouts, p),
        }
    }
}
