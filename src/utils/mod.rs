//! Training utilities built on autograd (PyTorch's `torch.utils`): activation
//! checkpointing.

mod checkpoint;

pub use checkpoint::checkpoint;
pub(crate) use checkpoint::is_recomputing;
