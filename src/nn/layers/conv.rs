//! `nn::Conv2d`: a 2-D convolution that owns its weight and bias.

use crate::nn::functional::{self as F, Conv2dOpts, Size2d};
use crate::nn::{self, init, Forward, Mode, Parameter};
use crate::{Device, Error, Result, Tensor};

/// `nn.Conv2d`: weight (out, in/groups, kh, kw) and optional bias (out), initialised
/// like PyTorch; `forward` is [`F::conv2d`] with the layer's options.
#[derive(Debug, nn::Module)]
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
    /// `nn.Conv2d(in_channels, out_channels, kernel, ...)` with a bias.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: impl Into<Size2d>,
        opts: Conv2dOpts,
        device: &Device,
    ) -> Result<Conv2d> {
        Conv2d::build(in_channels, out_channels, kernel.into(), opts, true, device)
    }

    /// The same layer without a bias (`bias=False`).
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
            opts,
            false,
            device,
        )
    }

    fn build(
        in_channels: usize,
        out_channels: usize,
        kernel: Size2d,
        opts: Conv2dOpts,
        bias: bool,
        device: &Device,
    ) -> Result<Conv2d> {
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
        let (weight, bias) = init::default_weight_and_bias(&shape, bias, device)?;
        Ok(Conv2d {
            weight,
            bias,
            opts,
            mode: Mode::default(),
        })
    }

    /// The layer's stride, padding, dilation and groups.
    pub fn opts(&self) -> Conv2dOpts {
        self.opts
    }
}

impl Forward for Conv2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::conv2d(x, &self.weight, self.bias.as_deref(), self.opts)
    }
}
