//! Multi-process runs, launched like PyTorch's (`torchrun`, Slurm's `srun`): how the
//! ranks find each other.
//!
//! * [`InitOpts`] says who this process is and where the ranks meet: from torchrun's
//!   or Slurm's variables ([`InitOpts::from_env`], PyTorch's `env://`), a shared file
//!   ([`InitOpts::file`], `file://`) or an address ([`InitOpts::tcp`], `tcp://`).
//! * [`rendezvous`] joins the run through a key-value [`Store`] — a [`TcpStore`]
//!   hosted by rank 0 on `MASTER_ADDR:MASTER_PORT` (c10d's `TCPStore`) or a
//!   [`FileStore`] — and checks that every rank came. The returned [`Rendezvous`]
//!   has a store-based [`Rendezvous::barrier`] and [`Rendezvous::share_from_root`],
//!   which carries rank 0's bytes (NCCL's unique id) to every rank.
//!
//! * [`init_process_group`] makes the [`ProcessGroup`]: the rendezvous, this rank's
//!   CUDA device (`Device::cuda(local_rank)`) and NCCL's communicator. Its collectives
//!   ([`ProcessGroup::all_reduce`], `broadcast`, `all_gather`, `reduce_scatter`, and
//!   the `_async` forms returning a [`Work`]) take contiguous f32/f64/f16/bf16/i64
//!   tensors on that device. They run on the emulated device (`KILN_CUDA_EMULATE=1`,
//!   `KILN_CUDA_EMULATE_DEVICES=N`) through an emulated NCCL between processes; on a
//!   real GPU, [`backend_info`] reports the NCCL found but the collectives are not
//!   wired to it yet (an `Err` says so).
//!
//! Every wait is bounded by the timeout (default 10 minutes, [`InitOpts::timeout`]):
//! a rank that does not come, or a store that stops answering, is an
//! [`crate::Error::Distributed`] naming this rank, the store's address and the ranks
//! waited for, never a hang.
//!
//! ```
//! use kiln::distributed::{rendezvous, InitOpts};
//! # fn main() -> kiln::Result<()> {
//! let dir = std::env::temp_dir().join(format!("kiln-doc-rdzv-{}", std::process::id()));
//! # let _ = std::fs::remove_file(&dir);
//! let rdzv = rendezvous(&InitOpts::file(&dir, 0, 1))?;   // a world of one
//! let id = rdzv.share_from_root("id", || Ok(vec![1, 2, 3]))?;
//! rdzv.barrier()?;
//! assert_eq!((rdzv.rank(), rdzv.world_size(), id), (0, 1, vec![1, 2, 3]));
//! # std::fs::remove_file(&dir).ok();
//! # Ok(())
//! # }
//! ```

mod opts;
mod process_group;
mod rendezvous;
mod store;
mod tcp_store;

pub use crate::backend::cuda::nccl::ReduceOp;
pub use opts::{InitMethod, InitOpts};
pub use process_group::{backend_info, init_process_group, ProcessGroup, Work};
pub use rendezvous::{rendezvous, Rendezvous};
pub use store::{FileStore, Store};
pub use tcp_store::TcpStore;
