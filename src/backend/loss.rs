//! Class-index losses: cross entropy fused with log-softmax (optionally label-smoothed),
//! and the negative log-likelihood of log-probabilities, forward and backward, with
//! PyTorch's class weights and `ignore_index`.
//!
//! The input is seen as `(outer, classes, inner)` — PyTorch's `(N, C, d1, ..)` with
//! `inner = d1·..` (1 for `(N, C)`, and `outer = 1` for `(C)`) — so the class dimension
//! is read with step `inner` in place, without moving it last. Row `j` (one target,
//! `target[j]` in row-major order) is element `(j / inner, ·, j % inner)`. No one-hot is
//! ever built: a row's loss needs its logsumexp, its target's logit and (with label
//! smoothing) the weighted sum of its logits. Per-row results are in the compute dtype
//! (f32 for f32/f16/bf16, f64 for f64); the tensor layer reduces them.
//!
//! With class weights `w` (1 without), target `t`, ε the smoothing and `lse` the row's
//! logsumexp, the loss of a row is PyTorch's
//! `(1-ε)·w[t]·(lse - x[t]) + ε/C·Σ_k w[k]·(lse - x[k])` (cross entropy) or
//! `-w[t]·x[t]` (nll), and 0 for a row whose target is `ignore_index`; its weight
//! `w[t]` (0 when ignored) is what the mean reduction divides by.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::{Error, Result};

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/loss.rs"]
mod cpu;
#[path = "cuda/ops/loss.rs"]
mod cuda;

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
    /// Rows whose target equals this index are ignored: loss 0, weight 0, gradient 0.
    pub ignore_index: i64,
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

    /// True when the target `t` is ignored.
    pub fn ignored(&self, t: i64) -> bool {
        t == self.ignore_index
    }

    /// The error for class index `index`, out of `0..classes`.
    pub fn bad_target(&self, index: i64) -> Error {
        Error::arg(
            "target",
            format!(
                "{}: class index {index} is out of range for {} classes (valid: 0..={}, or ignore_index {})",
                self.op(),
                self.classes,
                self.classes as i64 - 1,
                self.ignore_index
            ),
        )
    }
}

/// The class-index loss primitives of a backend. `self` is the input (logits or
/// log-probabilities) at any layout; `target` holds I64 class indices, one per row;
/// `weight` is an optional `(classes)` operand of the input's dtype at any layout.
pub(crate) trait LossOps: Sized {
    /// Per-row `(loss, logsumexp, weight)`, each `(rows)` in the compute dtype (see
    /// the module docs; the logsumexps are empty for nll). Errs with
    /// [`CrossEntropyParams::bad_target`] for the first row (in row order) whose
    /// target is neither `ignore_index` nor in `0..classes`.
    fn cross_entropy_forward(
        &self,
        layout: &Layout,
        target: &Self,
        target_layout: &Layout,
        weight: Option<(&Self, &Layout)>,
        p: &CrossEntropyParams,
    ) -> Result<(Self, Self, Self)>;

    /// The input's gradient, contiguous with its shape and dtype, for the loss
    /// `Σ_rows s_j·loss_j`, with `s_j = grad[j]` (`grad_per_row`) or `grad[0]`, `grad`
    /// contiguous in the compute dtype: for cross entropy, with `p = softmax(x)`,
    /// `s·(p_k·((1-ε)·w[t] + ε/C·Σw) - (1-ε)·w[t]·[k = t] - ε/C·w[k])`; for nll
    /// `-s·w[t]·[k = t]`; 0 on ignored rows. `weight_total` is `Σw` (one element of
    /// the input's dtype), needed with a weight and smoothing; `grad` is in the
    /// compute dtype, `(rows)` or one element, at `grad_layout`.
    #[allow(clippy::too_many_arguments)] // the forward's operands plus its saved state
    fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &Self,
        target_layout: &Layout,
        weight: Option<(&Self, &Layout)>,
        weight_total: Option<(&Self, &Layout)>,
        lse: &Self,
        grad: &Self,
        grad_layout: &Layout,
        grad_per_row: bool,
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
        weight: Option<(&Storage, &Layout)>,
        p: &CrossEntropyParams,
    ) -> Result<(Storage, Storage, Storage)> {
        let (w, wl) = weight.unzip();
        dispatch!(p.op(), (self, target, w), |(x, t, w)| x
            .cross_entropy_forward(layout, t, target_layout, w.zip(wl), p))
    }

    /// See [`LossOps::cross_entropy_backward`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn cross_entropy_backward(
        &self,
        layout: &Layout,
        target: &Storage,
        target_layout: &Layout,
        weight: Option<(&Storage, &Layout)>,
        weight_total: Option<(&Storage, &Layout)>,
        lse: &Storage,
        grad: &Storage,
        grad_layout: &Layout,
        grad_per_row: bool,
        p: &CrossEntropyParams,
    ) -> Result<Storage> {
        let ((w, wl), (wt, wtl)) = (weight.unzip(), weight_total.unzip());
        dispatch!(p.op(), (self, target, w, wt, lse, grad), |(
            x,
            t,
            w,
            wt,
            l,
            g,
        )| x
            .cross_entropy_backward(
                layout,
                t,
                target_layout,
                w.zip(wl),
                wt.zip(wtl),
                l,
                g,
                grad_layout,
                grad_per_row,
                p
            ))
    }
}
