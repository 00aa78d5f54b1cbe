//! Pooling over 1, 2 or 3 spatial axes, with PyTorch's names, arguments and window
//! rules: `max_pool{1,2,3}d` and `avg_pool{1,2,3}d` (and `_with` variants that take
//! every option: dilation, ceil mode, count_include_pad), `adaptive_avg_pool{1,2,3}d`
//! and `adaptive_max_pool{1,2,3}d` (and `_with_indices`). Inputs are batched
//! (N, C, *) or unbatched (C, *). One implementation serves every rank
//! (`pool_core.rs`; kernels: `backend/cpu/pool.rs`, the reference, and
//! `kernels/pool.cu`).

use super::pool_core::{adaptive, avg, fixed, max};
use super::{Pool1dOpts, Pool2dOpts, Pool3dOpts, Size2d, Size3d, Spatial};
use crate::{Result, Tensor};

/// Max over windows of `kernel` moved by `stride`, with `padding` implicit −∞
/// elements on each side, like `F.max_pool1d(x, kernel, stride, padding)` on (N, C, L)
/// or (C, L) (no dilation, floor mode; [`max_pool1d_with`] takes every option).
pub fn max_pool1d(input: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    max_pool1d_with(
        input,
        Pool1dOpts::new(kernel).stride(stride).padding(padding),
    )
}

/// Max pooling with every option of `F.max_pool1d` ([`Pool1dOpts`]), windows as
/// [`max_pool2d_with`]'s. The gradient goes to the element each window took.
pub fn max_pool1d_with(input: &Tensor, opts: Pool1dOpts) -> Result<Tensor> {
    Ok(max(input, fixed(input, "max_pool1d", true, opts.window())?)?.0)
}

/// Mean over windows of `kernel` moved by `stride`, with `padding` implicit zeros on
/// each side that count in the divisor, like `F.avg_pool1d(x, kernel, stride,
/// padding)` on (N, C, L) or (C, L) ([`avg_pool1d_with`] takes every option).
pub fn avg_pool1d(input: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    avg_pool1d_with(
        input,
        Pool1dOpts::new(kernel).stride(stride).padding(padding),
    )
}

/// Average pooling with every option of `F.avg_pool1d` ([`Pool1dOpts`]), divisor as
/// [`avg_pool2d_with`]'s.
pub fn avg_pool1d_with(input: &Tensor, opts: Pool1dOpts) -> Result<Tensor> {
    avg(input, fixed(input, "avg_pool1d", false, opts.window())?)
}

/// Max over windows of `kernel` (a number or `(h, w)`), moved by `stride`, with
/// `padding` implicit −∞ rows/columns on each side, like `F.max_pool2d(x, kernel,
/// stride, padding)` on (N, C, H, W) or (C, H, W) (no dilation, floor mode;
/// [`max_pool2d_with`] takes every option). The gradient goes to the element each
/// window took.
pub fn max_pool2d(
    input: &Tensor,
    kernel: impl Into<Size2d>,
    stride: impl Into<Size2d>,
    padding: impl Into<Size2d>,
) -> Result<Tensor> {
    max_pool2d_with(
        input,
        Pool2dOpts::new(kernel).stride(stride).padding(padding),
    )
}

/// Max pooling with every option of `F.max_pool2d`: dilation and ceil mode too
/// ([`Pool2dOpts`]; `count_include_pad` does not apply). Windows follow PyTorch's
/// clipping exactly: in ceil mode a last window that would start in the right padding
/// is dropped.
pub fn max_pool2d_with(input: &Tensor, opts: Pool2dOpts) -> Result<Tensor> {
    Ok(max(input, fixed(input, "max_pool2d", true, opts.window())?)?.0)
}

/// Mean over windows of `kernel`, moved by `stride`, with `padding` implicit zero
/// rows/columns on each side that count in the divisor, like `F.avg_pool2d` with its
/// defaults (`count_include_pad=True`, floor mode; [`avg_pool2d_with`] takes every
/// option).
pub fn avg_pool2d(
    input: &Tensor,
    kernel: impl Into<Size2d>,
    stride: impl Into<Size2d>,
    padding: impl Into<Size2d>,
) -> Result<Tensor> {
    avg_pool2d_with(
        input,
        Pool2dOpts::new(kernel).stride(stride).padding(padding),
    )
}

/// Average pooling with every option of `F.avg_pool2d` ([`Pool2dOpts`]; a dilation
/// other than 1 is an error, as PyTorch has none). The divisor follows PyTorch
/// exactly: with `count_include_pad` it counts padding but not ceil mode's overhang
/// beyond the padded input; without, the input elements of the window.
pub fn avg_pool2d_with(input: &Tensor, opts: Pool2dOpts) -> Result<Tensor> {
    avg(input, fixed(input, "avg_pool2d", false, opts.window())?)
}

/// Max over windows of `kernel` (a number or `(d, h, w)`) moved by `stride`, with
/// `padding` implicit −∞ on each side, like `F.max_pool3d(x, kernel, stride,
/// padding)` on (N, C, D, H, W) or (C, D, H, W) ([`max_pool3d_with`] takes every
/// option).
pub fn max_pool3d(
    input: &Tensor,
    kernel: impl Into<Size3d>,
    stride: impl Into<Size3d>,
    padding: impl Into<Size3d>,
) -> Result<Tensor> {
    max_pool3d_with(
        input,
        Pool3dOpts::new(kernel).stride(stride).padding(padding),
    )
}

/// Max pooling with every option of `F.max_pool3d` ([`Pool3dOpts`]), windows as
/// [`max_pool2d_with`]'s along each axis.
pub fn max_pool3d_with(input: &Tensor, opts: Pool3dOpts) -> Result<Tensor> {
    Ok(max(input, fixed(input, "max_pool3d", true, opts.window())?)?.0)
}

/// Mean over windows of `kernel` (a number or `(d, h, w)`) moved by `stride`, with
/// `padding` implicit zeros on each side that count in the divisor, like
/// `F.avg_pool3d(x, kernel, stride, padding)` ([`avg_pool3d_with`] takes every
/// option).
pub fn avg_pool3d(
    input: &Tensor,
    kernel: impl Into<Size3d>,
    stride: impl Into<Size3d>,
    padding: impl Into<Size3d>,
) -> Result<Tensor> {
    avg_pool3d_with(
        input,
        Pool3dOpts::new(kernel).stride(stride).padding(padding),
    )
}

/// Average pooling with every option of `F.avg_pool3d` ([`Pool3dOpts`]), divisor as
/// [`avg_pool2d_with`]'s.
pub fn avg_pool3d_with(input: &Tensor, opts: Pool3dOpts) -> Result<Tensor> {
    avg(input, fixed(input, "avg_pool3d", false, opts.window())?)
}

/// Averages over PyTorch's adaptive windows (output `i` of `out` reads input
/// `floor(i·in/out) .. ceil((i+1)·in/out)`) so that the length is `output_size`, like
/// `F.adaptive_avg_pool1d` on (N, C, L) or (C, L).
pub fn adaptive_avg_pool1d(input: &Tensor, output_size: usize) -> Result<Tensor> {
    avg(
        input,
        adaptive(input, "adaptive_avg_pool1d", 1, output_size.axes(1))?,
    )
}

/// Averages over PyTorch's adaptive windows so that the output is `output_size`
/// (a number or `(h, w)`), like `F.adaptive_avg_pool2d`.
pub fn adaptive_avg_pool2d(input: &Tensor, output_size: impl Into<Size2d>) -> Result<Tensor> {
    let size = output_size.into().axes(1);
    avg(input, adaptive(input, "adaptive_avg_pool2d", 2, size)?)
}

/// Averages over PyTorch's adaptive windows so that the output is `output_size`
/// (a number or `(d, h, w)`), like `F.adaptive_avg_pool3d` on (N, C, D, H, W) or
/// (C, D, H, W).
pub fn adaptive_avg_pool3d(input: &Tensor, output_size: impl Into<Size3d>) -> Result<Tensor> {
    let size = output_size.into().axes(1);
    avg(input, adaptive(input, "adaptive_avg_pool3d", 3, size)?)
}

/// Max over PyTorch's adaptive windows so that the length is `output_size`, like
/// `F.adaptive_max_pool1d` ([`adaptive_max_pool1d_with_indices`] gives the indices).
pub fn adaptive_max_pool1d(input: &Tensor, output_size: usize) -> Result<Tensor> {
    Ok(adaptive_max_pool1d_with_indices(input, output_size)?.0)
}

/// [`adaptive_max_pool1d`] and, as I64, the index along the length of the element
/// each output took, like `F.adaptive_max_pool1d(x, size, return_indices=True)`.
pub fn adaptive_max_pool1d_with_indices(
    input: &Tensor,
    output_size: usize,
) -> Result<(Tensor, Tensor)> {
    max(
        input,
        adaptive(input, "adaptive_max_pool1d", 1, output_size.axes(1))?,
    )
}

/// Max over PyTorch's adaptive windows so that the output is `output_size` (a number
/// or `(h, w)`), like `F.adaptive_max_pool2d`; the gradient goes to the element each
/// window took (the first largest; a NaN wins).
pub fn adaptive_max_pool2d(input: &Tensor, output_size: impl Into<Size2d>) -> Result<Tensor> {
    Ok(adaptive_max_pool2d_with_indices(input, output_size)?.0)
}

/// [`adaptive_max_pool2d`] and, as I64, the index within its (H·W) plane of the
/// element each output took, like `F.adaptive_max_pool2d(x, size,
/// return_indices=True)`.
pub fn adaptive_max_pool2d_with_indices(
    input: &Tensor,
    output_size: impl Into<Size2d>,
) -> Result<(Tensor, Tensor)> {
    let size = output_size.into().axes(1);
    max(input, adaptive(input, "adaptive_max_pool2d", 2, size)?)
}

/// Max over PyTorch's adaptive windows so that the output is `output_size` (a number
/// or `(d, h, w)`), like `F.adaptive_max_pool3d`.
pub fn adaptive_max_pool3d(input: &Tensor, output_size: impl Into<Size3d>) -> Result<Tensor> {
    Ok(adaptive_max_pool3d_with_indices(input, output_size)?.0)
}

/// [`adaptive_max_pool3d`] and, as I64, the index within its (D·H·W) volume of the
/// element each output took, like `F.adaptive_max_pool3d(x, size,
/// return_indices=True)`.
pub fn adaptive_max_pool3d_with_indices(
    input: &Tensor,
    output_size: impl Into<Size3d>,
) -> Result<(Tensor, Tensor)> {
    let size = output_size.into().axes(1);
    max(input, adaptive(input, "adaptive_max_pool3d", 3, size)?)
}
