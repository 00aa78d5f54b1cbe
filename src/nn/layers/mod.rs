//! Built-in layer modules. Each holds its parameters (created with PyTorch's default
//! initialisation, see [`nn::init`](super::init)) and calls the matching
//! `nn::functional` op in `forward`.

mod activation;
mod flatten;
mod norm;
mod sequential;

pub use activation::{ReLU, GELU};
pub use flatten::Flatten;
pub use norm::BatchNorm2d;
pub use sequential::Sequential;
