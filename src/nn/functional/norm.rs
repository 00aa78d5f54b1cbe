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
    let stats = RunningStats {
        mean: running_mean,
        var: running_var,
        training,
        momentum,
    };
    batch_norm_with(x, stats, weight, bias, Epilogue::NONE, eps)
}

/// Batch norm, then an optional residual added, then ReLU, as one op:
/// `relu(batch_norm(x, ..) + residual)`, PyTorch's
/// `F.relu(F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum,
/// eps) + residual)` (without `+ residual` when it is `None`) — ResNet's `bn → relu`
/// and `bn → add → relu`.
///
/// The arguments, the running-statistics update and the errors are [`batch_norm`]'s;
/// `residual` must have `x`'s shape, dtype and device (an `Err` naming `residual`
/// otherwise). Gradients flow to `x`, `weight`, `bias` and `residual`. The values
/// equal the three ops' within rounding (the sum is not rounded to `x`'s dtype
/// before the ReLU); ReLU's gradient at 0 is 0, as `relu`'s.
///
/// Why: the normalisation, the add and the ReLU run in one pass over memory forward
/// and one backward (on CUDA: one kernel each, besides the statistics' reduction
/// kernel in training), instead of three passes and the tensors between them.
///
/// ```
/// use kiln::nn::functional as F;
/// use kiln::{DType, Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let dev = Device::Cpu;
/// let x = Tensor::randn(&[4, 3, 5, 5], DType::F32, &dev)?;
/// let skip = Tensor::randn(&[4, 3, 5, 5], DType::F32, &dev)?;
/// let (mean, var) = (Tensor::zeros(&[3], DType::F32, &dev)?, Tensor::ones(&[3], DType::F32, &dev)?);
/// let y = F::batch_norm_act(&x, &mean, &var, None, None, Some(&skip), true, 0.1, 1e-5)?;
/// assert!(y.to_vec::<f32>()?.iter().all(|&v| v >= 0.0));
/// # Ok(())
/// # }
/// ```
#[allow(clippy::too_many_arguments)] // batch_norm's arguments and the residual
pub fn batch_norm_act(
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    residual: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<Tensor> {
    let keep = crate::tensor::autocast::fp32_keep_dtype(
        [x],
        [weight, bias, residual],
        |[x], [w, b, r]| {
            batch_norm_act(
                x,
                running_mean,
                running_var,
                w,
                b,
                r,
                training,
                momentum,
                eps,
            )
        },
    );
    if let Some(y) = keep {
        return y;
    }
    let _op = crate::profiler::op("batch_norm_act", &[x]);
    let stats = RunningStats {
        mean: running_mean,
        var: running_var,
        training,
        momentum,
    };
    let epilogue = Epilogue {
        residual,
        relu: true,
    };
    batch_norm_with(x, stats, weight, bias, epilogue, eps)
}

/// Batch norm's running statistics and how a call uses them (see [`batch_norm`]).
#[derive(Clone, Copy)]
pub(super) struct RunningStats<'a> {
    /// `running_mean`, `(C)`.
    pub mean: &'a Tensor,
    /// `running_var`, `(C)`.
    pub var: &'a Tensor,
    /// Normalise with the batch's statistics and update the running ones.
    pub training: bool,
    /// The running statistics' update weight.
    pub momentum: f64,
}

/// What follows the normalisation in the same kernel: [`batch_norm_act`]'s residual
/// add and ReLU, or nothing ([`batch_norm`]).
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a> {
    /// Added to the normalised values (`x`'s shape, dtype and device).
    pub residual: Option<&'a Tensor>,
    /// ReLU last: [`batch_norm_act`].
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Plain batch norm.
    pub const NONE: Epilogue<'static> = Epilogue {
        residual: None,
        relu: false,
    };

    /// The op's name, for errors and the autograd graph.
    fn op(&self) -> &'static str {
        if self.relu {
            "batch_norm_act"
        } else {
            "batch_norm"
        }
    }

    /// `"<op>: <what>"`, for errors (spelled out: the checks take `&'static str`).
    fn label(&self, what: &'static str) -> &'static str {
        match (self.relu, what) {
            (false, "running_mean") => "batch_norm: running_mean",
            (false, "running_var") => "batch_norm: running_var",
            (false, "weight") => "batch_norm: weight",
            (false, _) => "batch_norm: bias",
            (true, "running_mean") => "batch_norm_act: running_mean",
            (true, "running_var") => "batch_norm_act: running_var",
            (true, "weight") => "batch_norm_act: weight",
            (true, "bias") => "batch_norm_act: bias",
            (true, _) => "batch_norm_act: residual",
        }
    }
}

/// [`batch_norm`] with `epilogue` fused into its normalisation pass and its backward
/// pass (one kernel each on CUDA, besides the statistics).
pub(super) fn batch_norm_with(
    x: &Tensor,
    stats: RunningStats,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    epilogue: Epilogue,
    eps: f64,
) -> Result<Tensor> {
    let RunningStats {
        mean: running_mean,
        var: running_var,
        training,
        momentum,
    } = stats;
    let op = epilogue.op();
    x.check_float(op)?;
    if x.rank() < 2 {
        return Err(Error::arg(
            "input",
            format!(
                "{op} needs an input of shape (N, C) or (N, C, *), got {:?}",
                x.shape()
            ),
        ));
    }
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let s: usize = x.shape()[2..].iter().product();
    let label = |what| epilogue.label(what);
    check_channel_param(x, running_mean, "running_mean", label("running_mean"))?;
    check_channel_param(x, running_var, "running_var", label("running_var"))?;
    if let Some(w) = weight {
        check_channel_param(x, w, "weight", label("weight"))?;
    }
    if let Some(b) = bias {
        check_channel_param(x, b, "bias", label("bias"))?;
    }
    if let Some(r) = epilogue.residual {
        check_residual(x, r, label("residual"))?;
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
                "{op} in training needs more than 1 value per channel, got input of shape {:?}",
                x.shape()
            ),
        ));
    }

    let p = BatchNormParams { n, c, s, eps };
    let (mean, var) = normalising_stats(x, stats, &p)?;
    let residual = epilogue.residual;
    let y = {
        // One lock per distinct storage, in address order (see `tensor::locks`).
        let mut operands = vec![x, &mean, &var];
        operands.extend(weight);
        operands.extend(bias);
        operands.extend(residual);
        let locks = StorageLocks::read(&operands);
        let w = weight.map(|t| (locks.get(3), t.layout()));
        let b = bias.map(|t| (locks.get(3 + usize::from(weight.is_some())), t.layout()));
        let r = residual.map(|t| (locks.get(operands.len() - 1), t.layout()));
        locks.get(0).batch_norm_apply(
            x.layout(),
            locks.get(1),
            locks.get(2),
            w,
            b,
            r,
            epilogue.relu,
            &p,
        )?
    };
    let y = Tensor::from_storage(y, x.shape());

    let mut inputs = vec![x];
    inputs.extend(weight);
    inputs.extend(bias);
    inputs.extend(residual);
    let x_saved = x.detach();
    let wants_x = x.requires_grad_flag();
    let wants_residual = residual.is_some_and(Tensor::requires_grad_flag);
    let gamma = weight.map(Tensor::detach);
    let (has_bias, has_residual, relu) = (bias.is_some(), residual.is_some(), epilogue.relu);
    Ok(record(y, op, &inputs, move |out, g| {
        let mut operands = vec![g, &x_saved, &mean, &var];
        operands.extend(gamma.as_ref());
        operands.extend(relu.then_some(out));
        let locks = StorageLocks::read(&operands);
        let w = gamma.as_ref().map(|t| (locks.get(4), t.layout()));
        let (dx, grad_weight, grad_bias, grad_residual) = locks.get(0).batch_norm_backward(
            g.layout(),
            locks.get(1),
            x_saved.layout(),
            locks.get(2),
            locks.get(3),
            w,
            training,
            relu.then(|| locks.get(operands.len() - 1)),
            wants_residual,
            &p,
        )?;
        drop(locks);
        let mut grads = Vec::with_capacity(4);
        grads.push(wants_x.then(|| Tensor::from_storage(dx, x_saved.shape())));
        if gamma.is_some() {
            grads.push(Some(Tensor::from_storage(grad_weight, &[c])));
        }
        if has_bias {
            grads.push(Some(Tensor::from_storage(grad_bias, &[c])));
        }
        if has_residual {
            grads.push(grad_residual.map(|r| Tensor::from_storage(r, x_saved.shape())));
        }
        Ok(grads)
    }))
}

/// The statistics `x` is normalised with, in the compute dtype (see
/// `backend::norm`): the batch's (updating the running ones), or fresh copies of the
/// running ones (copies, so a later in-place update of the running statistics cannot
/// change the backward pass).
fn normalising_stats(
    x: &Tensor,
    stats: RunningStats,
    p: &BatchNormParams,
) -> Result<(Tensor, Tensor)> {
    let c = p.c;
    if stats.training {
        let (mean, var) = x.storage().batch_norm_stats(x.layout(), p)?;
        let (mean, var) = (
            Tensor::from_storage(mean, &[c]),
            Tensor::from_storage(var, &[c]),
        );
        // Activation checkpointing's second run of this forward must not update the
        // statistics again (PyTorch's checkpoint does: momentum applied twice).
        if !crate::utils::is_recomputing() {
            let count = p.n * p.s;
            update_running(stats.mean, &mean, stats.momentum)?;
            let unbiased = var.mul_scalar(count as f64 / (count - 1) as f64)?;
            update_running(stats.var, &unbiased, stats.momentum)?;
        }
        Ok((mean, var))
    } else {
        let stat_dtype = if x.dtype() == DType::F64 {
            DType::F64
        } else {
            DType::F32
        };
        let copy = |t: &Tensor| -> Result<Tensor> {
            Ok(Tensor::from_storage(
                t.storage().copy_as(t.layout(), stat_dtype)?,
                &[c],
            ))
        };
        Ok((copy(stats.mean)?, copy(stats.var)?))
    }
}

/// Err naming `residual` unless it has `x`'s shape, dtype and device.
fn check_residual(x: &Tensor, r: &Tensor, op: &'static str) -> Result<()> {
    x.check_same_device(op, r)?;
    x.check_same_dtype(op, r)?;
    if r.shape() != x.shape() {
        return Err(Error::arg(
            "residual",
            format!(
                "{op} must have the input's shape {:?}, got {:?}",
                x.shape(),
                r.shape()
            ),
        ));
    }
    Ok(())
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
