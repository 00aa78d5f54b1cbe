//! `batch_norm`: per-channel normalisation of `(N, C)` or `(N, C, *)` inputs.
//!
//! The input is viewed as `(N, C, S)` with `S` the product of the spatial sizes, so
//! the statistics of channel `c` are over its `N·S` values. Forward and backward are
//! written with tensor ops (per-channel sums are two reductions), so they run on any
//! device. The backward uses the closed form of the gradient rather than
//! differentiating through the mean and variance, so it keeps only `x̂` and `1/σ`.

use crate::autograd::record;
use crate::{Error, Result, Tensor};

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
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::arg(
            "eps",
            format!("must be finite and >= 0, got {eps}"),
        ));
    }
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

    let per_channel = [1, c, 1];
    let x3 = x.detach().reshape(&[n, c, s])?;
    let (x_hat, inv_std) = if training {
        let mean = channel_sum(&x3)?.div_scalar(count as f64)?;
        let centred = x3.sub(&mean.reshape(&per_channel)?)?;
        let var = channel_sum(&centred.mul(&centred)?)?.div_scalar(count as f64)?;
        let inv_std = var.add_scalar(eps)?.powf(-0.5)?;
        update_running(running_mean, &mean, momentum)?;
        let unbiased = var.mul_scalar(count as f64 / (count - 1) as f64)?;
        update_running(running_var, &unbiased, momentum)?;
        (centred.mul(&inv_std.reshape(&per_channel)?)?, inv_std)
    } else {
        let inv_std = running_var.detach().add_scalar(eps)?.powf(-0.5)?;
        let centred = x3.sub(&running_mean.detach().reshape(&per_channel)?)?;
        (centred.mul(&inv_std.reshape(&per_channel)?)?, inv_std)
    };
    let mut y = x_hat.clone();
    if let Some(w) = weight {
        y = y.mul(&w.detach().reshape(&per_channel)?)?;
    }
    if let Some(b) = bias {
        y = y.add(&b.detach().reshape(&per_channel)?)?;
    }
    let y = y.reshape(x.shape())?;

    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    let x_shape = x.shape().to_vec();
    let wants_x = x.requires_grad_flag();
    let gamma = weight.map(Tensor::detach);
    let has_bias = bias.is_some();
    Ok(record(y, "batch_norm", &inputs, move |_, g| {
        let g3 = g.reshape(&[n, c, s])?;
        let grad_bias = channel_sum(&g3)?;
        let grad_weight = channel_sum(&g3.mul(&x_hat)?)?;
        let mut grads = Vec::with_capacity(3);
        grads.push(if wants_x {
            // γ/σ per channel; without a weight, γ = 1.
            let scale = match &gamma {
                Some(w) => w.mul(&inv_std)?,
                None => inv_std.clone(),
            }
            .reshape(&per_channel)?;
            let dx = if training {
                // The batch statistics depend on x too:
                // dx = γ/σ · (g - mean(g) - x̂·mean(g·x̂)), means per channel.
                let m = count as f64;
                let mean_g = grad_bias.div_scalar(m)?.reshape(&per_channel)?;
                let mean_gx = grad_weight.div_scalar(m)?.reshape(&per_channel)?;
                g3.sub(&mean_g)?.sub(&x_hat.mul(&mean_gx)?)?.mul(&scale)?
            } else {
                g3.mul(&scale)?
            };
            Some(dx.reshape(&x_shape)?)
        } else {
            None
        });
        if gamma.is_some() {
            grads.push(Some(grad_weight));
        }
        if has_bias {
            grads.push(Some(grad_bias));
        }
        Ok(grads)
    }))
}

/// Sum of an `(N, C, S)` tensor over N and S, giving `(C)`.
fn channel_sum(t: &Tensor) -> Result<Tensor> {
    t.sum(2, false)?.sum(0, false)
}

/// `running = (1 - momentum)·running + momentum·batch`, written into `running`'s storage.
fn update_running(running: &Tensor, batch: &Tensor, momentum: f64) -> Result<()> {
    let _no_grad = crate::no_grad();
    let updated = running
        .detach()
        .mul_scalar(1.0 - momentum)?
        .add(&batch.mul_scalar(momentum)?)?;
    running.copy_(&updated)
}

/// Err unless `t` is a `(C)` tensor with `x`'s dtype and device.
fn check_channel_param(x: &Tensor, t: &Tensor, name: &'static str, op: &'static str) -> Result<()> {
    x.check_same_device(op, t)?;
    x.check_same_dtype(op, t)?;
    let c = x.shape()[1];
    if t.shape() != [c] {
        return Err(Error::arg(
            name,
            format!(
                "batch_norm needs a ({c}) tensor for an input with {c} channels, got shape {:?}",
                t.shape()
            ),
        ));
    }
    Ok(())
}
