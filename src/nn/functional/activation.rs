//! Activations (`relu`, `leaky_relu`, `gelu`, `gelu_tanh`, `sigmoid`, `tanh`,
//! `silu`, `softplus`, `hardswish`, `hardsigmoid`, `relu6`, `hardtanh`, `elu`,
//! `selu`, `celu`, `mish`, `log_sigmoid`, `softsign`, `glu`, `prelu`) and `flatten`.
//!
//! `relu`, `sigmoid` and `tanh` are the [`Tensor`] methods under their functional
//! names. The pointwise activations are one fused elementwise primitive forward and
//! one backward (their derivative), so each costs one pass each way rather than the
//! several of a composition; `glu` and `prelu`, whose operands are two tensors, are
//! compositions of tensor ops.

use crate::autograd::record;
use crate::backend::elementwise::UnaryOp;
use crate::shape::check_dim;
use crate::{Error, Result, Tensor};

/// `max(x, 0)` elementwise (PyTorch's `F.relu`); the gradient at 0 is 0.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    x.relu()
}

/// The logistic function `1 / (1 + e^-x)` elementwise (PyTorch's `F.sigmoid`).
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    x.sigmoid()
}

/// Hyperbolic tangent elementwise (PyTorch's `F.tanh`).
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    x.tanh()
}

/// `x` where `x > 0`, else `negative_slope·x`, elementwise: PyTorch's
/// `F.leaky_relu(x, negative_slope)` (whose default slope is 0.01; here it is
/// required). The gradient at 0 is `negative_slope`, as in PyTorch. Float dtypes
/// only; a non-finite slope is an error.
pub fn leaky_relu(x: &Tensor, negative_slope: f64) -> Result<Tensor> {
    if !negative_slope.is_finite() {
        return Err(Error::arg(
            "negative_slope",
            format!("must be finite, got {negative_slope}"),
        ));
    }
    pointwise_with(
        x,
        UnaryOp::LeakyRelu(negative_slope),
        UnaryOp::LeakyReluGrad(negative_slope),
        "leaky_relu",
    )
}

/// GELU in its exact form, `x·Φ(x) = x/2·(1 + erf(x/√2))`: PyTorch's `F.gelu(x)`
/// with the default `approximate="none"`. Float dtypes only.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::Gelu, UnaryOp::GeluGrad, "gelu")
}

/// GELU's tanh approximation, `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`:
/// PyTorch's `F.gelu(x, approximate="tanh")`. Float dtypes only.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::GeluTanh, UnaryOp::GeluTanhGrad, "gelu_tanh")
}

/// SiLU (swish), `x·σ(x)` elementwise: PyTorch's `F.silu(x)`. Float dtypes only.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::Silu, UnaryOp::SiluGrad, "silu")
}

/// Softplus, `ln(1 + e^(β·x)) / β` elementwise, and `x` itself where `β·x >
/// threshold` (for numerical stability): PyTorch's `F.softplus(x, beta, threshold)`,
/// whose defaults are `beta = 1.0`, `threshold = 20.0`. Float dtypes only.
///
/// With `beta = 1` it is one fused pass each way; another β scales the input before
/// and the output after that pass (the chain rule then scales the gradient alike).
/// Errs when `beta` is zero or not finite, or `threshold` is NaN.
pub fn softplus(x: &Tensor, beta: f64, threshold: f64) -> Result<Tensor> {
    if !beta.is_finite() || beta == 0.0 {
        return Err(Error::arg(
            "beta",
            format!("must be finite and non-zero, got {beta}"),
        ));
    }
    if threshold.is_nan() {
        return Err(Error::arg("threshold", "must not be NaN"));
    }
    // Softplus is on autocast's f32 list.
    if let Some(y) = crate::tensor::autocast::fp32([x], [], |[x], []| softplus(x, beta, threshold))
    {
        return y;
    }
    let op = |z: &Tensor| {
        pointwise_with(
            z,
            UnaryOp::Softplus(threshold),
            UnaryOp::SoftplusGrad(threshold),
            "softplus",
        )
    };
    if beta == 1.0 {
        op(x)
    } else {
        x.check_float("softplus")?;
        op(&x.mul_scalar(beta)?)?.div_scalar(beta)
    }
}

/// `x·relu6(x + 3)/6` elementwise: PyTorch's `F.hardswish(x)` (MobileNetV3's
/// activation). The gradient is 0 for `x ≤ -3`, `x/3 + 1/2` below 3 and 1 from 3 on,
/// PyTorch's choices at the kinks. Float dtypes only.
pub fn hardswish(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::Hardswish, UnaryOp::HardswishGrad, "hardswish")
}

/// `relu6(x + 3)/6` elementwise: PyTorch's `F.hardsigmoid(x)`. The gradient is 1/6
/// strictly inside (-3, 3) and 0 elsewhere (PyTorch holds 1/6 as an f32 constant,
/// for f64 too, and so does kiln). Float dtypes only.
pub fn hardsigmoid(x: &Tensor) -> Result<Tensor> {
    pointwise_with(
        x,
        UnaryOp::Hardsigmoid,
        UnaryOp::HardsigmoidGrad,
        "hardsigmoid",
    )
}

/// `min(max(x, 0), 6)` elementwise: PyTorch's `F.relu6(x)`, which is
/// [`hardtanh`]`(x, 0, 6)` (gradient 0 at 0 and at 6).
pub fn relu6(x: &Tensor) -> Result<Tensor> {
    hardtanh(x, 0.0, 6.0)
}

/// `x` limited to `[min_val, max_val]` elementwise: PyTorch's `F.hardtanh(x,
/// min_val, max_val)` (defaults -1 and 1). NaN stays NaN; the gradient is 1
/// strictly inside the bounds and 0 on and beyond them. Float dtypes only; errs when
/// a bound is NaN or `min_val > max_val`.
pub fn hardtanh(x: &Tensor, min_val: f64, max_val: f64) -> Result<Tensor> {
    check_hardtanh_bounds(min_val, max_val)?;
    let (min, max) = (min_val, max_val);
    pointwise_with(
        x,
        UnaryOp::Hardtanh { min, max },
        UnaryOp::HardtanhGrad { min, max },
        "hardtanh",
    )
}

/// ELU, `x` where `x > 0`, else `α·(e^x - 1)`, elementwise: PyTorch's `F.elu(x,
/// alpha)` (default α = 1). The gradient at 0 is that of the exponential branch
/// (`α`), as PyTorch's. Float dtypes only; errs when `alpha` is not finite.
pub fn elu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    check_elu_alpha(alpha)?;
    pointwise_with(x, UnaryOp::Elu(alpha), UnaryOp::EluGrad(alpha), "elu")
}

/// SELU, `λ·elu(x, α)` with PyTorch's constants `α ≈ 1.6733`, `λ ≈ 1.0507`:
/// `F.selu(x)`. Float dtypes only.
pub fn selu(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::Selu, UnaryOp::SeluGrad, "selu")
}

/// CELU, `x` where `x > 0`, else `α·(e^(x/α) - 1)`, elementwise: PyTorch's
/// `F.celu(x, alpha)` (default α = 1). Float dtypes only; errs when `alpha` is 0 or
/// not finite.
pub fn celu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    check_celu_alpha(alpha)?;
    pointwise_with(x, UnaryOp::Celu(alpha), UnaryOp::CeluGrad(alpha), "celu")
}

/// Mish, `x·tanh(ln(1 + e^x))` elementwise: PyTorch's `F.mish(x)`. Float dtypes only.
pub fn mish(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::Mish, UnaryOp::MishGrad, "mish")
}

/// `ln σ(x) = -ln(1 + e^-x)` elementwise, computed as `min(x, 0) - ln(1 + e^-|x|)` so
/// it never overflows: PyTorch's `F.logsigmoid(x)`. The gradient is `σ(-x)`. Float
/// dtypes only.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    pointwise_with(
        x,
        UnaryOp::LogSigmoid,
        UnaryOp::LogSigmoidGrad,
        "log_sigmoid",
    )
}

/// `x / (1 + |x|)` elementwise: PyTorch's `F.softsign(x)`. Float dtypes only.
pub fn softsign(x: &Tensor) -> Result<Tensor> {
    pointwise_with(x, UnaryOp::Softsign, UnaryOp::SoftsignGrad, "softsign")
}

/// The gated linear unit: `x` split in halves `a`, `b` along `dim`, `a·σ(b)`
/// (PyTorch's `F.glu(x, dim)`, whose default is the last dim). Errs when `dim` is
/// not a dimension of `x` or its size is odd.
pub fn glu(x: &Tensor, dim: usize) -> Result<Tensor> {
    check_dim("glu", dim, x.rank())?;
    x.check_float("glu")?;
    let size = x.shape()[dim];
    if !size.is_multiple_of(2) {
        return Err(Error::arg(
            "dim",
            format!("glu halves dimension {dim}, which must be even, got size {size}"),
        ));
    }
    let half = size / 2;
    x.narrow(dim, 0, half)?
        .mul(&x.narrow(dim, half, half)?.sigmoid()?)
}

/// PReLU: `x` where `x > 0`, else `weight·x`, with a learnt slope per channel
/// (`weight` of shape `(C)`, `C = x.shape[1]`, broadcast over dim 1) or one slope
/// for all (`weight` of one element): PyTorch's `F.prelu(x, weight)`. An input of
/// rank 0 or 1 has no channel dimension and takes one slope. Gradients flow to `x`
/// and `weight` (the gradient at 0 is the slope's side, as PyTorch's). Errs when
/// `weight` has rank above 1, a number of elements that is neither 1 nor the
/// channels, or another dtype or device.
pub fn prelu(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    x.check_float("prelu")?;
    x.check_same_device("prelu", weight)?;
    x.check_same_dtype("prelu", weight)?;
    let channels = if x.rank() >= 2 { x.shape()[1] } else { 1 };
    let n = weight.numel();
    if weight.rank() > 1 || (n != 1 && n != channels) {
        return Err(Error::arg(
            "weight",
            format!(
                "prelu needs a weight of 1 or {channels} elements (rank <= 1) for an input of shape {:?}, got shape {:?}",
                x.shape(),
                weight.shape()
            ),
        ));
    }
    // The slopes as (C, 1, .., 1), broadcasting over dim 1 and the dims after it.
    let mut slope_shape = vec![1; x.rank().saturating_sub(1)];
    if let Some(c) = slope_shape.first_mut() {
        *c = n;
    }
    let slope = weight.reshape(&slope_shape)?;
    x.gt_scalar(0.0)?.where_cond(x, &x.mul(&slope)?)
}

/// Err naming the bound unless `min_val ≤ max_val`, neither NaN (hardtanh's
/// arguments; `nn::Hardtanh` checks them with this too).
pub(crate) fn check_hardtanh_bounds(min_val: f64, max_val: f64) -> Result<()> {
    if min_val.is_nan() {
        return Err(Error::arg("min_val", "must not be NaN"));
    }
    if max_val.is_nan() || max_val < min_val {
        return Err(Error::arg(
            "max_val",
            format!("must be >= min_val ({min_val}), got {max_val}"),
        ));
    }
    Ok(())
}

/// Err naming `alpha` unless it is finite (ELU's α).
pub(crate) fn check_elu_alpha(alpha: f64) -> Result<()> {
    if alpha.is_finite() {
        Ok(())
    } else {
        Err(Error::arg("alpha", format!("must be finite, got {alpha}")))
    }
}

/// Err naming `alpha` unless it is finite and not 0 (CELU divides by it).
pub(crate) fn check_celu_alpha(alpha: f64) -> Result<()> {
    check_elu_alpha(alpha)?;
    if alpha == 0.0 {
        return Err(Error::arg("alpha", "celu's alpha must not be 0"));
    }
    Ok(())
}

/// A float activation computed by the primitive `op`, whose backward multiplies the
/// incoming gradient by `grad_op` of the input (the activation's derivative).
pub(super) fn pointwise_with(
    x: &Tensor,
    op: UnaryOp,
    grad_op: UnaryOp,
    name: &'static str,
) -> Result<Tensor> {
    let _op = crate::profiler::op(name, &[x]);
    x.check_float(name)?;
    let out = Tensor::from_storage(x.storage().unary(op, x.layout())?, x.shape());
    let input = x.detach();
    Ok(record(out, name, &[x], move |_, g| {
        let slope = Tensor::from_storage(
            input.storage().unary(grad_op, input.layout())?,
            input.shape(),
        );
        Ok(vec![Some(g.mul(&slope)?)])
    }))
}

/// Merges dimensions `start..=end` of `x` into one (PyTorch's
/// `torch.flatten(x, start, end)`; `nn.Flatten()` is `flatten(x, 1, rank - 1)`).
/// A view when `x` is contiguous. Errs when `end` is not a dimension of `x` or
/// `start > end`.
pub fn flatten(x: &Tensor, start: usize, end: usize) -> Result<Tensor> {
    x.flatten(start, end)
}
