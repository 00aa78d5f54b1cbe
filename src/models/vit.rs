//! ViT-B/16 as `torchvision.models.vit_b_16`: the same modules under the same names
//! (`conv_proj.weight`, `class_token`, `encoder.pos_embedding`,
//! `encoder.layers.encoder_layer_0.self_attention.in_proj_weight`,
//! `encoder.layers.encoder_layer_0.mlp.3.bias`, `encoder.ln.weight`,
//! `heads.head.weight`, …), so its `state_dict` loads.

use super::vision_blocks::{normal_, trunc_normal_};
use crate::nn::{self, Conv2dOpts, Forward, Member, Module, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// How to build a [`VisionTransformer`]: torchvision's `VisionTransformer` arguments
/// (without `representation_size` and `conv_stem_configs`, which no torchvision
/// `vit_*` model uses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VitConfig {
    /// Height and width of the input images.
    pub image_size: usize,
    /// Height and width of a patch (divides `image_size`).
    pub patch_size: usize,
    /// Encoder blocks.
    pub num_layers: usize,
    /// Attention heads (divides `hidden_dim`).
    pub num_heads: usize,
    /// Width of the tokens.
    pub hidden_dim: usize,
    /// Hidden width of each block's MLP.
    pub mlp_dim: usize,
    /// Dropout after the embedding, the attention and in the MLPs.
    pub dropout: f64,
    /// Dropout on the attention weights.
    pub attention_dropout: f64,
    /// Outputs of the head.
    pub num_classes: usize,
}

impl VitConfig {
    /// `vit_b_16(num_classes=…)`'s configuration: 224×224 images, 16×16 patches, 12
    /// layers of 12 heads, width 768, MLP 3072.
    pub fn b_16(num_classes: usize) -> VitConfig {
        VitConfig {
            image_size: 224,
            patch_size: 16,
            num_layers: 12,
            num_heads: 12,
            hidden_dim: 768,
            mlp_dim: 3072,
            dropout: 0.0,
            attention_dropout: 0.0,
            num_classes,
        }
    }
}

/// ViT's `LayerNorm(dim, eps=1e-6)`.
fn layer_norm(dim: usize, dev: &Device) -> Result<nn::LayerNorm> {
    nn::LayerNorm::with_options(&[dim], 1e-6, true, true, dev)
}

/// torchvision's `MLPBlock` linear layer: weight Xavier-uniform, bias N(0, 1e-12).
fn mlp_linear(cin: usize, cout: usize, dev: &Device) -> Result<nn::Linear> {
    let l = nn::Linear::new(cin, cout, dev)?;
    let bound = (6.0 / (cin + cout) as f64).sqrt();
    let w = l.weight.tensor();
    w.copy_(&nn::init::uniform(
        w.shape(),
        -bound,
        bound,
        w.dtype(),
        dev,
    )?)?;
    if let Some(b) = &l.bias {
        normal_(b, 1e-6)?;
    }
    Ok(l)
}

/// torchvision's `EncoderBlock`: pre-norm self-attention and MLP, each added back.
#[derive(Debug, nn::Module)]
struct EncoderBlock {
    ln_1: nn::LayerNorm,
    self_attention: nn::MultiheadAttention,
    dropout: nn::Dropout,
    ln_2: nn::LayerNorm,
    /// `0` Linear, `1` GELU, `2` Dropout, `3` Linear, `4` Dropout.
    mlp: nn::Sequential,
}

impl EncoderBlock {
    fn new(cfg: &VitConfig, dev: &Device) -> Result<EncoderBlock> {
        let d = cfg.hidden_dim;
        let mlp = nn::Sequential::new()
            .add(mlp_linear(d, cfg.mlp_dim, dev)?)
            .add(nn::GELU)
            .add(nn::Dropout::new(cfg.dropout)?)
            .add(mlp_linear(cfg.mlp_dim, d, dev)?)
            .add(nn::Dropout::new(cfg.dropout)?);
        Ok(EncoderBlock {
            ln_1: layer_norm(d, dev)?,
            self_attention: nn::MultiheadAttention::new(d, cfg.num_heads, dev)?
                .with_dropout(cfg.attention_dropout)?,
            dropout: nn::Dropout::new(cfg.dropout)?,
            ln_2: layer_norm(d, dev)?,
            mlp,
        })
    }
}

impl Forward for EncoderBlock {
    fn forward(&self, input: &Tensor) -> Result<Tensor> {
        let x = self.self_attention.forward(&self.ln_1.forward(input)?)?;
        let x = self.dropout.forward(&x)?.add(input)?;
        let y = self.mlp.forward(&self.ln_2.forward(&x)?)?;
        x.add(&y)
    }
}

/// torchvision's `nn.Sequential(OrderedDict(encoder_layer_0=…, …))`: the blocks
/// applied in order, named `encoder_layer_<i>`.
#[derive(Debug)]
struct EncoderLayers(Vec<EncoderBlock>);

impl Module for EncoderLayers {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        for (i, block) in self.0.iter().enumerate() {
            visitor(&format!("encoder_layer_{i}"), Member::Child(block));
        }
    }
}

impl Forward for EncoderLayers {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0
            .iter()
            .try_fold(x.clone(), |h, block| block.forward(&h))
    }
}

/// torchvision's ViT `Encoder`: position embedding added, dropout, the blocks, a
/// final layer norm.
#[derive(Debug, nn::Module)]
struct Encoder {
    pos_embedding: Parameter,
    dropout: nn::Dropout,
    layers: EncoderLayers,
    ln: nn::LayerNorm,
}

/// torchvision's `heads` (`nn.Sequential(OrderedDict(head=Linear))`).
#[derive(Debug, nn::Module)]
struct Heads {
    head: nn::Linear,
}

/// Vision Transformer: `conv_proj` cuts the image into patch tokens, `class_token` is
/// prepended, `encoder` runs the transformer blocks, and `heads` classifies the
/// class token's output.
#[derive(Debug, nn::Module)]
pub struct VisionTransformer {
    /// Patch embedding, (hidden_dim, 3, patch, patch) with stride `patch_size`.
    pub conv_proj: nn::Conv2d,
    /// The learned class token, (1, 1, hidden_dim).
    pub class_token: Parameter,
    encoder: Encoder,
    heads: Heads,
    #[module(skip)]
    cfg: VitConfig,
}

impl VisionTransformer {
    /// The network `cfg` describes on `dev`, initialised as torchvision does
    /// (`conv_proj` truncated-normal with std √(1/fan_in), position embedding
    /// N(0, 0.02²), class token and head zero, MLPs Xavier-uniform). Errors name
    /// `patch_size` (0 or not dividing `image_size`), `num_layers` or `num_classes`
    /// (0), `d_model` (`hidden_dim` not a multiple of `num_heads`) or `p` (a dropout).
    pub fn new(cfg: &VitConfig, dev: &Device) -> Result<VisionTransformer> {
        if cfg.patch_size == 0 || !cfg.image_size.is_multiple_of(cfg.patch_size) {
            return Err(Error::arg(
                "patch_size",
                format!(
                    "must divide image_size {}, got {}",
                    cfg.image_size, cfg.patch_size
                ),
            ));
        }
        for (name, v) in [
            ("num_layers", cfg.num_layers),
            ("num_classes", cfg.num_classes),
        ] {
            if v == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let (d, p) = (cfg.hidden_dim, cfg.patch_size);
        let conv_proj = nn::Conv2d::new(3, d, p, Conv2dOpts::new().stride(p), dev)?;
        trunc_normal_(&conv_proj.weight, (1.0 / (3 * p * p) as f64).sqrt())?;
        if let Some(b) = &conv_proj.bias {
            b.tensor().fill_(0.0)?;
        }
        let seq_length = (cfg.image_size / p).pow(2) + 1;
        let pos_embedding = Parameter::new(Tensor::zeros(&[1, seq_length, d], DType::F32, dev)?)?;
        normal_(&pos_embedding, 0.02)?;
        let layers = (0..cfg.num_layers)
            .map(|_| EncoderBlock::new(cfg, dev))
            .collect::<Result<_>>()?;
        let head = nn::Linear::new(d, cfg.num_classes, dev)?;
        head.weight.tensor().fill_(0.0)?;
        if let Some(b) = &head.bias {
            b.tensor().fill_(0.0)?;
        }
        Ok(VisionTransformer {
            conv_proj,
            class_token: Parameter::new(Tensor::zeros(&[1, 1, d], DType::F32, dev)?)?,
            encoder: Encoder {
                pos_embedding,
                dropout: nn::Dropout::new(cfg.dropout)?,
                layers: EncoderLayers(layers),
                ln: layer_norm(d, dev)?,
            },
            heads: Heads { head },
            cfg: *cfg,
        })
    }
}

impl Forward for VisionTransformer {
    /// Logits (N, num_classes) of images (N, 3, image_size, image_size); another
    /// image size is an Err naming `input`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = self.cfg.image_size;
        if x.rank() != 4 || x.shape()[2..] != [s, s] {
            return Err(Error::arg(
                "input",
                format!("expected (N, 3, {s}, {s}) images, got {:?}", x.shape()),
            ));
        }
        let (n, d) = (x.shape()[0], self.cfg.hidden_dim);
        let tokens = self
            .conv_proj
            .forward(x)?
            .flatten(2, 3)?
            .permute(&[0, 2, 1])?;
        let class = self.class_token.tensor().expand(&[n, 1, d])?;
        let h = Tensor::cat(&[&class, &tokens], 1)?;
        let enc = &self.encoder;
        let h = enc.dropout.forward(&h.add(enc.pos_embedding.tensor())?)?;
        let h = enc.ln.forward(&enc.layers.forward(&h)?)?;
        self.heads.head.forward(&h.select(1, 0)?)
    }
}

/// torchvision's `vit_b_16(num_classes=…)` on `dev`.
pub fn vit_b_16(num_classes: usize, dev: &Device) -> Result<VisionTransformer> {
    VisionTransformer::new(&VitConfig::b_16(num_classes), dev)
}
