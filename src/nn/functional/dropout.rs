//! `dropout` with Philox randomness that the backward pass regenerates.
//!
//! The forward pass reserves `numel` words of kiln's Philox generator; the mask of
//! element `i` depends only on (seed, offset, i) (see `rng`), so the backward pass
//! applies the same backend primitive to the gradient instead of storing the mask,
//! and a CUDA kernel given the same stream produces the same mask.

use crate::autograd::record;
use crate::{rng, Error, Result, Tensor};

/// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`, like
/// `torch.nn.functional.dropout`. `training` has no default on purpose: pass the
/// mode of the calling module (`self.is_training()`), so evaluation cannot silently
/// keep dropping.
///
/// `p == 0` or `training == false` return `input` itself; `p == 1` gives zeros.
/// Errors: `p` outside [0, 1] (or NaN), and non-float inputs.
pub fn dropout(input: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::arg(
            "p",
            format!("dropout probability must be in [0, 1], got {p}"),
        ));
    }
    input.check_float("dropout")?;
    if !training || p == 0.0 || input.numel() == 0 {
        return Ok(input.clone());
    }
    if p == 1.0 {
        return input.mul_scalar(0.0);
    }
    let stream = rng::reserve(input.numel());
    let out = input.storage().dropout(input.layout(), stream, p)?;
    let out = Tensor::from_storage(out, input.shape());
    Ok(record(out, "dropout", &[input], move |_, g| {
        let gx = g.storage().dropout(g.layout(), stream, p)?;
        Ok(vec![Some(Tensor::from_storage(gx, g.shape()))])
    }))
}
