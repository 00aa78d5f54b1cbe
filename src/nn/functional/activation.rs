//! Activations (`relu`, `leaky_relu`, `gelu`, `gelu_tanh`, `sigmoid`, `tanh`,
//! `silu`, `softplus`) and `flatten`.
//!
//! `relu`, `sigmoid` and `tanh` are the [`Tensor`] methods under their functional
//! names. GELU and leaky ReLU are one fused elementwise primitive forward and one
//! backward (their derivative), so each costs one pass each way rather than the
//! several of a composition.

use crate::autograd::record;
use crate::backend::elementwise::UnaryOp;
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

/// A float activation computed by the primitive `op`, whose backward multiplies the
/// incoming gradient by `grad_op` of the input (the activation's derivative).
fn pointwise_with(x: &Tensor, op: UnaryOp, grad_op: UnaryOp, name: &'static str) -> Result<Tensor> {
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
