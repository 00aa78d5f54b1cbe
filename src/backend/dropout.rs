//! Dropout with a counter-based (Philox) mask that the backward pass regenerates.

use super::{dispatch, Storage};
use crate::rng::PhiloxStream;
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/dropout.rs"]
mod cpu;
#[path = "cuda/ops/dropout.rs"]
mod cuda;

/// The dropout primitive of a backend.
pub(crate) trait DropoutOps: Sized {
    /// Dropout with drop probability `p` in (0, 1): element `i` (row-major in
    /// `layout`) is kept and scaled by `1/(1-p)` iff `stream.word(i) <
    /// rng::keep_threshold(p)`, else zeroed. The same call on the output's gradient
    /// gives the input's gradient. Contiguous result.
    fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<Self>;

    /// `residual + dropout(self + bias)` (`F::bias_dropout_add`) in one pass: `self`
    /// and `residual` are `(rows, d)` at any layout, `bias` is `(d)`; element `i`
    /// (row-major) is kept by [`DropoutOps::dropout`]'s rule for `stream` and `p`, or
    /// always when `stream` is `None` (eval, `p = 0`). Each step rounds to the dtype
    /// as the separate ops do. Contiguous result.
    fn bias_dropout_add(
        &self,
        layout: &Layout,
        bias: (&Self, &Layout),
        residual: (&Self, &Layout),
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<Self>;

    /// The backward pass of [`DropoutOps::bias_dropout_add`] from the output's
    /// gradient `self` (`(rows, d)` at `layout`): `(grad_x, grad_bias)`, `grad_x` the
    /// masked and scaled gradient (`None` without a mask: it is `self`), `grad_bias`
    /// its column sums `(d)`, summed over the rows in order.
    fn bias_dropout_add_backward(
        &self,
        layout: &Layout,
        d: usize,
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<(Option<Self>, Self)>;
}

impl Storage {
    /// See [`DropoutOps::dropout`].
    pub(crate) fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<Storage> {
        dispatch!("dropout", (self), |(s)| s.dropout(layout, stream, p))
    }

    /// See [`DropoutOps::bias_dropout_add`].
    pub(crate) fn bias_dropout_add(
        &self,
        layout: &Layout,
        bias: (&Storage, &Layout),
        residual: (&Storage, &Layout),
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<Storage> {
        dispatch!("bias_dropout_add", (self, bias.0, residual.0), |(
            x,
            b,
            r,
        )| x
            .bias_dropout_add(layout, (b, bias.1), (r, residual.1), mask))
    }

    /// See [`DropoutOps::bias_dropout_add_backward`].
    pub(crate) fn bias_dropout_add_backward(
        &self,
        layout: &Layout,
        d: usize,
        mask: Option<(PhiloxStream, f64)>,
    ) -> Result<(Option<Storage>, Storage)> {
        dispatch!("bias_dropout_add", (self), |(g)| g
            .bias_dropout_add_backward(layout, d, mask))
    }
}
