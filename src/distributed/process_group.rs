//! [`ProcessGroup`]: the collectives of a run (PyTorch's `torch.distributed` with the
//! NCCL backend) on the tensors of this rank's CUDA device.
//!
//! Collectives run in the order they are called on a communication thread that owns
//! the communicator (NCCL's communication stream): every rank issues them in the same
//! order, and an `_async` call returns a [`Work`] at once. The emulated device's NCCL
//! copies the tensor's device memory through the emulator, exchanges it with the other
//! ranks' processes and writes the result back.

use super::rendezvous::{rendezvous, Rendezvous};
use super::InitOpts;
use crate::backend::cuda::nccl::{self, Comm, ReduceOp};
use crate::backend::cuda::CudaStorage;
use crate::backend::Storage;
use crate::{DType, Device, Error, Result, Tensor};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// A collective of the communicator thread, reporting its outcome.
type Job = Box<dyn FnOnce(&mut Comm) + Send>;

/// The ranks of a run and their collectives on this rank's device
/// (`Device::cuda(local_rank)`). Made by [`init_process_group`].
///
/// Cloning is cheap and gives another handle to the same group (as PyTorch's process
/// group objects are shared): `DistributedDataParallel` keeps one for the all-reduces
/// it starts during `backward`. The communication thread ends when the last handle
/// is dropped.
#[derive(Clone)]
pub struct ProcessGroup(Arc<Group>);

/// What the handles of a [`ProcessGroup`] share.
struct Group {
    rdzv: Rendezvous,
    device: Device,
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("rendezvous", &self.0.rdzv)
            .field("device", &self.0.device)
            .finish()
    }
}

/// A collective started by an `_async` call (PyTorch's `Work`).
#[must_use = "a collective's outcome is known only after `wait`"]
pub struct Work {
    done: mpsc::Receiver<Result<()>>,
    rank: usize,
}

impl Work {
    /// Blocks until the collective finished: its `Err` if it failed (a rank that died
    /// or did not come within the timeout is named).
    pub fn wait(self) -> Result<()> {
        self.done.recv().unwrap_or_else(|_| {
            Err(Error::Distributed {
                rank: self.rank,
                msg: "the communication thread ended before the collective ran".into(),
            })
        })
    }
}

/// Joins the run (see [`rendezvous`]), opens this rank's CUDA device
/// (`Device::cuda(local_rank)`) and NCCL's communicator, whose unique id rank 0 hands
/// to the others through the rendezvous store. An `Err` saying why when there is no
/// usable CUDA device or NCCL.
pub fn init_process_group(opts: InitOpts) -> Result<ProcessGroup> {
    let rdzv = rendezvous(&opts)?;
    let device = Device::cuda(rdzv.local_rank())?;
    let mine = nccl::unique_id()?;
    let id = rdzv.share_from_root("nccl-unique-id", || Ok(mine))?;
    let mut comm = nccl::init_comm(&id, rdzv.world_size(), rdzv.rank(), rdzv.timeout())?;
    let (jobs, queue) = mpsc::channel::<Job>();
    let worker = std::thread::Builder::new()
        .name(format!("kiln-nccl-rank{}", rdzv.rank()))
        .spawn(move || {
            for job in queue {
                job(&mut comm);
            }
        })
        .map_err(|e| Error::Distributed {
            rank: rdzv.rank(),
            msg: format!("cannot start the communication thread: {e}"),
        })?;
    Ok(ProcessGroup(Arc::new(Group {
        rdzv,
        device,
        jobs: Some(jobs),
        worker: Some(worker),
    })))
}

/// Which collective engine this process would use: the loaded NCCL's version and
/// path, or the emulated NCCL under `KILN_CUDA_EMULATE=1`; an `Err` saying why NCCL
/// cannot be loaded.
pub fn backend_info() -> Result<String> {
    if crate::backend::cuda::emulation_requested() {
        if !cfg!(feature = "cuda-emulator") {
            return Err(Error::CudaUnavailable {
                ordinal: 0,
                reason: "KILN_CUDA_EMULATE=1, but kiln was built without its \
                         `cuda-emulator` feature (no emulated device, no emulated NCCL)"
                    .into(),
            });
        }
        return Ok(
            "emulated NCCL (kiln's emulated device, shared memory between processes)".into(),
        );
    }
    let lib = nccl::nccl()?;
    Ok(format!("NCCL {} ({})", lib.version()?, lib.path()))
}

impl Drop for Group {
    fn drop(&mut self) {
        // Closing the queue ends the thread once the queued collectives ran.
        self.jobs = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl ProcessGroup {
    /// This process's rank, `0..world_size`.
    pub fn rank(&self) -> usize {
        self.0.rdzv.rank()
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.0.rdzv.world_size()
    }

    /// This process's rank on its machine: the ordinal of its CUDA device.
    pub fn local_rank(&self) -> usize {
        self.0.rdzv.local_rank()
    }

    /// The device the group's collectives run on.
    pub fn device(&self) -> Device {
        self.0.device
    }

    /// Returns once every rank reached its barrier after the collectives it issued
    /// before; an `Err` naming the ranks that did not within the timeout.
    pub fn barrier(&self) -> Result<()> {
        self.submit("nccl:barrier", |comm| comm.barrier())?.wait()
    }

    /// `t` = the reduction of every rank's `t`, in place (`dist.all_reduce`).
    pub fn all_reduce(&self, t: &Tensor, op: ReduceOp) -> Result<()> {
        self.all_reduce_async(t, op)?.wait()
    }

    /// [`ProcessGroup::all_reduce`] started on the communication thread; `t` holds
    /// the result once [`Work::wait`] returned.
    pub fn all_reduce_async(&self, t: &Tensor, op: ReduceOp) -> Result<Work> {
        self.check(t, "t")?;
        check_op(t.dtype(), op)?;
        let t = t.clone();
        self.submit("nccl:all_reduce", move |comm| {
            let send = read(&t)?;
            let mut recv = vec![0u8; send.len()];
            comm.all_reduce(&send, &mut recv, t.dtype(), op)?;
            write(&t, &recv)
        })
    }

    /// `t` = rank `root`'s `t` on every rank, in place (`dist.broadcast`).
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<()> {
        self.broadcast_async(t, root)?.wait()
    }

    /// [`ProcessGroup::broadcast`] started on the communication thread.
    pub fn broadcast_async(&self, t: &Tensor, root: usize) -> Result<Work> {
        self.check(t, "t")?;
        if root >= self.world_size() {
            return Err(Error::arg(
                "root",
                format!("rank {root} in a world of {}", self.world_size()),
            ));
        }
        let t = t.clone();
        self.submit("nccl:broadcast", move |comm| {
            let mut buf = read(&t)?;
            comm.broadcast(&mut buf, root)?;
            write(&t, &buf)
        })
    }

    /// Every rank's `t`, in rank order, as new tensors on this device
    /// (`dist.all_gather`).
    pub fn all_gather(&self, t: &Tensor) -> Result<Vec<Tensor>> {
        self.check(t, "t")?;
        let n = self.world_size();
        let parts = (0..n)
            .map(|_| Tensor::zeros(t.shape(), t.dtype(), &self.0.device))
            .collect::<Result<Vec<_>>>()?;
        let (t, outs) = (t.clone(), parts.clone());
        self.submit("nccl:all_gather", move |comm| {
            let send = read(&t)?;
            let mut recv = vec![0u8; send.len() * outs.len()];
            comm.all_gather(&send, &mut recv)?;
            for (out, bytes) in outs.iter().zip(recv.chunks(send.len().max(1))) {
                write(out, bytes)?;
            }
            Ok(())
        })?
        .wait()?;
        Ok(parts)
    }

    /// `out` = the reduction over the ranks of `input`'s block number `rank` along
    /// dim 0 (`dist.reduce_scatter_tensor`): `input` has `world_size` × `out`'s rows.
    pub fn reduce_scatter(&self, out: &Tensor, input: &Tensor, op: ReduceOp) -> Result<()> {
        self.reduce_scatter_async(out, input, op)?.wait()
    }

    /// [`ProcessGroup::reduce_scatter`] started on the communication thread.
    pub fn reduce_scatter_async(&self, out: &Tensor, input: &Tensor, op: ReduceOp) -> Result<Work> {
        self.check(out, "out")?;
        self.check(input, "input")?;
        check_op(input.dtype(), op)?;
        if out.dtype() != input.dtype() {
            return Err(Error::arg(
                "out",
                format!("dtype {:?}, input's is {:?}", out.dtype(), input.dtype()),
            ));
        }
        let (o, i) = (out.shape(), input.shape());
        let rows_ok = !o.is_empty() && i.first() == Some(&(o[0] * self.world_size()));
        if !rows_ok || o.get(1..) != i.get(1..) {
            return Err(Error::arg(
                "input",
                format!(
                    "shape {i:?}; reduce_scatter into {o:?} over {} ranks takes [{} × rows of out, ..out's other dims]",
                    self.world_size(),
                    self.world_size()
                ),
            ));
        }
        let (out, input) = (out.clone(), input.clone());
        self.submit("nccl:reduce_scatter", move |comm| {
            let send = read(&input)?;
            let mut recv = vec![0u8; send.len() / comm.nranks()];
            comm.reduce_scatter(&send, &mut recv, input.dtype(), op)?;
            write(&out, &recv)
        })
    }

    /// Queues `job`, the collective `name`, on the communication thread.
    fn submit(
        &self,
        name: &'static str,
        job: impl FnOnce(&mut Comm) -> Result<()> + Send + 'static,
    ) -> Result<Work> {
        #[cfg(feature = "cuda-emulator")]
        crate::backend::cuda::runtime::emulator::trace(name);
        #[cfg(not(feature = "cuda-emulator"))]
        let _ = name;
        let (tx, done) = mpsc::channel();
        let queued = self.0.jobs.as_ref().is_some_and(|jobs| {
            jobs.send(Box::new(move |comm: &mut Comm| {
                let _ = tx.send(job(comm));
            }))
            .is_ok()
        });
        if !queued {
            return Err(self.error("the communication thread has ended".into()));
        }
        Ok(Work {
            done,
            rank: self.rank(),
        })
    }

    /// `Ok` when `t` (argument `name`) is a contiguous tensor of a collective dtype on
    /// the group's device.
    fn check(&self, t: &Tensor, name: &'static str) -> Result<()> {
        if t.device() != self.0.device {
            let why = if t.device() == Device::Cpu {
                " (NCCL moves device memory: move the tensor with `.to_device(&pg.device())`)"
            } else {
                ""
            };
            return Err(Error::arg(
                name,
                format!(
                    "on {:?}; this group's collectives run on {:?}{why}",
                    t.device(),
                    self.0.device
                ),
            ));
        }
        if !t.is_contiguous() {
            return Err(Error::arg(
                name,
                "not contiguous (call `.contiguous()` first)",
            ));
        }
        if !matches!(
            t.dtype(),
            DType::F32 | DType::F64 | DType::F16 | DType::BF16 | DType::I64
        ) {
            return Err(Error::arg(
                name,
                format!(
                    "dtype {:?}; collectives take f32, f64, f16, bf16 or i64",
                    t.dtype()
                ),
            ));
        }
        Ok(())
    }

    fn error(&self, msg: String) -> Error {
        Error::Distributed {
            rank: self.rank(),
            msg,
        }
    }
}

/// `Err` for `Avg` of an integer tensor (NCCL's `ncclAvg` is for floats).
fn check_op(dtype: DType, op: ReduceOp) -> Result<()> {
    if op == ReduceOp::Avg && !dtype.is_float() {
        return Err(Error::arg(
            "op",
            format!("ReduceOp::Avg of a {dtype:?} tensor (use Sum and divide, or a float tensor)"),
        ));
    }
    Ok(())
}

/// `t`'s elements as bytes (`t` is contiguous on a CUDA device: checked when queued).
fn read(t: &Tensor) -> Result<Vec<u8>> {
    with_cuda(&t.storage(), |s| {
        nccl::read_bytes(s, t.storage_offset(), t.numel())
    })
}

/// Writes `bytes` over `t`'s elements.
fn write(t: &Tensor, bytes: &[u8]) -> Result<()> {
    with_cuda(&t.storage_mut(), |s| {
        nccl::write_bytes(s, t.storage_offset(), bytes)
    })
}

fn with_cuda<R>(storage: &Storage, f: impl FnOnce(&CudaStorage) -> Result<R>) -> Result<R> {
    match storage {
        Storage::Cuda(s) => f(s),
        Storage::Cpu(_) => Err(Error::arg("t", "a CPU tensor in a CUDA collective")),
    }
}
