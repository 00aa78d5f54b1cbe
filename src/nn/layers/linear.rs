//! `nn::Linear`: `y = x·Wᵀ + b` with its own weight and bias.

use crate::nn::{self, functional as F, init, Forward, Mode, Parameter};
use crate::{Device, Error, Result, Tensor};

/// `nn.Linear(in_features, out_features)`: weight (out, in) and optional bias (out),
/// initialised like PyTorch; `forward` is [`F::linear`].
#[derive(Debug, nn::Module)]
pub struct Linear {
    /// (out_features, in_features).
    pub weight: Parameter,
    /// (out_features), when the layer has a bias.
    pub bias: Option<Parameter>,
    mode: Mode,
}

impl Linear {
    /// A layer with a bias.
    pub fn new(in_features: usize, out_features: usize, device: &Device) -> Result<Linear> {
        Linear::build(in_features, out_features, true, device)
    }

    /// A layer without a bias (`bias=False`).
    pub fn no_bias(in_features: usize, out_features: usize, device: &Device) -> Result<Linear> {
        Linear::build(in_features, out_features, false, device)
    }

    fn build(
        in_features: usize,
        out_features: usize,
        bias: bool,
        device: &Device,
    ) -> Result<Linear> {
        for (name, features) in [("in_features", in_features), ("out_features", out_features)] {
            if features == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let (weight, bias) =
            init::default_weight_and_bias(&[out_features, in_features], bias, device)?;
        Ok(Linear {
            weight,
            bias,
            mode: Mode::default(),
        })
    }
}

impl Forward for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::linear(x, &self.weight, self.bias.as_deref())
    }
}
