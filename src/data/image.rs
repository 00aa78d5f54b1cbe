//! Small image-classification datasets and mini-batching.
//!
//! [`Dataset`] holds images as f32 in (N, 1, H, W) order with I64 labels; `digits`
//! reads the UCI 8×8 digits CSV shipped in `data/digits/`, `mnist` reads the standard
//! IDX files. [`Dataset::batches`] yields device tensors, shuffled by a seed.

mod digits;
mod mnist;

pub use digits::load_digits;
pub use mnist::{load_mnist, write_idx_images, write_idx_labels};

use crate::{Device, Error, Result, Tensor};

/// Images (N, 1, H, W) scaled to [0, 1] and their class labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Pixels, image after image, row-major.
    pub images: Vec<f32>,
    /// Class index of each image.
    pub labels: Vec<i64>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image; Err when the (public) fields disagree: `images` must hold
    /// `len() * height * width` values.
    fn pixels_per_image(&self) -> Result<usize> {
        let px = self.height.checked_mul(self.width);
        match px.and_then(|px| px.checked_mul(self.len())) {
            Some(total) if total == self.images.len() => Ok(px.unwrap_or(0)),
            _ => Err(Error::arg(
                "self",
                format!(
                    "the dataset holds {} pixel values, but {} labels of {}×{} images need \
                     labels × height × width",
                    self.images.len(),
                    self.len(),
                    self.height,
                    self.width
                ),
            )),
        }
    }

    /// The images at `indices`, as a new dataset. Err for an index `>= len()` (like
    /// PyTorch's `Subset` indexing) or a dataset whose fields disagree.
    pub fn select(&self, indices: &[usize]) -> Result<Dataset> {
        let px = self.pixels_per_image()?;
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(Error::arg(
                "indices",
                format!(
                    "index {bad} is out of range for a dataset of {} images",
                    self.len()
                ),
            ));
        }
        Ok(Dataset {
            images: indices
                .iter()
                .flat_map(|&i| self.images[i * px..(i + 1) * px].iter().copied())
                .collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            height: self.height,
            width: self.width,
        })
    }

    /// A split by position: every `k`-th image (starting at 0) goes to the second part.
    /// Deterministic and class-balanced enough for ordered data like the digits.
    pub fn split_every(&self, k: usize) -> Result<(Dataset, Dataset)> {
        if k < 2 {
            return Err(Error::arg("k", format!("must be at least 2, got {k}")));
        }
        let (test, train): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|i| i % k == 0);
        Ok((self.select(&train)?, self.select(&test)?))
    }

    /// Mini-batches `(images (B, 1, H, W) f32, labels (B,) i64)` on `device`, in an
    /// order shuffled by `seed` (`None`: in order). The last batch may be smaller.
    pub fn batches(
        &self,
        batch_size: usize,
        seed: Option<u64>,
        device: &Device,
    ) -> Result<Vec<(Tensor, Tensor)>> {
        if batch_size == 0 {
            return Err(Error::arg("batch_size", "must be at least 1"));
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        if let Some(seed) = seed {
            shuffle(&mut order, seed);
        }
        order
            .chunks(batch_size)
            .map(|idx| {
                let part = self.select(idx)?;
                let x = Tensor::from_vec(
                    part.images,
                    &[idx.len(), 1, self.height, self.width],
                    device,
                )?;
                let y = Tensor::from_vec(part.labels, &[idx.len()], device)?;
                Ok((x, y))
            })
            .collect()
    }
}

/// Fisher-Yates with words from a Philox stream keyed by `seed`.
fn shuffle(order: &mut [usize], seed: u64) {
    let stream = crate::rng::PhiloxStream { seed, offset: 0 };
    for i in (1..order.len()).rev() {
        let j = ((u64::from(stream.word(i)) * (i as u64 + 1)) >> 32) as usize;
        order.swap(i, j);
    }
}

/// An I/O error with the file's path.
fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}
