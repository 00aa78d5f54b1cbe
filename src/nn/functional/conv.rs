//! The convolutions — `conv1d`, `conv2d`, `conv3d`, `conv_transpose1d`,
//! `conv_transpose2d` — and their backward passes. `opts.rs` holds their options,
//! `params.rs` validates shapes and options into a backend's `ConvParams`.
//!
//! Every convolution runs as one in three spatial dimensions (missing leading axes of
//! size 1). A transposed convolution is the input gradient of the convolution it
//! transposes: its forward is the backend's `conv_backward_input` (with the bias),
//! its input gradient the backend's `conv`, and its weight gradient
//! `conv_backward_weight` with the input and the output's gradient swapped. So both
//! run wherever the tensors live, on the same kernels.

mod opts;
mod params;

pub use opts::{
    Conv1dOpts, Conv2dOpts, Conv3dOpts, ConvTranspose1dOpts, ConvTranspose2dOpts, Padding,
    Padding1d, Padding3d, PaddingMode, Size2d, Size3d,
};
pub(crate) use opts::{PadSpec, Spatial, Spec};
pub(crate) use params::tuple;

use super::pad::{pad_named, PadMode};
use crate::autograd::record;
use crate::tensor::StorageLocks;
use crate::{Error, Result, Tensor};

/// 1-D convolution of `input` (N, C_in, L) — or unbatched (C_in, L) — with `weight`
/// (C_out, C_in/groups, k) and an optional `bias` (C_out), like
/// `torch.nn.functional.conv1d`. Gradients flow to all three. Errors as [`conv2d`]'s.
pub fn conv1d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: Conv1dOpts,
) -> Result<Tensor> {
    conv("conv1d", input, weight, bias, opts.spec())
}

/// 2-D convolution of `input` (N, C_in, H, W) — or unbatched (C_in, H, W) — with
/// `weight` (C_out, C_in/groups, kH, kW) and an optional `bias` (C_out), like
/// `torch.nn.functional.conv2d`. Gradients flow to all three.
///
/// A [`PaddingMode`] other than zeros pads the input explicitly with [`pad`](super::pad)
/// and then convolves without padding, as PyTorch's `nn.Conv2d` does; gradients flow
/// through the padding. `opts.bias` and `opts.dtype` are `nn::Conv2d`'s and ignored here.
///
/// Errors name the argument: ranks, channel counts that do not match the weight or
/// are not divisible by `groups`, zero stride/dilation/groups, [`Padding::Same`] with
/// a stride above 1, a kernel larger than the padded input, padding that the mode
/// does not allow (`padding`: reflect padding not smaller than the input, circular
/// padding larger than it), and dtype or device mismatches between input, weight and
/// bias.
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: Conv2dOpts,
) -> Result<Tensor> {
    conv("conv2d", input, weight, bias, opts.spec())
}

/// 3-D convolution of `input` (N, C_in, D, H, W) — or unbatched (C_in, D, H, W) — with
/// `weight` (C_out, C_in/groups, kD, kH, kW) and an optional `bias` (C_out), like
/// `torch.nn.functional.conv3d`. Gradients flow to all three. Errors as [`conv2d`]'s.
pub fn conv3d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: Conv3dOpts,
) -> Result<Tensor> {
    conv("conv3d", input, weight, bias, opts.spec())
}

/// 1-D transposed convolution ("deconvolution") of `input` (N, C_in, L) — or
/// unbatched (C_in, L) — with `weight` (C_in, C_out/groups, k), PyTorch's layout, and
/// an optional `bias` (C_out), like `torch.nn.functional.conv_transpose1d`: the output
/// is `(L - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1` long.
/// Gradients flow to all three. Errors as [`conv_transpose2d`]'s.
pub fn conv_transpose1d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: ConvTranspose1dOpts,
) -> Result<Tensor> {
    conv("conv_transpose1d", input, weight, bias, opts.spec())
}

/// 2-D transposed convolution of `input` (N, C_in, H, W) — or unbatched (C_in, H, W) —
/// with `weight` (C_in, C_out/groups, kH, kW), PyTorch's layout, and an optional `bias`
/// (C_out), like `torch.nn.functional.conv_transpose2d`: along each axis the output
/// is `(in - 1)·stride - 2·padding + dilation·(k - 1) + output_padding + 1`. It is the
/// gradient of [`conv2d`] with respect to its input. Gradients flow to all three.
///
/// Errors name the argument as PyTorch raises: ranks, a weight whose first axis is
/// not the input's channels, channels not divisible by `groups`, zero
/// stride/dilation/groups, an `output_padding` not below the stride or the dilation,
/// a `padding` that leaves no output, an empty input plane, and dtype or device
/// mismatches.
pub fn conv_transpose2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: ConvTranspose2dOpts,
) -> Result<Tensor> {
    conv("conv_transpose2d", input, weight, bias, opts.spec())
}

/// A convolution (transposed when `spec` says so) of a batched or unbatched input.
fn conv(
    op: &'static str,
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: Spec,
) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::lower([input, weight], [bias], |[x, w], [b]| {
        conv(op, x, w, b, spec)
    }) {
        return y;
    }
    let _op = crate::profiler::op(op, &[input, weight]);
    let rank = spec.dims + 2;
    let batched = |x: &Tensor| {
        if spec.transposed {
            conv_transpose_batched(op, x, weight, bias, spec)
        } else {
            conv_batched(op, x, weight, bias, spec)
        }
    };
    match input.rank() {
        r if r == rank => batched(input),
        r if r == rank - 1 => batched(&input.unsqueeze(0)?)?.squeeze(0),
        r => Err(Error::arg(
            "input",
            format!(
                "{op} expects a batched input of rank {rank} or an unbatched one of rank {}, got rank {r} shape {:?}",
                rank - 1,
                input.shape()
            ),
        )),
    }
}

/// The shape `[n, channels, spatial..]` of an operand of a `dims`-d convolution.
fn shape_of(n: usize, channels: usize, spatial: [usize; 3], dims: usize) -> Vec<usize> {
    [n, channels]
        .into_iter()
        .chain(spatial[3 - dims..].iter().copied())
        .collect()
}

fn conv_batched(
    op: &'static str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: Spec,
) -> Result<Tensor> {
    check_operands(op, x, weight, bias)?;
    let p = params::forward(op, x.shape(), weight.shape(), &spec)?;
    if spec.padding_mode != PaddingMode::Zeros {
        let padded = pad_input(x, &spec, p.kernel)?;
        let unpadded = Spec {
            padding: PadSpec::Valid,
            padding_mode: PaddingMode::Zeros,
            ..spec
        };
        return conv_batched(op, &padded, weight, bias, unpadded);
    }
    check_bias(bias, p.c_out)?;
    let (xc, wc, bc) = contiguous(x, weight, bias)?;
    let out = {
        let locks = locks(&xc, &wc, &bc);
        let bias_arg = bc.as_ref().map(|b| (locks.get(2), b.layout()));
        locks
            .get(0)
            .conv(xc.layout(), locks.get(1), wc.layout(), bias_arg, &p)?
    };
    let dims = spec.dims;
    let out = Tensor::from_storage(out, &shape_of(p.n, p.c_out, p.output, dims));
    let need = needs(x, weight, bias);
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    Ok(record(out, op, &inputs, move |_, g| {
        let g = g.contiguous()?;
        let gx = need[0]
            .then(|| {
                let locks = StorageLocks::read(&[&g, &wc]);
                let s = locks.get(0);
                let gx = s.conv_backward_input(g.layout(), locks.get(1), wc.layout(), None, &p)?;
                Ok::<_, Error>(Tensor::from_storage(
                    gx,
                    &shape_of(p.n, p.c_in, p.input, dims),
                ))
            })
            .transpose()?;
        let gw = need[1]
            .then(|| {
                let locks = StorageLocks::read(&[&xc, &g]);
                let s = locks.get(0);
                let gw = s.conv_backward_weight(xc.layout(), locks.get(1), g.layout(), &p)?;
                Ok::<_, Error>(Tensor::from_storage(gw, wc.shape()))
            })
            .transpose()?;
        bias_grad(vec![gx, gw], &g, need[2], p.n, p.c_out)
    }))
}

/// The transposed convolution: the input gradient of the convolution `p` describes
/// (its input is this op's output, its output this op's input, its weight this op's).
fn conv_transpose_batched(
    op: &'static str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    spec: Spec,
) -> Result<Tensor> {
    check_operands(op, x, weight, bias)?;
    let p = params::transposed(op, x.shape(), weight.shape(), &spec)?;
    check_bias(bias, p.c_in)?;
    let (xc, wc, bc) = contiguous(x, weight, bias)?;
    let out = {
        let locks = locks(&xc, &wc, &bc);
        let bias_arg = bc.as_ref().map(|b| (locks.get(2), b.layout()));
        let s = locks.get(0);
        s.conv_backward_input(xc.layout(), locks.get(1), wc.layout(), bias_arg, &p)?
    };
    let dims = spec.dims;
    let out = Tensor::from_storage(out, &shape_of(p.n, p.c_in, p.input, dims));
    let need = needs(x, weight, bias);
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    Ok(record(out, op, &inputs, move |_, g| {
        let g = g.contiguous()?;
        let gx = need[0]
            .then(|| {
                let locks = StorageLocks::read(&[&g, &wc]);
                let gx = locks
                    .get(0)
                    .conv(g.layout(), locks.get(1), wc.layout(), None, &p)?;
                Ok::<_, Error>(Tensor::from_storage(gx, xc.shape()))
            })
            .transpose()?;
        let gw = need[1]
            .then(|| {
                let locks = StorageLocks::read(&[&g, &xc]);
                let s = locks.get(0);
                let gw = s.conv_backward_weight(g.layout(), locks.get(1), xc.layout(), &p)?;
                Ok::<_, Error>(Tensor::from_storage(gw, wc.shape()))
            })
            .transpose()?;
        bias_grad(vec![gx, gw], &g, need[2], p.n, p.c_in)
    }))
}

/// Which of input, weight and bias want a gradient.
fn needs(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> [bool; 3] {
    [
        x.requires_grad_flag(),
        weight.requires_grad_flag(),
        bias.is_some_and(|b| b.requires_grad_flag()),
    ]
}

/// Detached contiguous copies (or views) of the operands, as the backends take them.
fn contiguous(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    let bc = bias.map(|b| b.detach().contiguous()).transpose()?;
    Ok((x.detach().contiguous()?, weight.detach().contiguous()?, bc))
}

/// Read locks on the operands' storages: input, weight, then the bias if any.
fn locks<'a>(x: &'a Tensor, w: &'a Tensor, b: &'a Option<Tensor>) -> StorageLocks<'a> {
    let mut operands = vec![x, w];
    operands.extend(b);
    StorageLocks::read(&operands)
}

/// `grads` (input's, weight's) followed by the bias's gradient when it is wanted: the
/// output's gradient `g` (n, channels, spatial..) summed over all but the channels.
fn bias_grad(
    mut grads: Vec<Option<Tensor>>,
    g: &Tensor,
    need: bool,
    n: usize,
    channels: usize,
) -> Result<Vec<Option<Tensor>>> {
    if need {
        let spatial = g.shape()[2..].iter().product();
        let gb = g
            .reshape(&[n, channels, spatial])?
            .sum(2, false)?
            .sum(0, false)?;
        grads.push(Some(gb));
    }
    Ok(grads)
}

/// `Err` naming `bias` unless it is absent or has `channels` elements in one axis.
fn check_bias(bias: Option<&Tensor>, channels: usize) -> Result<()> {
    match bias {
        Some(b) if b.shape() != [channels] => Err(Error::arg(
            "bias",
            format!("expected shape [{channels}], got {:?}", b.shape()),
        )),
        _ => Ok(()),
    }
}

/// Float dtype, one dtype and one device for all operands.
fn check_operands(
    op: &'static str,
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
) -> Result<()> {
    x.check_float(op)?;
    let (w_name, b_name) = operand_names(op);
    x.check_same_dtype(w_name, weight)?;
    x.check_same_device(w_name, weight)?;
    if let Some(b) = bias {
        x.check_same_dtype(b_name, b)?;
        x.check_same_device(b_name, b)?;
    }
    Ok(())
}

/// How dtype and device errors name an op's weight and bias: `"conv2d weight"`, ...
fn operand_names(op: &'static str) -> (&'static str, &'static str) {
    match op {
        "conv1d" => ("conv1d weight", "conv1d bias"),
        "conv2d" => ("conv2d weight", "conv2d bias"),
        "conv3d" => ("conv3d weight", "conv3d bias"),
        "conv_transpose1d" => ("conv_transpose1d weight", "conv_transpose1d bias"),
        _ => ("conv_transpose2d weight", "conv_transpose2d bias"),
    }
}

/// `x` padded explicitly as `spec.padding_mode` says, one pair of axes at a time with
/// [`pad_named`] (which pads the last two): the modes pad each axis independently, so
/// padding (H, W) and then D is PyTorch's 3-d padding.
fn pad_input(x: &Tensor, spec: &Spec, kernel: [usize; 3]) -> Result<Tensor> {
    let sides = params::padding_sides(spec.padding, params::extents(spec, kernel)?);
    let mode = match spec.padding_mode {
        PaddingMode::Reflect => PadMode::Reflect,
        PaddingMode::Replicate => PadMode::Replicate,
        _ => PadMode::Circular,
    };
    let [(front, back), (top, bottom), (left, right)] = sides;
    let (top, bottom) = if spec.dims == 1 {
        (0, 0)
    } else {
        (top, bottom)
    };
    let hw = pad_named(x, (left, right, top, bottom), mode, "padding")?;
    if spec.dims < 3 {
        return Ok(hw);
    }
    let s = hw.shape().to_vec();
    let planes = hw.reshape(&[s[0], s[1], s[2], s[3] * s[4]])?;
    let padded = pad_named(&planes, (0, 0, front, back), mode, "padding")?;
    padded.reshape(&[s[0], s[1], s[2] + front + back, s[3], s[4]])
}
