//! Training over several processes (PyTorch's `torch.nn.parallel`):
//! [`DistributedDataParallel`] wraps a model so that every rank of a
//! [`ProcessGroup`](crate::distributed::ProcessGroup) trains it on its own share of
//! the data with gradients averaged over the ranks during `backward`.
//!
//! The gradients are all-reduced in buckets from an autograd gradient-ready hook
//! (`reducer.rs`), so the communication of the last layers' gradients overlaps the
//! backward pass of the first layers. [`SyncBatchNorm`] normalises with the statistics
//! of every rank's batch.

mod ddp;
mod reducer;
mod sync_batch_norm;

pub use ddp::{DistributedDataParallel, NoSyncGuard};
pub use sync_batch_norm::SyncBatchNorm;
