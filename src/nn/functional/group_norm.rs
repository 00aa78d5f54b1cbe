//! `group_norm` and `instance_norm`: per-sample normalisation of `(N, C, *)` inputs
//! over groups of channels (instance norm: each channel alone), on the fused
//! primitives of `backend::norm` (statistics and normalisation in one pass forward,
//! one fused pass backward with the closed-form gradient, as layer norm's).
//!
//! Instance norm with `use_input_stats` is group norm with one channel per group; its
//! optional running statistics are updated with the per-instance statistics averaged
//! over the batch, as PyTorch's (which runs batch norm on the input seen as
//! `(1, N·C, *)`). Without `use_input_stats` it is batch norm in eval mode.

use super::norm::{batch_norm, check_channel_param, check_eps, saved_stats_norm, update_running};
use crate::backend::norm::{BatchNormParams, GroupNormParams};
use crate::{Error, Result, Tensor};

/// Group normalisation: PyTorch's `F.group_norm(x, num_groups, weight, bias, eps)`.
///
/// `x` is `(N, C, *)`; its channels are split into `num_groups` groups of `C /
/// num_groups` consecutive channels, and each (sample, group) is normalised by its own
/// mean and biased variance, `(x - μ) / √(σ² + eps)`, then scaled by `weight` and
/// shifted by `bias` per channel (`(C)` tensors of `x`'s dtype and device; 1 and 0
/// when absent). Statistics are in f32 for f16/bf16 inputs; on autocast's f32 list.
/// Gradients flow to `x`, `weight` and `bias`.
///
/// Errs when `x` is not a float tensor of rank ≥ 2, `num_groups` is 0 or does not
/// divide `C`, `weight`/`bias` are not `(C)` tensors of `x`'s dtype and device, or
/// `eps` is negative or not finite.
pub fn group_norm(
    x: &Tensor,
    num_groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([x], [weight, bias], |[x], [w, b]| {
        group_norm(x, num_groups, w, b, eps)
    }) {
        return y;
    }
    x.check_float("group_norm")?;
    if x.rank() < 2 {
        return Err(Error::arg(
            "input",
            format!(
                "group_norm needs an input of shape (N, C, *), got {:?}",
                x.shape()
            ),
        ));
    }
    let c = x.shape()[1];
    if num_groups == 0 || !c.is_multiple_of(num_groups) {
        return Err(Error::arg(
            "num_groups",
            format!("group_norm: {num_groups} groups must divide the input's {c} channels"),
        ));
    }
    if let Some(w) = weight {
        check_channel_param(x, w, "weight", "group_norm: weight")?;
    }
    if let Some(b) = bias {
        check_channel_param(x, b, "bias", "group_norm: bias")?;
    }
    check_eps(eps)?;
    let p = GroupNormParams {
        n: x.shape()[0],
        c,
        groups: num_groups,
        s: x.shape()[2..].iter().product(),
        eps,
    };
    saved_stats_norm(
        "group_norm",
        x,
        [weight, bias],
        [p.rows(); 2],
        vec![c],
        |x, layout, w, b| x.group_norm_forward(layout, w, b, &p),
        move |g, gl, x, xl, mean, rstd, w| g.group_norm_backward(gl, x, xl, mean, rstd, w, &p),
    )
}

/// Instance normalisation: PyTorch's `F.instance_norm(x, running_mean, running_var,
/// weight, bias, use_input_stats, momentum, eps)` (its defaults: no running
/// statistics, no affine, `use_input_stats = true`, momentum 0.1, eps 1e-5).
///
/// `x` is `(N, C, *)`. With `use_input_stats` each (sample, channel) is normalised by
/// its own mean and biased variance (group norm with `C` groups), and running
/// statistics, when given, are updated in place with the batch's per-instance
/// statistics averaged over `N` (the variance unbiased), as
/// `running = (1 - momentum)·running + momentum·batch`. Without it, `running_mean`
/// and `running_var` (required) normalise every instance, as batch norm in eval
/// mode. `weight` and `bias` scale and shift per channel. Gradients flow to `x`,
/// `weight` and `bias`.
///
/// Errs when `x` is not a float tensor of rank ≥ 3 with more than one spatial value
/// per channel (with `use_input_stats`; PyTorch's rule), a `(C)` tensor has another
/// size, dtype or device, only one running statistic is given, or neither is given
/// without `use_input_stats`, `momentum` is outside `[0, 1]`, or `eps` is negative or
/// not finite.
#[allow(clippy::too_many_arguments)] // PyTorch's signature, argument for argument
pub fn instance_norm(
    x: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    use_input_stats: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    x.check_float("instance_norm")?;
    let spatial: usize = x.shape().get(2..).map_or(1, |s| s.iter().product());
    if x.rank() < 3 || (use_input_stats && spatial == 1) {
        return Err(Error::arg(
            "input",
            format!(
                "instance_norm needs an input of shape (N, C, *) with more than one spatial value per channel, got {:?}",
                x.shape()
            ),
        ));
    }
    let running = match (running_mean, running_var) {
        (Some(m), Some(v)) => Some((m, v)),
        (None, None) => None,
        (m, _) => {
            let missing = if m.is_none() {
                "running_mean"
            } else {
                "running_var"
            };
            return Err(Error::arg(
                missing,
                "instance_norm needs both running statistics or neither",
            ));
        }
    };
    if !use_input_stats {
        let (m, v) = running.ok_or_else(|| {
            Error::arg(
                "running_mean",
                "instance_norm without use_input_stats normalises with the running statistics, which must be given",
            )
        })?;
        return batch_norm(x, m, v, weight, bias, false, momentum, eps);
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::arg(
            "momentum",
            format!("must be in [0, 1], got {momentum}"),
        ));
    }
    let c = x.shape()[1];
    let y = group_norm(x, c, weight, bias, eps)?;
    if let Some((m, v)) = running {
        check_channel_param(x, m, "running_mean", "instance_norm: running_mean")?;
        check_channel_param(x, v, "running_var", "instance_norm: running_var")?;
        update_instance_stats(x, m, v, momentum)?;
    }
    Ok(y)
}

/// The running-statistics update of [`instance_norm`]: each instance's mean and
/// unbiased variance (batch norm's statistics primitive on `x` seen as `(1, N·C, S)`),
/// averaged over the `N` samples.
fn update_instance_stats(x: &Tensor, rm: &Tensor, rv: &Tensor, momentum: f64) -> Result<()> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let s: usize = x.shape()[2..].iter().product();
    let p = BatchNormParams {
        n: 1,
        c: n * c,
        s,
        eps: 0.0,
    };
    let (mean, var) = x.storage().batch_norm_stats(x.layout(), &p)?;
    let mean = Tensor::from_storage(mean, &[n, c]).mean(0, false)?;
    let unbiased = s as f64 / (s as f64 - 1.0);
    let var = Tensor::from_storage(var, &[n, c])
        .mean(0, false)?
        .mul_scalar(unbiased)?;
    update_running(rm, &mean, momentum)?;
    update_running(rv, &var, momentum)
}
