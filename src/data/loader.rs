//! [`DataLoader`]: mini-batches of a [`Dataset`], like `torch.utils.data.DataLoader`.
//!
//! An epoch's order is drawn when [`DataLoader::iter`] is called: indices in order, or
//! shuffled (Fisher–Yates on a Philox stream keyed by the loader's seed, at a counter
//! offset given by the epoch, so every epoch differs and a run is reproducible), or a
//! [`DistributedSampler`]'s share of them for this rank (each rank of a data-parallel
//! run loads its own part of every epoch). The
//! batches are collated by stacking each field of the samples along a new dimension 0
//! and, with [`DataLoader::device`], moved to the device. With `prefetch > 0` a
//! background thread prepares the next `prefetch` batches while the caller trains on
//! the current one; on CUDA it also uploads them, from pinned memory on the device's
//! copy stream (the tensor layer's `Uploader`), and the compute stream waits for the copy
//! on the device when the batch is handed out.

use super::collate::collate;
use super::sampler::{Order, EPOCH_STRIDE};
use super::{Dataset, DistributedSampler};
use crate::backend::cpu::alloc;
use crate::tensor::{PendingUpload, Uploader};
use crate::{Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

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
    sampler: Option<DistributedSampler>,
    /// The next epoch; the sampler's own counter when there is one.
    epoch: Arc<AtomicU64>,
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
            .field("sampler", &self.sampler)
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
            sampler: None,
            epoch: Arc::new(AtomicU64::new(0)),
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

    /// Loads only `sampler`'s share of each epoch (PyTorch's `sampler=`), in its order:
    /// the sampler shuffles, so [`DataLoader::shuffle`] must stay false. The loader and
    /// the sampler (and its clones) share the epoch counter.
    pub fn sampler(mut self, sampler: DistributedSampler) -> Self {
        self.epoch = sampler.epoch_counter();
        self.sampler = Some(sampler);
        self
    }

    /// Sets the epoch the next [`DataLoader::iter`] shuffles for (each call to `iter`
    /// then advances it by one), e.g. to resume a run at epoch `e`. With a
    /// [`DataLoader::sampler`] this is the sampler's `set_epoch`.
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The number of samples of an epoch: the dataset's, or the sampler's share.
    pub fn num_samples(&self) -> usize {
        self.sampler
            .as_ref()
            .map_or(self.dataset.len(), DistributedSampler::len)
    }

    /// Batches per epoch (0 for a `batch_size` of 0).
    pub fn len(&self) -> usize {
        let (n, b) = (self.num_samples(), self.batch_size);
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
    /// sample that failed to load. Err for a `batch_size` of 0, a device that cannot
    /// be used, or a sampler that does not fit (`shuffle(true)` too, or a sampler of
    /// another dataset length). Dropping the iterator stops its background thread.
    pub fn iter(&self) -> Result<DataLoaderIter> {
        if self.batch_size == 0 {
            return Err(Error::arg("batch_size", "must be at least 1"));
        }
        self.check_sampler()?;
        let uploader = Uploader::new(&self.device)?;
        let order = self.next_order()?;
        let (n, batches) = (self.num_samples(), self.len());
        let producer = Producer {
            dataset: self.dataset.clone(),
            order,
            end: if self.drop_last {
                n - n % self.batch_size
            } else {
                n
            },
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

impl DataLoader {
    /// Err unless the sampler (if any) is the only source of order and covers this
    /// dataset.
    fn check_sampler(&self) -> Result<()> {
        let Some(sampler) = &self.sampler else {
            return Ok(());
        };
        if self.shuffle {
            return Err(Error::arg(
                "sampler",
                "a sampler is mutually exclusive with shuffle(true): the sampler shuffles",
            ));
        }
        if sampler.dataset_len() != self.dataset.len() {
            return Err(Error::arg(
                "sampler",
                format!(
                    "the sampler was built for {} samples but the dataset has {}",
                    sampler.dataset_len(),
                    self.dataset.len()
                ),
            ));
        }
        Ok(())
    }

    /// The order of the next epoch, which advances the epoch counter.
    fn next_order(&self) -> Result<Order> {
        let epoch = self.epoch.fetch_add(1, Ordering::Relaxed);
        if let Some(sampler) = &self.sampler {
            return sampler.order_for(epoch);
        }
        if !self.shuffle {
            return Ok(Order::sequential());
        }
        let (seed, offset) = match self.seed {
            Some(seed) => (seed, epoch.wrapping_mul(EPOCH_STRIDE)),
            None => {
                let w = crate::rng::reserve(2).block(0);
                ((u64::from(w[1]) << 32) | u64::from(w[0]), 0)
            }
        };
        Order::shuffled(self.dataset.len(), seed, offset)
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
    order: Order,
    /// The positions of the epoch's batches: `0..end` (the last partial batch dropped
    /// or not).
    end: usize,
    batch_size: usize,
    next: usize,
    uploader: Uploader,
}

impl Producer {
    fn next_batch(&mut self) -> Option<Result<PendingUpload>> {
        let start = self.next;
        if start >= self.end {
            return None;
        }
        let end = self.end.min(start.saturating_add(self.batch_size));
        self.next = end;
        Some(self.prepare(start..end))
    }

    /// The batch of `range`, collated, its upload to the loader's device started.
    fn prepare(&mut self, range: std::ops::Range<usize>) -> Result<PendingUpload> {
        // Reserved fallibly: a batch_size beyond memory is an error, not an abort.
        let mut samples = alloc::buffer(range.len())?;
        for i in range {
            samples.push(self.dataset.get(self.order.get(i))?);
        }
        self.uploader.upload(collate(&samples)?)
    }
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
