//! `nn::Linear`: `y = x·Wᵀ + b` with its own weight and bias.

use crate::nn::summary::py_bool;
use crate::nn::{self, functional as F, init, Forward, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.Linear(in_features, out_features)`: weight (out, in) and optional bias (out),
/// initialised like PyTorch; `forward` is [`F::linear`].
///
/// ```
/// use kiln::nn::{self, LinearOpts};
/// use kiln::{DType, Device};
/// # fn main() -> kiln::Result<()> {
/// let fc = nn::Linear::new_with(512, 10, LinearOpts::new().bias(false).dtype(DType::BF16), &Device::Cpu)?;
/// assert!(fc.bias.is_none() && fc.weight.dtype() == DType::BF16);
/// assert_eq!(nn::repr(&fc), "Linear(in_features=512, out_features=10, bias=False)");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct Linear {
    /// (out_features, in_features).
    pub weight: Parameter,
    /// (out_features), when the layer has a bias.
    pub bias: Option<Parameter>,
    mode: Mode,
}

/// Options of [`Linear::new_with`]: `LinearOpts::new().bias(false).dtype(DType::BF16)`.
/// The defaults are PyTorch's: a bias, F32 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinearOpts {
    /// Whether the layer has a bias (`true` by default).
    pub bias: bool,
    /// The parameters' dtype (F32 by default; a float dtype).
    pub dtype: DType,
}

impl Default for LinearOpts {
    fn default() -> Self {
        LinearOpts {
            bias: true,
            dtype: DType::F32,
        }
    }
}

impl LinearOpts {
    /// The defaults: a bias, F32.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the layer has a bias (`bias=False` is `.bias(false)`).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// The parameters' dtype.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

impl Linear {
    /// A layer with a bias.
    pub fn new(in_features: usize, out_features: usize, device: &Device) -> Result<Linear> {
        Linear::new_with(in_features, out_features, LinearOpts::new(), device)
    }

    /// A layer without a bias (`bias=False`).
    pub fn no_bias(in_features: usize, out_features: usize, device: &Device) -> Result<Linear> {
        Linear::new_with(
            in_features,
            out_features,
            LinearOpts::new().bias(false),
            device,
        )
    }

    /// A layer with the given options (bias or not, the parameters' dtype).
    pub fn new_with(
        in_features: usize,
        out_features: usize,
        opts: LinearOpts,
        device: &Device,
    ) -> Result<Linear> {
        for (name, features) in [("in_features", in_features), ("out_features", out_features)] {
            if features == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let (weight, bias) = init::default_weight_and_bias_as(
            &[out_features, in_features],
            opts.bias,
            opts.dtype,
            device,
        )?;
        Ok(Linear {
            weight,
            bias,
            mode: Mode::default(),
        })
    }

    /// PyTorch's `Linear.extra_repr`.
    fn extra_repr(&self) -> String {
        let shape = self.weight.shape();
        format!(
            "in_features={}, out_features={}, bias={}",
            shape.get(1).copied().unwrap_or(0),
            shape.first().copied().unwrap_or(0),
            py_bool(self.bias.is_some())
        )
    }
}

impl Forward for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::linear(x, &self.weight, self.bias.as_deref())
    }
}

/// Returns its input, like `nn.Identity()`: a placeholder where a layer is optional
/// (a skipped projection, a removed classifier head).
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless)]
pub struct Identity;

impl Forward for Identity {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}
