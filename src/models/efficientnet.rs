//! EfficientNet-B0 as `torchvision.models.efficientnet_b0`: the same modules under the
//! same names (`features.0.0.weight`, `features.2.1.block.2.fc1.bias`,
//! `classifier.1.weight`, …), so its `state_dict` loads.

use super::vision_blocks::{
    check_stride, linear, make_divisible, pool_flatten, Act, ConvBnAct, SqueezeExcitation,
};
use crate::nn::{self, functional::StochasticDepthMode, BatchNormOpts, Forward};
use crate::{Device, Error, Result, Tensor};

/// One stage of an [`EfficientNetConfig`]: torchvision's `MBConvConfig` with
/// `width_mult = depth_mult = 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MBConvConfig {
    /// Expansion ratio of the first 1×1 convolution (1: no expansion).
    pub expand_ratio: f64,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Stride of the stage's first block (1 or 2).
    pub stride: usize,
    /// Input channels of the stage.
    pub input_channels: usize,
    /// Output channels of every block of the stage.
    pub out_channels: usize,
    /// Blocks in the stage.
    pub num_layers: usize,
}

impl MBConvConfig {
    /// `MBConvConfig(expand_ratio, kernel, stride, input_channels, out_channels,
    /// num_layers)`: channel counts rounded as torchvision rounds them
    /// (`_make_divisible(c, 8)`).
    pub fn new(
        expand_ratio: f64,
        kernel: usize,
        stride: usize,
        input_channels: usize,
        out_channels: usize,
        num_layers: usize,
    ) -> MBConvConfig {
        MBConvConfig {
            expand_ratio,
            kernel,
            stride,
            input_channels: make_divisible(input_channels as f64, 8),
            out_channels: make_divisible(out_channels as f64, 8),
            num_layers,
        }
    }
}

/// How to build an [`EfficientNet`]: torchvision's `EfficientNet` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetConfig {
    /// The stages, in order (not empty).
    pub inverted_residual_setting: Vec<MBConvConfig>,
    /// Dropout probability before the classifier (0.2 for B0).
    pub dropout: f64,
    /// Stochastic depth of the last block; block `i` of `n` drops its residual branch
    /// with `stochastic_depth_prob · i / n` (0.2 in torchvision).
    pub stochastic_depth_prob: f64,
    /// Outputs of the classifier.
    pub num_classes: usize,
}

impl EfficientNetConfig {
    /// `efficientnet_b0(num_classes=…)`'s configuration.
    pub fn b0(num_classes: usize) -> EfficientNetConfig {
        let c = MBConvConfig::new;
        EfficientNetConfig {
            inverted_residual_setting: vec![
                c(1.0, 3, 1, 32, 16, 1),
                c(6.0, 3, 2, 16, 24, 2),
                c(6.0, 5, 2, 24, 40, 2),
                c(6.0, 3, 2, 40, 80, 3),
                c(6.0, 5, 1, 80, 112, 3),
                c(6.0, 5, 2, 112, 192, 4),
                c(6.0, 3, 1, 192, 320, 1),
            ],
            dropout: 0.2,
            stochastic_depth_prob: 0.2,
            num_classes,
        }
    }
}

/// torchvision's `MBConv`: `block` = [1×1 expansion], depthwise convolution,
/// squeeze-and-excitation, 1×1 projection (SiLU activations); when the shape is kept,
/// the block's output goes through `stochastic_depth` and the input is added back.
#[derive(Debug, nn::Module)]
struct MBConv {
    block: nn::Sequential,
    stochastic_depth: nn::StochasticDepth,
    #[module(skip)]
    use_res_connect: bool,
}

impl MBConv {
    fn new(cnf: &MBConvConfig, sd_prob: f64, dev: &Device) -> Result<MBConv> {
        check_stride(cnf.stride)?;
        let bn = BatchNormOpts::new();
        let (cin, cout) = (cnf.input_channels, cnf.out_channels);
        let exp = make_divisible(cin as f64 * cnf.expand_ratio, 8);
        let act = Some(Act::SiLU);
        let mut block = nn::Sequential::new();
        if exp != cin {
            block.push(ConvBnAct::new(cin, exp, 1, act).build(bn, dev)?);
        }
        let depthwise = ConvBnAct {
            stride: cnf.stride,
            groups: exp,
            ..ConvBnAct::new(exp, exp, cnf.kernel, act)
        };
        block.push(depthwise.build(bn, dev)?);
        let acts = (Act::SiLU, Act::Sigmoid);
        block.push(SqueezeExcitation::new(exp, (cin / 4).max(1), acts, dev)?);
        block.push(ConvBnAct::new(exp, cout, 1, None).build(bn, dev)?);
        Ok(MBConv {
            block,
            stochastic_depth: nn::StochasticDepth::new(sd_prob, StochasticDepthMode::Row)?,
            use_res_connect: cnf.stride == 1 && cin == cout,
        })
    }
}

impl Forward for MBConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.block.forward(x)?;
        if self.use_res_connect {
            self.stochastic_depth.forward(&y)?.add(x)
        } else {
            Ok(y)
        }
    }
}

/// EfficientNet (B0's family): `features` (a stem convolution, one `Sequential` of
/// `MBConv` blocks per stage, a 1×1 convolution to 4× the last stage's channels),
/// global average pooling, and `classifier` (Dropout, Linear).
#[derive(Debug, nn::Module)]
pub struct EfficientNet {
    /// The convolutional layers, torchvision's `features.0` … `features.N`.
    pub features: nn::Sequential,
    /// `classifier.0` Dropout, `classifier.1` (Linear).
    pub classifier: nn::Sequential,
}

impl EfficientNet {
    /// The network `cfg` describes on `dev`, initialised as torchvision does
    /// (convolutions kaiming-normal with fan-out, batch norms 1 and 0, the linear
    /// layer U(±1/√num_classes) with zero bias). Errors name
    /// `inverted_residual_setting` (empty), `stride` (not 1 or 2), `num_classes` (0)
    /// or `p` (the dropout or stochastic-depth probability).
    pub fn new(cfg: &EfficientNetConfig, dev: &Device) -> Result<EfficientNet> {
        let setting = &cfg.inverted_residual_setting;
        let (Some(first), Some(last)) = (setting.first(), setting.last()) else {
            return Err(Error::arg("inverted_residual_setting", "must not be empty"));
        };
        if cfg.num_classes == 0 {
            return Err(Error::arg("num_classes", "must be at least 1"));
        }
        let bn = BatchNormOpts::new();
        let stem = ConvBnAct {
            stride: 2,
            ..ConvBnAct::new(3, first.input_channels, 3, Some(Act::SiLU))
        };
        let mut features = nn::Sequential::new().add(stem.build(bn, dev)?);
        let total: usize = setting.iter().map(|c| c.num_layers).sum();
        let mut block_id = 0;
        for cnf in setting {
            let mut stage = nn::Sequential::new();
            for i in 0..cnf.num_layers {
                // Blocks after a stage's first keep its output channels, stride 1.
                let block_cnf = if i == 0 {
                    *cnf
                } else {
                    MBConvConfig {
                        input_channels: cnf.out_channels,
                        stride: 1,
                        ..*cnf
                    }
                };
                let sd_prob = cfg.stochastic_depth_prob * block_id as f64 / total as f64;
                stage.push(MBConv::new(&block_cnf, sd_prob, dev)?);
                block_id += 1;
            }
            features.push(stage);
        }
        let last_conv = 4 * last.out_channels;
        let head = ConvBnAct::new(last.out_channels, last_conv, 1, Some(Act::SiLU));
        features.push(head.build(bn, dev)?);
        let range = 1.0 / (cfg.num_classes as f64).sqrt();
        let init = |p: &nn::Parameter| {
            let t = p.tensor();
            t.copy_(&nn::init::uniform(
                t.shape(),
                -range,
                range,
                t.dtype(),
                &t.device(),
            )?)
        };
        let classifier = nn::Sequential::new()
            .add(nn::Dropout::new(cfg.dropout)?)
            .add(linear(last_conv, cfg.num_classes, init, dev)?);
        Ok(EfficientNet {
            features,
            classifier,
        })
    }
}

impl Forward for EfficientNet {
    /// Logits (N, num_classes) of images (N, 3, H, W).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = pool_flatten(&self.features.forward(x)?)?;
        self.classifier.forward(&h)
    }
}

/// torchvision's `efficientnet_b0(num_classes=…)` on `dev`.
pub fn efficientnet_b0(num_classes: usize, dev: &Device) -> Result<EfficientNet> {
    EfficientNet::new(&EfficientNetConfig::b0(num_classes), dev)
}
