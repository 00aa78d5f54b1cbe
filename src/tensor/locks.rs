//! Taking the storage locks of an op with several operands without deadlocking.
//!
//! Every tensor handle points at an `Arc<RwLock<Storage>>`, and views share it. Two
//! rules keep ops with several operands deadlock-free whatever other threads do:
//!
//! * **Each storage is locked once.** `parking_lot`'s `RwLock` is fair: a second read
//!   lock on a storage waits behind a writer queued after the first, which waits for
//!   the first read lock — so `x.add(&x)` on one thread and `x.copy_(&y)` on another
//!   would hang. Operands that share a storage share one guard here.
//! * **Locks are taken in one global order** (by the storage's address), so two
//!   threads locking the same storages (`a.copy_(&b)` and `b.copy_(&a)`) cannot each
//!   hold one lock and wait for the other.
//!
//! A storage written by the op cannot also be read through another guard; callers
//! first give such a read operand its own copy ([`Tensor::apart_from`]).

use super::Tensor;
use crate::backend::Storage;
use crate::{Error, Result};
use parking_lot::{RwLockReadGuard, RwLockWriteGuard};

/// The locks of one op: its written storages (write locks) and its read operands
/// (one read lock per distinct storage), taken in address order.
pub(crate) struct StorageLocks<'a> {
    writes: Vec<RwLockWriteGuard<'a, Storage>>,
    reads: Vec<RwLockReadGuard<'a, Storage>>,
    /// For each read operand, the index of its guard in `reads`.
    read_slot: Vec<usize>,
}

/// A lock to take, before it is taken.
enum Want<'a> {
    Write(usize, &'a Tensor),
    Read(usize, &'a Tensor),
}

impl<'a> StorageLocks<'a> {
    /// Locks the storages of `writes` for writing and of `reads` for reading. Err
    /// when two written operands share a storage or a read operand shares a written
    /// one (a read of memory the op is writing would see a half-done update).
    pub(crate) fn new(
        op: &'static str,
        writes: &[&'a Tensor],
        reads: &[&'a Tensor],
    ) -> Result<Self> {
        for (i, w) in writes.iter().enumerate() {
            let clash = writes[i + 1..]
                .iter()
                .chain(reads)
                .any(|o| w.same_storage(o));
            if clash {
                return Err(Error::arg(
                    "self",
                    format!("{op}: an operand shares the storage that the op writes"),
                ));
            }
        }
        Ok(Self::acquire(writes, reads))
    }

    /// Locks the storages of `reads` for reading (an op that writes nothing but a
    /// fresh output).
    pub(crate) fn read(reads: &[&'a Tensor]) -> Self {
        Self::acquire(&[], reads)
    }

    /// Takes the locks in address order, each storage once; `writes` are distinct
    /// and share no storage with `reads`.
    fn acquire(writes: &[&'a Tensor], reads: &[&'a Tensor]) -> Self {
        let mut wants: Vec<Want<'a>> = writes
            .iter()
            .enumerate()
            .map(|(i, t)| Want::Write(i, t))
            .collect();
        let mut read_slot = vec![usize::MAX; reads.len()];
        let mut unique_reads = 0;
        for (i, t) in reads.iter().enumerate() {
            match reads[..i].iter().position(|o| o.same_storage(t)) {
                Some(first) => read_slot[i] = read_slot[first],
                None => {
                    read_slot[i] = unique_reads;
                    unique_reads += 1;
                    wants.push(Want::Read(i, t));
                }
            }
        }
        wants.sort_by_key(|w| match w {
            Want::Write(_, t) | Want::Read(_, t) => t.storage_addr(),
        });
        let mut writes_by_arg: Vec<Option<RwLockWriteGuard<'a, Storage>>> =
            (0..writes.len()).map(|_| None).collect();
        let mut reads_by_slot: Vec<Option<RwLockReadGuard<'a, Storage>>> =
            (0..unique_reads).map(|_| None).collect();
        for want in wants {
            match want {
                Want::Write(i, t) => writes_by_arg[i] = Some(t.storage_mut()),
                Want::Read(i, t) => reads_by_slot[read_slot[i]] = Some(t.storage()),
            }
        }
        StorageLocks {
            writes: writes_by_arg.into_iter().flatten().collect(),
            reads: reads_by_slot.into_iter().flatten().collect(),
            read_slot,
        }
    }

    /// The storage of read operand `i`.
    pub(crate) fn get(&self, i: usize) -> &Storage {
        &self.reads[self.read_slot[i]]
    }

    /// The written storages (in the order given) and the read ones (likewise).
    pub(crate) fn split(&mut self) -> (Vec<&mut Storage>, Vec<&Storage>) {
        let StorageLocks {
            writes,
            reads,
            read_slot,
        } = self;
        let w = writes.iter_mut().map(|g| &mut **g).collect();
        let r = read_slot.iter().map(|&s| &*reads[s]).collect();
        (w, r)
    }
}

impl Tensor {
    /// The address of the storage's lock: the global order in which locks are taken.
    pub(super) fn storage_addr(&self) -> usize {
        std::sync::Arc::as_ptr(&self.0.storage) as usize
    }

    /// This tensor, or a fresh contiguous copy of it when it shares a storage with
    /// one of `written`: an operand that an op may read while it writes `written`.
    pub(crate) fn apart_from(&self, written: &[&Tensor]) -> Result<Tensor> {
        if written.iter().any(|w| w.same_storage(self)) {
            self.contiguous_copy()
        } else {
            Ok(self.clone())
        }
    }
}
