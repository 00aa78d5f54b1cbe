//! The one implementation behind every pooling function of `pool.rs`: any rank's
//! input seen as (planes, d, h, w) volumes, PyTorch's argument checks and output
//! sizes, the backend call and the gradient's record.

use super::pool_opts::PoolWindow;
use super::tuple;
use crate::autograd::record;
use crate::backend::pool::{PoolParams, Windows};
use crate::shape::{checked_product, checked_sum};
use crate::tensor::StorageLocks;
use crate::{Error, Result, Tensor};

/// An input of a `dims`-axis pooling as (planes, d, h, w) volumes.
struct Volumes {
    /// The sizes before the pooled axes: (N, C) or (C).
    lead: Vec<usize>,
    /// The pooled axes' sizes along (d, h, w), 1 where the rank lacks one.
    spatial: [usize; 3],
}

impl Volumes {
    /// Checks that `input` is a floating (N, C, *) or (C, *) tensor with `dims`
    /// pooled axes and splits its shape.
    fn of(input: &Tensor, dims: usize, op: &'static str) -> Result<Volumes> {
        input.check_float(op)?;
        let rank = input.rank();
        if rank != dims + 1 && rank != dims + 2 {
            let axes = ["L", "H, W", "D, H, W"][dims - 1];
            return Err(Error::arg(
                "input",
                format!(
                    "{op} expects (N, C, {axes}) or (C, {axes}), got shape {:?}",
                    input.shape()
                ),
            ));
        }
        let (lead, pooled) = input.shape().split_at(rank - dims);
        let mut spatial = [1; 3];
        spatial[3 - dims..].copy_from_slice(pooled);
        Ok(Volumes {
            lead: lead.to_vec(),
            spatial,
        })
    }

    /// The plan of `op` with `params` over these volumes (`dims` pooled axes).
    fn plan(&self, op: &'static str, params: PoolParams, dims: usize) -> Plan {
        let shape = [&self.lead[..], &params.output[3 - dims..]].concat();
        Plan { op, params, shape }
    }
}

/// A checked pooling of one input: the op's name, the backend's parameters and the
/// output's shape.
pub(super) struct Plan {
    op: &'static str,
    params: PoolParams,
    shape: Vec<usize>,
}

/// Max pooling of `input` as `plan` says, recording the gradient (to the element each
/// output took): the output and the I64 index of that element in its volume.
pub(super) fn max(input: &Tensor, plan: Plan) -> Result<(Tensor, Tensor)> {
    let Plan { op, params, shape } = plan;
    let _op = crate::profiler::op(op, &[input]);
    let xc = input.detach().contiguous()?;
    let in_shape = input.shape().to_vec();
    let (values, indices) = xc.storage().max_pool(xc.layout(), &params)?;
    let out = Tensor::from_storage(values, &shape);
    let indices = Tensor::from_storage(indices, &shape);
    let saved = indices.clone();
    let out = record(out, op, &[input], move |_, g| {
        let g = g.contiguous()?;
        let locks = StorageLocks::read(&[&g, &saved]);
        let gx =
            locks
                .get(0)
                .max_pool_backward(g.layout(), locks.get(1), saved.layout(), &params)?;
        Ok(vec![Some(Tensor::from_storage(gx, &in_shape))])
    });
    Ok((out, indices))
}

/// Average pooling of `input` as `plan` says, recording the gradient.
pub(super) fn avg(input: &Tensor, plan: Plan) -> Result<Tensor> {
    let Plan { op, params, shape } = plan;
    let _op = crate::profiler::op(op, &[input]);
    let xc = input.detach().contiguous()?;
    let in_shape = input.shape().to_vec();
    let out = xc.storage().avg_pool(xc.layout(), &params)?;
    let out = Tensor::from_storage(out, &shape);
    Ok(record(out, op, &[input], move |_, g| {
        let g = g.contiguous()?;
        let gx = g.storage().avg_pool_backward(g.layout(), &params)?;
        Ok(vec![Some(Tensor::from_storage(gx, &in_shape))])
    }))
}

/// The plan of max (`max`) or average pooling `op` of `input` over fixed windows `w`,
/// checked like PyTorch.
pub(super) fn fixed(input: &Tensor, op: &'static str, max: bool, w: PoolWindow) -> Result<Plan> {
    let vols = Volumes::of(input, w.dims, op)?;
    // As PyTorch: only the batch may be empty (a window over an empty plane would
    // pool padding alone).
    let channels = vols.lead.last().copied().unwrap_or(1);
    if channels == 0 || vols.spatial.contains(&0) {
        return Err(Error::arg(
            "input",
            format!(
                "{op} needs non-empty channels and spatial axes (only the batch may be 0), \
                 got shape {:?}",
                input.shape()
            ),
        ));
    }
    let output = output_size(op, &w, max, vols.spatial)?;
    let planes = checked_product(op, "the number of planes", &vols.lead)?;
    let out_plane = checked_product(op, "an output plane", &output)?;
    checked_product(op, "the output's element count", &[planes, out_plane])?;
    let windows = Windows::Strided {
        kernel: w.kernel,
        stride: w.stride,
        pad: w.padding,
        dilation: w.dilation,
        count_include_pad: w.count_include_pad,
    };
    let params = PoolParams {
        planes,
        input: vols.spatial,
        output,
        windows,
    };
    Ok(vols.plan(op, params, w.dims))
}

/// Checks `w`'s options like PyTorch and gives the output size along (d, h, w).
fn output_size(op: &str, w: &PoolWindow, max: bool, input: [usize; 3]) -> Result<[usize; 3]> {
    let shown = |v: [usize; 3]| tuple(&v[3 - w.dims..]);
    for (name, size) in [
        ("kernel", w.kernel),
        ("stride", w.stride),
        ("dilation", w.dilation),
    ] {
        if size.contains(&0) {
            return Err(Error::arg(
                name,
                format!("must be at least 1, got {}", shown(size)),
            ));
        }
    }
    if !max && w.dilation != [1; 3] {
        return Err(Error::arg(
            "dilation",
            format!(
                "average pooling has no dilation (only 1), got {}",
                shown(w.dilation)
            ),
        ));
    }
    if (0..3).any(|a| w.padding[a] > w.kernel[a] / 2) {
        return Err(Error::arg(
            "padding",
            format!(
                "padding {} must be at most half of kernel_size {}, i.e. at most {}",
                shown(w.padding),
                shown(w.kernel),
                shown(w.kernel.map(|k| k / 2))
            ),
        ));
    }
    let mut out = [1; 3];
    for a in 0..3 {
        out[a] = axis_output(input[a], w, a).ok_or_else(|| {
            Error::arg(
                "padding",
                format!(
                    "{} with kernel {} makes the padded input larger than i64::MAX",
                    shown(w.padding),
                    shown(w.kernel)
                ),
            )
        })?;
    }
    if out.contains(&0) {
        return Err(Error::arg(
            "kernel",
            format!(
                "{} (dilation {}, padding {}) is larger than the padded {} input of {op}: no \
                 window fits",
                shown(w.kernel),
                shown(w.dilation),
                shown(w.padding),
                shown(input)
            ),
        ));
    }
    Ok(out)
}

/// PyTorch's `pooling_output_shape` along axis `a` of `size`: the number of windows
/// (0 when none fits), in ceil mode without a last window that starts in the right
/// padding; `None` when the padded input or a window's span does not fit `i64` (the
/// kernels index with signed offsets).
fn axis_output(size: usize, w: &PoolWindow, a: usize) -> Option<usize> {
    let [size, k, stride, pad, dilation] =
        [size, w.kernel[a], w.stride[a], w.padding[a], w.dilation[a]].map(|v| v as i128);
    let span = dilation.checked_mul(k - 1)? + 1;
    i64::try_from(size + 2 * pad + span + stride).ok()?;
    let room = size + 2 * pad - span + if w.ceil_mode { stride - 1 } else { 0 };
    let mut out = room.div_euclid(stride) + 1;
    if w.ceil_mode && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    usize::try_from(out.max(0)).ok()
}

/// The plan of pooling `op` of `input` over PyTorch's adaptive windows to `size`
/// (`dims` axes, along (d, h, w)), checked like PyTorch.
pub(super) fn adaptive(
    input: &Tensor,
    op: &'static str,
    dims: usize,
    size: [usize; 3],
) -> Result<Plan> {
    let vols = Volumes::of(input, dims, op)?;
    if size.contains(&0) {
        return Err(Error::arg(
            "output_size",
            format!("must be at least 1, got {}", tuple(&size[3 - dims..])),
        ));
    }
    if vols.spatial.contains(&0) {
        return Err(Error::arg(
            "input",
            format!(
                "{op}: the pooled axes must be non-empty, got shape {:?}",
                input.shape()
            ),
        ));
    }
    // The output must be addressable, and the windows' bounds (`i * in / out`) are
    // computed unchecked in the kernels.
    let planes = checked_product(op, "the number of planes", &vols.lead)?;
    // The kernels size one output plane unchecked, even for an empty batch.
    let out_plane = checked_product(op, "an output plane", &size)?;
    checked_product(op, "the output's element count", &[planes, out_plane])?;
    for (out, input) in size.into_iter().zip(vols.spatial) {
        let bound = checked_sum(op, "output_size + 1", &[out, 1])?;
        checked_product(op, "(output_size + 1) × input size", &[bound, input])?;
    }
    let params = PoolParams {
        planes,
        input: vols.spatial,
        output: size,
        windows: Windows::Adaptive,
    };
    Ok(vols.plan(op, params, dims))
}
