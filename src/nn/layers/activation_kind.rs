//! `nn::Activation`: the choice of nonlinearity that PyTorch's sequence layers take
//! as a string (`activation="gelu"` of the transformer layers, `nonlinearity="relu"`
//! of `nn.RNN`).

use crate::nn::functional as F;
use crate::{Result, Tensor};

/// A nonlinearity named by an option: PyTorch's `"relu"`, `"gelu"` (the exact, erf
/// form) or `"tanh"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `x·Φ(x)`, PyTorch's `F.gelu` with `approximate="none"`.
    Gelu,
    /// `tanh(x)`.
    Tanh,
}

impl Activation {
    /// Applies the nonlinearity to `x`.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => F::relu(x),
            Activation::Gelu => F::gelu(x),
            Activation::Tanh => F::tanh(x),
        }
    }

    /// PyTorch's name of the nonlinearity (`"relu"`, `"gelu"`, `"tanh"`).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Tanh => "tanh",
        }
    }
}
