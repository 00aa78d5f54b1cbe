//! Activation modules (all parameter-free but [`PReLU`]), and the `Softmax` and
//! `LogSoftmax` modules.

use crate::nn::summary::py_float;
use crate::nn::{self, functional as F, Forward, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

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

/// Declares parameter-free activation modules, each a unit struct whose `forward`
/// is the named functional op and which prints as PyTorch's module (`Hardswish()`).
macro_rules! unit_activation {
    ($($(#[doc = $doc:literal])* $name:ident => $op:path;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, Default, nn::Module)]
        #[module(stateless)]
        pub struct $name;

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $op(x)
            }
        }
    )*};
}

unit_activation! {
    /// `x·relu6(x + 3)/6`, like `nn.Hardswish()` ([`F::hardswish`]).
    Hardswish => F::hardswish;
    /// `relu6(x + 3)/6`, like `nn.Hardsigmoid()` ([`F::hardsigmoid`]).
    Hardsigmoid => F::hardsigmoid;
    /// `min(max(x, 0), 6)`, like `nn.ReLU6()` ([`F::relu6`]).
    ReLU6 => F::relu6;
    /// SELU, like `nn.SELU()` ([`F::selu`]).
    SELU => F::selu;
    /// Mish, `x·tanh(softplus(x))`, like `nn.Mish()` ([`F::mish`]).
    Mish => F::mish;
    /// `ln σ(x)`, like `nn.LogSigmoid()` ([`F::log_sigmoid`]).
    LogSigmoid => F::log_sigmoid;
    /// `x / (1 + |x|)`, like `nn.Softsign()` ([`F::softsign`]).
    Softsign => F::softsign;
    /// The logistic function, like `nn.Sigmoid()` ([`F::sigmoid`]).
    Sigmoid => F::sigmoid;
}

/// `x` limited to `[min_val, max_val]`, like `nn.Hardtanh(min_val, max_val)`;
/// `Hardtanh::default()` has PyTorch's bounds, -1 and 1.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct Hardtanh {
    #[module(skip)]
    min_val: f64,
    #[module(skip)]
    max_val: f64,
}

impl Hardtanh {
    /// A hardtanh with the given bounds. Errs naming the bound where a bound is NaN
    /// or `max_val` is not above `min_val`: `nn.Hardtanh` asserts `max_val >
    /// min_val`, stricter than `F.hardtanh`, which takes equal bounds.
    pub fn new(min_val: f64, max_val: f64) -> Result<Self> {
        F::check_hardtanh_bounds(min_val, max_val)?;
        if max_val == min_val {
            return Err(Error::arg(
                "max_val",
                format!("must be greater than min_val ({min_val}), got {max_val}"),
            ));
        }
        Ok(Hardtanh { min_val, max_val })
    }

    /// PyTorch's `Hardtanh.extra_repr`.
    fn extra_repr(&self) -> String {
        format!(
            "min_val={}, max_val={}",
            py_float(self.min_val),
            py_float(self.max_val)
        )
    }
}

impl Default for Hardtanh {
    fn default() -> Self {
        Hardtanh {
            min_val: -1.0,
            max_val: 1.0,
        }
    }
}

impl Forward for Hardtanh {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::hardtanh(x, self.min_val, self.max_val)
    }
}

/// Declares an activation module with one `alpha` (PyTorch's default 1.0), checked
/// as its functional op checks it.
macro_rules! alpha_activation {
    ($($(#[doc = $doc:literal])* $name:ident => $op:path, $check:path;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, nn::Module)]
        #[module(stateless, extra_repr)]
        pub struct $name {
            #[module(skip)]
            alpha: f64,
        }

        impl $name {
            /// The activation with this `alpha`; errs where the functional op does.
            pub fn new(alpha: f64) -> Result<Self> {
                $check(alpha)?;
                Ok($name { alpha })
            }

            /// α.
            pub fn alpha(&self) -> f64 {
                self.alpha
            }

            /// PyTorch's `extra_repr`: `alpha=1.0`.
            fn extra_repr(&self) -> String {
                format!("alpha={}", py_float(self.alpha))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name { alpha: 1.0 }
            }
        }

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $op(x, self.alpha)
            }
        }
    )*};
}

alpha_activation! {
    /// ELU, like `nn.ELU(alpha)` ([`F::elu`]); `ELU::default()` has α = 1.
    ELU => F::elu, F::check_elu_alpha;
    /// CELU, like `nn.CELU(alpha)` ([`F::celu`]); `CELU::default()` has α = 1.
    CELU => F::celu, F::check_celu_alpha;
}

/// The gated linear unit along a dimension, like `nn.GLU(dim)` ([`F::glu`]);
/// `GLU::default()` halves the last dimension, as PyTorch's `dim=-1`.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless, extra_repr)]
pub struct GLU {
    /// `None`: the last dimension.
    #[module(skip)]
    dim: Option<usize>,
}

impl GLU {
    /// A GLU over dimension `dim`.
    pub fn new(dim: usize) -> Self {
        GLU { dim: Some(dim) }
    }

    /// PyTorch's `GLU.extra_repr` (`dim=-1` for the last dimension).
    fn extra_repr(&self) -> String {
        match self.dim {
            Some(d) => format!("dim={d}"),
            None => "dim=-1".to_owned(),
        }
    }
}

impl Forward for GLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dim = self.dim.unwrap_or(x.rank().saturating_sub(1));
        F::glu(x, dim)
    }
}

/// `softmax` along a dimension, like `nn.Softmax(dim)`: `nn::Softmax(1)`.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct Softmax(pub usize);

impl Softmax {
    /// PyTorch's `Softmax.extra_repr`.
    fn extra_repr(&self) -> String {
        format!("dim={}", self.0)
    }
}

impl Forward for Softmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::softmax(x, self.0)
    }
}

/// `log_softmax` along a dimension, like `nn.LogSoftmax(dim)`: `nn::LogSoftmax(1)`.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct LogSoftmax(pub usize);

impl LogSoftmax {
    /// PyTorch's `LogSoftmax.extra_repr`.
    fn extra_repr(&self) -> String {
        format!("dim={}", self.0)
    }
}

impl Forward for LogSoftmax {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::log_softmax(x, self.0)
    }
}

/// PReLU with a learnt `weight` of `num_parameters` slopes (1, shared, or one per
/// channel of dim 1), each initialised to `init`: `nn.PReLU(num_parameters, init)`,
/// whose defaults are 1 and 0.25 ([`PReLU::default_on`]). `forward` is [`F::prelu`].
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct PReLU {
    /// The slopes, `(num_parameters)`.
    pub weight: Parameter,
    mode: Mode,
}

impl PReLU {
    /// `nn.PReLU(num_parameters, init)` in F32 on `device`; errs when
    /// `num_parameters` is 0 or `init` is not finite.
    pub fn new(num_parameters: usize, init: f64, device: &Device) -> Result<PReLU> {
        if num_parameters == 0 {
            return Err(Error::arg("num_parameters", "must be at least 1"));
        }
        if !init.is_finite() {
            return Err(Error::arg("init", format!("must be finite, got {init}")));
        }
        let weight = Tensor::full(&[num_parameters], init, DType::F32, device)?;
        Ok(PReLU {
            weight: Parameter::new(weight)?,
            mode: Mode::default(),
        })
    }

    /// PyTorch's defaults: one slope shared by all channels, initialised to 0.25.
    pub fn default_on(device: &Device) -> Result<PReLU> {
        PReLU::new(1, 0.25, device)
    }

    /// PyTorch's `PReLU.extra_repr`.
    fn extra_repr(&self) -> String {
        format!("num_parameters={}", self.weight.numel())
    }
}

impl Forward for PReLU {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::prelu(x, &self.weight)
    }
}
