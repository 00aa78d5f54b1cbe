//! Resampling modules: thin holders of their options around the functional ops.

use crate::nn::functional as F;
use crate::nn::{self, Forward};
use crate::{Result, Tensor};

/// `nn.PixelShuffle(upscale_factor)`: `(*, C·r², H, W) → (*, C, H·r, W·r)`
/// ([`F::pixel_shuffle`]).
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct PixelShuffle {
    #[module(skip)]
    upscale_factor: usize,
}

impl PixelShuffle {
    /// Moves channels into `upscale_factor`×`upscale_factor` blocks of pixels.
    pub fn new(upscale_factor: usize) -> PixelShuffle {
        PixelShuffle { upscale_factor }
    }

    /// PyTorch's `PixelShuffle.extra_repr`.
    fn extra_repr(&self) -> String {
        format!("upscale_factor={}", self.upscale_factor)
    }
}

impl Forward for PixelShuffle {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::pixel_shuffle(x, self.upscale_factor)
    }
}

/// `nn.PixelUnshuffle(downscale_factor)`: `(*, C, H·r, W·r) → (*, C·r², H, W)`
/// ([`F::pixel_unshuffle`]).
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct PixelUnshuffle {
    #[module(skip)]
    downscale_factor: usize,
}

impl PixelUnshuffle {
    /// Moves `downscale_factor`×`downscale_factor` blocks of pixels into channels.
    pub fn new(downscale_factor: usize) -> PixelUnshuffle {
        PixelUnshuffle { downscale_factor }
    }

    /// PyTorch's `PixelUnshuffle.extra_repr`.
    fn extra_repr(&self) -> String {
        format!("downscale_factor={}", self.downscale_factor)
    }
}

impl Forward for PixelUnshuffle {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::pixel_unshuffle(x, self.downscale_factor)
    }
}

/// `nn.Upsample(size | scale_factor, mode, align_corners)`: [`F::interpolate`] with
/// the options it holds.
#[derive(Debug, Clone, nn::Module)]
#[module(stateless, extra_repr)]
pub struct Upsample {
    #[module(skip)]
    opts: F::Interp,
}

impl Upsample {
    /// Resamples with `opts`: `Upsample::new(F::Interp::scale(2.0))`.
    pub fn new(opts: F::Interp) -> Upsample {
        Upsample { opts }
    }

    /// PyTorch's `Upsample.extra_repr`.
    fn extra_repr(&self) -> String {
        self.opts.repr()
    }
}

impl Forward for Upsample {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::interpolate(x, self.opts.clone())
    }
}
