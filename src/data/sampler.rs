//! The order of one epoch's samples, PyTorch's `SequentialSampler` and
//! `RandomSampler`: in order, computed index by index (no list, whatever the dataset's
//! length), or a listed order (a shuffled permutation, a distributed rank's share),
//! which needs the list and reserves it fallibly.

use super::shuffle;
use crate::backend::cpu::alloc;
use crate::Result;

/// Counter spacing of consecutive epochs' shuffles: orders of up to 2^42 samples never
/// share Philox counters.
pub(crate) const EPOCH_STRIDE: u64 = 1 << 40;

/// The sample index of each position of an epoch.
#[derive(Debug)]
pub(crate) enum Order {
    /// Position `i` is sample `i`: nothing is stored, so a dataset of 2^40 samples
    /// costs no more than one of 10.
    Sequential,
    /// The sample of each position, listed (a permutation of `0..len`, or a
    /// [`super::DistributedSampler`]'s share).
    Listed(Vec<usize>),
}

impl Order {
    /// The in-order epoch.
    pub(crate) fn sequential() -> Order {
        Order::Sequential
    }

    /// A permutation of `0..len` by Fisher–Yates on the Philox stream (`seed`,
    /// `offset`). [`crate::Error::HostOutOfMemory`] when the host cannot hold the
    /// `len` indices (a dataset whose `len()` claims more samples than memory can
    /// list), instead of an abort.
    pub(crate) fn shuffled(len: usize, seed: u64, offset: u64) -> Result<Order> {
        let mut order = alloc::buffer(len)?;
        order.extend(0..len);
        shuffle(&mut order, seed, offset);
        Ok(Order::Listed(order))
    }

    /// The sample at position `i` (`i` below the epoch's length).
    pub(crate) fn get(&self, i: usize) -> usize {
        match self {
            Order::Sequential => i,
            Order::Listed(order) => order[i],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn a_sequential_order_stores_nothing() {
        let order = Order::sequential();
        assert_eq!(order.get(1 << 50), 1 << 50);
    }

    #[test]
    fn a_shuffle_too_large_for_memory_is_an_error() {
        assert!(matches!(
            Order::shuffled(1 << 60, 0, 0),
            Err(Error::HostOutOfMemory { .. })
        ));
        let Order::Listed(mut order) = Order::shuffled(100, 3, 0).unwrap() else {
            panic!("expected a shuffled order");
        };
        assert_ne!(order, (0..100).collect::<Vec<_>>());
        order.sort_unstable();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }
}
