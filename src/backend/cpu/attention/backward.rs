//! The backward pass (see the module above): `P = exp(s - lse)` recomputed per block,
//! `D = rowsum(dout ∘ out)`, `dS = P ∘ (dout·vᵀ - D)`, then `dV += Pᵀ·dout`,
//! `dK += dSᵀ·q`, `dQ += dS·k` (dK and dQ scaled once at the end).

use super::rows::{block_grads, deltas, scale_all, BlockGrads, Deltas};
use super::{block_mat, split_rows, AttnFloat, Problem};
use crate::backend::cpu::alloc;
use crate::backend::cpu::gemm_util::{gemm, Mat};
use crate::Result;
use rayon::prelude::*;
use std::iter::repeat_n;

/// What the backward blocks read besides q, k and v: per query row its logsumexp and
/// `D`, and the output's gradient (contiguous `(N, H, L, EV)`).
#[derive(Clone, Copy)]
struct Saved<'a, T> {
    lse: &'a [T],
    delta: &'a [T],
    dout: &'a [T],
}

/// The two schedules of the backward pass, which give the same bits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Schedule {
    /// One task per problem computes its dQ, dK and dV in one walk over the blocks:
    /// each block's `P` and `dS` are made once. Used when the problems alone keep
    /// every thread busy.
    PerProblem,
    /// One task per (problem, key tile) for dK and dV, then one per (problem, query
    /// tile) for dQ, which makes `P` and `dS` again: more tasks, for more threads.
    PerTile,
}

impl<T: AttnFloat> Problem<'_, T> {
    /// `(dq, dk, dv)` from the forward's `out` and `lse` and the output's gradient
    /// `dout`, by `schedule` (`None`: picked from the problem and thread counts).
    pub(super) fn backward(
        &self,
        (out, lse, dout): (&[T], &[T], &[T]),
        schedule: Option<Schedule>,
    ) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
        let p = &self.p;
        let bh = p.n * p.h;
        let mut delta = alloc::filled(bh * p.l, T::default())?;
        let row_blocks = || repeat_n(p.l, bh);
        split_rows(&mut delta, 1, row_blocks())
            .into_par_iter()
            .enumerate()
            .for_each(|(b, delta)| {
                let span = b * p.l * p.ev..(b + 1) * p.l * p.ev;
                deltas(Deltas {
                    out: &out[span.clone()],
                    dout: &dout[span],
                    ev: p.ev,
                    delta,
                })
            });
        let saved = Saved {
            lse,
            delta: &delta,
            dout,
        };
        let mut dq = alloc::filled(bh * p.l * p.e, T::default())?;
        let mut dk = alloc::filled(bh * p.s * p.e, T::default())?;
        let mut dv = alloc::filled(bh * p.s * p.ev, T::default())?;
        let schedule = schedule.unwrap_or(if bh >= 4 * rayon::current_num_threads() {
            Schedule::PerProblem
        } else {
            Schedule::PerTile
        });
        match schedule {
            Schedule::PerProblem => {
                let key_rows = || repeat_n(p.s, bh);
                split_rows(&mut dq, p.e, row_blocks())
                    .into_par_iter()
                    .zip(split_rows(&mut dk, p.e, key_rows()))
                    .zip(split_rows(&mut dv, p.ev, key_rows()))
                    .enumerate()
                    .for_each(|(b, ((dq, dk), dv))| self.problem_grads(b, saved, dq, dk, dv));
            }
            Schedule::PerTile => {
                let (nq, nk) = (self.query_tiles(), self.key_tiles());
                let key_rows = || (0..bh).flat_map(|_| (0..nk).map(|kt| self.key_tile_len(kt)));
                split_rows(&mut dk, p.e, key_rows())
                    .into_par_iter()
                    .zip(split_rows(&mut dv, p.ev, key_rows()))
                    .enumerate()
                    .for_each(|(t, (dk, dv))| {
                        self.key_tile_grads(t / nk, t % nk, saved, (dk, dv), None)
                    });
                let query_rows = (0..bh).flat_map(|_| (0..nq).map(|qt| self.query_tile(qt).1));
                split_rows(&mut dq, p.e, query_rows)
                    .into_par_iter()
                    .enumerate()
                    .for_each(|(t, dq)| self.query_tile_grads(t / nq, t % nq, saved, dq));
            }
        }
        let scale = T::from_f64(p.scale);
        for g in [&mut dq, &mut dk] {
            g.par_chunks_mut(1 << 14).for_each(|c| scale_all(c, scale));
        }
        Ok((dq, dk, dv))
    }

    /// Keys in key tile `kt`.
    fn key_tile_len(&self, kt: usize) -> usize {
        self.tiles.bc.min(self.p.s - kt * self.tiles.bc)
    }

    /// Every gradient of problem `bh` (`dq` its `L × E` rows, `dk` and `dv` its `S`
    /// rows), by [`Schedule::PerProblem`].
    fn problem_grads(&self, bh: usize, saved: Saved<T>, dq: &mut [T], dk: &mut [T], dv: &mut [T]) {
        let (e, ev, bc) = (self.p.e, self.p.ev, self.tiles.bc);
        for kt in 0..self.key_tiles() {
            let len = self.key_tile_len(kt);
            let tile_dk = &mut dk[kt * bc * e..][..len * e];
            let tile_dv = &mut dv[kt * bc * ev..][..len * ev];
            self.key_tile_grads(bh, kt, saved, (tile_dk, tile_dv), Some(&mut *dq));
        }
    }

    /// dK and dV of key tile `kt` of problem `bh` (its rows of each), walking the
    /// query tiles that see it; with `dq` (the problem's `L × E` rows), dQ's terms
    /// from this key tile too.
    fn key_tile_grads(
        &self,
        bh: usize,
        kt: usize,
        saved: Saved<T>,
        (dk, dv): (&mut [T], &mut [T]),
        mut dq: Option<&mut [T]>,
    ) {
        let (e, ev, br, bc) = (self.p.e, self.p.ev, self.tiles.br, self.tiles.bc);
        let (n, h) = (bh / self.p.h, bh % self.p.h);
        let mut s = vec![T::default(); br * bc];
        let mut dp = vec![T::default(); br * bc];
        for qt in 0..self.query_tiles() {
            let tile = self.query_tile(qt);
            let Some(keys) = self.key_block(tile, kt) else {
                continue;
            };
            let ((i0, rows), (j0, cols)) = (tile, keys);
            self.block(bh, tile, keys, saved, &mut s, &mut dp);
            let (weights, dscores) = (
                block_mat(&s, rows, cols, bc),
                block_mat(&dp, rows, cols, bc),
            );
            let dout = Mat::rows(&saved.dout[(bh * self.p.l + i0) * ev..], rows, ev);
            gemm(&mut dv[..cols * ev], ev, true, weights.t(), dout, false);
            let q = self.q.rows(n, h, i0, rows);
            gemm(&mut dk[..cols * e], e, true, dscores.t(), q, false);
            if let Some(dq) = dq.as_deref_mut() {
                let k = self.k.rows(n, h, j0, cols);
                gemm(&mut dq[i0 * e..][..rows * e], e, true, dscores, k, false);
            }
        }
    }

    /// dQ of query tile `qt` of problem `bh` (its rows), walking the key tiles it sees.
    fn query_tile_grads(&self, bh: usize, qt: usize, saved: Saved<T>, dq: &mut [T]) {
        let (e, br, bc) = (self.p.e, self.tiles.br, self.tiles.bc);
        let (n, h) = (bh / self.p.h, bh % self.p.h);
        let mut s = vec![T::default(); br * bc];
        let mut dp = vec![T::default(); br * bc];
        let tile = self.query_tile(qt);
        for kt in 0..self.key_tiles() {
            let Some(keys) = self.key_block(tile, kt) else {
                break;
            };
            self.block(bh, tile, keys, saved, &mut s, &mut dp);
            let dscores = block_mat(&dp, tile.1, keys.1, bc);
            gemm(
                dq,
                e,
                true,
                dscores,
                self.k.rows(n, h, keys.0, keys.1),
                false,
            );
        }
    }

    /// The weights `P` (into `s`) and score gradients `dS` (into `dp`) of one block.
    fn block(
        &self,
        bh: usize,
        (i0, rows): (usize, usize),
        (j0, cols): (usize, usize),
        saved: Saved<T>,
        s: &mut [T],
        dp: &mut [T],
    ) {
        let (ev, bc) = (self.p.ev, self.tiles.bc);
        let (n, h) = (bh / self.p.h, bh % self.p.h);
        self.scores(bh, (i0, rows), (j0, cols), s);
        let first = bh * self.p.l + i0;
        let dout = Mat::rows(&saved.dout[first * ev..], rows, ev);
        gemm(dp, bc, false, dout, self.v.rows(n, h, j0, cols).t(), false);
        block_grads(BlockGrads {
            s,
            dp,
            bc,
            cols,
            lse: &saved.lse[first..][..rows],
            delta: &saved.delta[first..][..rows],
        });
    }
}
