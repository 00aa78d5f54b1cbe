//! Image transforms on (N, C, H, W) batches: the crop-with-padding and horizontal flip
//! of `data::transforms`, one gather with per-sample offsets.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/image.rs"]
mod cpu;
#[path = "cuda/ops/image.rs"]
mod cuda;

/// One crop-and-flip of a batch: input (n, c, h, w), output (n, c, out_h, out_w).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CropFlipParams {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Zero rows and columns added on every side of the input before cropping.
    pub pad: usize,
}

/// The image primitives of a backend.
pub(crate) trait ImageOps: Sized {
    /// `out[b, ch, i, j] = P[b, ch, top_b + i, left_b + j']` where `P` is the input
    /// with `pad` zeros on every side, `j' = out_w - 1 - j` when `flip_b != 0` (the crop
    /// mirrored) else `j`, and `(top_b, left_b, flip_b)` is row `b` of `params`, an
    /// (n, 3) I64 tensor whose offsets satisfy `top + out_h <= h + 2 pad` (columns
    /// likewise; the tensor layer checks explicit offsets). Same dtype, contiguous.
    fn crop_flip(
        &self,
        layout: &Layout,
        params: &Self,
        params_layout: &Layout,
        p: &CropFlipParams,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`ImageOps::crop_flip`].
    pub(crate) fn crop_flip(
        &self,
        layout: &Layout,
        params: &Storage,
        params_layout: &Layout,
        p: &CropFlipParams,
    ) -> Result<Storage> {
        dispatch!("crop_flip", (self, params), |(s, q)| s.crop_flip(
            layout,
            q,
            params_layout,
            p
        ))
    }
}
