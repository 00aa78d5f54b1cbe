//! Image augmentation on whole batches, on the batch's device, like
//! `torchvision.transforms` applied sample by sample: [`RandomCrop`] (with zero
//! padding), [`RandomHorizontalFlip`], [`Normalize`], chained by [`Compose`].
//!
//! Inputs are `(N, C, H, W)` batches. The random choices (each sample's crop offsets
//! and flip) are drawn on the device from kiln's generator, so [`crate::manual_seed`]
//! makes them reproducible, and they are the same on every device for a seed. The
//! crop and the flip are one gather kernel with per-sample offsets
//! ([`functional::crop_flip`], which also takes explicit offsets). Results carry no
//! gradient: transforms prepare inputs.
//!
//! ```
//! use kiln::data::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform};
//! use kiln::{DType, Device, Tensor};
//! # fn main() -> kiln::Result<()> {
//! let aug = Compose::new()
//!     .add(RandomCrop::new(32, 4))
//!     .add(RandomHorizontalFlip::new(0.5))
//!     .add(Normalize::new(&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]));
//! let x = Tensor::rand(&[8, 3, 32, 32], DType::F32, &Device::Cpu)?;
//! assert_eq!(aug.apply(&x)?.shape(), &[8, 3, 32, 32]);
//! # Ok(())
//! # }
//! ```

pub mod functional;

use crate::nn::functional::Size2d;
use crate::{DType, Device, Error, Result, Tensor};
use parking_lot::Mutex;

/// A transform of `(N, C, H, W)` batches.
pub trait Transform: Send + Sync {
    /// The transformed batch, on `x`'s device.
    fn apply(&self, x: &Tensor) -> Result<Tensor>;
}

/// Transforms applied one after another (`transforms.Compose`).
#[derive(Default)]
pub struct Compose {
    steps: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// No transform yet: [`Compose::apply`] returns its input.
    pub fn new() -> Compose {
        Compose::default()
    }

    /// Appends `t`.
    #[allow(clippy::should_implement_trait)] // a builder step, not arithmetic (as Sequential::add)
    pub fn add<T: Transform + 'static>(mut self, t: T) -> Compose {
        self.steps.push(Box::new(t));
        self
    }

    /// Every transform, in the order added.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.steps.iter().try_fold(x.clone(), |x, t| t.apply(&x))
    }
}

impl Transform for Compose {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Compose::apply(self, x)
    }
}

/// A random `size` crop of each image after padding it with `padding` zeros on every
/// side (`transforms.RandomCrop(size, padding)`): each sample's offsets are uniform
/// over the positions where the crop fits.
#[derive(Debug, Clone, Copy)]
pub struct RandomCrop {
    size: Size2d,
    padding: usize,
}

impl RandomCrop {
    /// Crops of `size` (a `usize` for squares or `(h, w)`) from images padded by
    /// `padding`. A size larger than a padded image is an `Err` from `apply`.
    pub fn new(size: impl Into<Size2d>, padding: usize) -> RandomCrop {
        RandomCrop {
            size: size.into(),
            padding,
        }
    }

    /// The crop of every sample of `x` at `params`, an (N, 3) I64 tensor of
    /// `(top, left, flip)` rows in padded coordinates (what `apply` draws at random),
    /// on `x`'s device.
    pub fn apply_with(&self, x: &Tensor, params: &Tensor) -> Result<Tensor> {
        functional::crop_flip(x, params, self.size, self.padding)
    }

    /// Random offsets for `x`: `(top, left, 0)` rows, uniform in `0..=h + 2 padding -
    /// size` (columns likewise), drawn on `x`'s device.
    pub fn sample_params(&self, x: &Tensor) -> Result<Tensor> {
        let (n, h, w) = functional::image_dims(x)?;
        let fits = |len: usize, crop: usize, what: &str| {
            (len + 2 * self.padding).checked_sub(crop).ok_or_else(|| {
                Error::arg(
                    "size",
                    format!(
                        "a crop of {} is larger than the padded images ({what} {len} + 2 × \
                         padding {})",
                        self.size, self.padding
                    ),
                )
            })
        };
        let (max_top, max_left) = (
            fits(h, self.size.h, "height")?,
            fits(w, self.size.w, "width")?,
        );
        let u = Tensor::rand(&[n, 2], DType::F64, &x.device())?;
        let below = |col: usize, count: usize| {
            u.narrow(1, col, 1)?
                .mul_scalar(count as f64)?
                .to_dtype(DType::I64)
        };
        let zeros = Tensor::zeros(&[n, 1], DType::I64, &x.device())?;
        Tensor::cat(
            &[&below(0, max_top + 1)?, &below(1, max_left + 1)?, &zeros],
            1,
        )
    }
}

impl Transform for RandomCrop {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.apply_with(x, &self.sample_params(x)?)
    }
}

/// Mirrors each image left to right with probability `p`
/// (`transforms.RandomHorizontalFlip(p)`), independently per sample.
#[derive(Debug, Clone, Copy)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    /// Flips with probability `p`; a `p` outside [0, 1] is an `Err` from `apply`.
    pub fn new(p: f64) -> RandomHorizontalFlip {
        RandomHorizontalFlip { p }
    }

    /// `(0, 0, flip)` rows for `x`, flip = 1 with probability `p` (a uniform sample below
    /// `p`, as torchvision decides), drawn on `x`'s device.
    pub fn sample_params(&self, x: &Tensor) -> Result<Tensor> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(Error::arg(
                "p",
                format!("a probability in [0, 1], got {}", self.p),
            ));
        }
        let (n, _, _) = functional::image_dims(x)?;
        let flip = Tensor::rand(&[n, 1], DType::F64, &x.device())?
            .lt_scalar(self.p)?
            .to_dtype(DType::I64)?;
        let zeros = Tensor::zeros(&[n, 2], DType::I64, &x.device())?;
        Tensor::cat(&[&zeros, &flip], 1)
    }
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (_, h, w) = functional::image_dims(x)?;
        functional::crop_flip(x, &self.sample_params(x)?, (h, w), 0)
    }
}

/// `(x - mean[c]) / std[c]` per channel (`transforms.Normalize(mean, std)`), in `x`'s
/// float dtype.
#[derive(Debug)]
pub struct Normalize {
    mean: Vec<f64>,
    std: Vec<f64>,
    /// `mean` and `std` as (C, 1, 1) tensors, per device and dtype already used: made
    /// once, so batches do not upload them again.
    cache: Mutex<Vec<(Device, DType, Tensor, Tensor)>>,
}

impl Normalize {
    /// Per-channel `mean` and `std`. Lengths that differ from each other or from the
    /// batch's channels, or a `std` of 0, are an `Err` from `apply`.
    pub fn new(mean: &[f64], std: &[f64]) -> Normalize {
        Normalize {
            mean: mean.to_vec(),
            std: std.to_vec(),
            cache: Mutex::new(Vec::new()),
        }
    }

    /// The (C, 1, 1) constants on `device` in `dtype`.
    fn constants(&self, device: Device, dtype: DType) -> Result<(Tensor, Tensor)> {
        let mut cache = self.cache.lock();
        if let Some((_, _, m, s)) = cache.iter().find(|c| c.0 == device && c.1 == dtype) {
            return Ok((m.clone(), s.clone()));
        }
        let c = self.mean.len();
        let make = |v: &[f64]| {
            Tensor::from_vec(v.to_vec(), &[c, 1, 1], &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(&device)
        };
        let (m, s) = (make(&self.mean)?, make(&self.std)?);
        cache.push((device, dtype, m.clone(), s.clone()));
        Ok((m, s))
    }
}

impl Transform for Normalize {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        if !x.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "Normalize",
                dtype: x.dtype(),
            });
        }
        let channels = if x.rank() >= 3 {
            x.shape()[x.rank() - 3]
        } else {
            0
        };
        if self.mean.len() != channels || self.std.len() != channels {
            return Err(Error::arg(
                "mean",
                format!(
                    "mean and std need one value per channel: {} and {} values for input of \
                     shape {:?} ((..., C, H, W))",
                    self.mean.len(),
                    self.std.len(),
                    x.shape()
                ),
            ));
        }
        if let Some(bad) = self.std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
            return Err(Error::arg(
                "std",
                format!("every std must be finite and non-zero, got {bad}"),
            ));
        }
        let (m, s) = self.constants(x.device(), x.dtype())?;
        let _no_grad = crate::no_grad();
        x.detach().sub(&m)?.div(&s)
    }
}
