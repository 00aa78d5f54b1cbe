//! The launch seam: every kernel launch and every host↔device copy of the CUDA backend
//! goes through [`Executor`], named by a [`KernelId`] with typed [`KernelArg`]s. The
//! real GPU implements it with the driver API (`driver.rs`); an emulated device can
//! implement it on the CPU and run the same launch code.
//!
//! Strided operands reach kernels as `Dims` + `Strides` (see `kernels/common.cuh`):
//! [`plan`] merges the dimensions every operand walks contiguously and orders them
//! innermost first.

use super::allocator::{EventId, StreamId};
use super::kernels::KernelId;
use crate::{Error, Result};

/// Most dimensions a kernel indexes after merging (`KILN_MAX_DIMS` in common.cuh).
pub const MAX_DIMS: usize = super::kernels::defines::KILN_MAX_DIMS;

/// One kernel argument, typed as the kernel's C signature declares it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KernelArg {
    /// A device pointer (`T *`).
    Ptr(u64),
    /// `int`.
    I32(i32),
    /// `uint32_t`.
    U32(u32),
    /// `uint64_t`.
    U64(u64),
    /// `int64_t`.
    I64(i64),
    /// `double`.
    F64(f64),
    /// `struct Dims` (sizes, innermost first).
    Dims([u64; MAX_DIMS]),
    /// `struct Strides` (element steps, innermost first).
    Strides([i64; MAX_DIMS]),
}

/// The C type of a kernel parameter, as build.rs reads it from the kernel's signature
/// (`KernelId::params`): each takes the [`KernelArg`] variant of the same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `T *`.
    Ptr,
    /// `int`.
    I32,
    /// `uint32_t`.
    U32,
    /// `uint64_t`.
    U64,
    /// `int64_t`.
    I64,
    /// `double`.
    F64,
    /// `struct Dims`.
    Dims,
    /// `struct Strides`.
    Strides,
}

impl KernelArg {
    /// The parameter kind this argument passes.
    pub fn kind(&self) -> ParamKind {
        match self {
            KernelArg::Ptr(_) => ParamKind::Ptr,
            KernelArg::I32(_) => ParamKind::I32,
            KernelArg::U32(_) => ParamKind::U32,
            KernelArg::U64(_) => ParamKind::U64,
            KernelArg::I64(_) => ParamKind::I64,
            KernelArg::F64(_) => ParamKind::F64,
            KernelArg::Dims(_) => ParamKind::Dims,
            KernelArg::Strides(_) => ParamKind::Strides,
        }
    }

    /// The address of the argument's value, laid out as the kernel's C type (what
    /// `cuLaunchKernel` and the emulator's entry points read).
    pub fn as_ptr(&self) -> *const std::ffi::c_void {
        match self {
            KernelArg::Ptr(v) | KernelArg::U64(v) => v as *const u64 as *const _,
            KernelArg::I32(v) => v as *const i32 as *const _,
            KernelArg::U32(v) => v as *const u32 as *const _,
            KernelArg::I64(v) => v as *const i64 as *const _,
            KernelArg::F64(v) => v as *const f64 as *const _,
            KernelArg::Dims(v) => v.as_ptr() as *const _,
            KernelArg::Strides(v) => v.as_ptr() as *const _,
        }
    }
}

/// Err unless `args` match the kernel's signature one for one: a mismatch would make
/// the kernel read garbage (the driver cannot tell), so it is refused before launch.
pub fn check_args(kernel: KernelId, args: &[KernelArg]) -> Result<()> {
    let want = kernel.params();
    let matches = args.len() == want.len() && args.iter().zip(want).all(|(a, k)| a.kind() == *k);
    if matches {
        return Ok(()); // the launch path: no allocation
    }
    let got: Vec<ParamKind> = args.iter().map(KernelArg::kind).collect();
    Err(Error::CudaDriver {
        op: "kernel launch",
        msg: format!(
            "{} takes {} parameters {want:?}, but the launch passes {} {got:?}",
            kernel.name(),
            want.len(),
            got.len()
        ),
    })
}

/// Grid and block shape of a launch, and its dynamic shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LaunchConfig {
    /// Blocks in x, y, z.
    pub grid: (u32, u32, u32),
    /// Threads per block in x, y, z.
    pub block: (u32, u32, u32),
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
}

/// Threads per block of the elementwise-style kernels.
pub(crate) const THREADS: u32 = 256;

impl LaunchConfig {
    /// The launch of every grid-stride elementwise-style kernel over `items` items:
    /// [`THREADS`] per block, at most 16 blocks per multiprocessor (enough resident
    /// warps to hide memory latency; the kernels loop over the rest).
    pub(crate) fn elementwise(items: u64, sm_count: u32) -> Self {
        Self::grid_stride(items, THREADS, sm_count * 16)
    }

    /// A 1-D grid-stride launch over `n` items: `threads` per block, at most
    /// `max_blocks` blocks (the kernels loop over the rest).
    pub fn grid_stride(n: u64, threads: u32, max_blocks: u32) -> Self {
        let blocks = n
            .div_ceil(u64::from(threads))
            .clamp(1, u64::from(max_blocks.max(1)));
        LaunchConfig {
            grid: (blocks as u32, 1, 1),
            block: (threads, 1, 1),
            shared_bytes: 0,
        }
    }
}

/// What the CUDA backend needs from a device besides memory (which comes through the
/// allocator's `RawAllocator`): kernel launches and copies, all on one stream.
pub trait Executor: Send + Sync {
    /// Queues `kernel` on the stream.
    fn launch(&self, kernel: KernelId, cfg: LaunchConfig, args: &[KernelArg]) -> Result<()>;
    /// Copies host bytes to device address `dst` (queued; `src` may be reused on return).
    fn copy_htod(&self, dst: u64, src: &[u8]) -> Result<()>;
    /// Copies device bytes at `src` to the host, waiting for queued work first.
    fn copy_dtoh(&self, dst: &mut [u8], src: u64) -> Result<()>;
    /// Queues a device-to-device copy of `bytes` bytes.
    fn copy_dtod(&self, dst: u64, src: u64, bytes: usize) -> Result<()>;
    /// Waits until all queued work is done.
    fn synchronize(&self) -> Result<()>;
    /// The stream all work is queued on (the allocator's reuse key).
    fn stream(&self) -> StreamId;
    /// Number of multiprocessors (sizes grids).
    fn sm_count(&self) -> u32;
    /// The compute capability, 10 * major + minor (86 for 8.6): which kernels the
    /// device has (tensor cores from 80 on).
    fn compute_capability(&self) -> u32;
    /// The device's name.
    fn name(&self) -> String;
    /// Records a timing event on the stream, after the work queued so far.
    fn record_timing_event(&self) -> Result<TimingEvent>;
    /// Milliseconds from `start` to `end` (both recorded here), waiting for `end`.
    fn elapsed_ms(&self, start: TimingEvent, end: TimingEvent) -> Result<f64>;
    /// Releases a timing event.
    fn destroy_timing_event(&self, event: TimingEvent);
    /// Makes the device's context current on this thread and returns its stream (a
    /// `CUstream`) for a vendor library (cuBLASLt) to queue work on; `None` where the
    /// device has no driver stream (the emulated device).
    fn library_stream(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    // Uploads that overlap compute (the DataLoader's): pinned host memory, a second
    // stream, and events that order the compute stream after the copies.

    /// The stream host-to-device uploads run on beside the compute stream
    /// ([`Executor::stream`]), created on first use.
    fn copy_stream(&self) -> Result<StreamId>;
    /// `bytes` (> 0) of page-locked host memory, the source an asynchronous copy needs;
    /// its address.
    fn alloc_pinned(&self, bytes: usize) -> Result<u64>;
    /// Frees memory from [`Executor::alloc_pinned`] once no queued copy reads it.
    fn free_pinned(&self, ptr: u64, bytes: usize);
    /// Queues a copy of `bytes` bytes from pinned host memory at `src` to device
    /// address `dst` on `stream`, and returns at once: `src` must stay untouched until
    /// an event recorded after it has completed.
    fn copy_htod_async(&self, dst: u64, src: u64, bytes: usize, stream: StreamId) -> Result<()>;
    /// Records an event on `stream`, after the work queued on it so far.
    fn record_event(&self, stream: StreamId) -> Result<EventId>;
    /// Makes the device run the work queued on `stream` from now on only after `event`
    /// has completed; the host does not wait.
    fn stream_wait_event(&self, stream: StreamId, event: EventId) -> Result<()>;
    /// Blocks the calling thread until `event` has completed.
    fn event_synchronize(&self, event: EventId) -> Result<()>;
    /// Releases an event from [`Executor::record_event`].
    fn destroy_event(&self, event: EventId);
}

/// A point on the device's stream, for timing work on the device
/// (`kiln::cuda::time_ms`): a `CUevent` with timing enabled on a GPU, the wall clock
/// on the emulated device (whose work is done when a launch returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingEvent(pub u64);

/// `N` strided operands of one shape, prepared for a kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct StridedPlan<const N: usize> {
    /// Number of merged dimensions (at least 1).
    pub rank: usize,
    /// Merged sizes, innermost first; unused entries are 1.
    pub dims: [u64; MAX_DIMS],
    /// Each operand's merged strides, innermost first.
    pub strides: [[i64; MAX_DIMS]; N],
}

impl<const N: usize> StridedPlan<N> {
    /// The `rank`, `dims` kernel arguments.
    pub fn shape_args(&self) -> [KernelArg; 2] {
        [KernelArg::I32(self.rank as i32), KernelArg::Dims(self.dims)]
    }

    /// Operand `k`'s strides as a kernel argument.
    pub fn strides_arg(&self, k: usize) -> KernelArg {
        KernelArg::Strides(self.strides[k])
    }
}

/// Merges the dimensions of `shape` that every operand steps through contiguously
/// (dimension `d` joins the run to its right when its stride is the run's stride times
/// the run's size, for every operand) and drops size-1 dimensions.
pub fn plan<const N: usize>(
    op: &'static str,
    shape: &[usize],
    strides: [&[usize]; N],
) -> Result<StridedPlan<N>> {
    let mut runs: Vec<(usize, [usize; N])> = Vec::new();
    for d in (0..shape.len()).rev() {
        if shape[d] == 1 {
            continue;
        }
        let st: [usize; N] = std::array::from_fn(|k| strides[k][d]);
        match runs.last_mut() {
            Some((size, run)) if (0..N).all(|k| st[k] == run[k] * *size) => *size *= shape[d],
            _ => runs.push((shape[d], st)),
        }
    }
    if runs.is_empty() {
        runs.push((1, [0; N]));
    }
    if runs.len() > MAX_DIMS {
        return Err(Error::shape(
            op,
            format!(
                "CUDA kernels index at most {MAX_DIMS} dimensions that cannot be merged; \
                 this view of shape {shape:?} needs {} (call .contiguous() first)",
                runs.len()
            ),
        ));
    }
    let mut dims = [1u64; MAX_DIMS];
    let mut out = [[0i64; MAX_DIMS]; N];
    for (i, (size, st)) in runs.iter().enumerate() {
        dims[i] = *size as u64;
        for k in 0..N {
            out[k][i] = st[k] as i64;
        }
    }
    Ok(StridedPlan {
        rank: runs.len(),
        dims,
        strides: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::Layout;

    #[test]
    fn contiguous_operands_merge_to_rank_one() {
        let l = Layout::contiguous(&[4, 3, 5]);
        let p = plan("t", &l.shape, [&l.strides, &l.strides]).unwrap();
        assert_eq!(p.rank, 1);
        assert_eq!(p.dims[0], 60);
        assert_eq!(p.strides, [[1, 0, 0, 0, 0, 0, 0, 0]; 2]);
    }

    #[test]
    fn broadcast_and_transpose_keep_their_dims_innermost_first() {
        // a: (4, 3, 5) contiguous; b: (3, 5) broadcast over dim 0; c: transposed (5, 3)^T.
        let shape = [4, 3, 5];
        let a = [15, 5, 1];
        let b = [0, 5, 1];
        let p = plan("t", &shape, [&a, &b]).unwrap();
        assert_eq!(p.rank, 2);
        assert_eq!(&p.dims[..2], &[15, 4]);
        assert_eq!(&p.strides[0][..2], &[1, 15]);
        assert_eq!(&p.strides[1][..2], &[1, 0]);
        let t = plan("t", &[3, 5], [&[1usize, 3][..]]).unwrap();
        assert_eq!(
            (t.rank, &t.dims[..2], &t.strides[0][..2]),
            (2, &[5u64, 3][..], &[3i64, 1][..])
        );
    }

    #[test]
    fn scalars_and_size_one_dims_become_one_element() {
        let p = plan("t", &[1, 1], [&[7usize, 9][..]]).unwrap();
        assert_eq!((p.rank, p.dims[0], p.strides[0][0]), (1, 1, 0));
        let p = plan::<1>("t", &[], [&[][..]]).unwrap();
        assert_eq!(p.rank, 1);
    }

    #[test]
    fn too_many_unmergeable_dims_is_an_error() {
        let shape = [2usize; 9];
        let strides: Vec<usize> = (0..9).map(|d| 3usize.pow(9 - d as u32)).collect();
        assert!(plan("t", &shape, [&strides]).is_err());
    }

    #[test]
    fn launch_arguments_must_match_the_kernel_signature() {
        let n = KernelArg::U64(4);
        let p = KernelArg::Ptr(0);
        assert!(check_args(KernelId::PhiloxWords, &[n, n, n, p]).is_ok());
        assert_eq!(
            KernelId::PhiloxWords.params(),
            &[
                ParamKind::U64,
                ParamKind::U64,
                ParamKind::U64,
                ParamKind::Ptr
            ]
        );
        let msg = check_args(KernelId::PhiloxWords, &[n, n, p])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("philox_words takes 4 parameters"), "{msg}");
        assert!(check_args(KernelId::PhiloxWords, &[n, n, KernelArg::I64(0), p]).is_err());
    }

    #[test]
    fn grid_stride_caps_blocks() {
        let c = LaunchConfig::grid_stride(1_000_000, 256, 100);
        assert_eq!((c.grid, c.block), ((100, 1, 1), (256, 1, 1)));
        assert_eq!(LaunchConfig::grid_stride(0, 256, 100).grid.0, 1);
    }
}
