//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` / `clip_grad_value_`; and
//! [`fuse_conv_bn_eval`] (in `nn/fusion.rs`), as `torch.nn.utils.fusion`'s.
//!
//! Both work on the gradients where they live, with device tensor ops: the total
//! norm comes back as a 0-d tensor on the parameters' device and the scale is applied
//! without reading anything on the host (no synchronisation), unless
//! [`ClipGradNormOpts::error_if_nonfinite`] asks for a check of the total.
//! Parameters without a gradient are skipped. Each gradient is replaced by its
//! clipped value (a new tensor; `Tensor::grad` returns it).

pub use super::fusion::fuse_conv_bn_eval;

use crate::{DType, Device, Error, Result, Tensor};

/// Options of [`clip_grad_norm_opts`]: the norm's order and what to do with a
/// non-finite total.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipGradNormOpts {
    norm_type: f64,
    error_if_nonfinite: bool,
}

impl Default for ClipGradNormOpts {
    fn default() -> Self {
        ClipGradNormOpts::new()
    }
}

impl ClipGradNormOpts {
    /// The 2-norm, non-finite totals allowed (PyTorch's defaults).
    pub fn new() -> Self {
        ClipGradNormOpts {
            norm_type: 2.0,
            error_if_nonfinite: false,
        }
    }

    /// The order `p` of the norm: any finite `p > 0`, or `f64::INFINITY` for the
    /// largest absolute value.
    pub fn norm_type(mut self, p: f64) -> Self {
        self.norm_type = p;
        self
    }

    /// With `true`, a NaN or infinite total norm is an `Err` (naming `parameters`) and
    /// no gradient changes; this reads the total on the host, so it synchronises.
    /// With `false` (the default, as PyTorch), the gradients are scaled by the
    /// resulting NaN or 0 coefficient.
    pub fn error_if_nonfinite(mut self, on: bool) -> Self {
        self.error_if_nonfinite = on;
        self
    }
}

/// Scales the gradients of `params` so that their total 2-norm is at most
/// `max_norm`, and returns the total norm before clipping (0-d, on the parameters'
/// device). See [`clip_grad_norm_opts`].
pub fn clip_grad_norm<P: AsRef<Tensor>>(params: &[P], max_norm: f64) -> Result<Tensor> {
    clip_grad_norm_opts(params, max_norm, ClipGradNormOpts::new())
}

/// `torch.nn.utils.clip_grad_norm_`: the norm of the per-gradient norms (of order
/// `opts.norm_type`), then every gradient times `min(1, max_norm / (total + 1e-6))`.
/// Returns the total as a 0-d tensor on the first gradient's device, in its dtype
/// (f16/bf16 gradients are measured in f32, the total rounded back); 0 when no
/// parameter has a gradient. Err naming `max_norm` when it is negative or NaN,
/// `norm_type` when it is not > 0.
pub fn clip_grad_norm_opts<P: AsRef<Tensor>>(
    params: &[P],
    max_norm: f64,
    opts: ClipGradNormOpts,
) -> Result<Tensor> {
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(Error::arg(
            "max_norm",
            format!("must be >= 0, got {max_norm}"),
        ));
    }
    let p = opts.norm_type;
    if p.is_nan() || p <= 0.0 {
        return Err(Error::arg(
            "norm_type",
            format!("must be > 0 (or infinity), got {p}"),
        ));
    }
    let grads = grads_of(params);
    let _guard = crate::no_grad();
    let Some((first, _)) = grads.first() else {
        let dev = params.first().map_or(Device::Cpu, |t| t.as_ref().device());
        return Tensor::zeros(&[], DType::F32, &dev);
    };
    let (dtype, dev) = (first.dtype(), first.device());
    let work = compute_dtype(dtype);
    let mut norms = Vec::with_capacity(grads.len());
    for (g, _) in &grads {
        let n = vector_norm(&g.to_dtype(compute_dtype(g.dtype()))?, p)?;
        norms.push(n.to_dtype(work)?.to_device(&dev)?.reshape(&[1])?);
    }
    let norms: Vec<&Tensor> = norms.iter().collect();
    let total = vector_norm(&Tensor::cat(&norms, 0)?, p)?;
    if opts.error_if_nonfinite && !total.to_dtype(DType::F64)?.item::<f64>()?.is_finite() {
        return Err(Error::arg(
            "parameters",
            format!(
                "the total norm of order {p} of the gradients is non-finite, so it cannot be \
                 clipped (error_if_nonfinite is set)"
            ),
        ));
    }
    // A max_norm beyond the work dtype is infinite there, as PyTorch's scalar division
    // makes it (the coefficient then clamps to 1).
    let max_norm = if max_norm > work.float_max() {
        f64::INFINITY
    } else {
        max_norm
    };
    let coef = Tensor::full(&[], max_norm, work, &dev)?.div(&total.add_scalar(1e-6)?)?;
    let coef = coef.minimum(&Tensor::ones(&[], work, &dev)?)?;
    let mut clipped = Vec::with_capacity(grads.len());
    for (g, _) in &grads {
        let c = coef.to_device(&g.device())?.to_dtype(g.dtype())?;
        clipped.push(g.mul(&c)?);
    }
    for ((_, param), g) in grads.iter().zip(clipped) {
        param.set_grad(Some(g));
    }
    total.to_dtype(dtype)
}

/// `torch.nn.utils.clip_grad_value_`: clamps every gradient of `params` into
/// `[-clip_value, clip_value]`, in place of the old gradient. Err naming
/// `clip_value` when it is negative or NaN.
pub fn clip_grad_value<P: AsRef<Tensor>>(params: &[P], clip_value: f64) -> Result<()> {
    if clip_value.is_nan() || clip_value < 0.0 {
        return Err(Error::arg(
            "clip_value",
            format!("must be >= 0, got {clip_value}"),
        ));
    }
    let grads = grads_of(params);
    let _guard = crate::no_grad();
    let mut clipped = Vec::with_capacity(grads.len());
    for (g, _) in &grads {
        // PyTorch clamps: a clip_value the gradient's dtype cannot hold is an Err.
        let clip = crate::tensor::checked_scalar(g.dtype(), "clip_value", clip_value)?;
        let hi = Tensor::full(&[], clip, g.dtype(), &g.device())?;
        let lo = Tensor::full(&[], -clip, g.dtype(), &g.device())?;
        clipped.push(g.minimum(&hi)?.maximum(&lo)?);
    }
    for ((_, param), g) in grads.iter().zip(clipped) {
        param.set_grad(Some(g));
    }
    Ok(())
}

/// Each parameter's gradient with the parameter, for those that have one.
fn grads_of<P: AsRef<Tensor>>(params: &[P]) -> Vec<(Tensor, &Tensor)> {
    params
        .iter()
        .filter_map(|p| p.as_ref().grad().map(|g| (g, p.as_ref())))
        .collect()
}

/// Halves are measured in f32.
fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// The `p`-norm of all elements of `t` as a 0-d tensor (0 for no elements).
fn vector_norm(t: &Tensor, p: f64) -> Result<Tensor> {
    if t.numel() == 0 {
        return Tensor::zeros(&[], t.dtype(), &t.device());
    }
    let flat = t.reshape(&[t.numel()])?;
    if p == f64::INFINITY {
        flat.abs()?.max(0, false)
    } else if p == 2.0 {
        flat.mul(&flat)?.sum_all()?.sqrt()
    } else if p == 1.0 {
        flat.abs()?.sum_all()
    } else {
        flat.abs()?.powf(p)?.sum_all()?.powf(1.0 / p)
    }
}

impl AsRef<Tensor> for Tensor {
    fn as_ref(&self) -> &Tensor {
        self
    }
}
