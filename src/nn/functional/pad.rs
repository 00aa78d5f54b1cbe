//! `pad`: padding of the last two dimensions, like `torch.nn.functional.pad` with a
//! 4-tuple, in the modes constant, reflect, replicate and circular. The CPU kernel is
//! in `backend/cpu/pad.rs`, the CUDA one in `kernels/pad.cu`; the index rules, once,
//! in `backend/pad.rs`.

use crate::autograd::record;
use crate::backend::pad::{Pad2dParams, PadKind};
use crate::shape::checked_product;
use crate::{Error, Result, Tensor};

/// How [`pad`] fills the border (PyTorch's `mode`, and `value` for `"constant"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PadMode {
    /// This value (`mode="constant", value=v`; `PadMode::Constant(0.0)` is zero padding).
    Constant(f64),
    /// The input mirrored at its edge, the edge not repeated: `[c b | a b c | b a]`
    /// (`mode="reflect"`; each pad must be smaller than the size it pads).
    Reflect,
    /// The edge repeated: `[a a | a b c | c c]` (`mode="replicate"`).
    Replicate,
    /// The input wrapped around: `[b c | a b c | a b]` (`mode="circular"`; each pad at
    /// most the size it pads).
    Circular,
}

impl PadMode {
    fn kind(self) -> (PadKind, f64) {
        match self {
            PadMode::Constant(v) => (PadKind::Constant, v),
            PadMode::Reflect => (PadKind::Reflect, 0.0),
            PadMode::Replicate => (PadKind::Replicate, 0.0),
            PadMode::Circular => (PadKind::Circular, 0.0),
        }
    }
}

/// Pads the last two dimensions of `input` (rank ≥ 2; e.g. `(N, C, H, W)` or
/// `(C, H, W)`) by `(left, right, top, bottom)`, like
/// `torch.nn.functional.pad(input, (left, right, top, bottom), mode)`. Gradients
/// flow back to `input`; where a mode copies an element several times (reflect,
/// replicate, circular), its gradient is the sum over the copies.
///
/// Errors name the argument: `input` of rank below 2 or not float, `pad` that
/// reflect does not allow (a pad not smaller than the size it pads, as PyTorch),
/// that circular does not allow (larger than the size), or any non-constant pad of
/// an empty dimension.
///
/// ```
/// use kiln::nn::functional::{self as F, PadMode};
/// use kiln::{Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let x = Tensor::from_vec(vec![1f32, 2., 3.], &[1, 1, 3], &Device::Cpu)?;
/// let y = F::pad(&x, (2, 1, 0, 0), PadMode::Reflect)?;
/// assert_eq!(y.to_vec::<f32>()?, [3., 2., 1., 2., 3., 2.]);
/// # Ok(())
/// # }
/// ```
pub fn pad(input: &Tensor, pad: (usize, usize, usize, usize), mode: PadMode) -> Result<Tensor> {
    pad_named(input, pad, mode, "pad")
}

/// [`pad`], with errors about the padding naming `arg` (`conv2d` names its `padding`).
pub(super) fn pad_named(
    input: &Tensor,
    pad: (usize, usize, usize, usize),
    mode: PadMode,
    arg: &'static str,
) -> Result<Tensor> {
    let _op = crate::profiler::op("pad", &[input]);
    let shape = input.shape().to_vec();
    let rank = shape.len();
    if rank < 2 {
        return Err(Error::arg(
            "input",
            format!("F::pad pads the last two dimensions, so needs rank >= 2, got shape {shape:?}"),
        ));
    }
    input.check_float("pad")?;
    let (left, right, top, bottom) = pad;
    let (h, w) = (shape[rank - 2], shape[rank - 1]);
    let (kind, value) = mode.kind();
    for (size, before, after, dim) in [(w, left, right, rank - 1), (h, top, bottom, rank - 2)] {
        check_side(kind, size, before, after, dim, &shape, arg)?;
    }
    let planes = shape[..rank - 2].iter().product();
    let p = Pad2dParams {
        planes,
        h,
        w,
        top,
        bottom,
        left,
        right,
        kind,
        value,
    };
    let grown = |size: usize, a: usize, b: usize| {
        size.checked_add(a)
            .and_then(|s| s.checked_add(b))
            .ok_or_else(|| Error::arg(arg, format!("{pad:?} overflows the padded size")))
    };
    let mut out_shape = shape.clone();
    out_shape[rank - 2] = grown(h, top, bottom)?;
    out_shape[rank - 1] = grown(w, left, right)?;
    checked_product("pad", "the output's element count", &out_shape)?;
    let xc = input.detach().contiguous()?;
    let out = xc.storage().pad2d(xc.layout(), &p)?;
    let out = Tensor::from_storage(out, &out_shape);
    Ok(record(out, "pad", &[input], move |_, g| {
        let g = g.contiguous()?;
        let gx = g.storage().pad2d_backward(g.layout(), &p)?;
        Ok(vec![Some(Tensor::from_storage(gx, &shape))])
    }))
}

/// Err naming `arg` when `kind` cannot pad dimension `dim` (of `size`) by `before`
/// and `after`, with PyTorch's rules.
fn check_side(
    kind: PadKind,
    size: usize,
    before: usize,
    after: usize,
    dim: usize,
    shape: &[usize],
    arg: &'static str,
) -> Result<()> {
    let padded = before > 0 || after > 0;
    let bad = match kind {
        PadKind::Constant => None,
        _ if padded && size == 0 => Some(format!(
            "{} padding of dimension {dim} needs a non-empty input, got shape {shape:?}",
            kind.name()
        )),
        PadKind::Reflect if before >= size || after >= size => Some(format!(
            "reflect padding must be less than the input size it pads, but got padding \
             ({before}, {after}) at dimension {dim} of input {shape:?}"
        )),
        PadKind::Circular if before > size || after > size => Some(format!(
            "circular padding may wrap around at most once: padding ({before}, {after}) at \
             dimension {dim} is larger than its size in input {shape:?}"
        )),
        _ => None,
    };
    match bad {
        Some(msg) => Err(Error::arg(arg, msg)),
        None => Ok(()),
    }
}
