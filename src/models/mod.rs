//! Ready-made models (cargo feature `models`, on by default), with the parameter names
//! of their torchvision counterparts, so a `state_dict` saved by PyTorch loads into
//! them ([`crate::nn::Module::load`]).
//!
//! * [`resnet18`]: ResNet-18 (BasicBlock, [2, 2, 2, 2]) for 32×32 images (CIFAR stem);
//!   [`ResNet::new`] with [`ResNetConfig`] builds torchvision's ImageNet stem, or
//!   narrower variants.

mod resnet;

pub use resnet::{resnet18, BasicBlock, ResNet, ResNetConfig, Stem};
