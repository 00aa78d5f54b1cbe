//! The emulated device's NCCL: NCCL's communicator calls (unique id, init by rank,
//! all-reduce, broadcast, all-gather, reduce-scatter) between *processes*, through a
//! shared-memory file under `/dev/shm` named by the unique id.
//!
//! Layout of the file: a header of `HEADER_BYTES` with, per rank, its pid and two
//! generation counters (`arrived`, `done`), then one data slot per rank. Each call is
//! one generation `g`: a rank waits until every rank is `done` with `g - 1` (so no slot
//! is overwritten while read), writes its buffer into its slot, marks `arrived = g`,
//! waits until every rank arrived, reads the slots it needs, computes its result
//! itself (the same reduction order on every rank, so the results are bitwise equal),
//! and marks `done = g`. Every wait is bounded by the timeout and watches the waited
//! ranks' processes: a rank that died or never came is an `Err` naming it, never a
//! hang. Plain positioned reads and writes of one file: no `unsafe` mapping needed.

use super::ReduceOp;
use crate::{DType, Error, Result};
use half::{bf16, f16};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Size of NCCL's `ncclUniqueId`.
pub(crate) const UNIQUE_ID_BYTES: usize = 128;
/// Bytes of the per-rank headers: pid, arrived, done (u64 each).
const RANK_HEADER: u64 = 24;
/// The header region; ranks beyond `HEADER_BYTES / RANK_HEADER` are refused.
const HEADER_BYTES: u64 = 64 * 1024;

/// One rank's communicator (NCCL's `ncclComm_t`).
pub(crate) struct ShmComm {
    file: File,
    rank: usize,
    nranks: usize,
    timeout: Duration,
    /// The last generation this rank completed.
    generation: u64,
}

/// A fresh unique id (`ncclGetUniqueId`): random bytes from the process's hasher seed,
/// its pid and the time; its hex names the shared file.
pub(crate) fn unique_id() -> Vec<u8> {
    use std::hash::{BuildHasher, Hasher};
    let mut id = Vec::with_capacity(UNIQUE_ID_BYTES);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for word in 0..(UNIQUE_ID_BYTES / 8) {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(now);
        h.write_u32(std::process::id());
        h.write_usize(word);
        id.extend_from_slice(&h.finish().to_le_bytes());
    }
    id
}

/// The shared file of a unique id (only its first 16 bytes name it).
fn shm_path(id: &[u8]) -> PathBuf {
    let dir = PathBuf::from("/dev/shm");
    let dir = if dir.is_dir() {
        dir
    } else {
        std::env::temp_dir()
    };
    let hex: String = id.iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("kiln-nccl-{hex}"))
}

impl ShmComm {
    /// Joins the communicator of `id` as `rank` of `nranks` (`ncclCommInitRank`):
    /// returns once every rank has joined, or an `Err` naming those that did not
    /// within `timeout`.
    pub(crate) fn init_rank(
        id: &[u8],
        nranks: usize,
        rank: usize,
        timeout: Duration,
    ) -> Result<ShmComm> {
        if nranks == 0 || rank >= nranks || nranks as u64 * RANK_HEADER > HEADER_BYTES {
            return Err(Error::arg(
                "rank",
                format!("rank {rank} of {nranks} ranks (the emulated NCCL takes 1 to 2730)"),
            ));
        }
        let path = shm_path(id);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| dist_err(rank, format!("cannot open {}: {e}", path.display())))?;
        let mut comm = ShmComm {
            file,
            rank,
            nranks,
            timeout,
            generation: 0,
        };
        comm.write_header(0, u64::from(std::process::id()))?;
        if let Err(e) = comm.exchange(&[], "join the communicator") {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        if rank == 0 {
            // Every rank has the file open (it arrived): the name is no longer needed,
            // and unlinking it now leaves nothing behind however the ranks end.
            let _ = std::fs::remove_file(&path);
        }
        Ok(comm)
    }

    /// The number of ranks.
    pub(crate) fn nranks(&self) -> usize {
        self.nranks
    }

    /// Returns once every rank called it after the same calls (NCCL has no barrier
    /// call; PyTorch all-reduces one element).
    pub(crate) fn barrier(&mut self) -> Result<()> {
        self.exchange(&[], "barrier").map(drop)
    }

    /// `ncclAllReduce`: `recv` = the reduction of every rank's `send` (same length).
    pub(crate) fn all_reduce(
        &mut self,
        send: &[u8],
        recv: &mut [u8],
        dtype: DType,
        op: ReduceOp,
    ) -> Result<()> {
        let slots = self.exchange(send, "all_reduce")?;
        reduce(dtype, op, &slots, recv)
    }

    /// `ncclBroadcast` in place: `buf` = rank `root`'s `buf`.
    pub(crate) fn broadcast(&mut self, buf: &mut [u8], root: usize) -> Result<()> {
        let slots = self.exchange(buf, "broadcast")?;
        buf.copy_from_slice(&slots[root]);
        Ok(())
    }

    /// `ncclAllGather`: `recv` = every rank's `send`, in rank order.
    pub(crate) fn all_gather(&mut self, send: &[u8], recv: &mut [u8]) -> Result<()> {
        let slots = self.exchange(send, "all_gather")?;
        for (chunk, slot) in recv.chunks_exact_mut(send.len().max(1)).zip(&slots) {
            chunk.copy_from_slice(slot);
        }
        Ok(())
    }

    /// `ncclReduceScatter`: `recv` = the reduction of every rank's `send` chunk number
    /// `rank` (`send` holds `nranks` chunks of `recv.len()` bytes).
    pub(crate) fn reduce_scatter(
        &mut self,
        send: &[u8],
        recv: &mut [u8],
        dtype: DType,
        op: ReduceOp,
    ) -> Result<()> {
        let slots = self.exchange(send, "reduce_scatter")?;
        let range = self.rank * recv.len()..(self.rank + 1) * recv.len();
        let chunks: Vec<Vec<u8>> = slots.iter().map(|s| s[range.clone()].to_vec()).collect();
        reduce(dtype, op, &chunks, recv)
    }

    /// One generation: publishes `data` in this rank's slot and returns every rank's
    /// (all ranks pass buffers of one length).
    fn exchange(&mut self, data: &[u8], what: &str) -> Result<Vec<Vec<u8>>> {
        let g = self.generation + 1;
        self.wait_all(2, g - 1, what)?;
        let len = data.len() as u64;
        let slot = |rank: usize| HEADER_BYTES + rank as u64 * len;
        self.file
            .write_all_at(data, slot(self.rank))
            .map_err(|e| self.io_err(e))?;
        self.write_header(1, g)?;
        self.wait_all(1, g, what)?;
        let mut slots = vec![vec![0u8; data.len()]; self.nranks];
        for (rank, buf) in slots.iter_mut().enumerate() {
            self.file
                .read_exact_at(buf, slot(rank))
                .map_err(|e| self.io_err(e))?;
        }
        self.write_header(2, g)?;
        self.generation = g;
        Ok(slots)
    }

    /// Writes word `field` (0 pid, 1 arrived, 2 done) of this rank's header.
    fn write_header(&self, field: u64, value: u64) -> Result<()> {
        let at = self.rank as u64 * RANK_HEADER + field * 8;
        self.file
            .write_all_at(&value.to_le_bytes(), at)
            .map_err(|e| self.io_err(e))
    }

    /// Every rank's header words (zeros for a rank that has not written yet).
    fn headers(&self) -> Result<Vec<[u64; 3]>> {
        let mut bytes = vec![0u8; self.nranks * RANK_HEADER as usize];
        let mut got = 0;
        while got < bytes.len() {
            match self.file.read_at(&mut bytes[got..], got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(self.io_err(e)),
            }
        }
        let word = |c: &[u8], i: usize| u64::from_le_bytes(c[i * 8..i * 8 + 8].try_into().unwrap());
        Ok(bytes
            .chunks_exact(RANK_HEADER as usize)
            .map(|c| [word(c, 0), word(c, 1), word(c, 2)])
            .collect())
    }

    /// Waits until every rank's header word `field` is at least `g`; an `Err` naming
    /// the ranks whose process died, or that did not come within the timeout.
    fn wait_all(&self, field: usize, g: u64, what: &str) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        let mut polls = 0u32;
        loop {
            let headers = self.headers()?;
            let missing: Vec<usize> = (0..self.nranks)
                .filter(|&r| headers[r][field] < g)
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            let dead: Vec<String> = missing
                .iter()
                .filter(|&&r| headers[r][0] != 0 && !process_alive(headers[r][0]))
                .map(|&r| format!("rank {r} (pid {})", headers[r][0]))
                .collect();
            if !dead.is_empty() {
                return Err(dist_err(
                    self.rank,
                    format!("{} exited before `{what}` finished", dead.join(", ")),
                ));
            }
            if Instant::now() >= deadline {
                return Err(dist_err(
                    self.rank,
                    format!(
                        "ranks {missing:?} of {} did not reach `{what}` within {:?}",
                        self.nranks, self.timeout
                    ),
                ));
            }
            polls += 1;
            if polls < 200 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    fn io_err(&self, e: std::io::Error) -> Error {
        dist_err(self.rank, format!("emulated NCCL shared memory: {e}"))
    }
}

/// Whether process `pid` runs (exists and is not a zombie), from `/proc`.
fn process_alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name: `pid (comm) S ...`.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn dist_err(rank: usize, msg: String) -> Error {
    Error::Distributed { rank, msg }
}

/// `out` = the element-wise `op` of `parts` (each `out.len()` bytes of `dtype`), in
/// rank order; floats accumulate in f64 and round once, integers in i64.
fn reduce(dtype: DType, op: ReduceOp, parts: &[Vec<u8>], out: &mut [u8]) -> Result<()> {
    let n = parts.len() as f64;
    if dtype == DType::I64 {
        let combine = match op {
            ReduceOp::Sum => i64::wrapping_add,
            ReduceOp::Max => std::cmp::max,
            ReduceOp::Min => std::cmp::min,
            ReduceOp::Avg => return Err(Error::arg("op", "Avg of an integer (i64) tensor")),
        };
        return fold(
            8,
            parts,
            out,
            |b| i64::from_le_bytes(b.try_into().unwrap()),
            combine,
            |v, b| b.copy_from_slice(&v.to_le_bytes()),
        );
    }
    let combine = match op {
        ReduceOp::Sum | ReduceOp::Avg => |a: f64, b: f64| a + b,
        ReduceOp::Max => f64::max,
        ReduceOp::Min => f64::min,
    };
    let divisor = if op == ReduceOp::Avg { n } else { 1.0 };
    let size = dtype.size_in_bytes();
    let read = move |b: &[u8]| -> f64 {
        match dtype {
            DType::F32 => f64::from(f32::from_le_bytes(b.try_into().unwrap())),
            DType::F64 => f64::from_le_bytes(b.try_into().unwrap()),
            DType::F16 => f16::from_le_bytes(b.try_into().unwrap()).to_f64(),
            _ => bf16::from_le_bytes(b.try_into().unwrap()).to_f64(),
        }
    };
    let write = move |v: f64, b: &mut [u8]| {
        let v = v / divisor;
        match dtype {
            DType::F32 => b.copy_from_slice(&(v as f32).to_le_bytes()),
            DType::F64 => b.copy_from_slice(&v.to_le_bytes()),
            DType::F16 => b.copy_from_slice(&f16::from_f64(v).to_le_bytes()),
            _ => b.copy_from_slice(&bf16::from_f64(v).to_le_bytes()),
        }
    };
    match dtype {
        DType::F32 | DType::F64 | DType::F16 | DType::BF16 => {
            fold(size, parts, out, read, combine, write)
        }
        other => Err(Error::arg(
            "dtype",
            format!("{other:?} (collectives take f32, f64, f16, bf16, i64)"),
        )),
    }
}

/// Element `i` of `out` = `combine` over element `i` of every part.
fn fold<T: Copy>(
    size: usize,
    parts: &[Vec<u8>],
    out: &mut [u8],
    read: impl Fn(&[u8]) -> T,
    combine: impl Fn(T, T) -> T,
    write: impl Fn(T, &mut [u8]),
) -> Result<()> {
    for (i, dst) in out.chunks_exact_mut(size).enumerate() {
        let at = i * size..(i + 1) * size;
        let mut acc = read(&parts[0][at.clone()]);
        for part in &parts[1..] {
            acc = combine(acc, read(&part[at.clone()]));
        }
        write(acc, dst);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three ranks as threads of one process (the file protocol does not care).
    #[test]
    fn three_ranks_all_reduce_and_gather() {
        let id = unique_id();
        let handles: Vec<_> = (0..3)
            .map(|rank| {
                let id = id.clone();
                std::thread::spawn(move || {
                    let mut c = ShmComm::init_rank(&id, 3, rank, Duration::from_secs(20)).unwrap();
                    let send: Vec<u8> = [rank as f32 + 1.0, -(rank as f32)]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect();
                    let mut sum = vec![0u8; 8];
                    c.all_reduce(&send, &mut sum, DType::F32, ReduceOp::Sum)
                        .unwrap();
                    let mut all = vec![0u8; 24];
                    c.all_gather(&send, &mut all).unwrap();
                    (sum, all[8..16].to_vec())
                })
            })
            .collect();
        for h in handles {
            let (sum, second) = h.join().unwrap();
            let f = |b: &[u8]| f32::from_le_bytes(b.try_into().unwrap());
            assert_eq!((f(&sum[..4]), f(&sum[4..])), (6.0, -3.0));
            assert_eq!((f(&second[..4]), f(&second[4..])), (2.0, -1.0));
        }
    }

    #[test]
    fn a_missing_rank_is_named_after_the_timeout() {
        let err = ShmComm::init_rank(&unique_id(), 2, 0, Duration::from_millis(200))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("ranks [1] of 2 did not reach"), "{err}");
    }
}
