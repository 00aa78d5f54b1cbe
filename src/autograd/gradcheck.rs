//! Finite-difference checking of gradients (PyTorch's `torch.autograd.gradcheck`).

use crate::{DType, Error, Result, Tensor};

/// Tolerances for [`gradcheck`].
#[derive(Debug, Clone, Copy)]
pub struct GradcheckOpts {
    /// Perturbation for the central difference.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for GradcheckOpts {
    fn default() -> Self {
        GradcheckOpts {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
        }
    }
}

/// Checks the gradients that autograd computes for `f` against central differences.
///
/// Every F64 input is differentiated (others, such as I64 targets, are passed as they
/// are). The output need not be a scalar: it is reduced with fixed pseudo-random
/// weights, so every output element's gradient path is checked. Returns an error
/// naming the first input and element whose gradients disagree (a NaN on either
/// side disagrees), and [`Error::InvalidArgument`] for `eps` not finite and > 0 or a
/// tolerance not finite and >= 0 (with `eps = 0` every difference is 0/0, which
/// would pass anything).
pub fn gradcheck(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    opts: GradcheckOpts,
) -> Result<()> {
    if !(opts.eps.is_finite() && opts.eps > 0.0) {
        return Err(Error::arg(
            "opts.eps",
            format!("must be a finite number > 0, got {}", opts.eps),
        ));
    }
    for (name, tol) in [("opts.atol", opts.atol), ("opts.rtol", opts.rtol)] {
        if !(tol.is_finite() && tol >= 0.0) {
            return Err(Error::arg(
                name,
                format!("must be a finite number >= 0, got {tol}"),
            ));
        }
    }
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            if t.dtype() == DType::F64 {
                t.detach().requires_grad()
            } else {
                t.clone()
            }
        })
        .collect();
    let out = f(&leaves)?;
    let weights: Vec<f64> = (0..out.numel())
        .map(|i| 0.5 + ((i * 7919) % 13) as f64 / 13.0)
        .collect();
    let weights = Tensor::from_vec(weights, out.shape(), &out.device())?.to_dtype(out.dtype())?;
    let loss_of = |out: &Tensor| {
        out.mul(&weights)?
            .sum_all()?
            .to_dtype(DType::F64)?
            .item::<f64>()
    };
    let loss = out.mul(&weights)?.sum_all()?;
    loss.backward()?;
    for (which, leaf) in leaves
        .iter()
        .enumerate()
        .filter(|(_, t)| t.dtype() == DType::F64)
    {
        let analytic = match leaf.grad() {
            Some(g) => g.to_vec::<f64>()?,
            None => vec![0.0; leaf.numel()],
        };
        let base = leaf.to_vec::<f64>()?;
        for (i, &a) in analytic.iter().enumerate() {
            let shifted = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += delta;
                let mut args = leaves.iter().map(|t| t.detach()).collect::<Vec<_>>();
                args[which] = Tensor::from_vec(v, leaf.shape(), &leaf.device())?;
                loss_of(&f(&args)?)
            };
            let numeric = (shifted(opts.eps)? - shifted(-opts.eps)?) / (2.0 * opts.eps);
            let agree = (a - numeric).abs() <= opts.atol + opts.rtol * numeric.abs();
            if !agree {
                return Err(Error::Gradcheck {
                    msg: format!("input {which}, element {i}: autograd gives {a}, finite differences give {numeric}"),
                });
            }
        }
    }
    Ok(())
}
