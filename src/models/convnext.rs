//! ConvNeXt-Tiny as `torchvision.models.convnext_tiny`: the same modules under the
//! same names (`features.0.1.weight`, `features.1.0.block.3.weight`,
//! `features.1.0.layer_scale`, `classifier.2.bias`, …), so its `state_dict` loads.

use super::vision_blocks::trunc_normal_;
use crate::nn::Parameter;
use crate::nn::{self, functional::StochasticDepthMode, Conv2dOpts, Forward, Member, Module};
use crate::{Device, Error, Result, Tensor};

/// One stage of a [`ConvNeXtConfig`] (torchvision's `CNBlockConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CNBlockConfig {
    /// Channels of the stage's blocks.
    pub input_channels: usize,
    /// Channels after the downsampling layer that follows the stage (none after the
    /// last stage).
    pub out_channels: Option<usize>,
    /// Blocks in the stage.
    pub num_layers: usize,
}

/// How to build a [`ConvNeXt`]: torchvision's `ConvNeXt` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvNeXtConfig {
    /// The stages, in order (not empty).
    pub block_setting: Vec<CNBlockConfig>,
    /// Stochastic depth of the last block; block `i` of `n` drops its residual branch
    /// with `stochastic_depth_prob · i / (n - 1)`.
    pub stochastic_depth_prob: f64,
    /// The initial value of every block's `layer_scale`.
    pub layer_scale: f64,
    /// Outputs of the classifier.
    pub num_classes: usize,
}

impl ConvNeXtConfig {
    /// `convnext_tiny(num_classes=…)`'s configuration.
    pub fn tiny(num_classes: usize) -> ConvNeXtConfig {
        let c = |input_channels, out_channels, num_layers| CNBlockConfig {
            input_channels,
            out_channels,
            num_layers,
        };
        ConvNeXtConfig {
            block_setting: vec![
                c(96, Some(192), 3),
                c(192, Some(384), 3),
                c(384, Some(768), 9),
                c(768, None, 3),
            ],
            stochastic_depth_prob: 0.1,
            layer_scale: 1e-6,
            num_classes,
        }
    }
}

/// torchvision's `LayerNorm2d`: layer norm over the channels of an `(N, C, H, W)`
/// input (moved last, normalised, moved back), eps 1e-6; names `weight`, `bias`.
#[derive(Debug)]
struct LayerNorm2d(nn::LayerNorm);

impl LayerNorm2d {
    fn new(channels: usize, dev: &Device) -> Result<LayerNorm2d> {
        Ok(LayerNorm2d(layer_norm(channels, dev)?))
    }
}

impl Module for LayerNorm2d {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        self.0.visit(visitor)
    }
}

impl Forward for LayerNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.0.forward(&x.permute(&[0, 2, 3, 1])?)?;
        y.permute(&[0, 3, 1, 2])
    }
}

/// ConvNeXt's `LayerNorm(channels, eps=1e-6)`.
fn layer_norm(channels: usize, dev: &Device) -> Result<nn::LayerNorm> {
    nn::LayerNorm::with_options(&[channels], 1e-6, true, true, dev)
}

/// torchvision's `Permute(dims)`: a position without parameters in a sequence.
#[derive(Debug, nn::Module)]
#[module(stateless)]
struct Permute {
    #[module(skip)]
    dims: [usize; 4],
}

impl Forward for Permute {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.permute(&self.dims)
    }
}

/// torchvision's initialisation of ConvNeXt's convolutions and linear layers:
/// weight `trunc_normal_(std=0.02)`, bias zero.
fn init(weight: &Parameter, bias: &Option<Parameter>) -> Result<()> {
    trunc_normal_(weight, 0.02)?;
    if let Some(b) = bias {
        b.tensor().fill_(0.0)?;
    }
    Ok(())
}

fn conv(cin: usize, cout: usize, k: usize, opts: Conv2dOpts, dev: &Device) -> Result<nn::Conv2d> {
    let c = nn::Conv2d::new(cin, cout, k, opts, dev)?;
    init(&c.weight, &c.bias)?;
    Ok(c)
}

fn linear(cin: usize, cout: usize, dev: &Device) -> Result<nn::Linear> {
    let l = nn::Linear::new(cin, cout, dev)?;
    init(&l.weight, &l.bias)?;
    Ok(l)
}

/// torchvision's `CNBlock`: `block` = 7×7 depthwise convolution, layer norm over
/// channels, Linear to 4×, GELU, Linear back; scaled per channel by `layer_scale`,
/// through `stochastic_depth`, and added to the input.
#[derive(Debug, nn::Module)]
struct CNBlock {
    block: nn::Sequential,
    layer_scale: Parameter,
    stochastic_depth: nn::StochasticDepth,
}

impl CNBlock {
    fn new(dim: usize, layer_scale: f64, sd_prob: f64, dev: &Device) -> Result<CNBlock> {
        let dw = Conv2dOpts::new().padding(3).groups(dim);
        let block = nn::Sequential::new()
            .add(conv(dim, dim, 7, dw, dev)?)
            .add(Permute { dims: [0, 2, 3, 1] })
            .add(layer_norm(dim, dev)?)
            .add(linear(dim, 4 * dim, dev)?)
            .add(nn::GELU)
            .add(linear(4 * dim, dim, dev)?)
            .add(Permute { dims: [0, 3, 1, 2] });
        let scale = Tensor::full(&[dim, 1, 1], layer_scale, crate::DType::F32, dev)?;
        Ok(CNBlock {
            block,
            layer_scale: Parameter::new(scale)?,
            stochastic_depth: nn::StochasticDepth::new(sd_prob, StochasticDepthMode::Row)?,
        })
    }
}

impl Forward for CNBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.block.forward(x)?.mul(self.layer_scale.tensor())?;
        self.stochastic_depth.forward(&y)?.add(x)
    }
}

/// ConvNeXt: `features` (a 4×4 stride-4 stem with layer norm, the stages of
/// `CNBlock`s, each but the last followed by layer norm and a 2×2 stride-2
/// convolution), global average pooling, and `classifier` (layer norm over
/// channels, Flatten, Linear).
#[derive(Debug, nn::Module)]
pub struct ConvNeXt {
    /// The convolutional layers, torchvision's `features.0` … `features.N`.
    pub features: nn::Sequential,
    /// `classifier.0` (LayerNorm2d), `.1` Flatten, `.2` (Linear).
    pub classifier: nn::Sequential,
}

impl ConvNeXt {
    /// The network `cfg` describes on `dev`, initialised as torchvision does
    /// (convolutions and linear layers truncated-normal with std 0.02 and zero bias,
    /// layer norms 1 and 0, `layer_scale` at `cfg.layer_scale`). Errors name
    /// `block_setting` (empty), `num_classes` (0) or `p` (the stochastic depth).
    pub fn new(cfg: &ConvNeXtConfig, dev: &Device) -> Result<ConvNeXt> {
        let setting = &cfg.block_setting;
        let (Some(first), Some(last)) = (setting.first(), setting.last()) else {
            return Err(Error::arg("block_setting", "must not be empty"));
        };
        if cfg.num_classes == 0 {
            return Err(Error::arg("num_classes", "must be at least 1"));
        }
        let c0 = first.input_channels;
        let stem = nn::Sequential::new()
            .add(conv(3, c0, 4, Conv2dOpts::new().stride(4), dev)?)
            .add(LayerNorm2d::new(c0, dev)?);
        let mut features = nn::Sequential::new().add(stem);
        let total: usize = setting.iter().map(|c| c.num_layers).sum();
        let mut block_id = 0;
        for cnf in setting {
            let mut stage = nn::Sequential::new();
            for _ in 0..cnf.num_layers {
                // torchvision divides by (total - 1); a single block gets 0.
                let sd_prob = if total > 1 {
                    cfg.stochastic_depth_prob * block_id as f64 / (total - 1) as f64
                } else {
                    0.0
                };
                stage.push(CNBlock::new(
                    cnf.input_channels,
                    cfg.layer_scale,
                    sd_prob,
                    dev,
                )?);
                block_id += 1;
            }
            features.push(stage);
            if let Some(out) = cnf.out_channels {
                let down = conv(cnf.input_channels, out, 2, Conv2dOpts::new().stride(2), dev)?;
                features.push(
                    nn::Sequential::new()
                        .add(LayerNorm2d::new(cnf.input_channels, dev)?)
                        .add(down),
                );
            }
        }
        let c_last = last.out_channels.unwrap_or(last.input_channels);
        let classifier = nn::Sequential::new()
            .add(LayerNorm2d::new(c_last, dev)?)
            .add(nn::Flatten::new())
            .add(linear(c_last, cfg.num_classes, dev)?);
        Ok(ConvNeXt {
            features,
            classifier,
        })
    }
}

impl Forward for ConvNeXt {
    /// Logits (N, num_classes) of images (N, 3, H, W).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.features.forward(x)?;
        let h = crate::nn::functional::adaptive_avg_pool2d(&h, (1, 1))?;
        self.classifier.forward(&h)
    }
}

/// torchvision's `convnext_tiny(num_classes=…)` on `dev`.
pub fn convnext_tiny(num_classes: usize, dev: &Device) -> Result<ConvNeXt> {
    ConvNeXt::new(&ConvNeXtConfig::tiny(num_classes), dev)
}
