//! The fused recurrent step on the CPU, the reference for `kernels/rnn.cu`: the same
//! formulas in the same order (see [`crate::backend::rnn`]), one pass over each row,
//! blocks of rows in parallel when the step is large enough to pay for threads.

use super::{CellGrads, CellLayouts, CellOp, CellParams, RnnOps};
use crate::backend::cpu::dtype::{compute_dtype, contiguous_as, same_dtype};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{alloc, vectorized, CpuStorage, PARALLEL_THRESHOLD};
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::Result;
use rayon::prelude::*;

impl RnnOps for CpuStorage {
    fn rnn_cell_forward(
        &self,
        gh: &Self,
        s: &Self,
        l: &CellLayouts,
        p: &CellParams,
    ) -> Result<(Self, Self)> {
        for other in [gh, s] {
            same_dtype("rnn_cell", self.dtype(), other.dtype())?;
        }
        match compute_dtype("rnn_cell", self.dtype())? {
            crate::DType::F64 => forward_as::<f64>(self, gh, s, l, p),
            _ => forward_as::<f32>(self, gh, s, l, p),
        }
    }

    fn rnn_cell_backward(
        &self,
        s: &Self,
        dout: &Self,
        sl: &Layout,
        dl: &Layout,
        p: &CellParams,
    ) -> Result<CellGrads<Self>> {
        for other in [s, dout] {
            same_dtype("rnn_cell_backward", self.dtype(), other.dtype())?;
        }
        match compute_dtype("rnn_cell_backward", self.dtype())? {
            crate::DType::F64 => backward_as::<f64>(self, s, dout, sl, dl, p),
            _ => backward_as::<f32>(self, s, dout, sl, dl, p),
        }
    }
}

/// Rows per parallel task: enough values per task to be worth a thread.
fn rows_per_task(p: &CellParams) -> usize {
    (PARALLEL_THRESHOLD / (p.op.gates() * p.hidden).max(1)).max(1)
}

/// Runs `task` on every item, in parallel when there is more than one.
fn run_tasks<I: Send>(tasks: Vec<I>, task: impl Fn(I) + Sync + Send) {
    if tasks.len() > 1 {
        tasks.into_par_iter().for_each(task);
    } else {
        tasks.into_iter().for_each(task);
    }
}

/// A vector of `T` as a storage of `dtype` (f16/bf16 narrow from f32).
fn narrowed<T: WithDType>(v: Vec<T>, dtype: crate::DType) -> Result<CpuStorage> {
    CpuStorage::from_vec(v).convert(dtype)
}

/// The forward in the compute type `T`: the output and the saved values.
fn forward_as<T: Float + WithDType>(
    gi: &CpuStorage,
    gh: &CpuStorage,
    s: &CpuStorage,
    l: &CellLayouts,
    p: &CellParams,
) -> Result<(CpuStorage, CpuStorage)> {
    let (a, b) = (contiguous_as::<T>(gi, l.gi)?, contiguous_as::<T>(gh, l.gh)?);
    // The RNN has no state (its stand-in is not read).
    let s = if p.op.has_state() {
        contiguous_as::<T>(s, l.s)?
    } else {
        std::borrow::Cow::Borrowed(&[][..])
    };
    let h = p.hidden;
    let (ow, sw) = (p.op.out_width() * h, p.op.saved() * h);
    let mut out = alloc::filled(p.rows * ow, T::default())?;
    let mut saved = alloc::filled(p.rows * sw, T::default())?;
    if p.rows * h > 0 {
        let rpt = rows_per_task(p);
        let tasks: Vec<_> = out
            .chunks_mut(rpt * ow)
            .zip(saved.chunks_mut(rpt * sw))
            .enumerate()
            .collect();
        run_tasks(tasks, |(t, (out, saved))| {
            let (a, b, s) = (&a[..], &b[..], &s[..]);
            vectorized(ForwardRows {
                p,
                a,
                b,
                s,
                first: t * rpt,
                out,
                saved,
            })
        });
    }
    let dtype = gi.dtype();
    Ok((narrowed(out, dtype)?, narrowed(saved, dtype)?))
}

/// The rows of one forward task, from row `first` on, run inside the SIMD dispatch:
/// the cells' sigmoid and tanh vectorize there, and `math`'s fused polynomials are
/// single instructions (a libm call each outside it).
struct ForwardRows<'a, T> {
    p: &'a CellParams,
    a: &'a [T],
    b: &'a [T],
    s: &'a [T],
    first: usize,
    out: &'a mut [T],
    saved: &'a mut [T],
}

impl<T: Float> pulp::WithSimd for ForwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            p,
            a,
            b,
            s,
            first,
            out,
            saved,
        } = self;
        let (h, g) = (p.hidden, p.op.gates());
        let (ow, sw) = (p.op.out_width() * h, p.op.saved() * h);
        for r in 0..out.len() / ow {
            let n = first + r;
            let (a, b) = (&a[n * g * h..][..g * h], &b[n * g * h..][..g * h]);
            let s = if p.op.has_state() {
                &s[n * h..][..h]
            } else {
                &[][..]
            };
            let (o, sv) = (&mut out[r * ow..][..ow], &mut saved[r * sw..][..sw]);
            match p.op {
                CellOp::Lstm => lstm_forward(a, b, s, o, sv),
                CellOp::Gru => gru_forward(a, b, s, o, sv),
                CellOp::RnnTanh => {
                    for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                        *o = (x + y).tanh();
                    }
                    sv.copy_from_slice(o);
                }
                CellOp::RnnRelu => {
                    for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                        *o = relu(x + y);
                    }
                    sv.copy_from_slice(o);
                }
            }
        }
    }
}

fn relu<T: Float>(x: T) -> T {
    if x > T::default() {
        x
    } else {
        T::default()
    }
}

/// Splits `v` into `K` consecutive blocks of `h` values.
fn blocks<T, const K: usize>(v: &[T], h: usize) -> [&[T]; K] {
    std::array::from_fn(|k| &v[k * h..(k + 1) * h])
}

/// Splits `v` into `K` consecutive mutable blocks of `h` values.
fn blocks_mut<T, const K: usize>(v: &mut [T], h: usize) -> [&mut [T]; K] {
    let mut rest = v;
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(h);
        rest = tail;
        head
    })
}

/// One LSTM row: `o = [h | c']`, `sv = [i | f | g | o | tanh c']`.
#[inline(always)]
fn lstm_forward<T: Float>(a: &[T], b: &[T], c: &[T], o: &mut [T], sv: &mut [T]) {
    let h = c.len();
    let [ai, af, ag, ao] = blocks(a, h);
    let [bi, bf, bg, bo] = blocks(b, h);
    let [ho, co] = blocks_mut(o, h);
    let [si, sf, sg, so, st] = blocks_mut(sv, h);
    for j in 0..h {
        let (i, f) = ((ai[j] + bi[j]).sigmoid(), (af[j] + bf[j]).sigmoid());
        let (g, og) = ((ag[j] + bg[j]).tanh(), (ao[j] + bo[j]).sigmoid());
        let cn = f * c[j] + i * g;
        let tc = cn.tanh();
        (ho[j], co[j]) = (og * tc, cn);
        (si[j], sf[j], sg[j], so[j], st[j]) = (i, f, g, og, tc);
    }
}

/// One GRU row: `o = h'`, `sv = [r | z | n | gh_n]`.
#[inline(always)]
fn gru_forward<T: Float>(a: &[T], b: &[T], hp: &[T], o: &mut [T], sv: &mut [T]) {
    let h = hp.len();
    let [ar, az, an] = blocks(a, h);
    let [br, bz, bn] = blocks(b, h);
    let [sr, sz, sn, shn] = blocks_mut(sv, h);
    for j in 0..h {
        let (r, z) = ((ar[j] + br[j]).sigmoid(), (az[j] + bz[j]).sigmoid());
        let n = (an[j] + r * bn[j]).tanh();
        o[j] = n + z * (hp[j] - n);
        (sr[j], sz[j], sn[j], shn[j]) = (r, z, n, bn[j]);
    }
}

/// The backward in the compute type `T`: the gradients of `gi`, `gh` (GRU) and `s`.
fn backward_as<T: Float + WithDType>(
    saved: &CpuStorage,
    s: &CpuStorage,
    dout: &CpuStorage,
    sl: &Layout,
    dl: &Layout,
    p: &CellParams,
) -> Result<CellGrads<CpuStorage>> {
    let (h, g) = (p.hidden, p.op.gates());
    let sw = p.op.saved() * h;
    let sv = contiguous_as::<T>(saved, &Layout::contiguous(&[p.rows, sw]))?;
    let d = contiguous_as::<T>(dout, dl)?;
    let s = if p.op.has_state() {
        contiguous_as::<T>(s, sl)?
    } else {
        std::borrow::Cow::Borrowed(&[][..])
    };
    let mut dgi = alloc::filled(p.rows * g * h, T::default())?;
    let mut ds = alloc::filled(if p.op.has_state() { p.rows * h } else { 0 }, T::default())?;
    let mut dgh = (p.op == CellOp::Gru)
        .then(|| alloc::filled(p.rows * g * h, T::default()))
        .transpose()?;
    if p.rows * h > 0 {
        let rpt = rows_per_task(p);
        let mut ds_blocks = ds.chunks_mut(rpt * h);
        let mut dgh_blocks = dgh.as_deref_mut().map(|v| v.chunks_mut(rpt * g * h));
        let tasks: Vec<_> = dgi
            .chunks_mut(rpt * g * h)
            .enumerate()
            .map(|(t, dgi)| {
                let ds = ds_blocks.next().unwrap_or_default();
                let dgh = dgh_blocks.as_mut().and_then(Iterator::next);
                (t, dgi, ds, dgh)
            })
            .collect();
        run_tasks(tasks, |(t, dgi, ds, dgh)| {
            let (sv, s, d) = (&sv[..], &s[..], &d[..]);
            vectorized(BackwardRows {
                p,
                sv,
                s,
                d,
                first: t * rpt,
                dgi,
                ds,
                dgh,
            })
        });
    }
    let dtype = saved.dtype();
    Ok((
        narrowed(dgi, dtype)?,
        dgh.map(|v| narrowed(v, dtype)).transpose()?,
        p.op.has_state().then(|| narrowed(ds, dtype)).transpose()?,
    ))
}

/// The rows of one backward task, from row `first` on, inside the SIMD dispatch (see
/// [`ForwardRows`]).
struct BackwardRows<'a, T> {
    p: &'a CellParams,
    sv: &'a [T],
    s: &'a [T],
    d: &'a [T],
    first: usize,
    dgi: &'a mut [T],
    ds: &'a mut [T],
    dgh: Option<&'a mut [T]>,
}

impl<T: Float> pulp::WithSimd for BackwardRows<'_, T> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            p,
            sv,
            s,
            d,
            first,
            dgi,
            ds,
            mut dgh,
        } = self;
        let (h, g) = (p.hidden, p.op.gates());
        let (ow, sw) = (p.op.out_width() * h, p.op.saved() * h);
        for r in 0..dgi.len() / (g * h) {
            let n = first + r;
            let (sv, dy) = (&sv[n * sw..][..sw], &d[n * ow..][..ow]);
            let dgi = &mut dgi[r * g * h..][..g * h];
            match p.op {
                CellOp::Lstm => lstm_backward(sv, &s[n * h..][..h], dy, dgi, &mut ds[r * h..][..h]),
                CellOp::Gru => {
                    let dgh = dgh.as_deref_mut().map(|v| &mut v[r * g * h..][..g * h]);
                    let dgh = dgh.expect("the GRU has a hidden-gate gradient");
                    let ds = &mut ds[r * h..][..h];
                    gru_backward(sv, &s[n * h..][..h], dy, dgi, dgh, ds)
                }
                CellOp::RnnTanh => {
                    let one = T::from_f64(1.0);
                    for ((dx, &y), &dy) in dgi.iter_mut().zip(sv).zip(dy) {
                        *dx = dy * (one - y * y);
                    }
                }
                CellOp::RnnRelu => {
                    for ((dx, &y), &dy) in dgi.iter_mut().zip(sv).zip(dy) {
                        *dx = if y > T::default() { dy } else { T::default() };
                    }
                }
            }
        }
    }
}

/// One LSTM row from the saved `[i | f | g | o | tanh c']`, the previous cell `c` and
/// `dy = [dh | dc']`.
#[inline(always)]
fn lstm_backward<T: Float>(sv: &[T], c: &[T], dy: &[T], dgi: &mut [T], ds: &mut [T]) {
    let h = c.len();
    let one = T::from_f64(1.0);
    let [i, f, g, o, tc] = blocks(sv, h);
    let [dh, dcn] = blocks(dy, h);
    let [di, df, dg, d_o] = blocks_mut(dgi, h);
    for j in 0..h {
        let dc = dcn[j] + dh[j] * o[j] * (one - tc[j] * tc[j]);
        di[j] = dc * g[j] * i[j] * (one - i[j]);
        df[j] = dc * c[j] * f[j] * (one - f[j]);
        dg[j] = dc * i[j] * (one - g[j] * g[j]);
        d_o[j] = dh[j] * tc[j] * o[j] * (one - o[j]);
        ds[j] = dc * f[j];
    }
}

/// One GRU row from the saved `[r | z | n | gh_n]`, the previous state `hp` and `dy`.
#[inline(always)]
fn gru_backward<T: Float>(
    sv: &[T],
    hp: &[T],
    dy: &[T],
    dgi: &mut [T],
    dgh: &mut [T],
    ds: &mut [T],
) {
    let h = hp.len();
    let one = T::from_f64(1.0);
    let [r, z, n, hn] = blocks(sv, h);
    let [dir, diz, din] = blocks_mut(dgi, h);
    let [dhr, dhz, dhn] = blocks_mut(dgh, h);
    for j in 0..h {
        let dpn = dy[j] * (one - z[j]) * (one - n[j] * n[j]);
        let dpr = dpn * hn[j] * r[j] * (one - r[j]);
        let dpz = dy[j] * (hp[j] - n[j]) * z[j] * (one - z[j]);
        (dir[j], diz[j], din[j]) = (dpr, dpz, dpn);
        (dhr[j], dhz[j], dhn[j]) = (dpr, dpz, dpn * r[j]);
        ds[j] = dy[j] * z[j];
    }
}
