//! Validation of a convolution's shapes and options, and its [`ConvParams`]: the
//! sizes of a forward convolution, or of the convolution whose input gradient a
//! transposed convolution is. Every size is checked, so a huge stride, dilation or
//! padding is an `Err` naming it, never a wrapped-around shape.

use super::opts::{PadSpec, Spec};
use crate::backend::conv::ConvParams;
use crate::shape::{checked_product, checked_sum};
use crate::{Error, Result};

/// The largest padded input side the kernels' signed index arithmetic allows.
const MAX_PADDED: usize = isize::MAX as usize / 4;

/// `v`'s last `dims` axes as PyTorch prints a size: `(3,)`, `(2, 1)`, `(1, 2, 2)`.
pub(crate) fn tuple(v: &[usize]) -> String {
    match v {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The op's axes of a 3-axis size, as PyTorch prints them.
fn shown(spec: &Spec, v: [usize; 3]) -> String {
    tuple(&v[3 - spec.dims..])
}

/// The spatial sizes of a shape of rank `dims + 2` as three axes (missing leading
/// ones 1).
fn spatial(shape: &[usize]) -> [usize; 3] {
    let mut axes = [1; 3];
    axes[5 - shape.len()..].copy_from_slice(&shape[2..]);
    axes
}

/// The names of a `dims`-d operand's axes, `"N, C, L"` and the like.
fn layout_names(dims: usize) -> &'static str {
    match dims {
        1 => "L",
        2 => "H, W",
        _ => "D, H, W",
    }
}

/// Checks the ranks of the input `(N, C, spatial..)` and the weight `(a, b, k..)`.
fn check_ranks(spec: &Spec, x: &[usize], w: &[usize], weight_names: &str) -> Result<()> {
    let (rank, axes) = (spec.dims + 2, layout_names(spec.dims));
    if x.len() != rank {
        return Err(Error::arg(
            "input",
            format!("expected (N, C, {axes}), got shape {x:?}"),
        ));
    }
    if w.len() != rank {
        return Err(Error::arg(
            "weight",
            format!("expected ({weight_names}, k..) of rank {rank}, got shape {w:?}"),
        ));
    }
    Ok(())
}

/// Groups, stride, dilation and the kernel are at least 1.
fn check_positive(spec: &Spec, kernel: [usize; 3], w: &[usize]) -> Result<()> {
    if spec.groups == 0 {
        return Err(Error::arg("groups", "must be at least 1"));
    }
    for (name, v) in [("stride", spec.stride), ("dilation", spec.dilation)] {
        if v.contains(&0) {
            return Err(Error::arg(
                name,
                format!("must be at least 1, got {}", shown(spec, v)),
            ));
        }
    }
    if kernel.contains(&0) {
        return Err(Error::arg(
            "weight",
            format!("kernel size must be at least 1, got shape {w:?}"),
        ));
    }
    Ok(())
}

/// The kernel's extent `dilation·(k-1) + 1` along each axis.
pub(crate) fn extents(spec: &Spec, kernel: [usize; 3]) -> Result<[usize; 3]> {
    let mut ext = [0; 3];
    for a in 0..3 {
        ext[a] = spec.dilation[a]
            .checked_mul(kernel[a] - 1)
            .and_then(|e| e.checked_add(1))
            .ok_or_else(|| {
                Error::arg(
                    "dilation",
                    format!(
                        "{} makes the kernel's extent overflow usize",
                        shown(spec, spec.dilation)
                    ),
                )
            })?;
    }
    Ok(ext)
}

/// The (before, after) padding of each axis for a kernel of `extents`; for
/// [`PadSpec::Same`] the odd row goes after, as PyTorch's.
pub(crate) fn padding_sides(padding: PadSpec, extents: [usize; 3]) -> [(usize, usize); 3] {
    std::array::from_fn(|a| match padding {
        PadSpec::Explicit(p) => (p[a], p[a]),
        PadSpec::Valid => (0, 0),
        PadSpec::Same => {
            let total = extents[a] - 1;
            (total / 2, total - total / 2)
        }
    })
}

/// `size + before + after`, within [`MAX_PADDED`].
fn padded(spec: &Spec, size: usize, (before, after): (usize, usize)) -> Result<usize> {
    checked_sum("conv", "the padded input", &[size, before, after])
        .ok()
        .filter(|&p| p <= MAX_PADDED)
        .ok_or_else(|| {
            Error::arg(
                "padding",
                format!(
                    "{:?} makes the padded input ({size} + {before} + {after}) larger than {MAX_PADDED}",
                    spec.padding
                ),
            )
        })
}

/// Checks that the output and the CPU's im2col buffer (`col` elements: taps of a
/// group's channels × output positions) are addressable: the kernels multiply these
/// sizes unchecked.
fn check_counts(op: &'static str, output: &[usize], col: &[usize]) -> Result<()> {
    checked_product(op, "the output's element count", output)?;
    checked_product(op, "the im2col buffer", col)?;
    Ok(())
}

/// The sizes of a forward convolution of input `x` (N, C_in, spatial..) with weight
/// `w` (C_out, C_in/groups, k..) under `spec`, validated: ranks, channel counts that
/// do not match the weight or are not divisible by `groups`, zero stride, dilation or
/// groups, `Same` padding with a stride above 1, a kernel larger than the padded input.
pub(crate) fn forward(
    op: &'static str,
    x: &[usize],
    w: &[usize],
    spec: &Spec,
) -> Result<ConvParams> {
    check_ranks(spec, x, w, "C_out, C_in/groups")?;
    let (n, c_in, c_out, c_in_g, groups) = (x[0], x[1], w[0], w[1], spec.groups);
    let (input, kernel) = (spatial(x), spatial(w));
    check_positive(spec, kernel, w)?;
    if c_in % groups != 0 {
        return Err(Error::arg(
            "groups",
            format!("input channels ({c_in}) are not divisible by groups ({groups})"),
        ));
    }
    if c_out % groups != 0 {
        return Err(Error::arg(
            "groups",
            format!("output channels (weight.shape[0] = {c_out}) are not divisible by groups ({groups})"),
        ));
    }
    if c_in_g.checked_mul(groups) != Some(c_in) {
        return Err(Error::arg(
            "weight",
            format!(
                "weight {w:?} expects shape[1] = {c_in_g} × groups = {groups} input channels, but the input has {c_in}"
            ),
        ));
    }
    let ext = extents(spec, kernel)?;
    if spec.padding == PadSpec::Same && spec.stride != [1; 3] {
        return Err(Error::arg(
            "padding",
            format!(
                "Same padding needs stride 1 (as in PyTorch), got stride {}",
                shown(spec, spec.stride)
            ),
        ));
    }
    let sides = padding_sides(spec.padding, ext);
    let (mut padded_in, mut output, mut stride) = ([0; 3], [0; 3], [0; 3]);
    for a in 0..3 {
        padded_in[a] = padded(spec, input[a], sides[a])?;
        // A stride beyond the padded input gives one output row whatever its size;
        // capping it there keeps the kernels' signed arithmetic in range.
        stride[a] = spec.stride[a].min(padded_in[a].max(1));
    }
    if (0..3).any(|a| ext[a] > padded_in[a]) {
        return Err(Error::arg(
            "weight",
            format!(
                "kernel extent {} (kernel {}, dilation {}) is larger than the padded input {}",
                shown(spec, ext),
                shown(spec, kernel),
                shown(spec, spec.dilation),
                shown(spec, padded_in)
            ),
        ));
    }
    for a in 0..3 {
        output[a] = (padded_in[a] - ext[a]) / spec.stride[a] + 1;
    }
    let mut out_shape = vec![n, c_out];
    out_shape.extend(output);
    let mut col = vec![c_in_g];
    col.extend(kernel.into_iter().chain(output));
    check_counts(op, &out_shape, &col)?;
    Ok(ConvParams {
        n,
        c_in,
        c_out,
        groups,
        input,
        kernel,
        stride,
        pad: sides.map(|(before, _)| before),
        dilation: spec.dilation,
        output,
    })
}

/// The sizes of a transposed convolution of input `x` (N, C_in, spatial..) with weight
/// `w` (C_in, C_out/groups, k..) under `spec`, as the convolution whose input gradient
/// it is: that convolution's input is this op's output, `(in - 1)·stride - 2·padding +
/// dilation·(k - 1) + output_padding + 1` along each axis, and its output this op's
/// input. Errors as PyTorch raises: ranks, channels, groups, zero stride, dilation or
/// groups, an empty input plane, an output padding not below the stride or the
/// dilation, an output size below 1.
pub(crate) fn transposed(
    op: &'static str,
    x: &[usize],
    w: &[usize],
    spec: &Spec,
) -> Result<ConvParams> {
    check_ranks(spec, x, w, "C_in, C_out/groups")?;
    let (n, c_in, groups) = (x[0], x[1], spec.groups);
    let (input, kernel) = (spatial(x), spatial(w));
    check_positive(spec, kernel, w)?;
    if w[0] != c_in {
        return Err(Error::arg(
            "weight",
            format!(
                "weight {w:?} expects shape[0] = {} input channels, but the input has {c_in}",
                w[0]
            ),
        ));
    }
    if c_in == 0 || c_in % groups != 0 {
        return Err(Error::arg(
            "groups",
            format!("input channels (weight.shape[0] = {c_in}) must be a positive multiple of groups ({groups})"),
        ));
    }
    if w[1] == 0 {
        return Err(Error::arg(
            "weight",
            format!("expected a non-empty weight, got shape {w:?}"),
        ));
    }
    if input.contains(&0) {
        return Err(Error::arg(
            "input",
            format!("only the batch may be empty, got shape {x:?}"),
        ));
    }
    let Spec {
        stride,
        dilation,
        output_padding: op_pad,
        ..
    } = *spec;
    if (0..3).any(|a| op_pad[a] >= stride[a] && op_pad[a] >= dilation[a]) {
        return Err(Error::arg(
            "output_padding",
            format!(
                "must be smaller than either stride or dilation, got output_padding {} with stride {} and dilation {}",
                shown(spec, op_pad), shown(spec, stride), shown(spec, dilation)
            ),
        ));
    }
    let PadSpec::Explicit(pad) = spec.padding else {
        return Err(Error::arg(
            "padding",
            "a transposed convolution takes explicit padding",
        ));
    };
    let ext = extents(spec, kernel)?;
    let (mut output, mut full) = ([0; 3], [0; 3]);
    for a in 0..3 {
        // The full output, (in - 1)·stride + extent + output_padding, less the padding.
        full[a] = (input[a] - 1)
            .checked_mul(stride[a])
            .and_then(|v| v.checked_add(ext[a])?.checked_add(op_pad[a]))
            .filter(|&v| v <= MAX_PADDED)
            .ok_or_else(|| {
                Error::arg(
                    "stride",
                    format!("{} makes the output size overflow", shown(spec, stride)),
                )
            })?;
        output[a] = pad[a]
            .checked_mul(2)
            .and_then(|both| full[a].checked_sub(both))
            .filter(|&o| o > 0)
            .ok_or_else(|| {
                Error::arg(
                    "padding",
                    format!(
                        "{} leaves no output: input {}, full output size {} along an axis",
                        shown(spec, pad),
                        shown(spec, input),
                        full[a]
                    ),
                )
            })?;
    }
    let c_out = w[1] * groups;
    let mut out_shape = vec![n, c_out];
    out_shape.extend(output);
    let mut col = vec![w[1]];
    col.extend(kernel.into_iter().chain(input));
    check_counts(op, &out_shape, &col)?;
    Ok(ConvParams {
        n,
        c_in: c_out,
        c_out: c_in,
        groups,
        input: output,
        kernel,
        // As in `forward`: a stride past the (padded) output changes nothing.
        stride: std::array::from_fn(|a| stride[a].min(full[a])),
        pad,
        dilation,
        output: input,
    })
}
