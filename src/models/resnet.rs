//! ResNet-18 as `torchvision.models.resnet18`: the same modules under the same names
//! (`conv1`, `bn1`, `layer1.0.conv1`, …, `layer4.1.bn2`, `layerN.0.downsample.0/.1`,
//! `fc`), so its `state_dict` loads; plus the CIFAR stem (3×3 convolution, stride 1,
//! no max pool) that 32×32 inputs need, which keeps `conv1`'s name with a 3×3 kernel.

use super::vision_blocks::kaiming_normal;
use crate::nn::{self, functional as F, Conv2dOpts, Forward};
use crate::{Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The first layers of a [`ResNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stem {
    /// For 32×32 images (CIFAR): `conv1` is 3×3, stride 1, padding 1; no max pool.
    Cifar,
    /// torchvision's, for ImageNet-sized images: `conv1` 7×7, stride 2, padding 3, then
    /// a 3×3 max pool with stride 2 and padding 1.
    ImageNet,
}

/// How to build a [`ResNet`]-18.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResNetConfig {
    /// Outputs of `fc`.
    pub num_classes: usize,
    /// The first layers.
    pub stem: Stem,
    /// Channels of `conv1` and `layer1` (64 in torchvision); `layer2..4` have 2, 4 and
    /// 8 times as many. Narrower networks train faster (and make small test fixtures).
    pub width: usize,
    /// Batch norm, residual add and ReLU as one fused op (`F::batch_norm_act`, the
    /// default) or as separate ops (`false`: the reference, to compare with).
    pub fused: bool,
}

impl ResNetConfig {
    /// `num_classes` outputs, CIFAR stem, torchvision's width 64.
    pub fn new(num_classes: usize) -> ResNetConfig {
        ResNetConfig {
            num_classes,
            stem: Stem::Cifar,
            width: 64,
            fused: true,
        }
    }

    /// Sets the stem.
    pub fn stem(mut self, stem: Stem) -> ResNetConfig {
        self.stem = stem;
        self
    }

    /// Sets the width (channels of `layer1`).
    pub fn width(mut self, width: usize) -> ResNetConfig {
        self.width = width;
        self
    }

    /// Sets whether batch norm, add and ReLU run fused ([`ResNetConfig::fused`]).
    pub fn fused(mut self, on: bool) -> ResNetConfig {
        self.fused = on;
        self
    }
}

/// A 3×3 convolution without bias (torchvision's `conv3x3`).
fn conv3x3(cin: usize, cout: usize, stride: usize, dev: &Device) -> Result<nn::Conv2d> {
    kaiming_normal(nn::Conv2d::no_bias(
        cin,
        cout,
        3,
        Conv2dOpts::new().stride(stride).padding(1),
        dev,
    )?)
}

/// torchvision's `BasicBlock`: two 3×3 convolutions with batch norm, and the input
/// added back (through `downsample`, a 1×1 convolution and batch norm, when the
/// stride or the channels change).
#[derive(Debug, nn::Module)]
pub struct BasicBlock {
    /// First 3×3 convolution (carries the block's stride).
    pub conv1: nn::Conv2d,
    /// Its batch norm.
    pub bn1: nn::BatchNorm2d,
    /// Second 3×3 convolution.
    pub conv2: nn::Conv2d,
    /// Its batch norm.
    pub bn2: nn::BatchNorm2d,
    /// `Sequential(Conv2d 1×1 with the stride, BatchNorm2d)` when the shape changes.
    pub downsample: Option<nn::Sequential>,
    /// Run under activation checkpointing ([`BasicBlock::set_checkpoint`]).
    #[module(skip)]
    checkpoint: AtomicBool,
}

impl BasicBlock {
    /// A block from `cin` to `cout` channels with `stride` on `dev`.
    pub fn new(cin: usize, cout: usize, stride: usize, dev: &Device) -> Result<BasicBlock> {
        let downsample = if stride != 1 || cin != cout {
            let conv = nn::Conv2d::no_bias(cin, cout, 1, Conv2dOpts::new().stride(stride), dev)?;
            Some(
                nn::Sequential::new()
                    .add(kaiming_normal(conv)?)
                    .add(nn::BatchNorm2d::new(cout, dev)?),
            )
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: conv3x3(cin, cout, stride, dev)?,
            bn1: nn::BatchNorm2d::new(cout, dev)?,
            conv2: conv3x3(cout, cout, 1, dev)?,
            bn2: nn::BatchNorm2d::new(cout, dev)?,
            downsample,
            checkpoint: AtomicBool::new(false),
        })
    }

    /// With `on` (the default), `bn1 → relu` and `bn2 → add → relu` run as fused ops
    /// (see `nn::BatchNorm::fused`); with `false` as separate ones.
    pub fn fused(mut self, on: bool) -> BasicBlock {
        self.bn1 = self.bn1.fused(on);
        self.bn2 = self.bn2.fused(on);
        self
    }

    /// With `on`, the model runs this block through [`crate::utils::checkpoint`]: its
    /// activations are recomputed during backward instead of kept (batch norm's
    /// running statistics are updated once, by the forward pass).
    pub fn set_checkpoint(&self, on: bool) {
        self.checkpoint.store(on, Ordering::Relaxed);
    }
}

impl Forward for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let identity = match &self.downsample {
            Some(d) => d.forward(x)?,
            None => x.clone(),
        };
        self.bn2
            .forward_add_relu(&self.conv2.forward(&out)?, &identity)
    }
}

/// ResNet-18: stem, four stages of two [`BasicBlock`]s (the first block of stages 2–4
/// halves the resolution and doubles the channels), global average pooling, `fc`.
#[derive(Debug, nn::Module)]
pub struct ResNet {
    /// The stem's convolution.
    pub conv1: nn::Conv2d,
    /// Its batch norm.
    pub bn1: nn::BatchNorm2d,
    /// The ImageNet stem's 3×3 max pool (none with the CIFAR stem).
    pub maxpool: Option<nn::MaxPool2d>,
    /// Stage 1 (`width` channels). Blocks are shared so that a checkpointed one can
    /// run again during backward.
    pub layer1: Vec<Arc<BasicBlock>>,
    /// Stage 2 (2 × `width` channels, stride 2).
    pub layer2: Vec<Arc<BasicBlock>>,
    /// Stage 3 (4 × `width`, stride 2).
    pub layer3: Vec<Arc<BasicBlock>>,
    /// Stage 4 (8 × `width`, stride 2).
    pub layer4: Vec<Arc<BasicBlock>>,
    /// The classifier, (num_classes, 8 × `width`).
    pub fc: nn::Linear,
}

impl ResNet {
    /// A ResNet-18 on `dev` as `cfg` says, initialised as torchvision initialises it
    /// (convolutions kaiming-normal with fan-out, batch norms 1 and 0, `fc` PyTorch's
    /// `Linear` default). Err naming `num_classes` or `width` when 0.
    pub fn new(cfg: ResNetConfig, dev: &Device) -> Result<ResNet> {
        if cfg.num_classes == 0 {
            return Err(Error::arg("num_classes", "must be at least 1"));
        }
        if cfg.width == 0 {
            return Err(Error::arg("width", "must be at least 1"));
        }
        let w = cfg.width;
        let (conv1, maxpool) = match cfg.stem {
            Stem::Cifar => (conv3x3(3, w, 1, dev)?, None),
            Stem::ImageNet => {
                let conv =
                    nn::Conv2d::no_bias(3, w, 7, Conv2dOpts::new().stride(2).padding(3), dev)?;
                (
                    kaiming_normal(conv)?,
                    Some(nn::MaxPool2d::new(3, 2).padding(1)),
                )
            }
        };
        let stage = |cin: usize, cout: usize, stride: usize| -> Result<Vec<Arc<BasicBlock>>> {
            Ok(vec![
                Arc::new(BasicBlock::new(cin, cout, stride, dev)?.fused(cfg.fused)),
                Arc::new(BasicBlock::new(cout, cout, 1, dev)?.fused(cfg.fused)),
            ])
        };
        Ok(ResNet {
            conv1,
            bn1: nn::BatchNorm2d::new(w, dev)?.fused(cfg.fused),
            maxpool,
            layer1: stage(w, w, 1)?,
            layer2: stage(w, 2 * w, 2)?,
            layer3: stage(2 * w, 4 * w, 2)?,
            layer4: stage(4 * w, 8 * w, 2)?,
            fc: nn::Linear::new(8 * w, cfg.num_classes, dev)?,
        })
    }
}

impl ResNet {
    /// [`BasicBlock::set_checkpoint`] on every block: activation checkpointing per
    /// block.
    pub fn set_checkpoint(&self, on: bool) {
        self.blocks().for_each(|b| b.set_checkpoint(on));
    }

    fn blocks(&self) -> impl Iterator<Item = &Arc<BasicBlock>> {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .flatten()
    }
}

impl Forward for ResNet {
    /// Logits (N, num_classes) of images (N, 3, H, W).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        if let Some(pool) = &self.maxpool {
            h = pool.forward(&h)?;
        }
        for block in self.blocks() {
            h = super::run_block(block, &block.checkpoint, &h)?;
        }
        let h = F::adaptive_avg_pool2d(&h, (1, 1))?.flatten(1, 3)?;
        self.fc.forward(&h)
    }
}

/// torchvision's `resnet18(num_classes=…)` with the CIFAR stem, for 32×32 images
/// (`ResNet::new(ResNetConfig::new(num_classes), dev)`); use [`ResNet::new`] with
/// [`Stem::ImageNet`] for torchvision's exact architecture.
pub fn resnet18(num_classes: usize, dev: &Device) -> Result<ResNet> {
    ResNet::new(ResNetConfig::new(num_classes), dev)
}
