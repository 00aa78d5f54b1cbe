//! `conv2d` and its options: validation, the output size, and the backward pass.
//!
//! The CPU kernel is in `backend/cpu/conv.rs` (im2col + GEMM); the backward closure
//! calls the backend's `conv2d_backward_input` / `conv2d_backward_weight`
//! primitives, so it runs wherever the tensors live.

use super::pad::{pad_named, PadMode};
use crate::autograd::record;
use crate::backend::conv::Conv2dParams;
use crate::shape::{checked_product, checked_sum};
use crate::tensor::StorageLocks;
use crate::{DType, Error, Result, Tensor};

/// A size along height and width. Converts from a `usize` (both the same) or an
/// `(h, w)` pair, so options accept either: `.stride(2)`, `.stride((2, 1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Size2d {
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl std::fmt::Display for Size2d {
    /// `(h, w)`, as PyTorch prints sizes in its messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.h, self.w)
    }
}

impl From<usize> for Size2d {
    fn from(v: usize) -> Self {
        Size2d { h: v, w: v }
    }
}

impl From<(usize, usize)> for Size2d {
    fn from((h, w): (usize, usize)) -> Self {
        Size2d { h, w }
    }
}

/// Padding of a convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Zero rows and columns added on each side: (height, width). A number or a pair
    /// converts to this.
    Explicit(usize, usize),
    /// Output as large as the input (stride 1 only, like PyTorch's `padding="same"`);
    /// when the total padding `dilation·(kernel-1)` is odd, the extra row/column goes
    /// at the bottom/right, as PyTorch does.
    Same,
    /// No padding (PyTorch's `padding="valid"`).
    Valid,
}

impl Default for Padding {
    fn default() -> Self {
        Padding::Explicit(0, 0)
    }
}

impl From<usize> for Padding {
    fn from(v: usize) -> Self {
        Padding::Explicit(v, v)
    }
}

impl From<(usize, usize)> for Padding {
    fn from((h, w): (usize, usize)) -> Self {
        Padding::Explicit(h, w)
    }
}

/// How a convolution fills its padding, like `nn.Conv2d`'s `padding_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaddingMode {
    /// Zeros (`'zeros'`, the default): the implicit padding of the kernels.
    #[default]
    Zeros,
    /// The input mirrored at its edges (`'reflect'`); each pad must be smaller than
    /// the side it pads.
    Reflect,
    /// The edge values repeated (`'replicate'`).
    Replicate,
    /// The input wrapped around (`'circular'`); each pad at most the side it pads.
    Circular,
}

impl PaddingMode {
    /// PyTorch's name of the mode (`"zeros"`, `"reflect"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PaddingMode::Zeros => "zeros",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Circular => "circular",
        }
    }
}

/// Options of a 2-D convolution, built like
/// `Conv2dOpts::new().stride(2).padding(1).dilation((1, 2)).groups(2)`.
/// The defaults are PyTorch's: stride 1, no padding, dilation 1, one group, zero
/// padding mode; for `nn::Conv2d` also a bias and F32 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Conv2dOpts {
    /// Step between output positions.
    pub stride: Size2d,
    /// Padding of the input.
    pub padding: Padding,
    /// Spacing between kernel taps.
    pub dilation: Size2d,
    /// Channel groups: input and output channels split into this many independent
    /// convolutions (`groups == in_channels` is a depthwise convolution).
    pub groups: usize,
    /// How the padding is filled ([`PaddingMode::Zeros`] by default).
    pub padding_mode: PaddingMode,
    /// Whether `nn::Conv2d::new` gives the layer a bias (`true` by default);
    /// `F::conv2d` takes its bias as an argument and ignores this.
    pub bias: bool,
    /// The dtype of `nn::Conv2d`'s parameters (F32 by default); `F::conv2d` computes
    /// in its operands' dtype and ignores this.
    pub dtype: DType,
}

impl Default for Conv2dOpts {
    fn default() -> Self {
        Conv2dOpts {
            stride: Size2d::from(1),
            padding: Padding::default(),
            dilation: Size2d::from(1),
            groups: 1,
            padding_mode: PaddingMode::Zeros,
            bias: true,
            dtype: DType::F32,
        }
    }
}

impl Conv2dOpts {
    /// The defaults: stride 1, padding 0, dilation 1, groups 1, zero padding mode,
    /// with a bias, F32.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the stride (a number or `(h, w)`).
    pub fn stride(mut self, stride: impl Into<Size2d>) -> Self {
        self.stride = stride.into();
        self
    }

    /// Sets the padding: a number, `(h, w)`, [`Padding::Same`] or [`Padding::Valid`].
    pub fn padding(mut self, padding: impl Into<Padding>) -> Self {
        self.padding = padding.into();
        self
    }

    /// Sets the dilation (a number or `(h, w)`).
    pub fn dilation(mut self, dilation: impl Into<Size2d>) -> Self {
        self.dilation = dilation.into();
        self
    }

    /// Sets the number of channel groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Sets how the padding is filled (`padding_mode=`).
    pub fn padding_mode(mut self, mode: PaddingMode) -> Self {
        self.padding_mode = mode;
        self
    }

    /// Whether `nn::Conv2d::new` makes a bias (`bias=False` is `.bias(false)`).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// The dtype of `nn::Conv2d`'s parameters (a float dtype).
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
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
    if let Some(y) =
        crate::tensor::autocast::lower([input, weight], [bias], |[x, w], [b]| conv2d(x, w, b, opts))
    {
        return y;
    }
    match input.rank() {
        4 => conv2d_batched(input, weight, bias, opts),
        3 => conv2d_batched(&input.unsqueeze(0)?, weight, bias, opts)?.squeeze(0),
        r => Err(Error::arg(
            "input",
            format!(
                "conv2d expects (N, C, H, W) or (C, H, W), got rank {r} shape {:?}",
                input.shape()
            ),
        )),
    }
}

fn conv2d_batched(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: Conv2dOpts,
) -> Result<Tensor> {
    check_operands(x, weight, bias)?;
    let p = conv2d_params(x.shape(), weight.shape(), opts)?;
    if opts.padding_mode != PaddingMode::Zeros {
        let ((pt, pb), (pl, pr)) = padding_sides(opts, p.kh, p.kw);
        let mode = match opts.padding_mode {
            PaddingMode::Reflect => PadMode::Reflect,
            PaddingMode::Replicate => PadMode::Replicate,
            _ => PadMode::Circular,
        };
        let padded = pad_named(x, (pl, pr, pt, pb), mode, "padding")?;
        let unpadded = Conv2dOpts {
            padding: Padding::Valid,
            padding_mode: PaddingMode::Zeros,
            ..opts
        };
        return conv2d_batched(&padded, weight, bias, unpadded);
    }
    if let Some(b) = bias {
        if b.shape() != [p.c_out] {
            return Err(Error::arg(
                "bias",
                format!("expected shape [{}], got {:?}", p.c_out, b.shape()),
            ));
        }
    }
    let xc = x.detach().contiguous()?;
    let wc = weight.detach().contiguous()?;
    let bc = bias.map(|b| b.detach().contiguous()).transpose()?;
    let out = {
        let mut operands = vec![&xc, &wc];
        operands.extend(&bc);
        let locks = StorageLocks::read(&operands);
        let bias_arg = bc.as_ref().map(|b| (locks.get(2), b.layout()));
        locks
            .get(0)
            .conv2d(xc.layout(), locks.get(1), wc.layout(), bias_arg, &p)?
    };
    let out = Tensor::from_storage(out, &[p.n, p.c_out, p.out_h, p.out_w]);
    let need = [
        x.requires_grad_flag(),
        weight.requires_grad_flag(),
        bias.is_some_and(|b| b.requires_grad_flag()),
    ];
    let mut inputs = vec![x, weight];
    inputs.extend(bias);
    Ok(record(out, "conv2d", &inputs, move |_, g| {
        let g = g.contiguous()?;
        let mut grads = Vec::with_capacity(3);
        grads.push(if need[0] {
            let locks = StorageLocks::read(&[&g, &wc]);
            let gx =
                locks
                    .get(0)
                    .conv2d_backward_input(g.layout(), locks.get(1), wc.layout(), &p)?;
            Some(Tensor::from_storage(gx, &[p.n, p.c_in, p.h, p.w]))
        } else {
            None
        });
        grads.push(if need[1] {
            let locks = StorageLocks::read(&[&xc, &g]);
            let gw =
                locks
                    .get(0)
                    .conv2d_backward_weight(xc.layout(), locks.get(1), g.layout(), &p)?;
            Some(Tensor::from_storage(gw, wc.shape()))
        } else {
            None
        });
        if need[2] {
            let gb = g
                .reshape(&[p.n, p.c_out, p.out_plane()])?
                .sum(2, false)?
                .sum(0, false)?;
            grads.push(Some(gb));
        }
        Ok(grads)
    }))
}

/// Float dtype, one dtype and one device for all operands.
fn check_operands(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<()> {
    x.check_float("conv2d")?;
    x.check_same_dtype("conv2d weight", weight)?;
    x.check_same_device("conv2d weight", weight)?;
    if let Some(b) = bias {
        x.check_same_dtype("conv2d bias", b)?;
        x.check_same_device("conv2d bias", b)?;
    }
    Ok(())
}

/// The largest padded input side the kernels' signed index arithmetic allows.
const MAX_PADDED: usize = isize::MAX as usize / 4;

/// The (top, bottom) and (left, right) padding of `opts` for a `kh`×`kw` kernel; for
/// [`Padding::Same`] the odd row/column goes at the bottom/right, as PyTorch's. Called
/// after `conv2d_params` has checked that the kernel's extent does not overflow.
fn padding_sides(opts: Conv2dOpts, kh: usize, kw: usize) -> ((usize, usize), (usize, usize)) {
    match opts.padding {
        Padding::Explicit(ph, pw) => ((ph, ph), (pw, pw)),
        Padding::Valid => ((0, 0), (0, 0)),
        Padding::Same => {
            let (th, tw) = (opts.dilation.h * (kh - 1), opts.dilation.w * (kw - 1));
            ((th / 2, th - th / 2), (tw / 2, tw - tw / 2))
        }
    }
}

/// Validates shapes and options and computes the output size.
fn conv2d_params(x: &[usize], w: &[usize], opts: Conv2dOpts) -> Result<Conv2dParams> {
    let [n, c_in, h, wd] = x[..] else {
        return Err(Error::arg(
            "input",
            format!("expected (N, C, H, W), got shape {x:?}"),
        ));
    };
    let [c_out, c_in_g, kh, kw] = w[..] else {
        return Err(Error::arg(
            "weight",
            format!("expected (C_out, C_in/groups, kH, kW), got shape {w:?}"),
        ));
    };
    let Conv2dOpts {
        stride,
        padding,
        dilation,
        groups,
        ..
    } = opts;
    if groups == 0 {
        return Err(Error::arg("groups", "must be at least 1"));
    }
    if stride.h == 0 || stride.w == 0 {
        return Err(Error::arg(
            "stride",
            format!("must be at least 1, got {stride:?}"),
        ));
    }
    if dilation.h == 0 || dilation.w == 0 {
        return Err(Error::arg(
            "dilation",
            format!("must be at least 1, got {dilation:?}"),
        ));
    }
    if kh == 0 || kw == 0 {
        return Err(Error::arg(
            "weight",
            format!("kernel size must be at least 1, got shape {w:?}"),
        ));
    }
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
    // Every size below is checked: a huge dilation or padding is an error, never a
    // wrapped-around output shape.
    let extent = |d: usize, k: usize| -> Result<usize> {
        d.checked_mul(k - 1)
            .and_then(|e| e.checked_add(1))
            .ok_or_else(|| {
                Error::arg(
                    "dilation",
                    format!("{dilation:?} makes the kernel's extent overflow usize"),
                )
            })
    };
    let (ext_h, ext_w) = (extent(dilation.h, kh)?, extent(dilation.w, kw)?);
    if padding == Padding::Same && (stride.h != 1 || stride.w != 1) {
        return Err(Error::arg(
            "padding",
            format!("Padding::Same needs stride 1 (as in PyTorch), got stride {stride:?}"),
        ));
    }
    let ((pt, pb), (pl, pr)) = padding_sides(opts, kh, kw);
    // The kernels index the padded input with signed offsets (sums of a padding, a
    // stride and a kernel offset), so it is kept well inside isize.
    let padded = |size: usize, before: usize, after: usize| -> Result<usize> {
        checked_sum("conv2d", "the padded input", &[size, before, after])
            .ok()
            .filter(|&p| p <= MAX_PADDED)
            .ok_or_else(|| {
                Error::arg(
                    "padding",
                    format!("{padding:?} makes the padded input ({size} + {before} + {after}) larger than {MAX_PADDED}"),
                )
            })
    };
    let (padded_h, padded_w) = (padded(h, pt, pb)?, padded(wd, pl, pr)?);
    if ext_h > padded_h || ext_w > padded_w {
        return Err(Error::arg(
            "weight",
            format!(
                "kernel extent {ext_h}×{ext_w} (kernel {kh}×{kw}, dilation {}×{}) is larger than the padded input {padded_h}×{padded_w}",
                dilation.h, dilation.w
            ),
        ));
    }
    let (out_h, out_w) = (
        (padded_h - ext_h) / stride.h + 1,
        (padded_w - ext_w) / stride.w + 1,
    );
    // The output and the im2col buffer (c_in/groups·kh·kw × out_h·out_w) must be
    // addressable; the kernels multiply these sizes unchecked.
    checked_product(
        "conv2d",
        "the output's element count",
        &[n, c_out, out_h, out_w],
    )?;
    checked_product(
        "conv2d",
        "the im2col buffer",
        &[c_in_g, kh, kw, out_h, out_w],
    )?;
    Ok(Conv2dParams {
        n,
        c_in,
        h,
        w: wd,
        c_out,
        kh,
        kw,
        // A stride beyond the padded input gives one output row (column) whatever its
        // size; capping it there keeps the kernels' signed arithmetic in range.
        stride_h: stride.h.min(padded_h),
        stride_w: stride.w.min(padded_w),
        pad_top: pt,
        pad_left: pl,
        dilation_h: dilation.h,
        dilation_w: dilation.w,
        groups,
        out_h,
        out_w,
    })
}
