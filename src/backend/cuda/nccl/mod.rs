//! NCCL for the process group: the real library, loaded at run time
//! ([`library`]), and the emulated device's NCCL ([`emulated`]), which runs the same
//! communicator calls between processes through shared memory.
//!
//! So far the collectives run on the emulated device only: on a real GPU kiln probes
//! and reports NCCL ([`nccl`], `kiln::distributed::backend_info`) and
//! [`init_comm`] is an `Err` that says the GPU path is not built yet.

pub(crate) mod emulated;
mod library;

use super::runtime::emulation_requested;
use super::CudaStorage;
use crate::{Error, Result};
use std::time::Duration;

pub(crate) use emulated::ShmComm as Comm;
pub(crate) use library::nccl;

/// How a collective combines the ranks' values (`torch.distributed.ReduceOp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// The sum.
    Sum,
    /// The mean over the ranks (float tensors only, as NCCL's `ncclAvg`).
    Avg,
    /// The maximum.
    Max,
    /// The minimum.
    Min,
}

/// A fresh unique id for rank 0 to hand to the others (`ncclGetUniqueId`).
pub(crate) fn unique_id() -> Result<Vec<u8>> {
    gpu_path_missing()?;
    Ok(emulated::unique_id())
}

/// This rank's communicator of `nranks` (`ncclCommInitRank`), once every rank joined.
pub(crate) fn init_comm(id: &[u8], nranks: usize, rank: usize, timeout: Duration) -> Result<Comm> {
    gpu_path_missing()?;
    Comm::init_rank(id, nranks, rank, timeout)
}

/// `Ok` on the emulated device; on a real GPU, an `Err` naming the NCCL found (or why
/// none was) and saying that kiln's collectives do not drive it yet.
fn gpu_path_missing() -> Result<()> {
    if emulation_requested() {
        return Ok(());
    }
    let lib = nccl()?;
    Err(Error::CudaUnavailable {
        ordinal: 0,
        reason: format!(
            "NCCL {} ({}) is loaded, but kiln's collectives run only on the emulated \
             device (KILN_CUDA_EMULATE=1) so far",
            lib.version()?,
            lib.path()
        ),
    })
}

/// `numel` elements of `s` from element `offset`, as bytes on the host, once the
/// work queued on the device before has run.
pub(crate) fn read_bytes(s: &CudaStorage, offset: usize, numel: usize) -> Result<Vec<u8>> {
    let size = s.dtype().size_in_bytes();
    let mut out = vec![0u8; numel * size];
    if numel > 0 {
        let dev = s.cuda_device();
        dev.synchronize()?;
        dev.copy_dtoh(&mut out, s.buffer().ptr() + (offset * size) as u64)?;
    }
    Ok(out)
}

/// Writes `bytes` into `s` from element `offset`.
pub(crate) fn write_bytes(s: &CudaStorage, offset: usize, bytes: &[u8]) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let at = s.buffer().ptr() + (offset * s.dtype().size_in_bytes()) as u64;
    s.cuda_device().copy_htod(at, bytes)
}
