//! Losses: `cross_entropy` (with PyTorch's options: class weights, `ignore_index`,
//! label smoothing and the reduction), `nll_loss` and `mse_loss`.
//!
//! Class targets are I64 indices. The input is `(C)` with a rank-0 target, `(N, C)`
//! with an `(N)` target, or `(N, C, d1, ..)` with an `(N, d1, ..)` target, the class
//! dimension being 1 (0 for a 1-D input), as in PyTorch. Cross entropy and nll run on
//! the fused primitives of `backend::loss` (a per-row logsumexp and a gather of the
//! target's logit, never a one-hot); every variant of the API is [`cross_entropy_opts`]
//! underneath. The mean reduction divides by the summed weights of the non-ignored
//! targets, computed on the device (no host round trip).

use crate::autograd::record;
use crate::backend::loss::CrossEntropyParams;
use crate::tensor::StorageLocks;
use crate::{DType, Error, Result, Tensor};

/// How a loss reduces its per-target values: PyTorch's `reduction=` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduction {
    /// No reduction: one loss per target, of the target's shape.
    None,
    /// The (weighted) mean over the targets; the default.
    #[default]
    Mean,
    /// The sum over the targets.
    Sum,
    /// The sum divided by the batch size (the first dimension): the mathematical
    /// KL divergence, `kl_div`'s `reduction="batchmean"`. Only
    /// [`kl_div`](super::kl_div) takes it; every other loss errs.
    BatchMean,
}

/// Options of [`cross_entropy_opts`], PyTorch's keyword arguments with its defaults:
/// no class weights, `ignore_index = -100`, no label smoothing, mean reduction.
#[derive(Debug, Clone, Copy)]
pub struct CrossEntropyOpts<'a> {
    weight: Option<&'a Tensor>,
    ignore_index: i64,
    label_smoothing: f64,
    reduction: Reduction,
}

impl Default for CrossEntropyOpts<'_> {
    fn default() -> Self {
        CrossEntropyOpts {
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }
}

impl<'a> CrossEntropyOpts<'a> {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// A `(C)` weight per class (the input's dtype and device), scaling each target's
    /// loss by its class's weight; the mean then divides by the weights' sum.
    pub fn weight(mut self, weight: &'a Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// Targets equal to this index contribute neither loss nor gradient, and do not
    /// count in the mean (default -100, as in PyTorch).
    pub fn ignore_index(mut self, ignore_index: i64) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Label smoothing ε in `[0, 1]` (checked by the loss): the target distribution
    /// is `1 - ε + ε/C` on the true class and `ε/C` on each other class.
    pub fn label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// The reduction (default [`Reduction::Mean`]).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Cross entropy between `logits` (unnormalised scores) and class indices `target`,
/// averaged over the targets: PyTorch's `F.cross_entropy(logits, target)` (targets
/// equal to -100 are ignored, as there).
///
/// Errs when `target` is not I64, its shape does not match `logits` without the class
/// dimension, or an index is outside `0..C` (and not -100); or when the dtypes or
/// devices disagree.
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    cross_entropy_opts(logits, target, CrossEntropyOpts::new())
}

/// [`cross_entropy`] with label smoothing: the target distribution puts
/// `1 - label_smoothing + label_smoothing / C` on the true class and
/// `label_smoothing / C` on each other class, as
/// `F.cross_entropy(logits, target, label_smoothing=...)`. `label_smoothing` must be
/// in `[0, 1]`.
pub fn cross_entropy_with(
    logits: &Tensor,
    target: &Tensor,
    label_smoothing: f64,
) -> Result<Tensor> {
    cross_entropy_opts(
        logits,
        target,
        CrossEntropyOpts::new().label_smoothing(label_smoothing),
    )
}

/// Cross entropy with PyTorch's options: `F.cross_entropy(logits, target, weight=,
/// ignore_index=, reduction=, label_smoothing=)`, with its exact semantics. With
/// class weights `w`, target `t`, smoothing ε and `log p = log_softmax(logits)` along
/// the class dimension, a target's loss is
/// `-(1-ε)·w[t]·log p[t] - ε/C·Σ_k w[k]·log p[k]`, and 0 when `t == ignore_index`.
/// [`Reduction::Mean`] divides the sum by `Σ w[t]` over the non-ignored targets (their
/// count without weights), so a batch whose targets are all ignored gives NaN, as in
/// PyTorch; [`Reduction::None`] returns the target-shaped losses.
///
/// Errs as [`cross_entropy`], and when `label_smoothing` is outside `[0, 1]` or the
/// weight is not a `(C)` tensor of the logits' dtype and device.
pub fn cross_entropy_opts(
    logits: &Tensor,
    target: &Tensor,
    opts: CrossEntropyOpts,
) -> Result<Tensor> {
    if let Some(y) =
        crate::tensor::autocast::fp32([logits, target], [opts.weight], |[l, t], [w]| {
            cross_entropy_opts(l, t, CrossEntropyOpts { weight: w, ..opts })
        })
    {
        return y;
    }
    if !(0.0..=1.0).contains(&opts.label_smoothing) {
        return Err(Error::arg(
            "label_smoothing",
            format!("must be in [0, 1], got {}", opts.label_smoothing),
        ));
    }
    class_loss(logits, target, &opts, true)
}

/// Negative log-likelihood of class indices `target` under `log_probs` (for example
/// the output of `log_softmax`), averaged over the targets: PyTorch's
/// `F.nll_loss(log_probs, target)` (targets equal to -100 are ignored, as there).
/// Errors as [`cross_entropy`].
pub fn nll_loss(log_probs: &Tensor, target: &Tensor) -> Result<Tensor> {
    if let Some(y) =
        crate::tensor::autocast::fp32([log_probs, target], [], |[l, t], []| nll_loss(l, t))
    {
        return y;
    }
    class_loss(log_probs, target, &CrossEntropyOpts::new(), false)
}

/// [`cross_entropy_opts`] (`from_logits`) or [`nll_loss`] on the fused primitives of
/// `backend::loss`: per-row losses and weights reduced here with device ops, and a
/// backward that rebuilds the softmax from the saved per-row logsumexp.
fn class_loss(
    input: &Tensor,
    target: &Tensor,
    opts: &CrossEntropyOpts,
    from_logits: bool,
) -> Result<Tensor> {
    let op = if from_logits {
        "cross_entropy"
    } else {
        "nll_loss"
    };
    let _op = crate::profiler::op(op, &[input, target]);
    super::loss_pointwise::check_reduction(opts.reduction, op)?;
    let class_dim = check_class_target(input, target, op)?;
    let shape = input.shape();
    if let Some(w) = opts.weight {
        input.check_same_device(op, w)?;
        input.check_same_dtype(op, w)?;
        if w.shape() != [shape[class_dim]] {
            return Err(Error::arg(
                "weight",
                format!(
                    "{op} needs a ({}) weight for {} classes, got shape {:?}",
                    shape[class_dim],
                    shape[class_dim],
                    w.shape()
                ),
            ));
        }
    }
    let p = CrossEntropyParams {
        outer: shape[..class_dim].iter().product(),
        classes: shape[class_dim],
        inner: shape[class_dim + 1..].iter().product(),
        smoothing: opts.label_smoothing,
        from_logits,
        ignore_index: opts.ignore_index,
    };
    // The backend checks the targets' range as it reads them (see `backend::loss`).
    let (row_loss, lse, row_weight) = {
        let mut operands = vec![input, target];
        operands.extend(opts.weight);
        let locks = StorageLocks::read(&operands);
        let w = opts.weight.map(|w| (locks.get(2), w.layout()));
        locks
            .get(0)
            .cross_entropy_forward(input.layout(), locks.get(1), target.layout(), w, &p)?
    };
    let lse_len = if from_logits { p.rows() } else { 0 };
    let row_loss = Tensor::from_storage(row_loss, &[p.rows()]);
    let lse = Tensor::from_storage(lse, &[lse_len]);
    let reduction = opts.reduction;
    // The mean's denominator, Σ w[t] over the non-ignored targets, stays on the device.
    let denominator = match reduction {
        Reduction::Mean => Some(Tensor::from_storage(row_weight, &[p.rows()]).sum_all()?),
        _ => None,
    };
    let loss = match &denominator {
        Option::None if reduction == Reduction::None => row_loss.reshape(target.shape())?,
        Option::None => row_loss.sum_all()?,
        Some(d) => row_loss.sum_all()?.div(d)?,
    }
    .to_dtype(input.dtype())?;
    let weight = opts.weight.map(Tensor::detach);
    let weight_total = match &weight {
        Some(w) if p.smoothing > 0.0 => Some(w.sum_all()?),
        _ => Option::None,
    };
    let (x, t) = (input.detach(), target.detach());
    let stat = lse.dtype();
    Ok(record(loss, op, &[input], move |_, g| {
        let mut g = g.to_dtype(stat)?;
        if let Some(d) = &denominator {
            g = g.div(d)?;
        }
        let mut operands = vec![&x, &t, &lse, &g];
        operands.extend(weight.as_ref());
        operands.extend(weight_total.as_ref());
        let locks = StorageLocks::read(&operands);
        let w = weight.as_ref().map(|w| (locks.get(4), w.layout()));
        let w_total = weight_total
            .as_ref()
            .map(|s| (locks.get(operands.len() - 1), s.layout()));
        let grad = locks.get(0).cross_entropy_backward(
            x.layout(),
            locks.get(1),
            t.layout(),
            w,
            w_total,
            locks.get(2),
            locks.get(3),
            g.layout(),
            reduction == Reduction::None,
            &p,
        )?;
        drop(locks);
        Ok(vec![Some(Tensor::from_storage(grad, x.shape()))])
    }))
}

/// Mean of the squared differences between `input` and `target`, which must have the
/// same shape, dtype and device: PyTorch's `F.mse_loss(input, target)`. Both inputs
/// get gradients.
pub fn mse_loss(input: &Tensor, target: &Tensor) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([input, target], [], |[x, t], []| mse_loss(x, t))
    {
        return y;
    }
    input.check_float("mse_loss")?;
    input.check_same_device("mse_loss", target)?;
    input.check_same_dtype("mse_loss", target)?;
    if input.shape() != target.shape() {
        return Err(Error::arg(
            "target",
            format!(
                "mse_loss needs target of the input's shape {:?}, got {:?}",
                input.shape(),
                target.shape()
            ),
        ));
    }
    let diff = input.sub(target)?;
    diff.mul(&diff)?.mean_all()
}

/// Validates a class-index target's dtype and shape against `input` and returns the
/// class dimension (the indices' range is checked by the loss primitive itself).
fn check_class_target(input: &Tensor, target: &Tensor, op: &'static str) -> Result<usize> {
    input.check_float(op)?;
    input.check_same_device(op, target)?;
    if target.dtype() != DType::I64 {
        return Err(Error::arg(
            "target",
            format!(
                "{op} needs class indices of dtype I64, got {:?}",
                target.dtype()
            ),
        ));
    }
    if input.rank() == 0 {
        return Err(Error::arg(
            "input",
            format!("{op} needs an input of shape (C), (N, C) or (N, C, d1, ..), got a scalar"),
        ));
    }
    let class_dim = usize::from(input.rank() >= 2);
    let mut expected = input.shape().to_vec();
    expected.remove(class_dim);
    if target.shape() != expected.as_slice() {
        return Err(Error::arg(
            "target",
            format!(
                "{op}: input of shape {:?} needs a target of shape {expected:?}, got {:?}",
                input.shape(),
                target.shape()
            ),
        ));
    }
    Ok(class_dim)
}
