//! [`DistributedSampler`]: one rank's share of a dataset's indices, PyTorch's
//! `torch.utils.data.distributed.DistributedSampler`.
//!
//! Every rank computes the same epoch order (in order, or kiln's shuffle keyed by the
//! sampler's seed and the epoch, so no communication is needed), makes its length a
//! multiple of the number of replicas (padding by repeating the order from its start,
//! or dropping the tail with `drop_last`), and takes every `num_replicas`-th index from
//! position `rank` — PyTorch's `indices[rank:total_size:num_replicas]`.
//!
//! The shuffled order is not PyTorch's `torch.randperm` bit for bit (kiln shuffles
//! with its own Philox stream, as [`super::DataLoader`] does); with one replica it is
//! exactly the order of a shuffling `DataLoader` with the same seed at the same epoch.

use super::sampler::{Order, EPOCH_STRIDE};
use crate::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One rank's share of the indices of a dataset of `len` samples; see the module docs.
///
/// Defaults as PyTorch's: shuffled with seed 0, padded (no `drop_last`), epoch 0.
/// Clones share the epoch, so a clone given to [`super::DataLoader::sampler`] follows
/// [`DistributedSampler::set_epoch`] on the original (and each epoch the loader runs
/// advances it by one).
#[derive(Debug, Clone)]
pub struct DistributedSampler {
    len: usize,
    num_replicas: usize,
    rank: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    epoch: Arc<AtomicU64>,
}

impl DistributedSampler {
    /// This process's share in the group `pg` (PyTorch's default: the group's world
    /// size and rank) of a dataset of `len` samples.
    pub fn new(len: usize, pg: &crate::distributed::ProcessGroup) -> Self {
        Self::share(len, pg.world_size(), pg.rank())
    }

    /// The share of replica `rank` of `num_replicas` (PyTorch's explicit `num_replicas=`,
    /// `rank=`) of a dataset of `len` samples. Err naming `num_replicas` when it is 0,
    /// `rank` when it is not below `num_replicas`.
    pub fn with_replicas(len: usize, num_replicas: usize, rank: usize) -> Result<Self> {
        if num_replicas == 0 {
            return Err(Error::arg("num_replicas", "must be at least 1"));
        }
        if rank >= num_replicas {
            return Err(Error::arg(
                "rank",
                format!("rank {rank} is out of range for {num_replicas} replicas"),
            ));
        }
        Ok(Self::share(len, num_replicas, rank))
    }

    /// The sampler of a checked `rank < num_replicas`, with PyTorch's defaults.
    fn share(len: usize, num_replicas: usize, rank: usize) -> Self {
        DistributedSampler {
            len,
            num_replicas,
            rank,
            shuffle: true,
            seed: 0,
            drop_last: false,
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Shuffles every epoch (default true, as PyTorch's); the same order on every rank.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The shuffling seed, which must be the same on every rank (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Drops the tail of the order so that every rank gets `len / num_replicas`
    /// samples, instead of padding it to `len.div_ceil(num_replicas)` each by
    /// repeating the order's first samples.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Sets the epoch whose order comes next (call it with the same value on every rank
    /// before each epoch, as in PyTorch).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// The epoch whose order comes next.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// The number of replicas sharing the dataset.
    pub fn num_replicas(&self) -> usize {
        self.num_replicas
    }

    /// This replica's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of samples of the whole dataset.
    pub fn dataset_len(&self) -> usize {
        self.len
    }

    /// The number of samples of this rank per epoch (PyTorch's `num_samples`; the
    /// same on every rank).
    pub fn len(&self) -> usize {
        if self.drop_last {
            self.len / self.num_replicas
        } else {
            self.len.div_ceil(self.num_replicas)
        }
    }

    /// True when this rank gets no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This rank's dataset indices for the current epoch, in order (PyTorch's
    /// `list(iter(sampler))`). [`crate::Error::HostOutOfMemory`] when a shuffled order
    /// of the whole dataset does not fit in host memory.
    pub fn indices(&self) -> Result<Vec<usize>> {
        let order = self.order_for(self.epoch())?;
        Ok((0..self.len()).map(|i| order.get(i)).collect())
    }

    /// The shared epoch counter (for the [`super::DataLoader`] this sampler drives).
    pub(crate) fn epoch_counter(&self) -> Arc<AtomicU64> {
        self.epoch.clone()
    }

    /// This rank's order at `epoch`: position `i` is the whole order's position
    /// `rank + i·num_replicas`, which wraps round to the start when padding.
    pub(crate) fn order_for(&self, epoch: u64) -> Result<Order> {
        let whole = if self.shuffle {
            Order::shuffled(self.len, self.seed, epoch.wrapping_mul(EPOCH_STRIDE))?
        } else {
            Order::sequential()
        };
        let mut mine = crate::backend::cpu::alloc::buffer(self.len())?;
        mine.extend(
            (0..self.len()).map(|i| whole.get((self.rank + i * self.num_replicas) % self.len)),
        );
        Ok(Order::Listed(mine))
    }
}
