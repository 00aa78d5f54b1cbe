//! Losses with mean reduction: `cross_entropy` (with optional label smoothing),
//! `nll_loss` and `mse_loss`.
//!
//! Class targets are I64 indices. The input is `(C)` with a rank-0 target, `(N, C)`
//! with an `(N)` target, or `(N, C, d1, ..)` with an `(N, d1, ..)` target, the class
//! dimension being 1 (0 for a 1-D input), as in PyTorch. The mean is over every
//! target. PyTorch's `ignore_index` and class `weight` are not supported: a negative
//! target is an error rather than a skipped sample.

use super::softmax::softmax_forward;
use crate::autograd::record;
use crate::{DType, Error, Result, Tensor};

/// Cross entropy between `logits` (unnormalised scores) and class indices `target`,
/// averaged over the targets: PyTorch's `F.cross_entropy(logits, target)`.
///
/// Errs when `target` is not I64, its shape does not match `logits` without the class
/// dimension, or an index is outside `0..C`; or when the dtypes or devices disagree.
pub fn cross_entropy(logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    cross_entropy_with(logits, target, 0.0)
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
    const NAME: &str = "cross_entropy";
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::arg(
            "label_smoothing",
            format!("must be in [0, 1], got {label_smoothing}"),
        ));
    }
    let class_dim = check_class_target(logits, target, NAME)?;
    let classes = logits.shape()[class_dim];
    let count = target.numel() as f64;
    let log_probs = softmax_forward(logits, class_dim, true, NAME)?;
    let one_hot = log_probs.one_hot_along(class_dim, &target.unsqueeze(class_dim)?)?;
    // The smoothed target distribution q; with no smoothing it is the one-hot itself.
    let q = if label_smoothing > 0.0 {
        one_hot
            .mul_scalar(1.0 - label_smoothing)?
            .add_scalar(label_smoothing / classes as f64)?
    } else {
        one_hot
    };
    let loss = q.mul(&log_probs)?.sum_all()?.div_scalar(-count)?;
    Ok(record(loss, NAME, &[logits], move |_, g| {
        // d/d logits of -sum(q * log_softmax) / count = (softmax - q) / count.
        let scale = g.div_scalar(count)?;
        Ok(vec![Some(log_probs.exp()?.sub(&q)?.mul(&scale)?)])
    }))
}

/// Negative log-likelihood of class indices `target` under `log_probs` (for example
/// the output of `log_softmax`), averaged over the targets: PyTorch's
/// `F.nll_loss(log_probs, target)`. Errors as [`cross_entropy`].
pub fn nll_loss(log_probs: &Tensor, target: &Tensor) -> Result<Tensor> {
    const NAME: &str = "nll_loss";
    let class_dim = check_class_target(log_probs, target, NAME)?;
    let count = target.numel() as f64;
    let one_hot = log_probs.one_hot_along(class_dim, &target.unsqueeze(class_dim)?)?;
    let loss = one_hot
        .mul(&log_probs.detach())?
        .sum_all()?
        .div_scalar(-count)?;
    Ok(record(loss, NAME, &[log_probs], move |_, g| {
        Ok(vec![Some(one_hot.mul(&g.div_scalar(-count)?)?)])
    }))
}

/// Mean of the squared differences between `input` and `target`, which must have the
/// same shape, dtype and device: PyTorch's `F.mse_loss(input, target)`. Both inputs
/// get gradients.
pub fn mse_loss(input: &Tensor, target: &Tensor) -> Result<Tensor> {
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

/// Validates a class-index target against `input` and returns the class dimension.
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
    let classes = expected.remove(class_dim);
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
    if target.numel() > 0 {
        let flat = target.reshape(&[target.numel()])?;
        let low = flat.min(0, false)?.item::<i64>()?;
        let high = flat.max(0, false)?.item::<i64>()?;
        if low < 0 || high >= classes as i64 {
            let bad = if low < 0 { low } else { high };
            return Err(Error::arg(
                "target",
                format!(
                    "{op}: class index {bad} is out of range for {classes} classes (valid: 0..={})",
                    classes as i64 - 1
                ),
            ));
        }
    }
    Ok(class_dim)
}
