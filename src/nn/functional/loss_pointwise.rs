//! Pointwise losses between an input and a target of one shape: `binary_cross_entropy`
//! (with class weights), `binary_cross_entropy_with_logits` (with `pos_weight`),
//! `l1_loss`, `smooth_l1_loss`, `huber_loss`, `kl_div` and `mse_loss_with`, each with
//! PyTorch's reductions.
//!
//! A loss whose per-element value has a branch is one fused elementwise primitive
//! forward and one backward (binary cross entropy; smooth L1, Huber and L1 of the
//! difference): a pass each way instead of the several of a composition. BCE with
//! logits and KL divergence are PyTorch's own compositions (`log_sigmoid`, `xlogy`),
//! which keep them stable and give PyTorch's gradients, NaN included where PyTorch's
//! is NaN.

use super::activation::pointwise_with;
use super::{log_sigmoid, Reduction};
use crate::autograd::record;
use crate::backend::elementwise::{BinaryOp, UnaryOp};
use crate::tensor::StorageLocks;
use crate::{Error, Result, Tensor};

/// Options of [`binary_cross_entropy`]: a `weight` rescaling each element's loss
/// (broadcast to the target's shape) and the reduction (mean by default), PyTorch's
/// keyword arguments.
#[derive(Debug, Clone, Copy, Default)]
pub struct LossOpts<'a> {
    weight: Option<&'a Tensor>,
    reduction: Reduction,
}

impl<'a> LossOpts<'a> {
    /// No weight, mean reduction.
    pub fn new() -> Self {
        Self::default()
    }

    /// A weight for each element, broadcast to the target's shape (the input's dtype
    /// and device; not differentiable, as in PyTorch).
    pub fn weight(mut self, weight: &'a Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// The reduction (default [`Reduction::Mean`]; not `BatchMean`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Options of [`binary_cross_entropy_with_logits`]: [`LossOpts`]' `weight` and
/// reduction, and `pos_weight`, the weight of the positive term (broadcast to the
/// target's shape: one per class of the last dimension).
#[derive(Debug, Clone, Copy, Default)]
pub struct BceOpts<'a> {
    weight: Option<&'a Tensor>,
    pos_weight: Option<&'a Tensor>,
    reduction: Reduction,
}

impl<'a> BceOpts<'a> {
    /// No weights, mean reduction.
    pub fn new() -> Self {
        Self::default()
    }

    /// A weight for each element, as [`LossOpts::weight`].
    pub fn weight(mut self, weight: &'a Tensor) -> Self {
        self.weight = Some(weight);
        self
    }

    /// The weight of the positive term `t·ln σ(z)`, broadcast to the target's shape
    /// (not differentiable, as in PyTorch).
    pub fn pos_weight(mut self, pos_weight: &'a Tensor) -> Self {
        self.pos_weight = Some(pos_weight);
        self
    }

    /// The reduction (default [`Reduction::Mean`]; not `BatchMean`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }
}

/// Binary cross entropy between probabilities `input` and targets of its shape:
/// PyTorch's `F.binary_cross_entropy(input, target, weight, reduction)`, elementwise
/// `-w·(t·ln p + (1 - t)·ln(1 - p))` with each logarithm clamped at -100 (so `p = 0`
/// or 1 gives a finite loss, as in PyTorch). Gradients flow to `input`
/// (`(p - t)/max(p(1 - p), 1e-12)`) and `target` (`-logit(p)`).
///
/// Inputs outside `[0, 1]` give NaN where PyTorch raises (the check would read the
/// tensor back from the device). Errs when the shapes, dtypes or devices differ, the
/// weight does not broadcast to the target or requires a gradient, the reduction is
/// `BatchMean`, or inside autocast (PyTorch's rule: the op is unsafe in half
/// precision; use [`binary_cross_entropy_with_logits`]).
pub fn binary_cross_entropy(input: &Tensor, target: &Tensor, opts: LossOpts) -> Result<Tensor> {
    const OP: &str = "binary_cross_entropy";
    let _op = crate::profiler::op(OP, &[input, target]);
    if crate::tensor::autocast::is_autocast_enabled() {
        return Err(Error::arg(
            "input",
            "binary_cross_entropy is unsafe to autocast (PyTorch refuses it too); use binary_cross_entropy_with_logits",
        ));
    }
    check_pair(input, target, OP)?;
    let weight = constant_operand(opts.weight, target, "weight", OP)?;
    check_reduction(opts.reduction, OP)?;
    let out = {
        let locks = StorageLocks::read(&[input, target]);
        let out = locks.get(0).binary(
            BinaryOp::BinaryCrossEntropy,
            input.layout(),
            locks.get(1),
            target.layout(),
        )?;
        Tensor::from_storage(out, input.shape())
    };
    let (p, t) = (input.detach(), target.detach());
    let out = record(out, OP, &[input, target], move |_, g| {
        let slope = {
            let locks = StorageLocks::read(&[&p, &t]);
            let s = locks.get(0).binary(
                BinaryOp::BinaryCrossEntropyGrad,
                p.layout(),
                locks.get(1),
                t.layout(),
            )?;
            Tensor::from_storage(s, p.shape())
        };
        // d/dt = -logit(p) = -ln(p / (1 - p)), as PyTorch's target backward.
        let logit = p.div(&p.neg()?.add_scalar(1.0)?)?.log()?;
        Ok(vec![Some(g.mul(&slope)?), Some(g.mul(&logit)?.neg()?)])
    });
    reduce(weighted(out, weight.as_ref())?, opts.reduction)
}

/// Binary cross entropy of logits `input` (`z`) against targets of its shape:
/// PyTorch's `F.binary_cross_entropy_with_logits(input, target, weight, reduction,
/// pos_weight)`, elementwise `-w·(pw·t·ln σ(z) + (1 - t)·ln(1 - σ(z)))`, computed as
/// PyTorch does from `ln σ(z)` ([`log_sigmoid`], stable for any `z`):
/// `(1 - t)·z - (1 + (pw - 1)·t)·ln σ(z)`. On autocast's f32 list. Gradients flow to
/// `input` and `target`.
///
/// Errs when the shapes, dtypes or devices differ, a weight does not broadcast to
/// the target or requires a gradient, or the reduction is `BatchMean`.
pub fn binary_cross_entropy_with_logits(
    input: &Tensor,
    target: &Tensor,
    opts: BceOpts,
) -> Result<Tensor> {
    const OP: &str = "binary_cross_entropy_with_logits";
    if let Some(y) = crate::tensor::autocast::fp32(
        [input, target],
        [opts.weight, opts.pos_weight],
        |[z, t], [w, pw]| {
            binary_cross_entropy_with_logits(
                z,
                t,
                BceOpts {
                    weight: w,
                    pos_weight: pw,
                    ..opts
                },
            )
        },
    ) {
        return y;
    }
    check_pair(input, target, OP)?;
    let weight = constant_operand(opts.weight, target, "weight", OP)?;
    let pos_weight = constant_operand(opts.pos_weight, target, "pos_weight", OP)?;
    check_reduction(opts.reduction, OP)?;
    let mut log_sig = log_sigmoid(input)?;
    if let Some(pw) = &pos_weight {
        let log_weight = pw.add_scalar(-1.0)?.mul(target)?.add_scalar(1.0)?;
        log_sig = log_sig.mul(&log_weight)?;
    }
    let loss = target.neg()?.add_scalar(1.0)?.mul(input)?.sub(&log_sig)?;
    reduce(weighted(loss, weight.as_ref())?, opts.reduction)
}

/// Mean (or sum, or none) of `|input - target|`: PyTorch's `F.l1_loss(input, target,
/// reduction)`. The gradient is `sign(input - target)` (0 where they are equal).
/// Errs when the shapes, dtypes or devices differ or the reduction is `BatchMean`.
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    difference_loss(
        input,
        target,
        reduction,
        "l1_loss",
        UnaryOp::Abs,
        UnaryOp::Sign,
    )
}

/// Smooth L1 loss: PyTorch's `F.smooth_l1_loss(input, target, reduction, beta)`,
/// elementwise `0.5·d²/β` where `|d| < β` (`d = input - target`), else `|d| - 0.5·β`;
/// `β = 0` is [`l1_loss`], as in PyTorch. On autocast's f32 list. Errs when `beta` is
/// negative or NaN, and as [`l1_loss`].
pub fn smooth_l1_loss(
    input: &Tensor,
    target: &Tensor,
    beta: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    if beta.is_nan() || beta < 0.0 {
        return Err(Error::arg(
            "beta",
            format!("smooth_l1_loss needs beta >= 0, got {beta}"),
        ));
    }
    if beta == 0.0 {
        return l1_loss(input, target, reduction);
    }
    difference_loss(
        input,
        target,
        reduction,
        "smooth_l1_loss",
        UnaryOp::SmoothL1(beta),
        UnaryOp::SmoothL1Grad(beta),
    )
}

/// Huber loss: PyTorch's `F.huber_loss(input, target, reduction, delta)`, elementwise
/// `0.5·d²` where `|d| < δ` (`d = input - target`), else `δ·(|d| - 0.5·δ)`. On
/// autocast's f32 list. Errs when `delta` is not positive (or NaN), and as
/// [`l1_loss`].
pub fn huber_loss(
    input: &Tensor,
    target: &Tensor,
    delta: f64,
    reduction: Reduction,
) -> Result<Tensor> {
    if delta.is_nan() || delta <= 0.0 {
        return Err(Error::arg(
            "delta",
            format!("huber_loss needs delta > 0, got {delta}"),
        ));
    }
    difference_loss(
        input,
        target,
        reduction,
        "huber_loss",
        UnaryOp::Huber(delta),
        UnaryOp::HuberGrad(delta),
    )
}

/// [`super::mse_loss`] with a reduction: PyTorch's `F.mse_loss(input, target,
/// reduction)`. Errs as [`l1_loss`].
pub fn mse_loss_with(input: &Tensor, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([input, target], [], |[x, t], []| {
        mse_loss_with(x, t, reduction)
    }) {
        return y;
    }
    check_pair(input, target, "mse_loss")?;
    check_reduction(reduction, "mse_loss")?;
    reduce(input.sub(target)?.square()?, reduction)
}

/// The Kullback-Leibler divergence of `target` from `input`, PyTorch's
/// `F.kl_div(input, target, reduction, log_target)`: `input` holds log-probabilities
/// and `target` probabilities (log-probabilities with `log_target`); elementwise
/// `t·(ln t - input)` (0 where `t = 0`, as PyTorch's `xlogy`), or
/// `e^t·(t - input)` with `log_target`. [`Reduction::BatchMean`] (the mathematical
/// KL divergence) divides the sum by the batch size `input.shape[0]`;
/// [`Reduction::Mean`] divides by the number of elements, as PyTorch's. On
/// autocast's f32 list. Gradients flow to both (the target's is NaN where `t = 0`,
/// as PyTorch's).
///
/// Errs when the shapes, dtypes or devices differ.
pub fn kl_div(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    log_target: bool,
) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([input, target], [], |[x, t], []| {
        kl_div(x, t, reduction, log_target)
    }) {
        return y;
    }
    check_pair(input, target, "kl_div")?;
    let loss = if log_target {
        target.exp()?.mul(&target.sub(input)?)?
    } else {
        // xlogy(t, t): t·ln t, and 0 where t = 0.
        let t_log_t = target.mul(&target.log()?)?;
        let zero = Tensor::zeros(&[], target.dtype(), &target.device())?;
        let xlogy = target.eq_scalar(0.0)?.where_cond(&zero, &t_log_t)?;
        xlogy.sub(&target.mul(input)?)?
    };
    match reduction {
        Reduction::BatchMean => {
            let batch = input.shape().first().copied().unwrap_or(1);
            loss.sum_all()?.div_scalar(batch as f64)
        }
        other => reduce(loss, other),
    }
}

/// A loss of `d = input - target` by the primitive `op`, whose derivative is
/// `grad_op`.
fn difference_loss(
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    name: &'static str,
    op: UnaryOp,
    grad_op: UnaryOp,
) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([input, target], [], |[x, t], []| {
        difference_loss(x, t, reduction, name, op, grad_op)
    }) {
        return y;
    }
    check_pair(input, target, name)?;
    check_reduction(reduction, name)?;
    reduce(
        pointwise_with(&input.sub(target)?, op, grad_op, name)?,
        reduction,
    )
}

/// Err unless `input` is a float tensor and `target` has its shape, dtype and device.
fn check_pair(input: &Tensor, target: &Tensor, op: &'static str) -> Result<()> {
    input.check_float(op)?;
    input.check_same_device(op, target)?;
    input.check_same_dtype(op, target)?;
    if input.shape() != target.shape() {
        return Err(Error::arg(
            "target",
            format!(
                "{op} needs a target of the input's shape {:?}, got {:?}",
                input.shape(),
                target.shape()
            ),
        ));
    }
    Ok(())
}

/// A weight operand: broadcast to the target's shape, of its dtype and device, and
/// not requiring a gradient (PyTorch's losses do not differentiate their weights and
/// refuse one that asks). Returned detached.
fn constant_operand(
    w: Option<&Tensor>,
    target: &Tensor,
    name: &'static str,
    op: &'static str,
) -> Result<Option<Tensor>> {
    let Some(w) = w else { return Ok(None) };
    target.check_same_device(op, w)?;
    target.check_same_dtype(op, w)?;
    if w.requires_grad_flag() {
        return Err(Error::arg(
            name,
            format!("{op} is not differentiable in {name}, which must not require a gradient"),
        ));
    }
    w.broadcast_as(target.shape()).map_err(|_| {
        Error::arg(
            name,
            format!(
                "{op}: {name} of shape {:?} does not broadcast to the target's shape {:?}",
                w.shape(),
                target.shape()
            ),
        )
    })?;
    Ok(Some(w.detach()))
}

/// `loss·weight` (broadcast), or `loss` without a weight.
fn weighted(loss: Tensor, weight: Option<&Tensor>) -> Result<Tensor> {
    match weight {
        Some(w) => loss.mul(w),
        None => Ok(loss),
    }
}

/// Err naming `reduction` for [`Reduction::BatchMean`], which only `kl_div` takes.
pub(super) fn check_reduction(reduction: Reduction, op: &'static str) -> Result<()> {
    if reduction == Reduction::BatchMean {
        return Err(Error::arg(
            "reduction",
            format!("{op} does not take BatchMean (only kl_div does)"),
        ));
    }
    Ok(())
}

/// `loss` reduced: as it is, its mean or its sum (BatchMean is `kl_div`'s own).
fn reduce(loss: Tensor, reduction: Reduction) -> Result<Tensor> {
    match reduction {
        Reduction::None => Ok(loss),
        Reduction::Mean => loss.mean_all(),
        Reduction::Sum => loss.sum_all(),
        Reduction::BatchMean => check_reduction(reduction, "loss").map(|_| loss),
    }
}
