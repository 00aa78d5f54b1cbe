//! Neural-network layers.
//!
//! [`functional`] holds parameter-free ops (the caller passes every weight); the
//! modules in this module own their parameters and a train/eval mode, and call the
//! functional ops in `forward`, so both styles run the same code.
//!
//! * State: [`Parameter`] (learnable), [`Buffer`] (saved, not learnable), [`Mode`]
//!   (train/eval flag, training by default).
//! * Traits: [`Module`] (structure, mode, checkpoints; also a derive macro) and
//!   [`Forward`] (`forward(&self, &Tensor)`); [`Layer`] is both, as an object.
//! * `#[derive(nn::Module)]` reads a struct's fields (see [`ModuleField`]):
//!
//! ```
//! use kiln::nn::{self, Forward, Module};
//! use kiln::{DType, Device, Result, Tensor};
//!
//! #[derive(nn::Module)]
//! struct Affine { weight: nn::Parameter, bias: nn::Parameter }
//!
//! #[derive(nn::Module)]
//! struct Net {
//!     body: nn::Sequential,
//!     heads: Vec<Affine>,
//!     extra: Option<Affine>,
//!     #[module(skip)]
//!     note: &'static str,
//!     mode: nn::Mode,
//! }
//!
//! # fn main() -> Result<()> {
//! let dev = Device::Cpu;
//! let affine = |n| -> Result<Affine> {
//!     let (weight, bias) = nn::init::default_weight_and_bias(&[n, n], true, &dev)?;
//!     Ok(Affine { weight, bias: bias.unwrap() })
//! };
//! let net = Net {
//!     body: nn::Sequential::new().add(nn::ReLU),
//!     heads: vec![affine(3)?, affine(3)?],
//!     extra: None,
//!     note: "not a module",
//!     mode: nn::Mode::default(),
//! };
//! let names: Vec<String> = net.named_parameters().into_iter().map(|(n, _)| n).collect();
//! assert_eq!(names, ["heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias"]);
//! net.eval();
//! assert!(!net.is_training() && !net.body.is_training());
//! # Ok(())
//! # }
//! ```

pub(crate) mod checkpoint;
pub mod functional;
mod fusion;
pub mod init;
mod layers;
mod module;
pub mod parallel;
mod parameter;
mod summary;
pub mod utils;

pub use checkpoint::{load, save};
pub use functional::{
    Conv1dOpts, Conv2dOpts, Conv3dOpts, ConvTranspose1dOpts, ConvTranspose2dOpts, Padding,
    Padding1d, Padding3d, PaddingMode, Size2d, Size3d,
};
/// `#[derive(nn::Module)]`: implements [`Module`] from a struct's fields.
pub use kiln_derive::Module;
pub use layers::*;
pub use module::{Forward, Layer, Member, Module, ModuleField};
pub use parallel::SyncBatchNorm;
pub use parameter::{Buffer, Mode, Parameter};
pub use summary::{repr, summary};
