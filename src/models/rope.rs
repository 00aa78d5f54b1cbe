//! Rotary position embeddings as `transformers` computes them for the Llama family:
//! the inverse frequencies of `rope_type` `default`, `linear` or `llama3` (read from
//! `config.json`'s `rope_parameters`, or the older top-level `rope_theta` and
//! `rope_scaling`), and their application to queries and keys in the "rotate half"
//! layout (the first and second halves of each head are the pairs).

use super::hub::{number, HubConfig};
use crate::{DType, Error, Result, Tensor};
use serde_json::Value;

/// How the inverse frequencies are made from `rope_theta`.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// `rope_type: "default"`: `1 / theta^(2i/d)`.
    Default,
    /// `rope_type: "linear"`: positions divided by `factor` (the frequencies, rather).
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// `rope_type: "llama3"`: long wavelengths divided by `factor`, short ones kept,
    /// a smooth blend between (Llama 3.1's context extension).
    Llama3 {
        /// The divisor of the long wavelengths.
        factor: f64,
        /// Wavelengths above `original / low_freq_factor` are divided by `factor`.
        low_freq_factor: f64,
        /// Wavelengths below `original / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context length the model was trained with.
        original_max_position_embeddings: f64,
    },
}

/// The rotary settings of a model: base `theta` and the scaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    /// `rope_theta`.
    pub theta: f64,
    /// `rope_type` and its parameters.
    pub scaling: RopeScaling,
}

impl Rope {
    /// The settings of `config.json`: `rope_parameters` (transformers 5) or
    /// `rope_theta` + `rope_scaling` (older files). Err naming the key of an
    /// unsupported `rope_type` (`dynamic`, `yarn`, `longrope`).
    pub(crate) fn parse(c: &HubConfig) -> Result<Rope> {
        let (key, params) = match c.json().get("rope_parameters") {
            Some(Value::Object(p)) => ("rope_parameters", Some(p)),
            _ => match c.json().get("rope_scaling") {
                Some(Value::Object(p)) => ("rope_scaling", Some(p)),
                _ => ("rope_scaling", None),
            },
        };
        let get = |name: &str, default: f64| {
            number(params.and_then(|p| p.get(name)), default)
                .map_err(|()| c.error(key, &format!("has a non-numeric `{name}`")))
        };
        let theta = match params.and_then(|p| p.get("rope_theta")) {
            Some(_) => get("rope_theta", 10000.0)?,
            None => c.f64("rope_theta", 10000.0)?,
        };
        let kind = params
            .and_then(|p| p.get("rope_type").or_else(|| p.get("type")))
            .and_then(Value::as_str)
            .unwrap_or("default");
        let scaling = match kind {
            "default" => RopeScaling::Default,
            "linear" => RopeScaling::Linear {
                factor: get("factor", 1.0)?,
            },
            "llama3" => RopeScaling::Llama3 {
                factor: get("factor", 8.0)?,
                low_freq_factor: get("low_freq_factor", 1.0)?,
                high_freq_factor: get("high_freq_factor", 4.0)?,
                original_max_position_embeddings: get("original_max_position_embeddings", 8192.0)?,
            },
            other => {
                return Err(c.error(
                    key,
                    &format!("has rope_type {other:?}; kiln supports default, linear and llama3"),
                ))
            }
        };
        Ok(Rope { theta, scaling })
    }

    /// The `head_dim / 2` inverse frequencies, computed in f32 as `transformers` does.
    pub fn inv_freq(&self, head_dim: usize) -> Vec<f32> {
        let base: Vec<f32> = (0..head_dim / 2)
            .map(|i| 1.0 / (self.theta as f32).powf((2 * i) as f32 / head_dim as f32))
            .collect();
        match &self.scaling {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / *factor as f32).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings: old,
            } => base
                .iter()
                .map(|&f| {
                    let (f, factor) = (f64::from(f), *factor);
                    let wavelen = 2.0 * std::f64::consts::PI / f;
                    let scaled = if wavelen > old / low_freq_factor {
                        f / factor
                    } else {
                        f
                    };
                    let medium =
                        wavelen >= old / high_freq_factor && wavelen <= old / low_freq_factor;
                    if medium {
                        let smooth = (old / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        ((1.0 - smooth) * scaled / factor + smooth * scaled) as f32
                    } else {
                        scaled as f32
                    }
                })
                .collect(),
        }
    }
}

/// `(cos, sin)` of shape `(B, 1, T, head_dim)` in `dtype` for positions `pos (B, T)`
/// (I64) and the inverse frequencies `inv_freq (head_dim / 2)` (F32, on `pos`'s
/// device): angles `pos · inv_freq` in f32, each repeated for both halves.
pub(crate) fn cos_sin(pos: &Tensor, inv_freq: &Tensor, dtype: DType) -> Result<(Tensor, Tensor)> {
    let (b, t) = (pos.shape()[0], pos.shape()[1]);
    let half = inv_freq.shape()[0];
    let angles = pos
        .to_dtype(DType::F32)?
        .reshape(&[b, 1, t, 1])?
        .mul(&inv_freq.reshape(&[1, 1, 1, half])?)?;
    let emb = Tensor::cat(&[&angles, &angles], 3)?;
    Ok((emb.cos()?.to_dtype(dtype)?, emb.sin()?.to_dtype(dtype)?))
}

/// `x·cos + rotate_half(x)·sin` for `x (B, heads, T, head_dim)`, where
/// `rotate_half(x) = cat(-x₂, x₁)` of its two halves.
pub(crate) fn apply(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    let hd = x.shape()[3];
    if !hd.is_multiple_of(2) {
        return Err(Error::arg(
            "head_dim",
            format!("must be even for rotary embeddings, got {hd}"),
        ));
    }
    let (x1, x2) = (x.narrow(3, 0, hd / 2)?, x.narrow(3, hd / 2, hd / 2)?);
    let rotated = Tensor::cat(&[&x2.neg()?, &x1], 3)?;
    x.mul(cos)?.add(&rotated.mul(sin)?)
}
