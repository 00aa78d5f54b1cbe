//! Neural-network layers.
//!
//! [`functional`] holds parameter-free ops (the caller passes every weight); the
//! modules in this module own their parameters and a train/eval mode, and call the
//! functional ops in `forward`, so both styles run the same code.

pub mod functional;

pub use functional::{Conv2dOpts, Padding};
