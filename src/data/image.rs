//! [`ImageDataset`]: single-channel images held as f32 on the host with I64 labels
//! (what the digits and MNIST loaders return), a [`Dataset`] of `(image, label)`.

use super::{check_index, shuffle, Dataset};
use crate::{Device, Error, Result, Tensor};

/// Images (N, 1, H, W) scaled to [0, 1] and their class labels. As a [`Dataset`],
/// sample `i` is `[image (1, H, W) f32, label () i64]`.
#[derive(Debug, Clone)]
pub struct ImageDataset {
    /// Pixels, image after image, row-major.
    pub images: Vec<f32>,
    /// Class index of each image.
    pub labels: Vec<i64>,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
}

impl ImageDataset {
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
    pub fn select(&self, indices: &[usize]) -> Result<ImageDataset> {
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
        Ok(ImageDataset {
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
    pub fn split_every(&self, k: usize) -> Result<(ImageDataset, ImageDataset)> {
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
            shuffle(&mut order, seed, 0);
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

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        ImageDataset::len(self)
    }

    fn get(&self, index: usize) -> Result<Vec<Tensor>> {
        check_index(index, self.len())?;
        let px = self.pixels_per_image()?;
        let cpu = Device::Cpu;
        let image = self.images[index * px..(index + 1) * px].to_vec();
        Ok(vec![
            Tensor::from_vec(image, &[1, self.height, self.width], &cpu)?,
            Tensor::scalar(self.labels[index], &cpu)?,
        ])
    }
}
