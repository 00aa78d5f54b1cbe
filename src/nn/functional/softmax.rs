//! `softmax` and `log_softmax` over any dimension.
//!
//! The forward pass is one fused backend primitive (`Storage::softmax`),
//! which subtracts each slice's maximum before `exp` so large logits do not
//! overflow, and handles any dimension without a transpose. The backward passes are
//! written with tensor ops.

use crate::autograd::record;
use crate::shape::check_dim;
use crate::{Result, Tensor};

/// `exp(x) / sum(exp(x))` along `dim` (PyTorch's `F.softmax(x, dim)`). Float dtypes.
///
/// A rank-0 tensor is treated as one element (its softmax is 1). A row holding NaN
/// gives NaN; a row of `-inf` gives NaN, as in PyTorch.
pub fn softmax(x: &Tensor, dim: usize) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([x], [], |[x], []| softmax(x, dim)) {
        return y;
    }
    let _op = crate::profiler::op("softmax", &[x]);
    let out = softmax_forward(x, dim, false, "softmax")?;
    Ok(record(out, "softmax", &[x], move |y, g| {
        // d softmax: y * (g - sum(g * y))
        let dot = sum_keepdim(&g.mul(y)?, dim)?;
        Ok(vec![Some(y.mul(&g.sub(&dot)?)?)])
    }))
}

/// `x - log(sum(exp(x)))` along `dim` (PyTorch's `F.log_softmax(x, dim)`), computed
/// without forming `softmax` first, so it stays finite where `softmax` underflows.
pub fn log_softmax(x: &Tensor, dim: usize) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::fp32([x], [], |[x], []| log_softmax(x, dim)) {
        return y;
    }
    let _op = crate::profiler::op("log_softmax", &[x]);
    let out = softmax_forward(x, dim, true, "log_softmax")?;
    Ok(record(out, "log_softmax", &[x], move |y, g| {
        // d log_softmax: g - softmax * sum(g)
        let total = sum_keepdim(g, dim)?;
        Ok(vec![Some(g.sub(&y.exp()?.mul(&total)?)?)])
    }))
}

/// The forward value outside the graph (shared with the losses).
pub(super) fn softmax_forward(
    x: &Tensor,
    dim: usize,
    log: bool,
    name: &'static str,
) -> Result<Tensor> {
    x.check_float(name)?;
    if x.rank() == 0 {
        check_dim(name, dim, 1)?;
        let row = x.detach().reshape(&[1])?;
        return softmax_forward(&row, 0, log, name)?.reshape(&[]);
    }
    check_dim(name, dim, x.rank())?;
    let out = x.storage().softmax(x.layout(), dim, log)?;
    Ok(Tensor::from_storage(out, x.shape()))
}

/// Sum over `dim` kept as size 1; a rank-0 tensor is its own sum (one element).
fn sum_keepdim(t: &Tensor, dim: usize) -> Result<Tensor> {
    if t.rank() == 0 {
        Ok(t.clone())
    } else {
        t.sum(dim, true)
    }
}
