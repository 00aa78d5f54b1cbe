//! MobileNetV3 as `torchvision.models.mobilenet_v3_small` / `_large`: the same modules
//! under the same names (`features.0.0.weight`, `features.4.block.2.fc1.weight`,
//! `classifier.3.bias`, …), so their `state_dict`s load.

use super::vision_blocks::{
    check_stride, linear, make_divisible, normal_, pool_flatten, Act, ConvBnAct, SqueezeExcitation,
};
use crate::nn::{self, BatchNormOpts, Forward};
use crate::{Device, Error, Result, Tensor};

/// One inverted-residual block of a [`MobileNetV3Config`] (a row of Tables 1 and 2 of
/// the MobileNetV3 paper, torchvision's `InvertedResidualConfig` with `width_mult=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvertedResidualConfig {
    /// Input channels.
    pub input_channels: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Channels after the 1×1 expansion (no expansion when equal to the input's).
    pub expanded_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Squeeze-and-excitation after the depthwise convolution.
    pub use_se: bool,
    /// Hardswish activations (`"HS"`); ReLU (`"RE"`) otherwise.
    pub use_hs: bool,
    /// Stride of the depthwise convolution (1 or 2).
    pub stride: usize,
    /// Dilation of the depthwise convolution (its stride becomes 1 when above 1).
    pub dilation: usize,
}

impl InvertedResidualConfig {
    /// torchvision's `InvertedResidualConfig(input, kernel, expanded, out, use_se,
    /// "HS" if use_hs else "RE", stride, 1, width_mult=1.0)`: channel counts are
    /// rounded as torchvision rounds them (`_make_divisible(c, 8)`).
    pub fn new(
        input_channels: usize,
        kernel: usize,
        expanded_channels: usize,
        out_channels: usize,
        use_se: bool,
        use_hs: bool,
        stride: usize,
    ) -> InvertedResidualConfig {
        let adjust = |c: usize| make_divisible(c as f64, 8);
        InvertedResidualConfig {
            input_channels: adjust(input_channels),
            kernel,
            expanded_channels: adjust(expanded_channels),
            out_channels: adjust(out_channels),
            use_se,
            use_hs,
            stride,
            dilation: 1,
        }
    }

    /// Sets the dilation.
    pub fn dilation(mut self, dilation: usize) -> InvertedResidualConfig {
        self.dilation = dilation;
        self
    }
}

/// How to build a [`MobileNetV3`]: torchvision's `MobileNetV3` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct MobileNetV3Config {
    /// The blocks, in order (not empty).
    pub inverted_residual_setting: Vec<InvertedResidualConfig>,
    /// Width of the classifier's hidden layer.
    pub last_channel: usize,
    /// Outputs of the classifier.
    pub num_classes: usize,
    /// Dropout probability before the last layer (0.2 in torchvision).
    pub dropout: f64,
}

impl MobileNetV3Config {
    /// `mobilenet_v3_large(num_classes=…)`'s configuration.
    pub fn large(num_classes: usize) -> MobileNetV3Config {
        let b = InvertedResidualConfig::new;
        let (re, hs) = (false, true);
        MobileNetV3Config {
            inverted_residual_setting: vec![
                b(16, 3, 16, 16, false, re, 1),
                b(16, 3, 64, 24, false, re, 2),
                b(24, 3, 72, 24, false, re, 1),
                b(24, 5, 72, 40, true, re, 2),
                b(40, 5, 120, 40, true, re, 1),
                b(40, 5, 120, 40, true, re, 1),
                b(40, 3, 240, 80, false, hs, 2),
                b(80, 3, 200, 80, false, hs, 1),
                b(80, 3, 184, 80, false, hs, 1),
                b(80, 3, 184, 80, false, hs, 1),
                b(80, 3, 480, 112, true, hs, 1),
                b(112, 3, 672, 112, true, hs, 1),
                b(112, 5, 672, 160, true, hs, 2),
                b(160, 5, 960, 160, true, hs, 1),
                b(160, 5, 960, 160, true, hs, 1),
            ],
            last_channel: 1280,
            num_classes,
            dropout: 0.2,
        }
    }

    /// `mobilenet_v3_small(num_classes=…)`'s configuration.
    pub fn small(num_classes: usize) -> MobileNetV3Config {
        let b = InvertedResidualConfig::new;
        let (re, hs) = (false, true);
        MobileNetV3Config {
            inverted_residual_setting: vec![
                b(16, 3, 16, 16, true, re, 2),
                b(16, 3, 72, 24, false, re, 2),
                b(24, 3, 88, 24, false, re, 1),
                b(24, 5, 96, 40, true, hs, 2),
                b(40, 5, 240, 40, true, hs, 1),
                b(40, 5, 240, 40, true, hs, 1),
                b(40, 5, 120, 48, true, hs, 1),
                b(48, 5, 144, 48, true, hs, 1),
                b(48, 5, 288, 96, true, hs, 2),
                b(96, 5, 576, 96, true, hs, 1),
                b(96, 5, 576, 96, true, hs, 1),
            ],
            last_channel: 1024,
            num_classes,
            dropout: 0.2,
        }
    }
}

/// MobileNetV3's batch norm: eps 0.001, momentum 0.01.
fn bn() -> BatchNormOpts {
    BatchNormOpts::new().eps(1e-3).momentum(0.01)
}

/// torchvision's MobileNetV3 `InvertedResidual`: `block` = [1×1 expansion], depthwise
/// convolution, [squeeze-and-excitation], 1×1 projection; the input added back when
/// the shape is kept.
#[derive(Debug, nn::Module)]
struct InvertedResidual {
    block: nn::Sequential,
    #[module(skip)]
    use_res_connect: bool,
}

impl InvertedResidual {
    fn new(cnf: &InvertedResidualConfig, dev: &Device) -> Result<InvertedResidual> {
        check_stride(cnf.stride)?;
        let act = if cnf.use_hs {
            Act::Hardswish
        } else {
            Act::ReLU
        };
        let (cin, exp, cout) = (cnf.input_channels, cnf.expanded_channels, cnf.out_channels);
        let mut block = nn::Sequential::new();
        if exp != cin {
            block.push(ConvBnAct::new(cin, exp, 1, Some(act)).build(bn(), dev)?);
        }
        let depthwise = ConvBnAct {
            stride: if cnf.dilation > 1 { 1 } else { cnf.stride },
            groups: exp,
            dilation: cnf.dilation,
            ..ConvBnAct::new(exp, exp, cnf.kernel, Some(act))
        };
        block.push(depthwise.build(bn(), dev)?);
        if cnf.use_se {
            let squeeze = make_divisible((exp / 4) as f64, 8);
            let acts = (Act::ReLU, Act::Hardsigmoid);
            block.push(SqueezeExcitation::new(exp, squeeze, acts, dev)?);
        }
        block.push(ConvBnAct::new(exp, cout, 1, None).build(bn(), dev)?);
        Ok(InvertedResidual {
            block,
            use_res_connect: cnf.stride == 1 && cin == cout,
        })
    }
}

impl Forward for InvertedResidual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.block.forward(x)?;
        if self.use_res_connect {
            y.add(x)
        } else {
            Ok(y)
        }
    }
}

/// MobileNetV3: `features` (a stem convolution, the inverted-residual blocks, a 1×1
/// convolution to 6× the last block's channels), global average pooling, and
/// `classifier` (Linear, Hardswish, Dropout, Linear).
#[derive(Debug, nn::Module)]
pub struct MobileNetV3 {
    /// The convolutional layers, torchvision's `features.0` … `features.N`.
    pub features: nn::Sequential,
    /// `classifier.0` (Linear), `.1` Hardswish, `.2` Dropout, `.3` (Linear).
    pub classifier: nn::Sequential,
}

impl MobileNetV3 {
    /// The network `cfg` describes on `dev`, initialised as torchvision does
    /// (convolutions kaiming-normal with fan-out, batch norms 1 and 0, linear
    /// layers N(0, 0.01²) with zero bias). Errors name `inverted_residual_setting`
    /// (empty), `stride` (not 1 or 2), `num_classes` (0) or `p` (the dropout).
    pub fn new(cfg: &MobileNetV3Config, dev: &Device) -> Result<MobileNetV3> {
        let setting = &cfg.inverted_residual_setting;
        let (Some(first), Some(last)) = (setting.first(), setting.last()) else {
            return Err(Error::arg("inverted_residual_setting", "must not be empty"));
        };
        if cfg.num_classes == 0 {
            return Err(Error::arg("num_classes", "must be at least 1"));
        }
        let stem = ConvBnAct {
            stride: 2,
            ..ConvBnAct::new(3, first.input_channels, 3, Some(Act::Hardswish))
        };
        let mut features = nn::Sequential::new().add(stem.build(bn(), dev)?);
        for cnf in setting {
            features.push(InvertedResidual::new(cnf, dev)?);
        }
        let last_conv = 6 * last.out_channels;
        let head = ConvBnAct::new(last.out_channels, last_conv, 1, Some(Act::Hardswish));
        features.push(head.build(bn(), dev)?);
        let init = |p: &nn::Parameter| normal_(p, 0.01);
        let classifier = nn::Sequential::new()
            .add(linear(last_conv, cfg.last_channel, init, dev)?)
            .add(nn::Hardswish)
            .add(nn::Dropout::new(cfg.dropout)?)
            .add(linear(cfg.last_channel, cfg.num_classes, init, dev)?);
        Ok(MobileNetV3 {
            features,
            classifier,
        })
    }
}

impl Forward for MobileNetV3 {
    /// Logits (N, num_classes) of images (N, 3, H, W).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = pool_flatten(&self.features.forward(x)?)?;
        self.classifier.forward(&h)
    }
}

/// torchvision's `mobilenet_v3_large(num_classes=…)` on `dev`.
pub fn mobilenet_v3_large(num_classes: usize, dev: &Device) -> Result<MobileNetV3> {
    MobileNetV3::new(&MobileNetV3Config::large(num_classes), dev)
}

/// torchvision's `mobilenet_v3_small(num_classes=…)` on `dev`.
pub fn mobilenet_v3_small(num_classes: usize, dev: &Device) -> Result<MobileNetV3> {
    MobileNetV3::new(&MobileNetV3Config::small(num_classes), dev)
}
