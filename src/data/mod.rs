//! Datasets, batching and image augmentation, like `torch.utils.data` and
//! `torchvision.transforms`.
//!
//! * [`Dataset`] is the trait a source of samples implements: [`Dataset::len`] samples,
//!   each [`Dataset::get`] a `Vec<Tensor>` (e.g. image and label). [`TensorDataset`]
//!   wraps tensors that share dimension 0; the loaders ([`load_cifar10`],
//!   [`load_mnist`], [`load_digits`]) return datasets too.
//! * [`DataLoader`] batches a dataset: shuffled by its own seed (a new, reproducible
//!   order every epoch), collated by stacking, prepared `prefetch` batches ahead on a
//!   background thread and delivered on a device; on CUDA the upload goes from pinned
//!   host memory on a copy stream, so it overlaps the compute of the previous batch.
//! * [`transforms`] augments whole batches on their device (random crop with padding,
//!   horizontal flip, normalisation), with per-sample choices from kiln's generator.
//! * [`DistributedSampler`] gives each rank of a data-parallel run its share of every
//!   epoch (PyTorch's `DistributedSampler`), through [`DataLoader::sampler`].
//!
//! ```
//! use kiln::data::{DataLoader, Dataset, TensorDataset};
//! use kiln::{DType, Device, Tensor};
//! # fn main() -> kiln::Result<()> {
//! let images = Tensor::rand(&[10, 3, 4, 4], DType::F32, &Device::Cpu)?;
//! let labels = Tensor::from_vec((0..10i64).collect(), &[10], &Device::Cpu)?;
//! let train = TensorDataset::new(vec![images, labels])?;
//! let loader = DataLoader::new(&train, 4).shuffle(true).seed(0);
//! let mut seen = 0;
//! for batch in loader.iter()? {
//!     let batch = batch?;
//!     seen += batch[1].shape()[0];
//! }
//! assert_eq!(seen, train.len());
//! # Ok(())
//! # }
//! ```

// Counts, sizes and indices here come from users and files: every conversion between
// integer types is checked or provably in range (issue 28's class of wrapping casts).
#![deny(
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod cifar;
mod collate;
mod digits;
mod distributed_sampler;
mod image;
mod loader;
mod mnist;
mod sampler;
mod tensor_dataset;
pub mod transforms;

pub use cifar::{load_cifar10, CIFAR10_CLASSES};
pub use digits::load_digits;
pub use distributed_sampler::DistributedSampler;
pub use image::ImageDataset;
pub use loader::{DataLoader, DataLoaderIter};
pub use mnist::{load_mnist, write_idx_images, write_idx_labels};
pub use tensor_dataset::TensorDataset;

use crate::{Error, Result, Tensor};
use std::sync::Arc;

/// A source of samples, like `torch.utils.data.Dataset`: `len()` samples, each a
/// `Vec<Tensor>` of fields (image, label, ...) with the same shapes and dtypes for
/// every index, so that a [`DataLoader`] can stack them into batches.
///
/// `Send + Sync` because the loader reads it from its background thread. A type that
/// is not `Clone` can be shared with the loader as an `Arc<T>`, which is a dataset too.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// True when there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fields of sample `index` (CPU tensors; `index < len()`, else an `Err`
    /// naming `index`).
    fn get(&self, index: usize) -> Result<Vec<Tensor>>;
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }

    fn get(&self, index: usize) -> Result<Vec<Tensor>> {
        (**self).get(index)
    }
}

/// Err naming `index` unless it is below `len`.
pub(crate) fn check_index(index: usize, len: usize) -> Result<()> {
    if index < len {
        return Ok(());
    }
    Err(Error::arg(
        "index",
        format!("index {index} is out of range for a dataset of {len} samples"),
    ))
}

/// Fisher-Yates with words from the Philox stream (`seed`, `offset`).
pub(crate) fn shuffle(order: &mut [usize], seed: u64, offset: u64) {
    let stream = crate::rng::PhiloxStream { seed, offset };
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
