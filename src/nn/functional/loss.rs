//! Losses with mean reduction: `cross_entropy` (with optional label smoothing),
//! `nll_loss` and `mse_loss`.
//!
//! Class targets are I64 indices. The input is `(C)` with a rank-0 target, `(N, C)`
//! with an `(N)` target, or `(N, C, d1, ..)` with an `(N, d1, ..)` target, the class
//! dimension being 1 (0 for a 1-D input), as in PyTorch. The mean is over every
//! target. Cross entropy and nll run on the fused primitives of `backend::loss` (a
//! per-row log-softmax, never a one-hot). PyTorch's `ignore_index` and class `weight`
//! are not supported: a negative target is an error rather than a skipped sample.

use crate::autograd::record;
use crate::backend::CrossEntropyParams;
use crate::tensor::StorageLocks;
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
    if let Some(y) = crate::amp::fp32([logits, target], [], |[l, t], []| {
        cross_entropy_with(l, t, label_smoothing)
    }) {
        return y;
    }
    if !(0.0..=1.0).contains(&label_smoothing) {
        return Err(Error::arg(
            "label_smoothing",
            format!("must be in [0, 1], got {label_smoothing}"),
        ));
    }
    class_loss(logits, target, label_smoothing, true)
}

/// Negative log-likelihood of class indices `target` under `log_probs` (for example
/// the output of `log_softmax`), averaged over the targets: PyTorch's
/// `F.nll_loss(log_probs, target)`. Errors as [`cross_entropy`].
pub fn nll_loss(log_probs: &Tensor, target: &Tensor) -> Result<Tensor> {
    if let Some(y) = crate::amp::fp32([log_probs, target], [], |[l, t], []| nll_loss(l, t)) {
        return y;
    }
    class_loss(log_probs, target, 0.0, false)
}

/// [`cross_entropy_with`] (`from_logits`) or [`nll_loss`] on the fused primitives of
/// `backend::loss`: per-row losses reduced to their mean here, and a backward that
/// rebuilds the softmax from the saved per-row logsumexp.
fn class_loss(
    input: &Tensor,
    target: &Tensor,
    smoothing: f64,
    from_logits: bool,
) -> Result<Tensor> {
    let op = if from_logits {
        "cross_entropy"
    } else {
        "nll_loss"
    };
    let class_dim = check_class_target(input, target, op)?;
    let shape = input.shape();
    let p = CrossEntropyParams {
        outer: shape[..class_dim].iter().product(),
        classes: shape[class_dim],
        inner: shape[class_dim + 1..].iter().product(),
        smoothing,
        from_logits,
    };
    // The backend checks the targets' range as it reads them (see `backend::loss`).
    let locks = StorageLocks::read(&[input, target]);
    let (row_loss, lse) =
        locks
            .get(0)
            .cross_entropy_forward(input.layout(), locks.get(1), target.layout(), &p)?;
    drop(locks);
    let lse_len = if from_logits { p.rows() } else { 0 };
    let count = target.numel() as f64;
    let loss = Tensor::from_storage(row_loss, &[p.rows()])
        .sum_all()?
        .div_scalar(count)?
        .to_dtype(input.dtype())?;
    let lse = Tensor::from_storage(lse, &[lse_len]);
    let (x, t) = (input.detach(), target.detach());
    Ok(record(loss, op, &[input], move |_, g| {
        let locks = StorageLocks::read(&[&x, &t, &lse, g]);
        let grad = locks.get(0).cross_entropy_backward(
            x.layout(),
            locks.get(1),
            t.layout(),
            locks.get(2),
            locks.get(3),
            g.layout(),
            1.0 / count,
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
    if let Some(y) = crate::amp::fp32([input, target], [], |[x, t], []| mse_loss(x, t)) {
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
