//! Sorting along one dimension (`sort`, `argsort`, `topk`): the first `k` elements of
//! every line in a stable order with their positions, and the scatter of a gradient
//! back through those positions.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/sort.rs"]
mod cpu;
#[path = "cuda/ops/sort.rs"]
mod cuda;

/// A sort of a tensor viewed as (outer, len, inner), in row-major order of its layout:
/// line `(o, i)` holds the `len` elements at logical `o * len * inner + j * inner + i`.
/// The result keeps the first `k` sorted elements of each line: (outer, k, inner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SortParams {
    /// Product of the sizes before the sorted dim.
    pub outer: usize,
    /// Size of the sorted dim.
    pub len: usize,
    /// Product of the sizes after it.
    pub inner: usize,
    /// Elements kept per line (`len` for a sort, at most `len`).
    pub k: usize,
    /// Largest first (NaN first) instead of smallest first (NaN last).
    pub descending: bool,
}

impl SortParams {
    /// Number of lines.
    pub fn lines(&self) -> usize {
        self.outer * self.inner
    }

    /// Elements of the result: (outer, k, inner).
    pub fn out_numel(&self) -> usize {
        self.outer * self.k * self.inner
    }
}

/// The sort primitives of a backend.
pub(crate) trait SortOps: Sized {
    /// The first `p.k` elements of every line in sorted order, and their positions in
    /// the line (I64), both contiguous (outer, k, inner). The order is PyTorch's
    /// stable sort: ascending (descending) values, NaN after (before) every number,
    /// equal values — NaNs, and -0.0 with 0.0, included — by position. Every dtype.
    fn sort(&self, layout: &Layout, p: &SortParams) -> Result<(Self, Self)>;

    /// The gradient's scatter: `self[o, idx[o, j, i], i] = g[o, j, i]` for `self`
    /// contiguous (outer, len, inner), `idx` and `g` of shape (outer, k, inner). The
    /// indices of a line are distinct (a sort's), so each element has one writer;
    /// an index outside `[0, len)` writes nothing. Float dtypes.
    fn sort_scatter(
        &mut self,
        p: &SortParams,
        idx: &Self,
        idx_layout: &Layout,
        g: &Self,
        g_layout: &Layout,
    ) -> Result<()>;
}

impl Storage {
    /// See [`SortOps::sort`].
    pub(crate) fn sort(&self, layout: &Layout, p: &SortParams) -> Result<(Storage, Storage)> {
        dispatch!("sort", (self), |(s)| s.sort(layout, p))
    }

    /// See [`SortOps::sort_scatter`].
    pub(crate) fn sort_scatter(
        &mut self,
        p: &SortParams,
        idx: &Storage,
        idx_layout: &Layout,
        g: &Storage,
        g_layout: &Layout,
    ) -> Result<()> {
        dispatch!("sort_scatter", (self, idx, g), |(s, i, g)| s
            .sort_scatter(p, i, idx_layout, g, g_layout))
    }
}
