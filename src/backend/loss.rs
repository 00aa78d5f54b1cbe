//! Class-index losses: cross entropy fused with log-softmax (optionally label-smoothed),
//! and the negative log-likelihood of log-probabilities, forward and backward.
//!
//! The input is seen as `(outer, classes, inner)` — PyTorch's `(N, C, d1, ..)` with
//! `inner = d1·..` (1 for `(N, C)`, and `outer = 1` for `(C)`) — so the class dimension
//! is read with step `inner` in place, without moving it last. Row `j` (one target,
//! `target[j]` in row-major order) is element `(j / inner, ·, j % inner)`. No one-hot is
//! ever built: a row's loss needs its logsumexp, its target's logit and (with label
//! smoothing) the sum of its logits. Per-row results are in the compute dtype (f32 for
//! f32/f16/bf16, f64 for f64); the tensor layer averages them.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::{Error, Result};

/// One class-index loss problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CrossEntropyParams {
    /// The product of the sizes before the class dimension (N, or 1 for a `(C)` input).
    pub outer: usize,
    /// Classes (C).
    pub classes: usize,
    /// The product of the sizes after the class dimension (1 for `(N, C)`).
    pub inner: usize,
    /// Label smoothing ε in [0, 1]: the target distribution is `ε/C` on every class plus
    /// `1 - ε` on the target class. 0 for `nll_loss`.
    pub smoothing: f64,
    /// True for cross entropy (the input is logits, log-softmax is applied); false for
    /// `nll_loss` (the input is already log-probabilities).
    pub from_logits: bool,
}

impl CrossEntropyParams {
    /// Rows, i.e. targets: `outer · inner`.
    pub fn rows(&self) -> usize {
        self.outer * self.inner
    }

    /// The smoothed target distribution as (the target class's extra weight `1 - ε`,
    /// every class's weight `ε/C`), computed once in f64 so both backends round it alike.
    pub fn target_weights(&self) -> (f64, f64) {
        (1.0 - self.smoothing, self.smoothing / self.classes as f64)
    }

    /// The name of the op, for errors.
    pub fn op(&self) -> &'static str {
        if self.from_logits {
            "cross_entropy"
        } else {
            "nll_loss"
        }
    }

    /// The error for class index `index`, out of `0..classes`.
    pub fn bad_target(&self, index: i64) -> Error {
        Error::arg(
            "target",
            format!(
                "{}: class index {index} is out of range for {} classes (valid: 0..={})",
                self.op(),
                self.classes,
                self.classes as i64 - 1
            ),
        )
    }
}

/// The class-index loss primitives of a backend. `self` is the input (logits or
/// log-probabilities) at any layout; `target` holds I64 class indices, one per row.
pub(crate) trait LossOps: Sized {
    /// Per-row losses and logsumexps, both `(rows)` in the compute dtype: the loss of
    /// row `j` with target `t` is `lse - (1-ε)·x[t] - ε/C·Σ_k x[k]` (cross entropy,
    /// `lse = log Σ_k exp(x[k])`) or `-x[t]` (nll; the logsumexps are then empty). Errs
    /// with [`CrossEntropyParams::bad_target`] for the first row (in row order) whose
    /// target is outside `0..classes`.
    fn cross_entropy_forward(
        &self,
        layout: &Layout,
        target: &Self,
        target_layout: &Layout,
        p: &CrossEntropyParams,
    ) -> Result<(Self, Self)>;

    /// The input's gradient, contiguous with its shape and dtype, for the loss
    /// `scale · Σ_rows loss` whose gradient is the one-element `grad`:
    /// `(softmax(x) - q)·grad·scale` for cross entropy (`lse` from the forward pass,
    /// `q` the smoothed target distribution) and `-onehot(t)·grad·scale` for nll.
    #[allow(clippy::too_many_arguments)] // the forward's operands plus its saved state
    fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &Self,
        target_layout: &Layout,
        lse: &Self,
        grad: &Self,
        grad_layout: &Layout,
        scale: f64,
        p: &CrossEntropyParams,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`LossOps::cross_entropy_forward`].
    pub(crate) fn cross_entropy_forward(
        &self,
        layout: &Layout,
        target: &Storage,
        target_layout: &Layout,
        p: &CrossEntropyParams,
    ) -> Result<(Storage, Storage)> {
        dispatch!(p.op(), (self, target), |(x, t)| x.cross_entropy_forward(
            layout,
            t,
            target_layout,
            p
        ))
    }

    /// See [`LossOps::cross_entropy_backward`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &Storage,
        target_layout: &Layout,
        lse: &Storage,
        grad: &Storage,
        grad_layout: &Layout,
        scale: f64,
        p: &CrossEntropyParams,
    ) -> Result<Storage> {
        dispatch!(p.op(), (self, target, lse, grad), |(x, t, l, g)| x
            .cross_entropy_backward(
                layout,
                t,
                target_layout,
                l,
                g,
                grad_layout,
                scale,
                p
            ))
    }
}
