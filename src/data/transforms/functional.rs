//! Deterministic forms of the transforms, like `torchvision.transforms.functional`:
//! the same kernel the random transforms use, with offsets and flips given.

use crate::backend::image::CropFlipParams;
use crate::nn::functional::Size2d;
use crate::{DType, Error, Result, Tensor};

/// `(N, H, W)` of an `(N, C, H, W)` batch; Err naming `x` for another rank.
pub(crate) fn image_dims(x: &Tensor) -> Result<(usize, usize, usize)> {
    match *x.shape() {
        [n, _, h, w] => Ok((n, h, w)),
        _ => Err(Error::arg(
            "x",
            format!("a batch of images (N, C, H, W), got shape {:?}", x.shape()),
        )),
    }
}

/// Per sample `b`: pads image `b` of `x` with `padding` zeros on every side, crops
/// `size` at row `params[b, 0]`, column `params[b, 1]` of the padded image (positions
/// outside it read zeros, as torchvision's `crop` pads), and mirrors the crop left to
/// right where `params[b, 2] != 0`. `params` is an (N, 3) I64 tensor on `x`'s device.
/// One kernel on CUDA; the result carries no gradient.
pub fn crop_flip(
    x: &Tensor,
    params: &Tensor,
    size: impl Into<Size2d>,
    padding: usize,
) -> Result<Tensor> {
    let (n, h, w) = image_dims(x)?;
    let size = size.into();
    if params.shape() != [n, 3] || params.dtype() != DType::I64 {
        return Err(Error::arg(
            "params",
            format!(
                "an ({n}, 3) I64 tensor of (top, left, flip) rows, got {:?} {:?}",
                params.dtype(),
                params.shape()
            ),
        ));
    }
    if params.device() != x.device() {
        return Err(Error::DeviceMismatch {
            op: "crop_flip",
            lhs: x.device(),
            rhs: params.device(),
        });
    }
    let p = CropFlipParams {
        n,
        c: x.shape()[1],
        h,
        w,
        out_h: size.h,
        out_w: size.w,
        pad: padding,
    };
    let out = x
        .storage()
        .crop_flip(x.layout(), &params.storage(), params.layout(), &p)?;
    Ok(Tensor::from_storage(out, &[n, p.c, size.h, size.w]))
}

/// The region `top..top + height`, `left..left + width` of every image
/// (`torchvision.transforms.functional.crop`; outside the image reads zeros).
pub fn crop(x: &Tensor, top: i64, left: i64, height: usize, width: usize) -> Result<Tensor> {
    crop_flip(x, &same_params(x, [top, left, 0])?, (height, width), 0)
}

/// Every image mirrored left to right (`torchvision.transforms.functional.hflip`).
pub fn hflip(x: &Tensor) -> Result<Tensor> {
    let (_, h, w) = image_dims(x)?;
    crop_flip(x, &same_params(x, [0, 0, 1])?, (h, w), 0)
}

/// `(N, 3)` rows all equal to `row`, made on `x`'s device.
fn same_params(x: &Tensor, row: [i64; 3]) -> Result<Tensor> {
    let (n, _, _) = image_dims(x)?;
    let cols = row
        .iter()
        .map(|&v| Tensor::full(&[n, 1], v as f64, DType::I64, &x.device()))
        .collect::<Result<Vec<_>>>()?;
    Tensor::cat(&cols.iter().collect::<Vec<_>>(), 1)
}
