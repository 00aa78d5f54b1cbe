//! Parameter-free activation modules.

use crate::nn::summary::py_float;
use crate::nn::{self, functional as F, Forward};
use crate::{Result, Tensor};

/// `max(x, 0)` element-wise, like `nn.ReLU()`: `let act = nn::ReLU;`.
///
/// A unit struct has no [`Mode`](crate::nn::Mode) field, so `ReLU` alone reports
/// training mode; it behaves the same in both modes (`#[module(stateless)]`).
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless)]
pub struct ReLU;

impl Forward for ReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::relu(x)
    }
}

/// The Gaussian error linear unit (exact erf form), like `nn.GELU()`.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless, extra_repr)]
pub struct GELU;

impl GELU {
    /// PyTorch's `GELU.extra_repr` (the exact form is `approximate='none'`).
    fn extra_repr(&self) -> String {
        "approximate='none'".to_owned()
    }
}

impl Forward for GELU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::gelu(x)
    }
}

/// `x` where `x > 0`, else `negative_slope·x`, like `nn.LeakyReLU(negative_slope)`;
/// `LeakyReLU::default()` has PyTorch's default slope, 0.01.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct LeakyReLU {
    #[module(skip)]
    negative_slope: f64,
}

impl LeakyReLU {
    /// A leaky ReLU with the given slope for negative inputs (any finite value).
    pub fn new(negative_slope: f64) -> Result<Self> {
        if !negative_slope.is_finite() {
            return Err(crate::Error::arg(
                "negative_slope",
                format!("must be finite, got {negative_slope}"),
            ));
        }
        Ok(LeakyReLU { negative_slope })
    }

    /// The slope for negative inputs.
    pub fn negative_slope(&self) -> f64 {
        self.negative_slope
    }

    /// PyTorch's `LeakyReLU.extra_repr`.
    fn extra_repr(&self) -> String {
        format!("negative_slope={}", py_float(self.negative_slope))
    }
}

impl Default for LeakyReLU {
    fn default() -> Self {
        LeakyReLU {
            negative_slope: 0.01,
        }
    }
}

impl Forward for LeakyReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::leaky_relu(x, self.negative_slope)
    }
}

/// SiLU (swish), `x·σ(x)`, like `nn.SiLU()`.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless)]
pub struct SiLU;

impl Forward for SiLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::silu(x)
    }
}

/// The hyperbolic tangent, like `nn.Tanh()`.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless)]
pub struct Tanh;

impl Forward for Tanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::tanh(x)
    }
}

/// `ln(1 + e^(β·x)) / β`, linear where `β·x > threshold`, like
/// `nn.Softplus(beta, threshold)`; `Softplus::default()` has PyTorch's defaults,
/// β = 1 and threshold 20.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct Softplus {
    #[module(skip)]
    beta: f64,
    #[module(skip)]
    threshold: f64,
}

impl Softplus {
    /// A softplus with the given β (finite, non-zero) and threshold (not NaN).
    pub fn new(beta: f64, threshold: f64) -> Result<Self> {
        if !beta.is_finite() || beta == 0.0 {
            return Err(crate::Error::arg(
                "beta",
                format!("must be finite and non-zero, got {beta}"),
            ));
        }
        if threshold.is_nan() {
            return Err(crate::Error::arg("threshold", "must not be NaN"));
        }
        Ok(Softplus { beta, threshold })
    }

    /// PyTorch's `Softplus.extra_repr`.
    fn extra_repr(&self) -> String {
        format!(
            "beta={}, threshold={}",
            py_float(self.beta),
            py_float(self.threshold)
        )
    }

    /// β.
    pub fn beta(&self) -> f64 {
        self.beta
    }

    /// The threshold above which `β·x` is passed through.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl Forward for Softplus {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::softplus(x, self.beta, self.threshold)
    }
}
