//! Pooling: `max_pool2d`, `avg_pool2d` (padding counted in the divisor, PyTorch's
//! default) and `adaptive_avg_pool2d`, on (N, C, H, W) or unbatched (C, H, W)
//! inputs. Kernels: `backend/cpu/pool.rs` (the reference) and `kernels/pool.cu`.

use super::Size2d;
use crate::autograd::record;
use crate::backend::pool::{AdaptivePool2dParams, Pool2dParams};
use crate::shape::{checked_product, checked_sum};
use crate::tensor::StorageLocks;
use crate::{Error, Result, Tensor};

/// Max over windows of `kernel` (a number or `(h, w)`), moved by `stride`, with
/// `padding` implicit −∞ rows/columns on each side, like `F.max_pool2d` (no
/// dilation, floor mode). The gradient goes to the element each window took.
pub fn max_pool2d(
    input: &Tensor,
    kernel: impl Into<Size2d>,
    stride: impl Into<Size2d>,
    padding: impl Into<Size2d>,
) -> Result<Tensor> {
    let (kernel, stride, padding) = (kernel.into(), stride.into(), padding.into());
    unbatched(input, "max_pool2d", |x| {
        let p = pool_params(x, kernel, stride, padding)?;
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
/// defaults (`count_include_pad=True`, floor mode).
pub fn avg_pool2d(
    input: &Tensor,
    kernel: impl Into<Size2d>,
    stride: impl Into<Size2d>,
    padding: impl Into<Size2d>,
) -> Result<Tensor> {
    let (kernel, stride, padding) = (kernel.into(), stride.into(), padding.into());
    unbatched(input, "avg_pool2d", |x| {
        let p = pool_params(x, kernel, stride, padding)?;
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

/// Validates window options like PyTorch and computes the output size (floor mode).
fn pool_params(
    x: &Tensor,
    kernel: Size2d,
    stride: Size2d,
    padding: Size2d,
) -> Result<Pool2dParams> {
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
    if kernel.h == 0 || kernel.w == 0 {
        return Err(Error::arg(
            "kernel",
            format!("kernel_size must be at least 1, got {kernel}"),
        ));
    }
    if stride.h == 0 || stride.w == 0 {
        return Err(Error::arg(
            "stride",
            format!("stride must be at least 1, got {stride}"),
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
    // Checked: a huge kernel with half of it as padding must be an error, not a
    // wrapped-around size. The kernels index with signed offsets, so the padded
    // input must also fit isize.
    let padded = |size: usize, pad: usize| -> Result<usize> {
        checked_sum("pool2d", "the padded input", &[size, pad, pad])
            .ok()
            .filter(|&p| isize::try_from(p).is_ok())
            .ok_or_else(|| {
                Error::arg(
                    "padding",
                    format!("{padding:?} makes the padded input larger than isize::MAX"),
                )
            })
    };
    let (ph, pw) = (padded(h, padding.h)?, padded(w, padding.w)?);
    if kernel.h > ph || kernel.w > pw {
        return Err(Error::arg(
            "kernel",
            format!(
                "{}×{} is larger than the padded input {ph}×{pw}",
                kernel.h, kernel.w
            ),
        ));
    }
    let (out_h, out_w) = (
        (ph - kernel.h) / stride.h + 1,
        (pw - kernel.w) / stride.w + 1,
    );
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
        out_h,
        out_w,
    })
}
