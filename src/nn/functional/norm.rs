//! `batch_norm`: per-channel normalisation of `(N, C)` or `(N, C, *)` inputs;
//! `layer_norm` and `rms_norm`: per-row normalisation over trailing dimensions (see
//! [`layer_norm`]).
//!
//! The input is viewed as `(N, C, S)` with `S` the product of the spatial sizes, so
//! the statistics of channel `c` are over its `N·S` values. Forward and backward are
//! the fused primitives of `backend::norm` (statistics, normalisation, and a backward
//! that computes the per-channel sums and `grad_x` together); the running-statistics
//! update is a handful of tensor ops on `(C)` vectors. The backward uses the closed
//! form of the gradient rather than differentiating through the mean and variance, so
//! it keeps only `x`, the mean and the variance.

use crate::autograd::record;
use crate::backend::norm::{BatchNormParams, LayerNormParams};
use crate::backend::Storage;
use crate::shape::Layout;
use crate::tensor::StorageLocks;
use crate::{DType, Error, Result, Tensor};

/// Batch normalisation, PyTorch's `F.batch_norm(x, running_mean, running_var, weight,
/// bias, training, momentum, eps)`.
///
/// `x` is `(N, C)` or `(N, C, *)`; `running_mean`, `running_var`, `weight` (γ) and
/// `bias` (β) are `(C)` tensors of `x`'s dtype and device. The output is
/// `(x - μ) / √(σ² + eps) · γ + β`, where:
///
/// * when `training`, μ and σ² are the batch's per-channel mean and biased variance,
///   and the running statistics are updated **in place**:
///   `running = (1 - momentum)·running + momentum·batch`, using the unbiased variance
///   (`σ²·n/(n-1)`) for `running_var`, as PyTorch does;
/// * otherwise μ and σ² are `running_mean` and `running_var`, which are not changed.
///
/// Gradients flow to `x`, `weight` and `bias` (not to the running statistics).
/// Errs when `x` has rank < 2 or (training) one value per channel, when a `(C)`
/// tensor has another size, dtype or device, when `momentum` is outside `[0, 1]`, or
/// when `eps` is negative or not finite.
#[allow(clippy::too_many_arguments)] // PyTorch's signature, argument for argument
pub fn batch_norm(
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32_keep_dtype([x], [weight, bias], |[x], [w, b]| {
        batch_norm(x, running_mean, running_var, w, b, training, momentum, eps)
    }) {
        return y;
    }
    let _op = crate::profiler::op("batch_norm", &[x]);
    x.check_float("batch_norm")?;
    if x.rank() < 2 {
        return Err(Error::arg(
            "input",
            format!(
                "batch_norm needs an input of shape (N, C) or (N, C, *), got {:?}",
                x.shape()
            ),
        ));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let s: usize = x.shape()[2..].iter().product();
    check_channel_param(x, running_mean, "running_mean", "batch_norm: running_mean")?;
    check_channel_param(x, running_var, "running_var", "batch_norm: running_var")?;
    if let Some(w) = weight {
        check_channel_param(x, w, "weight", "batch_norm: weight")?;
    }
    if let Some(b) = bias {
        check_channel_param(x, b, "bias", "batch_norm: bias")?;
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::arg(
            "momentum",
            format!("must be in [0, 1], got {momentum}"),
        ));
    }
    check_eps(eps)?;
    let count = n * s;
    if training && count <= 1 {
        return Err(Error::arg(
            "input",
            format!(
                "batch_norm in training needs more than 1 value per channel, got input of shape {:?}",
                x.shape()
            ),
        ));
    }

    let p = BatchNormParams { n, c, s, eps };
    // The statistics the output is normalised with, in the compute dtype (see
    // `backend::norm`): the batch's, or fresh copies of the running ones (copies, so a
    // later in-place update of the running statistics cannot change the backward pass).
    let stat_dtype = if x.dtype() == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let (mean, var) = if training {
        let (mean, var) = x.storage().batch_norm_stats(x.layout(), &p)?;
        let (mean, var) = (
            Tensor::from_storage(mean, &[c]),
            Tensor::from_storage(var, &[c]),
        );
        // Activation checkpointing's second run of this forward must not update the
        // statistics again (PyTorch's checkpoint does: momentum applied twice).
        if !crate::utils::is_recomputing() {
            update_running(running_mean, &mean, momentum)?;
            let unbiased = var.mul_scalar(count as f64 / (count - 1) as f64)?;
            update_running(running_var, &unbiased, momentum)?;
        }
        (mean, var)
    } else {
        let copy = |t: &Tensor| -> Result<Tensor> {
            Ok(Tensor::from_storage(
                t.storage().copy_as(t.layout(), stat_dtype)?,
                &[c],
            ))
        };
        (copy(running_mean)?, copy(running_var)?)
    };
    let y = {
        // One lock per distinct storage, in address order (see `tensor::locks`).
        let mut operands = vec![x, &mean, &var];
        operands.extend(weight);
        operands.extend(bias);
        let locks = StorageLocks::read(&operands);
        let w = weight.map(|t| (locks.get(3), t.layout()));
        let b = bias.map(|t| (locks.get(operands.len() - 1), t.layout()));
        locks
            .get(0)
            .batch_norm_apply(x.layout(), locks.get(1), locks.get(2), w, b, &p)?
    };
    let y = Tensor::from_storage(y, x.shape());

    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let x_saved = x.detach();
    let wants_x = x.requires_grad_flag();
    let gamma = weight.map(Tensor::detach);
    let has_bias = bias.is_some();
    Ok(record(y, "batch_norm", &inputs, move |_, g| {
        let mut operands = vec![g, &x_saved, &mean, &var];
        operands.extend(gamma.as_ref());
        let locks = StorageLocks::read(&operands);
        let w = gamma.as_ref().map(|t| (locks.get(4), t.layout()));
        let (dx, grad_weight, grad_bias) = locks.get(0).batch_norm_backward(
            g.layout(),
            locks.get(1),
            x_saved.layout(),
            locks.get(2),
            locks.get(3),
            w,
            training,
            &p,
        )?;
        drop(locks);
        let mut grads = Vec::with_capacity(3);
        grads.push(wants_x.then(|| Tensor::from_storage(dx, x_saved.shape())));
        if gamma.is_some() {
            grads.push(Some(Tensor::from_storage(grad_weight, &[c])));
        }
        if has_bias {
            grads.push(Some(Tensor::from_storage(grad_bias, &[c])));
        }
        Ok(grads)
    }))
}

/// `running = (1 - momentum)·running + momentum·batch`, written into `running`'s
/// storage; `batch` (in the compute dtype) is converted to `running`'s dtype first.
pub(super) fn update_running(running: &Tensor, batch: &Tensor, momentum: f64) -> Result<()> {
    let _no_grad = crate::no_grad();
    let updated = running
        .detach()
        .mul_scalar(1.0 - momentum)?
        .add(&batch.to_dtype(running.dtype())?.mul_scalar(momentum)?)?;
    running.copy_(&updated)
}

/// Err naming `eps` unless it is finite and ≥ 0.
pub(crate) fn check_eps(eps: f64) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(Error::arg(
            "eps",
            format!("must be finite and >= 0, got {eps}"),
        ))
    }
}

/// Err unless `t` is a `(C)` tensor with `x`'s dtype and device (`op` names the
/// op and the operand, `"batch_norm: weight"`).
pub(super) fn check_channel_param(
    x: &Tensor,
    t: &Tensor,
    name: &'static str,
    op: &'static str,
) -> Result<()> {
    x.check_same_device(op, t)?;
    x.check_same_dtype(op, t)?;
    let c = x.shape()[1];
    if t.shape() != [c] {
        return Err(Error::arg(
            name,
            format!(
                "{op} must be a ({c}) tensor for an input with {c} channels, got shape {:?}",
                t.shape()
            ),
        ));
    }
    Ok(())
}

/// Layer normalisation over the trailing dimensions `normalized_shape`: PyTorch's
/// `F.layer_norm(x, normalized_shape, weight, bias, eps)`.
///
/// Each row of the trailing `normalized_shape` values is normalised with its own mean
/// and biased variance, `(x - μ) / √(σ² + eps)`, then scaled by `weight` and shifted
/// by `bias` (both of shape `normalized_shape`, `x`'s dtype and device; 1 and 0 when
/// absent). Statistics are in f32 for f16/bf16 inputs. Gradients flow to `x`,
/// `weight` and `bias`; the backward is one fused pass (see `kernels/norm.cu`).
///
/// Errs when `x` is not a float tensor, `normalized_shape` is empty or is not the
/// end of `x`'s shape, `weight`/`bias` have another shape, dtype or device, or `eps`
/// is negative or not finite.
pub fn layer_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    row_norm(x, normalized_shape, weight, bias, eps, false)
}

/// RMS normalisation over the trailing dimensions `normalized_shape`: PyTorch's
/// `F.rms_norm(x, normalized_shape, weight, eps)`, `x / √(mean(x²) + eps) · weight`.
///
/// `eps: None` is PyTorch's default: the machine epsilon of the computation, which
/// PyTorch takes from its compute ("opmath") type, so f32's
/// `f32::EPSILON` (≈ 1.19e-7) for f32, f16 and bf16 inputs and `f64::EPSILON` for
/// f64. Errors as [`layer_norm`].
pub fn rms_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    eps: Option<f64>,
) -> Result<Tensor> {
    let eps = eps.unwrap_or(if x.dtype() == DType::F64 {
        f64::EPSILON
    } else {
        f32::EPSILON as f64
    });
    row_norm(x, normalized_shape, weight, None, eps, true)
}

/// [`layer_norm`] (`rms` false) or [`rms_norm`] on the fused primitives of
/// `backend::norm`.
fn row_norm(
    x: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
    rms: bool,
) -> Result<Tensor> {
    // Layer and RMS norm are on autocast's f32 list.
    if let Some(y) = crate::tensor::autocast::fp32([x], [weight, bias], |[x], [w, b]| {
        row_norm(x, normalized_shape, w, b, eps, rms)
    }) {
        return y;
    }
    let op = if rms { "rms_norm" } else { "layer_norm" };
    x.check_float(op)?;
    let rank = x.rank();
    let k = normalized_shape.len();
    if k == 0 || k > rank || x.shape()[rank - k..] != *normalized_shape {
        return Err(Error::arg(
            "normalized_shape",
            format!(
                "{op}: {normalized_shape:?} must be non-empty and end the input's shape {:?}",
                x.shape()
            ),
        ));
    }
    for (t, name) in [(weight, "weight"), (bias, "bias")] {
        if let Some(t) = t {
            x.check_same_device(op, t)?;
            x.check_same_dtype(op, t)?;
            if t.shape() != normalized_shape {
                return Err(Error::arg(
                    name,
                    format!(
                        "{op} needs a {name} of shape normalized_shape {normalized_shape:?}, got {:?}",
                        t.shape()
                    ),
                ));
            }
        }
    }
    check_eps(eps)?;
    let d: usize = normalized_shape.iter().product();
    let p = LayerNormParams {
        rows: x.shape()[..rank - k].iter().product(),
        d,
        eps,
        rms,
    };
    let stat_rows = [if rms { 0 } else { p.rows }, p.rows];
    saved_stats_norm(
        op,
        x,
        [weight, bias],
        stat_rows,
        normalized_shape.to_vec(),
        |x, layout, w, b| x.layer_norm_forward(layout, w, b, &p),
        move |g, gl, x, xl, mean, rstd, w| g.layer_norm_backward(gl, x, xl, mean, rstd, w, &p),
    )
}

/// A storage operand at its layout, or none.
type Operand<'a> = Option<(&'a Storage, &'a Layout)>;

/// A norm with saved per-row statistics (layer, RMS and group norm) after its checks:
/// `forward(x, layout, weight, bias)` runs its fused forward primitive, giving `(y,
/// mean, rstd)` (the statistics `stat_rows` long), and the recorded backward runs
/// `backward(g, g_layout, x, x_layout, mean, rstd, weight)`, whose weight and bias
/// gradients have `param_shape`.
#[allow(clippy::type_complexity)] // the two primitives' signatures, spelled out once here
pub(super) fn saved_stats_norm(
    op: &'static str,
    x: &Tensor,
    [weight, bias]: [Option<&Tensor>; 2],
    stat_rows: [usize; 2],
    param_shape: Vec<usize>,
    forward: impl for<'a> FnOnce(
        &'a Storage,
        &'a Layout,
        Operand<'a>,
        Operand<'a>,
    ) -> Result<(Storage, Storage, Storage)>,
    backward: impl for<'a> Fn(
            &'a Storage,
            &'a Layout,
            &'a Storage,
            &'a Layout,
            &'a Storage,
            &'a Storage,
            Operand<'a>,
        ) -> Result<(Storage, Storage, Storage)>
        + Send
        + Sync
        + 'static,
) -> Result<Tensor> {
    let _op = crate::profiler::op(op, &[x]);
    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let (y, mean, rstd) = {
        let locks = StorageLocks::read(&inputs);
        let w = weight.map(|t| (locks.get(1), t.layout()));
        let b = bias.map(|t| (locks.get(inputs.len() - 1), t.layout()));
        forward(locks.get(0), x.layout(), w, b)?
    };
    let y = Tensor::from_storage(y, x.shape());
    let mean = Tensor::from_storage(mean, &[stat_rows[0]]);
    let rstd = Tensor::from_storage(rstd, &[stat_rows[1]]);

    let x_saved = x.detach();
    let w_saved = weight.map(Tensor::detach);
    let has_bias = bias.is_some();
    Ok(record(y, op, &inputs, move |_, g| {
        let mut operands = vec![g, &x_saved, &mean, &rstd];
        operands.extend(w_saved.as_ref());
        let locks = StorageLocks::read(&operands);
        let w = w_saved.as_ref().map(|t| (locks.get(4), t.layout()));
        let (dx, dw, db) = backward(
            locks.get(0),
            g.layout(),
            locks.get(1),
            x_saved.layout(),
            locks.get(2),
            locks.get(3),
            w,
        )?;
        drop(locks);
        let mut grads = vec![Some(Tensor::from_storage(dx, x_saved.shape()))];
        if w_saved.is_some() {
            grads.push(Some(Tensor::from_storage(dw, &param_shape)));
        }
        if has_bias {
            grads.push(Some(Tensor::from_storage(db, &param_shape)));
        }
        Ok(grads)
    }))
}
