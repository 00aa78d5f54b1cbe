//! `pixel_shuffle` and `pixel_unshuffle`: moving channels into space and back.
//!
//! PyTorch defines both as a reshape, a permute and a reshape (ATen's
//! `pixel_shuffle` in PixelShuffle.cpp), so they are composed here from those view ops
//! on every backend: no kernel of their own, and autograd differentiates the
//! composition (the gradient of each is the other).

use crate::{Error, Result, Tensor};

/// Rearranges `(*, C·r², H, W)` into `(*, C, H·r, W·r)`, like `F.pixel_shuffle`:
/// output `[.., c, h·r + i, w·r + j]` is input `[.., c·r² + i·r + j, h, w]`. Any number
/// of leading batch dimensions, any dtype.
///
/// Errors name `input` (fewer than 3 dimensions, channels not divisible by r²) or
/// `upscale_factor` (zero).
pub fn pixel_shuffle(input: &Tensor, upscale_factor: usize) -> Result<Tensor> {
    let r = upscale_factor;
    let (batch, [c, h, w]) = split_chw("pixel_shuffle", input)?;
    positive("pixel_shuffle", "upscale_factor", r)?;
    let rr = r.checked_mul(r).filter(|&rr| c % rr == 0).ok_or_else(|| {
        Error::arg(
            "input",
            format!(
                "pixel_shuffle needs channels divisible by upscale_factor² = {r}², got {c} \
                 (shape {:?})",
                input.shape()
            ),
        )
    })?;
    let b = batch.len();
    // (*, C, r, r, H, W) → (*, C, H, r, W, r) → (*, C, H·r, W·r).
    let split = [batch, &[c / rr, r, r, h, w]].concat();
    let mut perm: Vec<usize> = (0..b).collect();
    perm.extend([b, b + 3, b + 1, b + 4, b + 2]);
    let out = [
        batch,
        &[
            c / rr,
            times(h, r, "upscale_factor")?,
            times(w, r, "upscale_factor")?,
        ],
    ]
    .concat();
    input.reshape(&split)?.permute(&perm)?.reshape(&out)
}

/// Rearranges `(*, C, H·r, W·r)` into `(*, C·r², H, W)`, the inverse of
/// [`pixel_shuffle`], like `F.pixel_unshuffle`.
///
/// Errors name `input` (fewer than 3 dimensions, height or width not divisible by r)
/// or `downscale_factor` (zero).
pub fn pixel_unshuffle(input: &Tensor, downscale_factor: usize) -> Result<Tensor> {
    let r = downscale_factor;
    let (batch, [c, h, w]) = split_chw("pixel_unshuffle", input)?;
    positive("pixel_unshuffle", "downscale_factor", r)?;
    for (what, size) in [("height", h), ("width", w)] {
        if size % r != 0 {
            return Err(Error::arg(
                "input",
                format!(
                    "pixel_unshuffle needs the {what} divisible by downscale_factor {r}, got \
                     {size} (shape {:?})",
                    input.shape()
                ),
            ));
        }
    }
    let b = batch.len();
    // (*, C, H, r, W, r) → (*, C, r, r, H, W) → (*, C·r², H, W).
    let split = [batch, &[c, h / r, r, w / r, r]].concat();
    let mut perm: Vec<usize> = (0..b).collect();
    perm.extend([b, b + 2, b + 4, b + 1, b + 3]);
    let out = [
        batch,
        &[times(c, rr_of(r)?, "downscale_factor")?, h / r, w / r],
    ]
    .concat();
    input.reshape(&split)?.permute(&perm)?.reshape(&out)
}

/// The leading (batch) dimensions and the last three `(C, H, W)` of `input`.
fn split_chw<'a>(op: &str, input: &'a Tensor) -> Result<(&'a [usize], [usize; 3])> {
    let shape = input.shape();
    match shape.len().checked_sub(3) {
        Some(b) => Ok((&shape[..b], [shape[b], shape[b + 1], shape[b + 2]])),
        None => Err(Error::arg(
            "input",
            format!("{op} expects at least 3 dimensions (*, C, H, W), got shape {shape:?}"),
        )),
    }
}

/// `size · r`, or an error naming the factor `name` when it overflows (an empty
/// input with a huge factor).
fn times(size: usize, r: usize, name: &'static str) -> Result<usize> {
    size.checked_mul(r)
        .ok_or_else(|| Error::arg(name, format!("{r} makes a dimension of {size} overflow")))
}

/// `r²`, or an error naming `downscale_factor` when it overflows.
fn rr_of(r: usize) -> Result<usize> {
    times(r, r, "downscale_factor")
}

fn positive(op: &str, name: &'static str, r: usize) -> Result<()> {
    if r == 0 {
        return Err(Error::arg(name, format!("{op} needs {name} ≥ 1, got 0")));
    }
    Ok(())
}
