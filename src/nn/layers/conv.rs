//! `nn::Conv2d`: a 2-D convolution that owns its weight and bias.

use crate::nn::functional::{self as F, Conv2dOpts, Padding, PaddingMode, Size2d};
use crate::nn::{self, init, Forward, Mode, Parameter};
use crate::{Device, Error, Result, Tensor};

/// `nn.Conv2d`: weight (out, in/groups, kh, kw) and optional bias (out), initialised
/// like PyTorch; `forward` is [`F::conv2d`] with the layer's options (stride, padding,
/// dilation, groups, `padding_mode`). `opts.bias(false)` leaves the bias out and
/// `opts.dtype(..)` sets the parameters' dtype (F32 by default).
///
/// ```
/// use kiln::nn::{self, Conv2dOpts, PaddingMode};
/// use kiln::{DType, Device};
/// # fn main() -> kiln::Result<()> {
/// let opts = Conv2dOpts::new().padding(1).padding_mode(PaddingMode::Reflect).bias(false);
/// let conv = nn::Conv2d::new(3, 8, 3, opts.dtype(DType::F64), &Device::Cpu)?;
/// assert!(conv.bias.is_none() && conv.weight.dtype() == DType::F64);
/// assert_eq!(
///     nn::repr(&conv),
///     "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False, padding_mode=reflect)"
/// );
/// # Ok(())
/// # }
/// ```
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct Conv2d {
    /// The kernels, (out_channels, in_channels / groups, kh, kw).
    pub weight: Parameter,
    /// One bias per output channel, when the layer has one.
    pub bias: Option<Parameter>,
    #[module(skip)]
    opts: Conv2dOpts,
    mode: Mode,
}

impl Conv2d {
    /// `nn.Conv2d(in_channels, out_channels, kernel, ...)`: with a bias unless
    /// `opts.bias(false)`, parameters of `opts.dtype` (a float dtype; F32 by default).
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<Size2d>,
        opts: Conv2dOpts,
        device: &Device,
    ) -> Result<Conv2d> {
        Conv2d::build(in_channels, out_channels, kernel.into(), opts, device)
    }

    /// The same layer without a bias (`bias=False`), whatever `opts.bias` says.
    pub fn no_bias(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<Size2d>,
        opts: Conv2dOpts,
        device: &Device,
    ) -> Result<Conv2d> {
        Conv2d::build(
            in_channels,
            out_channels,
            kernel.into(),
            opts.bias(false),
            device,
        )
    }

    fn build(
        in_channels: usize,
        out_channels: usize,
        kernel: Size2d,
        opts: Conv2dOpts,
        device: &Device,
    ) -> Result<Conv2d> {
        init::check_param_dtype(opts.dtype)?;
        let groups = opts.groups;
        if groups == 0 {
            return Err(Error::arg("groups", "must be at least 1"));
        }
        for (name, channels) in [("in_channels", in_channels), ("out_channels", out_channels)] {
            if channels == 0 || channels % groups != 0 {
                return Err(Error::arg(
                    name,
                    format!("{channels} must be a positive multiple of groups ({groups})"),
                ));
            }
        }
        if kernel.h == 0 || kernel.w == 0 {
            return Err(Error::arg(
                "kernel_size",
                "must be at least 1 in each dimension",
            ));
        }
        let shape = [out_channels, in_channels / groups, kernel.h, kernel.w];
        let (weight, bias) =
            init::default_weight_and_bias_as(&shape, opts.bias, opts.dtype, device)?;
        Ok(Conv2d {
            weight,
            bias,
            opts,
            mode: Mode::default(),
        })
    }

    /// The layer's options (stride, padding, dilation, groups, padding mode; `bias`
    /// and `dtype` as the layer was built).
    pub fn opts(&self) -> Conv2dOpts {
        self.opts
    }

    /// PyTorch's `Conv2d.extra_repr`: the defaults of padding, dilation, groups,
    /// bias and padding mode are left out.
    fn extra_repr(&self) -> String {
        let [c_out, c_in_g, kh, kw] = self.weight.shape()[..] else {
            return String::new();
        };
        let o = self.opts;
        let pair = |s: Size2d| format!("({}, {})", s.h, s.w);
        let mut s = format!(
            "{}, {c_out}, kernel_size=({kh}, {kw}), stride={}",
            c_in_g * o.groups,
            pair(o.stride)
        );
        match o.padding {
            Padding::Explicit(0, 0) => {}
            Padding::Explicit(h, w) => s += &format!(", padding=({h}, {w})"),
            Padding::Same => s += ", padding=same",
            Padding::Valid => s += ", padding=valid",
        }
        if o.dilation != Size2d::from(1) {
            s += &format!(", dilation={}", pair(o.dilation));
        }
        if o.groups != 1 {
            s += &format!(", groups={}", o.groups);
        }
        if self.bias.is_none() {
            s += ", bias=False";
        }
        if o.padding_mode != PaddingMode::Zeros {
            s += &format!(", padding_mode={}", o.padding_mode.name());
        }
        s
    }
}

impl Forward for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::conv2d(x, &self.weight, self.bias.as_deref(), self.opts)
    }
}
