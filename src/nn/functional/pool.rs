//! Pooling: `max_pool2d`, `avg_pool2d` (and `_with` variants that take every option
//! of PyTorch's: dilation, ceil mode, count_include_pad) and `adaptive_avg_pool2d`, on (N, C, H, W) or unbatched (C, H, W)
//! inputs. Kernels: `backend/cpu/pool.rs` (the reference) and `kernels/pool.cu`.

use super::{Pool2dOpts, Size2d};
use crate::autograd::record;
use crate::backend::pool::{AdaptivePool2dParams, Pool2dParams};
use crate::shape::{checked_product, checked_sum};
use crate::tensor::StorageLocks;
use crate::{Error, Result, Tensor};

/// Max over windows of `kernel` (a number or `(h, w)`), moved by `stride`, with
/// `padding` implicit −∞ rows/columns on each side, like `F.max_pool2d(x, kernel,
/// stride, padding)` (no dilation, floor mode; [`max_pool2d_with`] takes every
/// option). The gradient goes to the element each window took.
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
    unbatched(input, "max_pool2d", |x| {
        let p = pool_params(x, &opts, true)?;
        let xc = x.detach().contiguous()?;
        let (values, indices) = xc.storage().max_pool2d(xc.layout(), &p)?;
        let shape = [p.n, p.c, p.out_h, p.out_w];
        let out = Tensor::from_storage(values, &shape);
        let indices = Tensor::from_storage(indices, &shape);
        Ok(record(out, "max_pool2d", &[x], move |_, g| {
            let g = g.contiguous()?;
            let locks = StorageLocks::read(&[&g, &indices]);
            let gx =
                locks
                    .get(0)
                    .max_pool2d_backward(g.layout(), locks.get(1), indices.layout(), &p)?;
            Ok(vec![Some(Tensor::from_storage(gx, &[p.n, p.c, p.h, p.w]))])
        }))
    })
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
    unbatched(input, "avg_pool2d", |x| {
        let p = pool_params(x, &opts, false)?;
        let xc = x.detach().contiguous()?;
        let out = xc.storage().avg_pool2d(xc.layout(), &p)?;
        let out = Tensor::from_storage(out, &[p.n, p.c, p.out_h, p.out_w]);
        Ok(record(out, "avg_pool2d", &[x], move |_, g| {
            let g = g.contiguous()?;
            let gx = g.storage().avg_pool2d_backward(g.layout(), &p)?;
            Ok(vec![Some(Tensor::from_storage(gx, &[p.n, p.c, p.h, p.w]))])
        }))
    })
}

/// Averages over PyTorch's adaptive windows so that the output is `output_size`
/// (a number or `(h, w)`), like `F.adaptive_avg_pool2d`.
pub fn adaptive_avg_pool2d(input: &Tensor, output_size: impl Into<Size2d>) -> Result<Tensor> {
    let size = output_size.into();
    unbatched(input, "adaptive_avg_pool2d", |x| {
        if size.h == 0 || size.w == 0 {
            return Err(Error::arg(
                "output_size",
                format!("must be at least 1×1, got {size:?}"),
            ));
        }
        let [n, c, h, w] = x.shape()[..] else {
            return Err(rank_error("adaptive_avg_pool2d", x));
        };
        if h == 0 || w == 0 {
            return Err(Error::arg(
                "input",
                format!("spatial size must be non-zero, got shape {:?}", x.shape()),
            ));
        }
        // The output must be addressable, and the windows' bounds (`i * h / out_h`)
        // are computed unchecked in the kernels.
        let op = "adaptive_avg_pool2d";
        checked_product(op, "the output's element count", &[n, c, size.h, size.w])?;
        // The kernels size one output plane unchecked, even for an empty batch.
        checked_product(op, "an output plane", &[size.h, size.w])?;
        for (out, input) in [(size.h, h), (size.w, w)] {
            let bound = checked_sum(op, "output_size + 1", &[out, 1])?;
            checked_product(op, "(output_size + 1) × input size", &[bound, input])?;
        }
        let p = AdaptivePool2dParams {
            n,
            c,
            h,
            w,
            out_h: size.h,
            out_w: size.w,
        };
        let xc = x.detach().contiguous()?;
        let out = xc.storage().adaptive_avg_pool2d(xc.layout(), &p)?;
        let out = Tensor::from_storage(out, &[n, c, size.h, size.w]);
        Ok(record(out, "adaptive_avg_pool2d", &[x], move |_, g| {
            let g = g.contiguous()?;
            let gx = g.storage().adaptive_avg_pool2d_backward(g.layout(), &p)?;
            Ok(vec![Some(Tensor::from_storage(gx, &[n, c, h, w]))])
        }))
    })
}

/// Runs `f` on a 4-D view: (C, H, W) inputs get a batch of one, removed afterwards.
fn unbatched(
    input: &Tensor,
    op: &'static str,
    f: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<Tensor> {
    input.check_float(op)?;
    match input.rank() {
        4 => f(input),
        3 => f(&input.unsqueeze(0)?)?.squeeze(0),
        _ => Err(rank_error(op, input)),
    }
}

fn rank_error(op: &str, x: &Tensor) -> Error {
    Error::arg(
        "input",
        format!(
            "{op} expects (N, C, H, W) or (C, H, W), got shape {:?}",
            x.shape()
        ),
    )
}

/// Validates window options like PyTorch and computes the output size (floor or ceil
/// mode). `dilated` is whether the op takes a dilation (max pooling).
fn pool_params(x: &Tensor, opts: &Pool2dOpts, dilated: bool) -> Result<Pool2dParams> {
    let [n, c, h, w] = x.shape()[..] else {
        return Err(rank_error("pool2d", x));
    };
    // As PyTorch: only the batch may be empty (a window over an empty plane would
    // pool padding alone).
    if c == 0 || h == 0 || w == 0 {
        return Err(Error::arg(
            "input",
            format!(
                "needs non-empty channels, height and width (only the batch may be 0), got \
                 shape {:?}",
                x.shape()
            ),
        ));
    }
    let (kernel, padding, dilation) = (opts.kernel, opts.padding, opts.dilation);
    let stride = opts.effective_stride();
    for (name, size) in [
        ("kernel", kernel),
        ("stride", stride),
        ("dilation", dilation),
    ] {
        if size.h == 0 || size.w == 0 {
            return Err(Error::arg(name, format!("must be at least 1, got {size}")));
        }
    }
    if !dilated && dilation != Size2d::from(1) {
        return Err(Error::arg(
            "dilation",
            format!("average pooling has no dilation (only 1), got {dilation}"),
        ));
    }
    if padding.h > kernel.h / 2 || padding.w > kernel.w / 2 {
        return Err(Error::arg(
            "padding",
            format!(
                "padding {padding} must be at most half of kernel_size {kernel}, i.e. at most ({}, {})",
                kernel.h / 2,
                kernel.w / 2
            ),
        ));
    }
    let axis = |size, k, s, p, d| {
        output_size(size, k, s, p, d, opts.ceil_mode).ok_or_else(|| {
            Error::arg(
                "padding",
                format!(
                    "{padding:?} with kernel {kernel} makes the padded input larger than i64::MAX"
                ),
            )
        })
    };
    let out_h = axis(h, kernel.h, stride.h, padding.h, dilation.h)?;
    let out_w = axis(w, kernel.w, stride.w, padding.w, dilation.w)?;
    if out_h == 0 || out_w == 0 {
        return Err(Error::arg(
            "kernel",
            format!(
                "{kernel} (dilation {dilation}, padding {padding}) is larger than the padded \
                 {h}×{w} input: no window fits"
            ),
        ));
    }
    checked_product(
        "pool2d",
        "the output's element count",
        &[n, c, out_h, out_w],
    )?;
    Ok(Pool2dParams {
        n,
        c,
        h,
        w,
        kh: kernel.h,
        kw: kernel.w,
        stride_h: stride.h,
        stride_w: stride.w,
        pad_h: padding.h,
        pad_w: padding.w,
        dilation_h: dilation.h,
        dilation_w: dilation.w,
        count_include_pad: opts.count_include_pad,
        out_h,
        out_w,
    })
}

/// PyTorch's `pooling_output_shape`: the number of windows along an axis of `size`
/// (0 when none fits), in ceil mode without a last window that starts in the right
/// padding; `None` when the padded input or a window's span does not fit `i64` (the
/// kernels index with signed offsets).
fn output_size(
    size: usize,
    k: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    ceil: bool,
) -> Option<usize> {
    let [size, k, stride, pad, dilation] = [size, k, stride, pad, dilation].map(|v| v as i128);
    let span = dilation.checked_mul(k - 1)? + 1;
    i64::try_from(size + 2 * pad + span + stride).ok()?;
    let room = size + 2 * pad - span + if ceil { stride - 1 } else { 0 };
    let mut out = room.div_euclid(stride) + 1;
    if ceil && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    usize::try_from(out.max(0)).ok()
}
