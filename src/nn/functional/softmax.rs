//! `softmax` and `log_softmax` over any dimension.
//!
//! The forward pass is one fused backend primitive over the last dimension
//! ([`crate::backend::Storage::softmax_last_dim`]), which subtracts each row's
//! maximum before `exp` so large logits do not overflow. Another dimension is moved
//! last by a strided view (no copy before the kernel) and the result is moved back
//! into a contiguous tensor. The backward passes are written with tensor ops.

use crate::autograd::record;
use crate::shape::{check_dim, Layout};
use crate::{Result, Tensor};

/// `exp(x) / sum(exp(x))` along `dim` (PyTorch's `F.softmax(x, dim)`). Float dtypes.
///
/// A rank-0 tensor is treated as one element (its softmax is 1). A row holding NaN
/// gives NaN; a row of `-inf` gives NaN, as in PyTorch.
pub fn softmax(x: &Tensor, dim: usize) -> Result<Tensor> {
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
    let last = x.rank() - 1;
    let moved = swap_dims(x.layout(), dim, last);
    let out = Tensor::from_storage(x.storage().softmax_last_dim(&moved, log)?, &moved.shape);
    if dim == last {
        return Ok(out);
    }
    // The kernel wrote rows along `dim`; view them back in `x`'s order, then copy
    // so the result is contiguous like every other op's.
    out.with_layout(swap_dims(out.layout(), dim, last))
        .contiguous_copy()
}

/// Sum over `dim` kept as size 1; a rank-0 tensor is its own sum (one element).
fn sum_keepdim(t: &Tensor, dim: usize) -> Result<Tensor> {
    if t.rank() == 0 {
        Ok(t.clone())
    } else {
        t.sum(dim, true)
    }
}

/// `layout` with dimensions `a` and `b` exchanged (a strided view, no copy).
fn swap_dims(layout: &Layout, a: usize, b: usize) -> Layout {
    let mut l = layout.clone();
    l.shape.swap(a, b);
    l.strides.swap(a, b);
    l
}
