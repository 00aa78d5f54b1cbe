//! `cosine_similarity` and `normalize`: vectors along a dimension divided by their
//! norms, composed of tensor ops (`Tensor::norm` and its PyTorch backward) as
//! PyTorch composes them.

use super::norm::check_eps;
use crate::autograd::record;
use crate::shape::{broadcast_shape, check_dim};
use crate::{Error, Result, Tensor};

/// The cosine of the angle between `x1` and `x2` along `dim`: PyTorch's
/// `F.cosine_similarity(x1, x2, dim, eps)` (defaults `dim = 1`, `eps = 1e-8`),
/// computed as PyTorch 2 does, `Σ (x1/max(‖x1‖, eps))·(x2/max(‖x2‖, eps))`, so the
/// result stays in [-1, 1]. The two broadcast to one shape; `dim` is removed. As in
/// PyTorch the clamp at `eps` is transparent to the gradient. On autocast's f32 list.
///
/// Errs when the inputs do not broadcast, differ in dtype or device, are not float,
/// `dim` is out of range, or `eps` is negative or not finite.
pub fn cosine_similarity(x1: &Tensor, x2: &Tensor, dim: usize, eps: f64) -> Result<Tensor> {
    if let Some(y) =
        crate::tensor::autocast::fp32([x1, x2], [], |[a, b], []| cosine_similarity(a, b, dim, eps))
    {
        return y;
    }
    x1.check_float("cosine_similarity")?;
    check_eps(eps)?;
    x1.check_same_device("cosine_similarity", x2)?;
    x1.check_same_dtype("cosine_similarity", x2)?;
    // Broadcast both to one shape (a view each).
    let shape = broadcast_shape("cosine_similarity", x1.shape(), x2.shape())?;
    check_dim("cosine_similarity", dim, shape.len())?;
    let (a, b) = (x1.broadcast_as(&shape)?, x2.broadcast_as(&shape)?);
    let unit = |v: &Tensor| -> Result<Tensor> {
        v.div(&clamp_min_passthrough(&v.norm(2.0, &[dim], true)?, eps)?)
    };
    unit(&a)?.mul(&unit(&b)?)?.sum(dim, false)
}

/// `x` divided by its `p`-norm along `dim`, clamped below at `eps`: PyTorch's
/// `F.normalize(x, p, dim, eps)` (defaults `p = 2`, `dim = 1`, `eps = 1e-12`).
/// `p` is any positive number or `f64::INFINITY` (the largest magnitude).
///
/// Errs when `x` is not float, `dim` is out of range, `p` is not positive (or NaN),
/// or `eps` is negative or not finite.
pub fn normalize(x: &Tensor, p: f64, dim: usize, eps: f64) -> Result<Tensor> {
    x.check_float("normalize")?;
    check_dim("normalize", dim, x.rank())?;
    check_eps(eps)?;
    if p.is_nan() || p <= 0.0 {
        return Err(Error::arg(
            "p",
            format!("normalize needs a positive norm order, got {p}"),
        ));
    }
    x.div(&x.norm(p, &[dim], true)?.clamp(eps, None)?)
}

/// `max(v, eps)` whose gradient passes through unchanged, as PyTorch's
/// `cosine_similarity` clamps its norms in place without recording it.
fn clamp_min_passthrough(v: &Tensor, eps: f64) -> Result<Tensor> {
    let _op = crate::profiler::op("clamp_min", &[v]);
    let clamped = v.detach().clamp(eps, None)?;
    Ok(record(clamped, "clamp_min", &[v], |_, g| {
        Ok(vec![Some(g.clone())])
    }))
}
