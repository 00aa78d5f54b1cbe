//! The forward pass: one task per (problem, query tile), an online softmax over the
//! key tiles (see the module above).

use super::rows::{finish, softmax_step, Finish, SoftmaxStep};
use super::{block_mat, split_rows, AttnFloat, Problem};
use crate::backend::cpu::alloc;
use crate::backend::cpu::gemm_util::gemm;
use crate::Result;
use rayon::prelude::*;

impl<T: AttnFloat> Problem<'_, T> {
    /// The output `(N, H, L, EV)` and the row logsumexps `(N, H, L)`.
    pub(super) fn forward(&self) -> Result<(Vec<T>, Vec<T>)> {
        let p = &self.p;
        let (bh, nq) = (p.n * p.h, self.query_tiles());
        let mut out = alloc::filled(bh * p.l * p.ev, T::default())?;
        let mut lse = alloc::filled(bh * p.l, T::default())?;
        let tile_rows = (0..bh).flat_map(|_| (0..nq).map(|qt| self.query_tile(qt).1));
        let outs = split_rows(&mut out, p.ev, tile_rows.clone());
        let lses = split_rows(&mut lse, 1, tile_rows);
        outs.into_par_iter()
            .zip(lses)
            .enumerate()
            .for_each(|(t, (o, l))| self.forward_tile(t / nq, t % nq, o, l));
        Ok((out, lse))
    }

    /// Query tile `qt` of problem `bh`: its output rows `out` (zeros on entry) and
    /// their logsumexps `lse`.
    fn forward_tile(&self, bh: usize, qt: usize, out: &mut [T], lse: &mut [T]) {
        let (bc, ev) = (self.tiles.bc, self.p.ev);
        let tile = self.query_tile(qt);
        let rows = tile.1;
        let (n, h) = (bh / self.p.h, bh % self.p.h);
        let mut s = vec![T::default(); rows * bc];
        let mut m = vec![T::from_f64(f64::NEG_INFINITY); rows];
        let mut l = vec![T::default(); rows];
        for kt in 0..self.key_tiles() {
            let Some(keys) = self.key_block(tile, kt) else {
                break;
            };
            self.scores(bh, tile, keys, &mut s);
            softmax_step(SoftmaxStep {
                s: &mut s,
                bc,
                cols: keys.1,
                m: &mut m,
                l: &mut l,
                out,
                ev,
            });
            let weights = block_mat(&s, rows, keys.1, bc);
            gemm(
                out,
                ev,
                true,
                weights,
                self.v.rows(n, h, keys.0, keys.1),
                false,
            );
        }
        finish(Finish {
            m: &m,
            l: &l,
            out,
            ev,
            lse,
        });
    }
}
