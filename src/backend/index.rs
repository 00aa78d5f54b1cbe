//! Index primitives: `gather` (also `index_select`, a gather with a broadcast
//! index), `scatter_add` (their backward), `index_put_rows` (advanced indexing's
//! `index_put`), `where_cond` (select by a U8 condition) and `index_bounds`
//! (validation of an I64 index tensor where it lives).
//!
//! Indices are I64. The tensor layer validates them with [`IndexOps::index_bounds`]
//! before `gather`/`scatter_add` run, so an out-of-range index is an `Err` naming the
//! argument; the primitives themselves never read outside their operands whatever
//! the index (gather yields 0, scatter_add skips).

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/index.rs"]
mod cpu;
#[path = "cuda/ops/index.rs"]
mod cuda;

/// The index primitives of a backend.
pub(crate) trait IndexOps: Sized {
    /// The smallest and largest element of the I64 index at `layout`, or `None` when
    /// it is empty. On CUDA: one reduction kernel and a 16-byte readback.
    fn index_bounds(&self, layout: &Layout) -> Result<Option<(i64, i64)>>;

    /// `out[c] = self[c with c[dim] = idx[c]]`: the result is contiguous with the
    /// index's shape; `layout` has the index's rank and covers it on every
    /// dimension but `dim`.
    fn gather(&self, layout: &Layout, dim: usize, idx: &Self, idx_layout: &Layout) -> Result<Self>;

    /// `out = self` (contiguous, `layout`'s shape) plus, for every position `c` of
    /// the index, `src[c]` added at `c with c[dim] = idx[c]`. Sums run in a fixed
    /// order (the base, then increasing position along `dim`): deterministic, the
    /// same on every backend. Float dtypes.
    fn scatter_add(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &Self,
        idx_layout: &Layout,
        src: &Self,
        src_layout: &Layout,
    ) -> Result<Self>;

    /// Advanced indexing's `index_put` on rows: `out = self` (a (rows, cols) matrix at
    /// `layout`, copied contiguous), then for `t = 0, 1, ..` in order, row `idx[t]` of
    /// `out` has row `t` of `src` (N, cols) added (`accumulate`) or becomes it, so the
    /// last write to a row wins and sums run in index order (deterministic: each
    /// output row is computed by its owner, no atomics). `idx` is (N,) I64 in
    /// `[0, rows)` (checked above; others write nothing). Every dtype (integers
    /// wrap); halves accumulate in f32 and round once.
    fn index_put_rows(
        &self,
        layout: &Layout,
        idx: &Self,
        idx_layout: &Layout,
        src: &Self,
        src_layout: &Layout,
        accumulate: bool,
    ) -> Result<Self>;

    /// `cond ? a : b` elementwise (`self` is the U8 condition); the three layouts are
    /// already broadcast to the output shape, `a` and `b` share a dtype.
    fn where_cond(
        &self,
        layout: &Layout,
        a: &Self,
        a_layout: &Layout,
        b: &Self,
        b_layout: &Layout,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`IndexOps::index_bounds`].
    pub(crate) fn index_bounds(&self, layout: &Layout) -> Result<Option<(i64, i64)>> {
        dispatch!("index_bounds", (self), |(s)| s.index_bounds(layout))
    }

    /// See [`IndexOps::gather`].
    pub(crate) fn gather(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &Storage,
        idx_layout: &Layout,
    ) -> Result<Storage> {
        dispatch!("gather", (self, idx), |(s, i)| s
            .gather(layout, dim, i, idx_layout))
    }

    /// See [`IndexOps::scatter_add`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scatter_add(
        &self,
        layout: &Layout,
        dim: usize,
        idx: &Storage,
        idx_layout: &Layout,
        src: &Storage,
        src_layout: &Layout,
    ) -> Result<Storage> {
        dispatch!("scatter_add", (self, idx, src), |(s, i, x)| s
            .scatter_add(layout, dim, i, idx_layout, x, src_layout))
    }

    /// See [`IndexOps::index_put_rows`].
    pub(crate) fn index_put_rows(
        &self,
        layout: &Layout,
        idx: &Storage,
        idx_layout: &Layout,
        src: &Storage,
        src_layout: &Layout,
        accumulate: bool,
    ) -> Result<Storage> {
        dispatch!("index_put", (self, idx, src), |(s, i, x)| s
            .index_put_rows(layout, i, idx_layout, x, src_layout, accumulate))
    }

    /// See [`IndexOps::where_cond`].
    pub(crate) fn where_cond(
        &self,
        layout: &Layout,
        a: &Storage,
        a_layout: &Layout,
        b: &Storage,
        b_layout: &Layout,
    ) -> Result<Storage> {
        dispatch!("where_cond", (self, a, b), |(c, x, y)| c
            .where_cond(layout, x, a_layout, y, b_layout))
    }
}

/// The bounds of an index need no wrapping: the same on every backend.
impl super::IntoStorage for Option<(i64, i64)> {
    type Out = Option<(i64, i64)>;
    fn into_storage(self) -> Self::Out {
        self
    }
}
