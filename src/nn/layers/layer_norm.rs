//! Per-row normalisation layers for transformers: [`LayerNorm`] and [`RMSNorm`],
//! whose `forward` is [`F::layer_norm`] / [`F::rms_norm`] over the trailing
//! `normalized_shape`.

use crate::nn::summary::{py_bool, py_float, py_shape};
use crate::nn::{self, functional as F, Forward, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.LayerNorm(normalized_shape)`: normalises the trailing `normalized_shape`
/// values of each row by their mean and biased variance, then applies the learnt
/// elementwise `weight` (ones) and `bias` (zeros), of shape `normalized_shape`, with
/// PyTorch's names. eps 1e-5.
///
/// ```
/// use kiln::nn::{self, Forward};
/// use kiln::{DType, Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let ln = nn::LayerNorm::new(8, &Device::Cpu)?;
/// let x = Tensor::randn(&[2, 5, 8], DType::F32, &Device::Cpu)?;
/// assert_eq!(ln.forward(&x)?.shape(), &[2, 5, 8]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct LayerNorm {
    /// Elementwise scale, `normalized_shape` (absent without `elementwise_affine`).
    pub weight: Option<Parameter>,
    /// Elementwise shift, `normalized_shape` (absent without `elementwise_affine` or
    /// with `bias = false`).
    pub bias: Option<Parameter>,
    #[module(skip)]
    normalized_shape: Vec<usize>,
    #[module(skip)]
    eps: f64,
    mode: Mode,
}

impl LayerNorm {
    /// PyTorch's `LayerNorm.extra_repr`:
    /// `(d,), eps=1e-05, elementwise_affine=True, bias=True`.
    fn extra_repr(&self) -> String {
        format!(
            "{}, eps={}, elementwise_affine={}, bias={}",
            py_shape(&self.normalized_shape),
            py_float(self.eps),
            py_bool(self.weight.is_some()),
            py_bool(self.bias.is_some())
        )
    }

    /// `nn.LayerNorm(d)`: over the last dimension, of size `d`, with weight and bias.
    pub fn new(d: usize, device: &Device) -> Result<LayerNorm> {
        LayerNorm::with_options(&[d], 1e-5, true, true, device)
    }

    /// `nn.LayerNorm(normalized_shape, eps, elementwise_affine, bias)`: `eps` must be
    /// finite and ≥ 0, `normalized_shape` non-empty with no zero size; `bias` only
    /// matters with `elementwise_affine`.
    pub fn with_options(
        normalized_shape: &[usize],
        eps: f64,
        elementwise_affine: bool,
        bias: bool,
        device: &Device,
    ) -> Result<LayerNorm> {
        check_options(normalized_shape, eps)?;
        let (weight, bias) = affine(normalized_shape, elementwise_affine, bias, device)?;
        Ok(LayerNorm {
            weight,
            bias,
            normalized_shape: normalized_shape.to_vec(),
            eps,
            mode: Mode::default(),
        })
    }

    /// The trailing shape this layer normalises over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    /// The value added to the variance before its square root.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

impl Forward for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::layer_norm(
            x,
            &self.normalized_shape,
            self.weight.as_deref(),
            self.bias.as_deref(),
            self.eps,
        )
    }
}

/// `nn.RMSNorm(normalized_shape)`: divides the trailing `normalized_shape` values of
/// each row by their root mean square (`√(mean(x²) + eps)`) and applies the learnt
/// elementwise `weight` (ones, shape `normalized_shape`). eps `None` is PyTorch's
/// default (see [`F::rms_norm`]).
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct RMSNorm {
    /// Elementwise scale, `normalized_shape` (absent without `elementwise_affine`).
    pub weight: Option<Parameter>,
    #[module(skip)]
    normalized_shape: Vec<usize>,
    #[module(skip)]
    eps: Option<f64>,
    mode: Mode,
}

impl RMSNorm {
    /// PyTorch's `RMSNorm.extra_repr`: `(d,), eps=None, elementwise_affine=True`.
    fn extra_repr(&self) -> String {
        format!(
            "{}, eps={}, elementwise_affine={}",
            py_shape(&self.normalized_shape),
            self.eps.map_or("None".to_owned(), py_float),
            py_bool(self.weight.is_some())
        )
    }

    /// `nn.RMSNorm(d)`: over the last dimension, of size `d`, with a weight.
    pub fn new(d: usize, device: &Device) -> Result<RMSNorm> {
        RMSNorm::with_options(&[d], None, true, device)
    }

    /// `nn.RMSNorm(normalized_shape, eps, elementwise_affine)`: `eps` (when given)
    /// must be finite and ≥ 0, `normalized_shape` non-empty with no zero size.
    pub fn with_options(
        normalized_shape: &[usize],
        eps: Option<f64>,
        elementwise_affine: bool,
        device: &Device,
    ) -> Result<RMSNorm> {
        check_options(normalized_shape, eps.unwrap_or(0.0))?;
        let (weight, _) = affine(normalized_shape, elementwise_affine, false, device)?;
        Ok(RMSNorm {
            weight,
            normalized_shape: normalized_shape.to_vec(),
            eps,
            mode: Mode::default(),
        })
    }

    /// The trailing shape this layer normalises over.
    pub fn normalized_shape(&self) -> &[usize] {
        &self.normalized_shape
    }

    /// The value added to the mean square (`None`: the dtype's machine epsilon).
    pub fn eps(&self) -> Option<f64> {
        self.eps
    }
}

impl Forward for RMSNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::rms_norm(x, &self.normalized_shape, self.weight.as_deref(), self.eps)
    }
}

/// Err unless `normalized_shape` is non-empty without zero sizes and `eps` is finite
/// and ≥ 0.
fn check_options(normalized_shape: &[usize], eps: f64) -> Result<()> {
    if normalized_shape.is_empty() || normalized_shape.contains(&0) {
        return Err(Error::arg(
            "normalized_shape",
            format!("must be non-empty with sizes >= 1, got {normalized_shape:?}"),
        ));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::arg(
            "eps",
            format!("must be finite and >= 0, got {eps}"),
        ));
    }
    Ok(())
}

/// The affine parameters, F32 ones (weight) and zeros (bias), as PyTorch creates them.
fn affine(
    shape: &[usize],
    elementwise_affine: bool,
    bias: bool,
    device: &Device,
) -> Result<(Option<Parameter>, Option<Parameter>)> {
    if !elementwise_affine {
        return Ok((None, None));
    }
    let weight = Parameter::new(Tensor::ones(shape, DType::F32, device)?)?;
    let bias = if bias {
        Some(Parameter::new(Tensor::zeros(shape, DType::F32, device)?)?)
    } else {
        None
    };
    Ok((Some(weight), bias))
}
