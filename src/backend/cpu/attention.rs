//! Fused scaled-dot-product attention on the CPU (the reference for
//! `kernels/attention.cu`), blocked like FlashAttention.
//!
//! Each `(batch·head)` problem is cut into blocks of `br` queries × `bc` keys. A
//! block's scores `q·kᵀ·scale` come from one GEMM of the crate's micro-kernels
//! (`gemm_util`), reading q, k and v through their strides (no copy when they are
//! already the compute type); the row work (masks, max, exp, sums) runs vectorized
//! (`rows.rs`). With `causal`, a block holds only the keys its last query may see, so
//! the upper triangle is skipped at key granularity.
//!
//! * Forward (`forward.rs`): one task per (problem, query tile), walking its key
//!   tiles with an online softmax (running max and sum per row, the output rescaled
//!   when the max grows), as the CUDA kernel does.
//! * Backward (`backward.rs`): `P = exp(s - lse)` is recomputed per block. dK and dV of
//!   a key tile are owned by one task walking the query tiles; dQ of a query tile by
//!   one task walking the key tiles — or, when there are enough problems to fill the
//!   threads, one task per problem does all three in one walk.
//!
//! Every output element has one owner and sums its terms in a fixed order (tiles in
//! ascending order, each block by the same GEMM call), whatever the thread count
//! and whichever backward schedule runs: the results are bit-identical either way.

// This file is declared from backend/attention.rs by path: its parts by path too.
#[path = "attention/backward.rs"]
mod backward;
#[path = "attention/forward.rs"]
mod forward;
#[path = "attention/rows.rs"]
mod rows;

use super::{AttentionLayouts, AttentionOps, AttentionParams};
use crate::backend::cpu::dtype::{compute_dtype, contiguous_as};
use crate::backend::cpu::gemm_util::{gemm_scaled, Float as GemmFloat, Mat};
use crate::backend::cpu::math::Float;
use crate::backend::cpu::CpuStorage;
use crate::shape::Layout;
use crate::{DType, Result};
use std::borrow::Cow;

/// The element types the attention computes in: f32 (also for f16/bf16) and f64.
pub(crate) trait AttnFloat: Float + GemmFloat {}
impl AttnFloat for f32 {}
impl AttnFloat for f64 {}

/// q, k or v in the compute type: the storage's elements (borrowed when they already
/// are `T`, else converted to a contiguous copy) and the 4-D `(N, H, rows, cols)`
/// layout to read them through.
struct Operand<'a, T: Clone> {
    data: Cow<'a, [T]>,
    layout: Layout,
}

impl<'a, T: AttnFloat> Operand<'a, T> {
    fn new(s: &'a CpuStorage, layout: &Layout) -> Result<Self> {
        Ok(match s.as_slice::<T>() {
            Some(all) => Operand {
                data: Cow::Borrowed(all),
                layout: layout.clone(),
            },
            None => Operand {
                data: contiguous_as::<T>(s, layout)?,
                layout: Layout::contiguous(&layout.shape),
            },
        })
    }

    /// Rows `r0 .. r0 + rows` of matrix `(n, h)`, every column.
    fn rows(&self, n: usize, h: usize, r0: usize, rows: usize) -> Mat<'_, T> {
        let (st, cols) = (&self.layout.strides, self.layout.shape[3]);
        let start = self.layout.offset + n * st[0] + h * st[1] + r0 * st[2];
        Mat {
            // An empty matrix may start past the end (an empty view's offsets).
            data: self.data.get(start..).unwrap_or(&[]),
            rows,
            cols,
            rs: st[2],
            cs: st[3],
        }
    }
}

/// The mask as the kernels read it, broadcast to `(N, H, L, S)` by its layout (a
/// `(L, S)` mask shared by every head is never expanded).
enum Mask<'a, T: Clone> {
    /// No mask.
    None,
    /// U8: 0 forbids the pair. The whole storage, read through `layout`.
    Bool(&'a [u8], &'a Layout),
    /// Added to the scores. The whole storage in the compute type, read through `layout`.
    Add(Cow<'a, [T]>, &'a Layout),
}

impl<T: AttnFloat> Mask<'_, T> {
    /// Applies the mask to the scores of query `i` of problem `(n, h)` against keys
    /// `j0 .. j0 + row.len()`.
    fn apply(&self, (n, h): (usize, usize), i: usize, j0: usize, row: &mut [T]) {
        let at = |l: &Layout| {
            let st = &l.strides;
            (
                l.offset + n * st[0] + h * st[1] + i * st[2] + j0 * st[3],
                st[3],
            )
        };
        match self {
            Mask::None => {}
            Mask::Bool(m, l) => {
                let (base, step) = at(l);
                for (c, x) in row.iter_mut().enumerate() {
                    if m[base + c * step] == 0 {
                        *x = T::from_f64(f64::NEG_INFINITY);
                    }
                }
            }
            Mask::Add(m, l) => {
                let (base, step) = at(l);
                for (c, x) in row.iter_mut().enumerate() {
                    *x = *x + m[base + c * step];
                }
            }
        }
    }
}

/// Block sizes: `br` queries × `bc` keys, picked from the problem's sizes only (never
/// the thread count, which would change the sums). Short sequences get short query
/// tiles, so that a causal problem skips more of its upper triangle and still has
/// several tasks per problem; long ones get tiles large enough for efficient GEMMs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tiles {
    br: usize,
    bc: usize,
}

impl Tiles {
    fn new(p: &AttentionParams) -> Tiles {
        let br = match p.l {
            0..192 => 32,
            192..768 => 64,
            _ => 128,
        };
        Tiles { br, bc: 128 }
    }
}

/// The operands of one attention call in the compute type `T`.
struct Problem<'a, T: Clone> {
    q: Operand<'a, T>,
    k: Operand<'a, T>,
    v: Operand<'a, T>,
    mask: Mask<'a, T>,
    p: AttentionParams,
    tiles: Tiles,
}

impl<'a, T: AttnFloat> Problem<'a, T> {
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
            q: Operand::new(q, l.q)?,
            k: Operand::new(k, l.k)?,
            v: Operand::new(v, l.v)?,
            mask,
            p: *p,
            tiles: Tiles::new(p),
        })
    }

    /// Query tiles per problem.
    fn query_tiles(&self) -> usize {
        self.p.l.div_ceil(self.tiles.br)
    }

    /// Key tiles per problem.
    fn key_tiles(&self) -> usize {
        self.p.s.div_ceil(self.tiles.bc)
    }

    /// Rows `(i0, rows)` of query tile `qt`.
    fn query_tile(&self, qt: usize) -> (usize, usize) {
        let i0 = qt * self.tiles.br;
        (i0, self.tiles.br.min(self.p.l - i0))
    }

    /// The keys `(j0, cols)` of key tile `kt` that some query of `i0 .. i0 + rows`
    /// may see (with `causal`, those up to the last query), or `None`.
    fn key_block(&self, (i0, rows): (usize, usize), kt: usize) -> Option<(usize, usize)> {
        let j0 = kt * self.tiles.bc;
        let mut end = (j0 + self.tiles.bc).min(self.p.s);
        if self.p.causal {
            end = end.min(i0 + rows);
        }
        (j0 < end).then(|| (j0, end - j0))
    }

    /// The scaled, masked scores of queries `i0 ..` against keys `j0 ..` of problem
    /// `bh` into `s` (`rows × cols`, row stride `bc`).
    fn scores(
        &self,
        bh: usize,
        (i0, rows): (usize, usize),
        (j0, cols): (usize, usize),
        s: &mut [T],
    ) {
        let (n, h) = (bh / self.p.h, bh % self.p.h);
        let q = self.q.rows(n, h, i0, rows);
        let k = self.k.rows(n, h, j0, cols);
        let bc = self.tiles.bc;
        gemm_scaled(s, bc, false, T::from_f64(self.p.scale), q, k.t(), false);
        let neg_inf = T::from_f64(f64::NEG_INFINITY);
        for r in 0..rows {
            let i = i0 + r;
            let row = &mut s[r * bc..][..cols];
            self.mask.apply((n, h), i, j0, row);
            if self.p.causal && i + 1 < j0 + cols {
                row[(i + 1).saturating_sub(j0)..].fill(neg_inf);
            }
        }
    }
}

/// Every element of a (contiguous) storage in the compute type `T`.
fn whole<T: AttnFloat>(s: &CpuStorage) -> Result<Cow<'_, [T]>> {
    contiguous_as::<T>(s, &Layout::contiguous(&[s.len()]))
}

/// Wraps a result of the compute type `T`, converting a tensor result to `dtype`.
fn wrap<T: AttnFloat>(v: Vec<T>, dtype: DType) -> Result<CpuStorage> {
    T::wrap(v).convert(dtype)
}

/// `v` cut into consecutive pieces of `rows` rows of `row_len` elements each, for
/// tasks that each own one.
fn split_rows<T>(
    mut v: &mut [T],
    row_len: usize,
    rows: impl Iterator<Item = usize>,
) -> Vec<&mut [T]> {
    rows.map(|r| {
        let (piece, rest) = std::mem::take(&mut v).split_at_mut(r * row_len);
        v = rest;
        piece
    })
    .collect()
}

/// A block's `rows × cols` values in a scratch of row stride `bc`.
fn block_mat<T>(data: &[T], rows: usize, cols: usize, bc: usize) -> Mat<'_, T> {
    Mat {
        data,
        rows,
        cols,
        rs: bc,
        cs: 1,
    }
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
        fn run<T: AttnFloat>(
            q: &CpuStorage,
            k: &CpuStorage,
            v: &CpuStorage,
            mask: Option<&CpuStorage>,
            l: &AttentionLayouts,
            p: &AttentionParams,
        ) -> Result<(CpuStorage, CpuStorage)> {
            let prob = Problem::<T>::new(q, k, v, mask, l, p)?;
            let (out, lse) = prob.forward()?;
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
        fn run<T: AttnFloat>(
            q: &CpuStorage,
            k: &CpuStorage,
            v: &CpuStorage,
            mask: Option<&CpuStorage>,
            saved: (&CpuStorage, &CpuStorage, &CpuStorage),
            l: &AttentionLayouts,
            p: &AttentionParams,
        ) -> Result<(CpuStorage, CpuStorage, CpuStorage)> {
            let prob = Problem::<T>::new(q, k, v, mask, l, p)?;
            let saved = (whole(saved.0)?, whole(saved.1)?, whole(saved.2)?);
            let (dq, dk, dv) = prob.backward((&saved.0, &saved.1, &saved.2), None)?;
            let dtype = q.dtype();
            Ok((wrap(dq, dtype)?, wrap(dk, dtype)?, wrap(dv, dtype)?))
        }
        match compute_dtype("scaled_dot_product_attention", self.dtype())? {
            DType::F64 => run::<f64>(self, k, v, mask, (out, lse, dout), layouts, p),
            _ => run::<f32>(self, k, v, mask, (out, lse, dout), layouts, p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backward::Schedule;
    use super::*;

    /// Values in [-2, 2) from a seed (xorshift).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            })
            .collect()
    }

    /// The two backward schedules (the thread count picks one) give the same bits,
    /// over several query and key tiles with short last ones, causal and not, with
    /// q read through the strides of a head-split view.
    #[test]
    fn both_backward_schedules_give_the_same_bits() {
        for causal in [false, true] {
            let p = AttentionParams {
                n: 2,
                h: 3,
                l: 150,
                s: 300,
                e: 20,
                ev: 12,
                scale: 0.3,
                causal,
            };
            // q stored (N, L, H, E), seen as (N, H, L, E).
            let q_layout = Layout {
                shape: vec![p.n, p.h, p.l, p.e],
                strides: vec![p.l * p.h * p.e, p.e, p.h * p.e, 1],
                offset: 0,
            };
            let (k_layout, v_layout) = (
                Layout::contiguous(&[p.n, p.h, p.s, p.e]),
                Layout::contiguous(&[p.n, p.h, p.s, p.ev]),
            );
            let q = CpuStorage::F32(values(q_layout.numel(), 1));
            let k = CpuStorage::F32(values(k_layout.numel(), 2));
            let v = CpuStorage::F32(values(v_layout.numel(), 3));
            let layouts = AttentionLayouts {
                q: &q_layout,
                k: &k_layout,
                v: &v_layout,
                mask: None,
            };
            let prob = Problem::<f32>::new(&q, &k, &v, None, &layouts, &p).unwrap();
            let (out, lse) = prob.forward().unwrap();
            let dout = values(out.len(), 4);
            let saved = (&out[..], &lse[..], &dout[..]);
            let per_problem = prob.backward(saved, Some(Schedule::PerProblem)).unwrap();
            let per_tile = prob.backward(saved, Some(Schedule::PerTile)).unwrap();
            assert!(per_problem.0.iter().any(|&x| x != 0.0));
            assert_eq!(per_problem, per_tile, "causal {causal}");
        }
    }
}
