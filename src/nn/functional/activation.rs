//! Activations (`relu`, `gelu`, `gelu_tanh`, `sigmoid`, `tanh`) and `flatten`.
//!
//! `relu`, `sigmoid` and `tanh` are the [`Tensor`] methods under their functional
//! names. GELU is one fused elementwise primitive forward and one backward (its
//! derivative), so it costs one pass each way rather than the five of a composition.

use crate::autograd::record;
use crate::backend::UnaryOp;
use crate::{Result, Tensor};

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

/// GELU in its exact form, `x·Φ(x) = x/2·(1 + erf(x/√2))`: PyTorch's `F.gelu(x)`
/// with the default `approximate="none"`. Float dtypes only.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    gelu_with(x, UnaryOp::Gelu, UnaryOp::GeluGrad, "gelu")
}

/// GELU's tanh approximation, `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`:
/// PyTorch's `F.gelu(x, approximate="tanh")`. Float dtypes only.
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    gelu_with(x, UnaryOp::GeluTanh, UnaryOp::GeluTanhGrad, "gelu_tanh")
}

fn gelu_with(x: &Tensor, op: UnaryOp, grad_op: UnaryOp, name: &'static str) -> Result<Tensor> {
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
