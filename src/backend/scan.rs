//! Scans: cumulative sums and products along one dimension (`cumsum`, `cumprod`), and
//! the gradient of the product.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/scan.rs"]
mod cpu;
#[path = "cuda/ops/scan.rs"]
mod cuda;

/// A scan of a tensor viewed as (outer, len, inner), in row-major order of its layout:
/// `len` elements per line, line `(o, i)` at logical element `o * len * inner + i`,
/// stride `inner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanParams {
    /// Product of the sizes before the scanned dim.
    pub outer: usize,
    /// Size of the scanned dim.
    pub len: usize,
    /// Product of the sizes after it.
    pub inner: usize,
}

impl ScanParams {
    /// Elements in all.
    pub fn numel(&self) -> usize {
        self.outer * self.len * self.inner
    }

    /// Number of lines.
    pub fn lines(&self) -> usize {
        self.outer * self.inner
    }
}

/// The combining operation of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanOp {
    /// Running sum (`cumsum`).
    Sum,
    /// Running product (`cumprod`).
    Prod,
}

impl ScanOp {
    /// The op's name in `enum ScanCode` of kernels/scan.cu.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ScanOp::Sum => "sum",
            ScanOp::Prod => "prod",
        }
    }

    /// Every op, for the check that each has a kernel code.
    #[cfg(test)]
    pub(crate) const ALL: [ScanOp; 2] = [ScanOp::Sum, ScanOp::Prod];
}

/// The scan primitives of a backend. Operands are read through their layouts (any
/// strides) and share one dtype; results are contiguous.
pub(crate) trait ScanOps: Sized {
    /// The inclusive scan of every line: `y[j] = x[0] op .. op x[j]`, or with `reverse`
    /// `y[j] = x[j] op .. op x[len-1]`. Each element is the running value, kept in
    /// PyTorch's CPU accumulator (f64 for f32 and f64, f32 for f16 and bf16, wrapping
    /// i64 for I64), rounded once. Floats and I64; same dtype out.
    fn scan(&self, layout: &Layout, p: &ScanParams, op: ScanOp, reverse: bool) -> Result<Self>;

    /// The gradient of `out = cumprod(self)` for the upstream gradient `grad`, exact
    /// where a line holds zeros: before a line's first zero `z`, `gx[k] =
    /// Σ_{j≥k} g[j]·out[j] / x[k]`; at `z`, `Σ_{j≥z} g[j]·Π_{i≤j, i≠z} x[i]`; after it, 0.
    /// Floats.
    fn cumprod_backward(
        &self,
        layouts: [&Layout; 3],
        out: &Self,
        grad: &Self,
        p: &ScanParams,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`ScanOps::scan`].
    pub(crate) fn scan(
        &self,
        layout: &Layout,
        p: &ScanParams,
        op: ScanOp,
        reverse: bool,
    ) -> Result<Storage> {
        dispatch!("scan", (self), |(s)| s.scan(layout, p, op, reverse))
    }

    /// See [`ScanOps::cumprod_backward`]; `layouts` are those of `self` (x), `out`
    /// and `grad`.
    pub(crate) fn cumprod_backward(
        &self,
        layouts: [&Layout; 3],
        out: &Storage,
        grad: &Storage,
        p: &ScanParams,
    ) -> Result<Storage> {
        dispatch!("cumprod_backward", (self, out, grad), |(x, o, g)| x
            .cumprod_backward(layouts, o, g, p))
    }
}
