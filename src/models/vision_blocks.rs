//! Pieces that torchvision's image classifiers share (`torchvision.ops.misc`): the
//! `Conv2dNormActivation` sequence, `SqueezeExcitation`, `_make_divisible`, and the
//! initialisations the models apply to their layers.

use crate::nn::{self, functional as F, BatchNormOpts, Conv2dOpts, Forward};
use crate::{Device, Error, Result, Tensor};

/// torchvision's `_make_divisible(v, divisor)`: `v` rounded to the nearest multiple of
/// `divisor` (at least `divisor`), one step up when rounding lost more than 10 %.
pub(crate) fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = ((v + d / 2.0) as usize / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v {
        rounded + divisor
    } else {
        rounded
    }
}

/// Err naming `stride` unless it is 1 or 2 (torchvision's inverted-residual blocks).
pub(crate) fn check_stride(stride: usize) -> Result<()> {
    if (1..=2).contains(&stride) {
        Ok(())
    } else {
        Err(Error::arg(
            "stride",
            format!("must be 1 or 2, got {stride}"),
        ))
    }
}

/// torchvision's initialisation of a CNN convolution:
/// `kaiming_normal_(mode="fan_out")`, N(0, 2 / fan_out) (ReLU gain), bias zero.
pub(crate) fn kaiming_normal(conv: nn::Conv2d) -> Result<nn::Conv2d> {
    let w = conv.weight.tensor();
    let fan_out: usize = w.shape()[0] * w.shape()[2..].iter().product::<usize>();
    normal_(&conv.weight, (2.0 / fan_out as f64).sqrt())?;
    if let Some(b) = &conv.bias {
        b.tensor().fill_(0.0)?;
    }
    Ok(conv)
}

/// Fills `p` with N(0, std²) samples (`nn.init.normal_(p, 0, std)`).
pub(crate) fn normal_(p: &nn::Parameter, std: f64) -> Result<()> {
    let t = p.tensor();
    t.copy_(&Tensor::randn(t.shape(), t.dtype(), &t.device())?.mul_scalar(std)?)
}

/// Fills `p` with N(0, std²) samples clamped to [-2, 2]. torchvision's
/// `nn.init.trunc_normal_(p, std=std)` redraws outside those absolute bounds instead;
/// with the models' `std`s (0.02 to 0.2) no sample reaches them in practice.
pub(crate) fn trunc_normal_(p: &nn::Parameter, std: f64) -> Result<()> {
    let t = p.tensor();
    let x = Tensor::randn(t.shape(), t.dtype(), &t.device())?.mul_scalar(std)?;
    t.copy_(&x.clamp(-2.0, 2.0)?)
}

/// A `Linear` initialised by `init` on its weight, with a zero bias.
pub(crate) fn linear(
    cin: usize,
    cout: usize,
    init: impl FnOnce(&nn::Parameter) -> Result<()>,
    dev: &Device,
) -> Result<nn::Linear> {
    let lin = nn::Linear::new(cin, cout, dev)?;
    init(&lin.weight)?;
    if let Some(b) = &lin.bias {
        b.tensor().fill_(0.0)?;
    }
    Ok(lin)
}

/// The activations torchvision's CNNs choose between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Act {
    ReLU,
    Hardswish,
    Hardsigmoid,
    SiLU,
    Sigmoid,
}

impl Act {
    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Act::ReLU => F::relu(x),
            Act::Hardswish => F::hardswish(x),
            Act::Hardsigmoid => F::hardsigmoid(x),
            Act::SiLU => F::silu(x),
            Act::Sigmoid => F::sigmoid(x),
        }
    }

    /// Appends the activation's module (a parameter-free position in the sequence,
    /// as torchvision's module takes one).
    fn push_to(self, seq: &mut nn::Sequential) {
        match self {
            Act::ReLU => seq.push(nn::ReLU),
            Act::Hardswish => seq.push(nn::Hardswish),
            Act::Hardsigmoid => seq.push(nn::Hardsigmoid),
            Act::SiLU => seq.push(nn::SiLU),
            Act::Sigmoid => seq.push(nn::Sigmoid),
        }
    }
}

/// The shape of a `Conv2dNormActivation`: a `kernel`×`kernel` convolution without
/// bias (padding `(kernel - 1) / 2 · dilation`), batch norm, and `act` when given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvBnAct {
    pub cin: usize,
    pub cout: usize,
    pub kernel: usize,
    pub stride: usize,
    pub groups: usize,
    pub dilation: usize,
    pub act: Option<Act>,
}

impl ConvBnAct {
    /// A 1-group, undilated layer with stride 1.
    pub fn new(cin: usize, cout: usize, kernel: usize, act: Option<Act>) -> ConvBnAct {
        ConvBnAct {
            cin,
            cout,
            kernel,
            stride: 1,
            groups: 1,
            dilation: 1,
            act,
        }
    }

    /// torchvision's `Conv2dNormActivation(..., norm_layer=BatchNorm2d(eps, momentum))`
    /// as the `Sequential` it is (`0` conv, `1` norm, `2` activation), the
    /// convolution initialised with [`kaiming_normal`].
    pub fn build(self, bn: BatchNormOpts, dev: &Device) -> Result<nn::Sequential> {
        let opts = Conv2dOpts::new()
            .stride(self.stride)
            .padding((self.kernel - 1) / 2 * self.dilation)
            .dilation(self.dilation)
            .groups(self.groups);
        let conv = nn::Conv2d::no_bias(self.cin, self.cout, self.kernel, opts, dev)?;
        let mut seq = nn::Sequential::new()
            .add(kaiming_normal(conv)?)
            .add(nn::BatchNorm2d::new_with(self.cout, bn, dev)?);
        if let Some(act) = self.act {
            act.push_to(&mut seq);
        }
        Ok(seq)
    }
}

/// torchvision's `SqueezeExcitation`: the input scaled per channel by
/// `scale_activation(fc2(activation(fc1(avgpool(x)))))`, `fc1`/`fc2` 1×1 convolutions.
#[derive(Debug, nn::Module)]
pub(crate) struct SqueezeExcitation {
    fc1: nn::Conv2d,
    fc2: nn::Conv2d,
    #[module(skip)]
    activation: Act,
    #[module(skip)]
    scale_activation: Act,
}

impl SqueezeExcitation {
    /// `SqueezeExcitation(channels, squeeze, activation, scale_activation)`.
    pub fn new(
        channels: usize,
        squeeze: usize,
        (activation, scale_activation): (Act, Act),
        dev: &Device,
    ) -> Result<SqueezeExcitation> {
        let conv = |cin, cout| nn::Conv2d::new(cin, cout, 1, Conv2dOpts::new(), dev);
        Ok(SqueezeExcitation {
            fc1: kaiming_normal(conv(channels, squeeze)?)?,
            fc2: kaiming_normal(conv(squeeze, channels)?)?,
            activation,
            scale_activation,
        })
    }
}

impl Forward for SqueezeExcitation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = F::adaptive_avg_pool2d(x, (1, 1))?;
        let s = self.activation.apply(&self.fc1.forward(&s)?)?;
        let s = self.scale_activation.apply(&self.fc2.forward(&s)?)?;
        x.mul(&s)
    }
}

/// The classifier input of a CNN: global average pooling, flattened to (N, C).
pub(crate) fn pool_flatten(x: &Tensor) -> Result<Tensor> {
    F::adaptive_avg_pool2d(x, (1, 1))?.flatten(1, 3)
}
