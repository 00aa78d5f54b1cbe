//! Normalisation: batch norm (the per-channel statistics, the normalisation itself,
//! and the fused backward pass), layer norm / RMS norm (per-row statistics over the
//! trailing `normalized_shape`, a fused forward and a fused backward), and group norm
//! (per-(sample, group) statistics, a per-channel affine; instance norm is group norm
//! with one channel per group).
//!
//! The tensor layer (`nn/functional/norm.rs`) validates the arguments, views the input
//! as `(N, C, S)` and fills in [`BatchNormParams`]. The per-channel statistics (mean,
//! biased variance) are in the *compute* dtype — f32 for f32/f16/bf16, f64 for f64 — as
//! PyTorch keeps its saved statistics, so a half-precision batch does not lose the
//! variance to rounding before the backward pass uses it.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/norm.rs"]
mod cpu;
#[path = "cuda/ops/norm.rs"]
mod cuda;

/// One batch-norm problem: the input seen as `(n, c, s)`, contiguous or not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BatchNormParams {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Values per channel and sample (the product of the spatial sizes; 1 for `(N, C)`).
    pub s: usize,
    /// Added to the variance before the square root (finite, ≥ 0).
    pub eps: f64,
}

/// One layer-norm or RMS-norm problem: the input seen as contiguous `(rows, d)`, `d`
/// being the product of `normalized_shape`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LayerNormParams {
    /// The product of the leading (not normalised) sizes.
    pub rows: usize,
    /// Values normalised together (the product of `normalized_shape`).
    pub d: usize,
    /// Added to the variance (or mean square) before the square root.
    pub eps: f64,
    /// RMS norm: no mean is subtracted and the statistic is the mean square.
    pub rms: bool,
}

impl LayerNormParams {
    /// The op's name, for errors.
    pub fn op(&self) -> &'static str {
        if self.rms {
            "rms_norm"
        } else {
            "layer_norm"
        }
    }
}

/// One group-norm problem: the input seen as contiguous `(n, groups, c / groups, s)`;
/// a row is one `(sample, group)`, its `d = (c / groups)·s` values normalised together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GroupNormParams {
    /// Batch size.
    pub n: usize,
    /// Channels (a multiple of `groups`).
    pub c: usize,
    /// Groups (≥ 1).
    pub groups: usize,
    /// Values per channel and sample (the product of the spatial sizes).
    pub s: usize,
    /// Added to the variance before the square root.
    pub eps: f64,
}

impl GroupNormParams {
    /// Rows: `n · groups`.
    pub fn rows(&self) -> usize {
        self.n * self.groups
    }

    /// Values per row: `(c / groups) · s`.
    pub fn d(&self) -> usize {
        self.c / self.groups * self.s
    }
}

/// The batch-norm primitives of a backend. `mean` and `var` are contiguous `(C)`
/// storages of the compute dtype; `weight` (γ) and `bias` (β) are optional `(C)`
/// operands of the input's dtype, at any layout (γ = 1 and β = 0 when absent).
pub(crate) trait NormOps: Sized {
    /// Per-channel mean and biased variance of the input `self` (at `layout`, seen as
    /// `(n, c, s)`) over its `n·s` values, computed in two passes (the mean, then the
    /// squared deviations from it) so a large mean does not cancel the variance.
    fn batch_norm_stats(&self, layout: &Layout, p: &BatchNormParams) -> Result<(Self, Self)>;

    /// `(x - mean) / √(var + eps) · γ + β` per channel; contiguous, `x`'s dtype.
    /// `F::batch_norm_act`'s fused epilogue, in the same pass: `residual` (an
    /// `(n, c, s)` operand of `x`'s dtype at any layout) is added, then ReLU when
    /// `relu` (`v <= 0` gives 0, NaN passes, as `relu`).
    #[allow(clippy::too_many_arguments)] // the operands, one by one
    fn batch_norm_apply(
        &self,
        layout: &Layout,
        mean: &Self,
        var: &Self,
        weight: Option<(&Self, &Layout)>,
        bias: Option<(&Self, &Layout)>,
        residual: Option<(&Self, &Layout)>,
        relu: bool,
        p: &BatchNormParams,
    ) -> Result<Self>;

    /// Gradients of [`NormOps::batch_norm_apply`] from the output's gradient `self`:
    /// `(grad_x, grad_weight, grad_bias, grad_residual)`, the middle two `(C)` sums
    /// `Σ g·x̂` and `Σ g` (x̂ the normalised input) in `x`'s dtype. With `batch_stats`
    /// the mean and variance were the batch's own, so
    /// `grad_x = γ/σ · (g - mean(g) - x̂·mean(g·x̂))`; otherwise they were constants and
    /// `grad_x = γ/σ · g`. `relu_out` is the (contiguous) output when the forward
    /// applied ReLU: `g` is then first zeroed where it is `<= 0` (relu's backward), in
    /// the same pass; with `residual_grad` that masked `g` is also returned as the
    /// residual's gradient (else `None`).
    #[allow(clippy::too_many_arguments)] // the saved forward state, operand by operand
    fn batch_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &Self,
        x_layout: &Layout,
        mean: &Self,
        var: &Self,
        weight: Option<(&Self, &Layout)>,
        batch_stats: bool,
        relu_out: Option<&Self>,
        residual_grad: bool,
        p: &BatchNormParams,
    ) -> Result<(Self, Self, Self, Option<Self>)>;

    /// Layer norm (`p.rms` false) or RMS norm of the rows of `self`:
    /// `(y, mean, rstd)`, `y = (x - mean)·rstd·w + b` contiguous in `x`'s dtype (RMS:
    /// `x·rstd·w`), `mean` and `rstd = 1/√(var + eps)` (RMS: `1/√(mean(x²) + eps)`)
    /// contiguous `(rows)` in the compute dtype (`mean` is empty for RMS). `weight`
    /// and `bias` are `(d)` operands of `x`'s dtype at any layout.
    fn layer_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&Self, &Layout)>,
        bias: Option<(&Self, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(Self, Self, Self)>;

    /// Gradients of [`NormOps::layer_norm_forward`] from the output's gradient
    /// `self`: `(grad_x, grad_weight, grad_bias)`, with `x̂` the normalised input and
    /// `ĝ = g·w`, `grad_x = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))` (RMS: without the
    /// `mean(ĝ)` term), `grad_weight = Σ_rows g·x̂` and `grad_bias = Σ_rows g`, `(d)`
    /// each in `x`'s dtype, summed in a fixed order (deterministic).
    #[allow(clippy::too_many_arguments)] // the saved forward state, operand by operand
    fn layer_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &Self,
        x_layout: &Layout,
        mean: &Self,
        rstd: &Self,
        weight: Option<(&Self, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(Self, Self, Self)>;

    /// Group norm of `self`: `(y, mean, rstd)`, `y = (x - mean)·rstd·w[ch] + b[ch]`
    /// contiguous in `x`'s dtype, `mean` and `rstd = 1/√(var + eps)` contiguous
    /// `(n·groups)` in the compute dtype (biased variance, two passes). `weight` and
    /// `bias` are `(c)` operands of `x`'s dtype at any layout.
    fn group_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&Self, &Layout)>,
        bias: Option<(&Self, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(Self, Self, Self)>;

    /// Gradients of [`NormOps::group_norm_forward`] from the output's gradient
    /// `self`: `(grad_x, grad_weight, grad_bias)`. With `x̂` the normalised input and
    /// `ĝ = g·w[ch]`, `grad_x = rstd·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))` over each row;
    /// `grad_weight[ch] = Σ g·x̂` and `grad_bias[ch] = Σ g` over the channel's `n·s`
    /// values, `(c)` each in `x`'s dtype, summed per sample and then over the samples
    /// in order (deterministic).
    #[allow(clippy::too_many_arguments)] // the saved forward state, operand by operand
    fn group_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &Self,
        x_layout: &Layout,
        mean: &Self,
        rstd: &Self,
        weight: Option<(&Self, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(Self, Self, Self)>;
}

impl Storage {
    /// See [`NormOps::batch_norm_stats`].
    pub(crate) fn batch_norm_stats(
        &self,
        layout: &Layout,
        p: &BatchNormParams,
    ) -> Result<(Storage, Storage)> {
        dispatch!("batch_norm", (self), |(x)| x.batch_norm_stats(layout, p))
    }

    /// See [`NormOps::batch_norm_apply`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn batch_norm_apply(
        &self,
        layout: &Layout,
        mean: &Storage,
        var: &Storage,
        weight: Option<(&Storage, &Layout)>,
        bias: Option<(&Storage, &Layout)>,
        residual: Option<(&Storage, &Layout)>,
        relu: bool,
        p: &BatchNormParams,
    ) -> Result<Storage> {
        let ((w, wl), (b, bl)) = (weight.unzip(), bias.unzip());
        let (r, rl) = residual.unzip();
        dispatch!("batch_norm", (self, mean, var, w, b, r), |(
            x,
            m,
            v,
            w,
            b,
            r,
        )| x
            .batch_norm_apply(
                layout,
                m,
                v,
                w.zip(wl),
                b.zip(bl),
                r.zip(rl),
                relu,
                p
            ))
    }

    /// See [`NormOps::batch_norm_backward`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn batch_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &Storage,
        x_layout: &Layout,
        mean: &Storage,
        var: &Storage,
        weight: Option<(&Storage, &Layout)>,
        batch_stats: bool,
        relu_out: Option<&Storage>,
        residual_grad: bool,
        p: &BatchNormParams,
    ) -> Result<(Storage, Storage, Storage, Option<Storage>)> {
        let (w, wl) = weight.unzip();
        dispatch!(
            "batch_norm_backward",
            (self, x, mean, var, w, relu_out),
            |(g, x, m, v, w, y)| g.batch_norm_backward(
                grad_layout,
                x,
                x_layout,
                m,
                v,
                w.zip(wl),
                batch_stats,
                y,
                residual_grad,
                p
            )
        )
    }
}

impl Storage {
    /// See [`NormOps::layer_norm_forward`].
    pub(crate) fn layer_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&Storage, &Layout)>,
        bias: Option<(&Storage, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(Storage, Storage, Storage)> {
        let ((w, wl), (b, bl)) = (weight.unzip(), bias.unzip());
        dispatch!(p.op(), (self, w, b), |(x, w, b)| x.layer_norm_forward(
            layout,
            w.zip(wl),
            b.zip(bl),
            p
        ))
    }

    /// See [`NormOps::layer_norm_backward`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn layer_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &Storage,
        x_layout: &Layout,
        mean: &Storage,
        rstd: &Storage,
        weight: Option<(&Storage, &Layout)>,
        p: &LayerNormParams,
    ) -> Result<(Storage, Storage, Storage)> {
        let (w, wl) = weight.unzip();
        dispatch!(p.op(), (self, x, mean, rstd, w), |(g, x, m, r, w)| g
            .layer_norm_backward(grad_layout, x, x_layout, m, r, w.zip(wl), p))
    }
}

impl Storage {
    /// See [`NormOps::group_norm_forward`].
    pub(crate) fn group_norm_forward(
        &self,
        layout: &Layout,
        weight: Option<(&Storage, &Layout)>,
        bias: Option<(&Storage, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(Storage, Storage, Storage)> {
        let ((w, wl), (b, bl)) = (weight.unzip(), bias.unzip());
        dispatch!("group_norm", (self, w, b), |(x, w, b)| x
            .group_norm_forward(layout, w.zip(wl), b.zip(bl), p))
    }

    /// See [`NormOps::group_norm_backward`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn group_norm_backward(
        &self,
        grad_layout: &Layout,
        x: &Storage,
        x_layout: &Layout,
        mean: &Storage,
        rstd: &Storage,
        weight: Option<(&Storage, &Layout)>,
        p: &GroupNormParams,
    ) -> Result<(Storage, Storage, Storage)> {
        let (w, wl) = weight.unzip();
        dispatch!("group_norm", (self, x, mean, rstd, w), |(g, x, m, r, w)| g
            .group_norm_backward(grad_layout, x, x_layout, m, r, w.zip(wl), p))
    }
}
