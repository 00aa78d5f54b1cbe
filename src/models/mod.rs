//! Ready-made models built from kiln's layers (cargo feature `models`, on by default),
//! with the parameter names of their PyTorch counterparts, so a `state_dict` saved by
//! PyTorch loads into them ([`crate::nn::Module::load`]).
//!
//! * [`resnet18`]: ResNet-18 (BasicBlock, [2, 2, 2, 2]) for 32×32 images (CIFAR stem);
//!   [`ResNet::new`] with [`ResNetConfig`] builds torchvision's ImageNet stem, or
//!   narrower variants.
//! * [`gpt`]: a GPT (token + position embedding, pre-norm attention + MLP blocks), the
//!   model of `examples/train_gpt.rs`.
//!
//! Each block of both can run under activation checkpointing (`set_checkpoint` on a
//! block or on the whole model): less memory, one more forward pass per step.

pub mod gpt;
mod resnet;

pub use resnet::{resnet18, BasicBlock, ResNet, ResNetConfig, Stem};

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
