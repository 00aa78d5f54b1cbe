//! [`DataLoader`]: mini-batches of a [`Dataset`], like `torch.utils.data.DataLoader`.
//!
//! An epoch's order is drawn when [`DataLoader::iter`] is called: indices in order, or
//! shuffled (Fisher–Yates on a Philox stream keyed by the loader's seed, at a counter
//! offset given by the epoch, so every epoch differs and a run is reproducible). The
//! batches are collated by stacking each field of the samples along a new dimension 0
//! and, with [`DataLoader::device`], moved to the device. With `prefetch > 0` a
//! background thread prepares the next `prefetch` batches while the caller trains on
//! the current one; on CUDA it also uploads them, from pinned memory on the device's
//! copy stream (the tensor layer's `Uploader`), and the compute stream waits for the copy
//! on the device when the batch is handed out.

use super::{shuffle, Dataset};
use crate::tensor::{PendingUpload, Uploader};
use crate::{Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Counter spacing of consecutive epochs' shuffles: orders of up to 2^42 samples never
/// share Philox counters.
const EPOCH_STRIDE: u64 = 1 << 40;

/// Batches of a dataset; see the module docs. Built with [`DataLoader::new`] and the
/// builder methods; each [`DataLoader::iter`] is one epoch.
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    seed: Option<u64>,
    prefetch: usize,
    device: Device,
    epoch: AtomicU64,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("len", &self.dataset.len())
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("drop_last", &self.drop_last)
            .field("seed", &self.seed)
            .field("prefetch", &self.prefetch)
            .field("device", &self.device)
            .finish()
    }
}

impl DataLoader {
    /// A loader of `batch_size` samples per batch over a clone of `dataset` (cheap for
    /// [`super::TensorDataset`], whose tensors share storage; wrap other types in an
    /// `Arc`). Defaults as PyTorch's: in order, last partial batch kept, on the CPU;
    /// and 2 batches prefetched on a background thread. A `batch_size` of 0 is an
    /// `Err` from [`DataLoader::iter`].
    pub fn new<D: Dataset + Clone + 'static>(dataset: &D, batch_size: usize) -> DataLoader {
        DataLoader {
            dataset: Arc::new(dataset.clone()),
            batch_size,
            shuffle: false,
            drop_last: false,
            seed: None,
            prefetch: 2,
            device: Device::Cpu,
            epoch: AtomicU64::new(0),
        }
    }

    /// Reshuffles the samples at every epoch (`shuffle=True`).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Drops the last batch when it would be smaller than `batch_size`.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The loader's own shuffling seed (PyTorch's `generator=`): epoch `e` of any
    /// loader with this seed has the same order. Without it, each epoch draws a seed
    /// from kiln's generator, so [`crate::manual_seed`] makes runs reproducible.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many batches a background thread prepares ahead of the one in use (default
    /// 2); 0 prepares each batch on the calling thread when it is asked for.
    pub fn prefetch(mut self, batches: usize) -> Self {
        self.prefetch = batches;
        self
    }

    /// Delivers the batches on `device`. On CUDA they are uploaded from pinned host
    /// memory on a copy stream that overlaps the compute stream.
    pub fn device(mut self, device: &Device) -> Self {
        self.device = *device;
        self
    }

    /// Sets the epoch the next [`DataLoader::iter`] shuffles for (each call to `iter`
    /// then advances it by one), e.g. to resume a run at epoch `e`.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The number of samples in the dataset.
    pub fn num_samples(&self) -> usize {
        self.dataset.len()
    }

    /// Batches per epoch (0 for a `batch_size` of 0).
    pub fn len(&self) -> usize {
        let (n, b) = (self.dataset.len(), self.batch_size);
        match (b, self.drop_last) {
            (0, _) => 0,
            (_, true) => n / b,
            (_, false) => n.div_ceil(b),
        }
    }

    /// True when an epoch has no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One epoch: the batches in this epoch's order, each `Ok(fields)` (each field
    /// stacked over the batch's samples, on the loader's device) or the `Err` of a
    /// sample that failed to load. Err for a `batch_size` of 0 or a device that cannot
    /// be used. Dropping the iterator stops its background thread.
    pub fn iter(&self) -> Result<DataLoaderIter> {
        if self.batch_size == 0 {
            return Err(Error::arg("batch_size", "must be at least 1"));
        }
        let uploader = Uploader::new(&self.device)?;
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        if self.shuffle {
            let (seed, offset) = match self.seed {
                Some(seed) => (seed, epoch.wrapping_mul(EPOCH_STRIDE)),
                None => {
                    let w = crate::rng::reserve(2).block(0);
                    ((u64::from(w[1]) << 32) | u64::from(w[0]), 0)
                }
            };
            shuffle(&mut order, seed, offset);
        }
        let batches = self.len();
        order.truncate(batches * self.batch_size);
        let producer = Producer {
            dataset: self.dataset.clone(),
            order,
            batch_size: self.batch_size,
            next: 0,
            uploader,
        };
        let source = if self.prefetch == 0 {
            Source::Inline(producer)
        } else {
            let (tx, rx) = sync_channel(self.prefetch);
            let handle = std::thread::Builder::new()
                .name("kiln-dataloader".into())
                .spawn(move || {
                    let mut producer = producer;
                    while let Some(batch) = producer.next_batch() {
                        if tx.send(batch).is_err() {
                            break; // the iterator was dropped
                        }
                    }
                })
                .map_err(|e| Error::arg("prefetch", format!("cannot start its thread: {e}")))?;
            Source::Thread {
                rx: Some(rx),
                handle: Some(handle),
            }
        };
        Ok(DataLoaderIter {
            source,
            remaining: batches,
        })
    }
}

/// One epoch of a [`DataLoader`]: yields `Result<Vec<Tensor>>` per batch.
pub struct DataLoaderIter {
    source: Source,
    remaining: usize,
}

enum Source {
    /// Batches made on the calling thread (`prefetch(0)`).
    Inline(Producer),
    /// Batches made by a background thread, `prefetch` ahead.
    Thread {
        rx: Option<Receiver<Result<PendingUpload>>>,
        handle: Option<JoinHandle<()>>,
    },
}

/// Makes the batches of one epoch, in order.
struct Producer {
    dataset: Arc<dyn Dataset>,
    order: Vec<usize>,
    batch_size: usize,
    next: usize,
    uploader: Uploader,
}

impl Producer {
    fn next_batch(&mut self) -> Option<Result<PendingUpload>> {
        let start = self.next;
        if start >= self.order.len() {
            return None;
        }
        let end = (start + self.batch_size).min(self.order.len());
        self.next = end;
        Some(self.prepare(start..end))
    }

    /// The batch of `range`, collated, its upload to the loader's device started.
    fn prepare(&mut self, range: std::ops::Range<usize>) -> Result<PendingUpload> {
        let samples = self.order[range]
            .iter()
            .map(|&i| self.dataset.get(i))
            .collect::<Result<Vec<_>>>()?;
        self.uploader.upload(collate(&samples)?)
    }
}

/// Stacks field `k` of every sample along a new dimension 0 (contiguous CPU tensors).
/// Err naming `dataset` when samples differ in their number of fields, a field's
/// shape or dtype, or are not on the CPU.
fn collate(samples: &[Vec<Tensor>]) -> Result<Vec<Tensor>> {
    let first = &samples[0];
    let _no_grad = crate::no_grad();
    (0..first.len())
        .map(|k| {
            let mut rows = Vec::with_capacity(samples.len());
            for (s, sample) in samples.iter().enumerate() {
                let t = sample
                    .get(k)
                    .ok_or_else(|| mismatch(s, "has fewer fields"))?;
                if t.shape() != first[k].shape() || t.dtype() != first[k].dtype() {
                    return Err(mismatch(
                        s,
                        &format!(
                            "field {k} is {:?} {:?}, the first sample's {:?} {:?}",
                            t.dtype(),
                            t.shape(),
                            first[k].dtype(),
                            first[k].shape()
                        ),
                    ));
                }
                if !t.device().is_cpu() {
                    return Err(mismatch(s, &format!("field {k} is on {}", t.device())));
                }
                rows.push(t.unsqueeze(0)?);
            }
            let refs: Vec<&Tensor> = rows.iter().collect();
            Tensor::cat(&refs, 0)?.contiguous()
        })
        .collect()
}

fn mismatch(sample: usize, what: &str) -> Error {
    Error::arg(
        "dataset",
        format!("sample {sample} of the batch {what}; every sample needs the same fields"),
    )
}

impl Iterator for DataLoaderIter {
    type Item = Result<Vec<Tensor>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let prepared = match &mut self.source {
            Source::Inline(producer) => producer.next_batch()?,
            Source::Thread { rx, .. } => match rx.as_ref()?.recv() {
                Ok(batch) => batch,
                Err(_) => {
                    self.remaining = 0;
                    return Some(Err(Error::arg(
                        "dataset",
                        "the DataLoader's thread stopped early (a Dataset::get panicked)",
                    )));
                }
            },
        };
        Some(prepared.and_then(PendingUpload::ready))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for DataLoaderIter {}

impl Drop for DataLoaderIter {
    /// Stops the background thread: closing the channel makes its next send fail,
    /// then the thread is joined (it finishes the batch it is making, if any).
    fn drop(&mut self) {
        if let Source::Thread { rx, handle } = &mut self.source {
            drop(rx.take());
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}
