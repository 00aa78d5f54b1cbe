//! Ready-made models built from kiln's layers (cargo feature `models`, on by default),
//! with the parameter names of their PyTorch counterparts, so a `state_dict` saved by
//! PyTorch loads into them ([`crate::nn::Module::load`]).
//!
//! * [`resnet18`]: ResNet-18 (BasicBlock, [2, 2, 2, 2]) for 32×32 images (CIFAR stem);
//!   [`ResNet::new`] with [`ResNetConfig`] builds torchvision's ImageNet stem, or
//!   narrower variants.
//! * [`gpt`]: a GPT (token + position embedding, pre-norm attention + MLP blocks), the
//!   model of `examples/train_gpt.rs`.

pub mod gpt;
mod resnet;

pub use resnet::{resnet18, BasicBlock, ResNet, ResNetConfig, Stem};
