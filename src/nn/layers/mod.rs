//! Built-in layer modules. Each holds its parameters (created with PyTorch's default
//! initialisation, see [`nn::init`](super::init)) and calls the matching
//! `nn::functional` op in `forward`.

mod activation;
mod conv;
mod dropout;
mod flatten;
mod linear;
mod norm;
mod pool;
mod sequential;

pub use activation::{ReLU, GELU};
pub use conv::Conv2d;
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use linear::Linear;
pub use norm::{BatchNorm1d, BatchNorm2d};
pub use pool::{AdaptiveAvgPool2d, AvgPool2d, MaxPool2d};
pub use sequential::Sequential;
