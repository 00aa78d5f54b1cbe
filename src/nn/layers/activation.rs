//! Parameter-free activation modules.

use crate::nn::{self, functional as F, Forward};
use crate::{Result, Tensor};

/// `max(x, 0)` element-wise, like `nn.ReLU()`: `let act = nn::ReLU;`.
///
/// A unit struct has no [`Mode`](crate::nn::Mode) field, so `ReLU` alone reports
/// training mode; it behaves the same in both modes.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
pub struct ReLU;

impl Forward for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::relu(x)
    }
}

/// The Gaussian error linear unit (exact erf form), like `nn.GELU()`.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
pub struct GELU;

impl Forward for GELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::gelu(x)
    }
}
