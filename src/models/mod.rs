//! Ready-made models built from kiln's layers (cargo feature `models`, on by default),
//! with the parameter names of their PyTorch counterparts, so a `state_dict` saved by
//! PyTorch loads into them ([`crate::nn::Module::load`]).
//!
//! * [`resnet18`]: ResNet-18 (BasicBlock, [2, 2, 2, 2]) for 32×32 images (CIFAR stem);
//!   [`ResNet::new`] with [`ResNetConfig`] builds torchvision's ImageNet stem, or
//!   narrower variants.
//! * torchvision's ImageNet classifiers, each loading torchvision's `state_dict`:
//!   [`mobilenet_v3_small`] and [`mobilenet_v3_large`] ([`MobileNetV3::new`] with a
//!   [`MobileNetV3Config`] for other settings), [`efficientnet_b0`]
//!   ([`EfficientNetConfig`]), [`convnext_tiny`] ([`ConvNeXtConfig`]) and
//!   [`vit_b_16`] ([`VitConfig`]); each takes its configuration so that narrower
//!   variants (and small test fixtures) use the same code.
//! * [`gpt`]: a GPT (token + position embedding, pre-norm attention + MLP blocks), the
//!   model of `examples/train_gpt.rs`.
//! * [`gpt2`] and [`llama`]: the pretrained checkpoints people download from the
//!   Hugging Face hub (GPT-2; Llama, Mistral, Qwen2, TinyLlama), loaded from a model
//!   folder with `from_pretrained` and saved back with `save_pretrained`, and
//!   [`generate`] to continue prompts with a [`KvCache`].
//!
//! Each block of the ResNet and the GPT can run under activation checkpointing
//! (`set_checkpoint` on a block or on the whole model): less memory, one more forward
//! pass per step.

mod convnext;
mod efficientnet;
mod generate;
pub mod gpt;
pub mod gpt2;
mod hub;
mod kv_cache;
pub mod llama;
mod mobilenet_v3;
mod resnet;
mod rope;
#[cfg(feature = "tokenizers")]
mod tokenizer;
mod vision_blocks;
mod vit;

pub use convnext::{convnext_tiny, CNBlockConfig, ConvNeXt, ConvNeXtConfig};
pub use efficientnet::{efficientnet_b0, EfficientNet, EfficientNetConfig, MBConvConfig};
pub use generate::{generate, CausalLm, GenerateOpts};
pub use kv_cache::KvCache;
pub use mobilenet_v3::{
    mobilenet_v3_large, mobilenet_v3_small, InvertedResidualConfig, MobileNetV3, MobileNetV3Config,
};
pub use resnet::{resnet18, BasicBlock, ResNet, ResNetConfig, Stem};
pub use rope::{Rope, RopeScaling};
#[cfg(feature = "tokenizers")]
pub use tokenizer::Tokenizer;
pub use vit::{vit_b_16, VisionTransformer, VitConfig};

use crate::nn::Forward;
use crate::{Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Runs `block` on `x`; through [`crate::utils::checkpoint`] when `checkpointed` is
/// set (the block's activations are recomputed in backward instead of kept).
fn run_block<B>(block: &Arc<B>, checkpointed: &AtomicBool, x: &Tensor) -> Result<Tensor>
where
    B: Forward + Send + Sync + 'static,
{
    if checkpointed.load(Ordering::Relaxed) {
        let block = Arc::clone(block);
        crate::utils::checkpoint(move |x| block.forward(x), x)
    } else {
        block.forward(x)
    }
}
