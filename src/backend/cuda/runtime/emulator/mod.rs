//! The emulated CUDA device (feature `cuda-emulator`, selected with
//! `KILN_CUDA_EMULATE=1`): the same backend code, allocator included, over the two
//! seams implemented on the host.
//!
//! * `EmulatedExecutor` runs each launch on the CPU: the kernel, compiled from the
//!   unchanged `kernels/*.cu` as C++ against `kernels/emu/host_emu.h`, is called once per
//!   CUDA thread by the fiber scheduler in `kernels/emu/runtime.cpp` (blocks in order,
//!   threads switching only at barriers and warp-collective calls). Copies are
//!   `memcpy`s, checked against the live allocations.
//! * `EmulatedMemory` gives the caching allocator segments of host memory, each ending
//!   at a guard page and filled with 0xFF bytes; a kernel that touches memory outside
//!   them fails its launch with an error naming the allocation, block and thread.
//!
//! Work is synchronous: a launch returns when the kernel has finished, so events are
//! complete as soon as they are recorded.

use super::allocator::{EventId, RawAllocError, RawAllocator, StreamId};
use super::kernels::{KernelId, EMULATED_ENTRIES};
use super::launch::{Executor, KernelArg, LaunchConfig, TimingEvent};
use crate::{Error, Result};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

#[cfg(test)]
mod tests;

extern "C" {
    fn kiln_emu_launch(
        entry: unsafe extern "C" fn(*const *const c_void),
        args: *const *const c_void,
        name: *const c_char,
        grid: *const u32,
        block: *const u32,
        shared_bytes: u32,
        err: *mut c_char,
        err_len: usize,
    ) -> c_int;
    fn kiln_emu_alloc(bytes: usize) -> u64;
    fn kiln_emu_free(ptr: u64) -> c_int;
    fn kiln_emu_contains(ptr: u64, bytes: usize) -> c_int;
    fn kiln_emu_describe(ptr: u64, out: *mut c_char, out_len: usize);
}

/// Device memory the emulated device offers (host memory is used only as it is touched).
pub const CAPACITY: usize = 8 << 30;

/// Launches of each kernel on the emulated device so far, by [`KernelId`] index.
static LAUNCHES: [AtomicU64; KernelId::ALL.len()] =
    [const { AtomicU64::new(0) }; KernelId::ALL.len()];

/// How often each kernel has been launched on the emulated device in this process, in
/// registry order (every kernel, launched or not).
pub fn launch_counts() -> Vec<(&'static str, u64)> {
    KernelId::ALL
        .iter()
        .map(|k| (k.name(), LAUNCHES[*k as usize].load(Ordering::Relaxed)))
        .collect()
}

/// Whether [`TRACE`] records (a load per launch when it does not).
static TRACING: AtomicBool = AtomicBool::new(false);
/// The launches and collective enqueues of this process in order, while [`traced`] runs.
static TRACE: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Runs `f` while recording, in order, the name of each kernel launched on the emulated
/// device and each collective enqueued by a process group (`nccl:all_reduce`, ...) in
/// this process: the order of the two streams' work, which the overlap of DDP's
/// gradient all-reduces with the backward pass is tested on. One recording at a time.
pub fn traced<R>(f: impl FnOnce() -> R) -> (R, Vec<&'static str>) {
    TRACE.lock().clear();
    TRACING.store(true, Ordering::SeqCst);
    let out = f();
    TRACING.store(false, Ordering::SeqCst);
    (out, std::mem::take(&mut *TRACE.lock()))
}

/// Appends `event` to the trace while [`traced`] records.
pub(crate) fn trace(event: &'static str) {
    if TRACING.load(Ordering::Relaxed) {
        TRACE.lock().push(event);
    }
}

/// The emulated device's seams.
pub(crate) fn open() -> (EmulatedExecutor, EmulatedMemory) {
    let cap = capability().unwrap_or(DEFAULT_CAPABILITY);
    (
        EmulatedExecutor { cap },
        EmulatedMemory { used: 0, events: 0 },
    )
}

/// The compute capability the emulated device reports unless told otherwise: 8.0, so
/// the host takes the tensor-core kernels, which the emulator runs exactly.
const DEFAULT_CAPABILITY: u32 = 80;

/// The compute capability the emulated device reports: `KILN_CUDA_EMULATE_CAP` (`7.0`
/// or `70`: the host then picks what it picks on a Volta, and a tensor-core kernel
/// launch is refused as the compute_70 PTX would not run it), else 8.0.
pub(crate) fn capability() -> Result<u32> {
    static CAP: OnceLock<std::result::Result<u32, String>> = OnceLock::new();
    CAP.get_or_init(|| {
        let Ok(v) = std::env::var("KILN_CUDA_EMULATE_CAP") else {
            return Ok(DEFAULT_CAPABILITY);
        };
        let cap = match v.trim().split_once('.') {
            Some((major, minor)) => major
                .parse::<u32>()
                .ok()
                .zip(minor.parse::<u32>().ok().filter(|n| *n < 10))
                .map(|(major, minor)| 10 * major + minor),
            None => v.trim().parse().ok(),
        };
        cap.filter(|c| (10..1000).contains(c)).ok_or_else(|| {
            format!("KILN_CUDA_EMULATE_CAP={v:?} is not a compute capability like 7.0 or 86")
        })
    })
    .clone()
    .map_err(|reason| Error::CudaUnavailable { ordinal: 0, reason })
}

/// An error of the emulated device, in the shape the driver's errors have.
fn device_error(op: &'static str, msg: String) -> Error {
    Error::CudaDriver { op, msg }
}

/// What `ptr` is, relative to the live allocations around it.
fn describe(ptr: u64) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: `buf` is writable for its length; the runtime writes a NUL-terminated string.
    unsafe { kiln_emu_describe(ptr, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated above (snprintf).
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Err unless `[ptr, ptr + bytes)` is inside one live allocation.
fn check_range(op: &'static str, ptr: u64, bytes: usize) -> Result<()> {
    // SAFETY: a lookup in the runtime's allocation table.
    if bytes == 0 || unsafe { kiln_emu_contains(ptr, bytes) } == 1 {
        return Ok(());
    }
    Err(device_error(
        op,
        format!(
            "{bytes} bytes at 0x{ptr:x} are not inside one device allocation (0x{ptr:x} is {})",
            describe(ptr)
        ),
    ))
}

/// Launches and copies on the host.
pub(crate) struct EmulatedExecutor {
    /// The compute capability it reports ([`capability`]).
    cap: u32,
}

impl Executor for EmulatedExecutor {
    fn launch(&self, kernel: KernelId, cfg: LaunchConfig, args: &[KernelArg]) -> Result<()> {
        LAUNCHES[kernel as usize].fetch_add(1, Ordering::Relaxed);
        trace(kernel.name());
        let params: Vec<*const c_void> = args.iter().map(KernelArg::as_ptr).collect();
        let name = CString::new(kernel.name()).expect("kernel names have no NUL");
        let grid = [cfg.grid.0, cfg.grid.1, cfg.grid.2];
        let block = [cfg.block.0, cfg.block.1, cfg.block.2];
        let mut err = vec![0 as c_char; 1024];
        // SAFETY: the entry point reads one value per parameter through `params`, typed
        // as the kernel declares: `CudaDevice::launch` checked `args` against the
        // signature. Pointer arguments are addresses of live emulated allocations (or
        // faults the runtime catches); `grid`, `block` and `err` outlive the call.
        let failed = unsafe {
            kiln_emu_launch(
                EMULATED_ENTRIES[kernel as usize],
                params.as_ptr(),
                name.as_ptr(),
                grid.as_ptr(),
                block.as_ptr(),
                cfg.shared_bytes,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if failed == 0 {
            return Ok(());
        }
        // SAFETY: the runtime wrote a NUL-terminated message into `err`.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        Err(device_error(
            "emulated kernel launch",
            format!("{} {cfg:?}: {msg}", kernel.name()),
        ))
    }

    fn copy_htod(&self, dst: u64, src: &[u8]) -> Result<()> {
        check_range("emulated copy to the device", dst, src.len())?;
        // SAFETY: `dst` starts `src.len()` writable bytes of one live allocation
        // (checked), which cannot overlap the host slice.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    fn copy_dtoh(&self, dst: &mut [u8], src: u64) -> Result<()> {
        check_range("emulated copy from the device", src, dst.len())?;
        // SAFETY: `src` starts `dst.len()` readable bytes of one live allocation.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn copy_dtod(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        check_range("emulated device copy", src, bytes)?;
        check_range("emulated device copy", dst, bytes)?;
        // SAFETY: both ranges are inside live allocations; `copy` allows overlap.
        unsafe { std::ptr::copy(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    fn stream(&self) -> StreamId {
        StreamId(1)
    }

    fn sm_count(&self) -> u32 {
        // Few "multiprocessors": grid-stride kernels then launch a handful of blocks,
        // which keeps emulation fast while still running more than one block.
        2
    }

    fn compute_capability(&self) -> u32 {
        self.cap
    }

    fn name(&self) -> String {
        "kiln emulated CUDA device (kernels compiled for the CPU)".into()
    }

    /// The wall clock, in nanoseconds since the first event: work queued before it
    /// has already run.
    fn record_timing_event(&self) -> Result<TimingEvent> {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        Ok(TimingEvent(
            EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64,
        ))
    }

    fn elapsed_ms(&self, start: TimingEvent, end: TimingEvent) -> Result<f64> {
        Ok(end.0.saturating_sub(start.0) as f64 / 1e6)
    }

    fn destroy_timing_event(&self, _event: TimingEvent) {}

    fn copy_stream(&self) -> Result<StreamId> {
        Ok(COPY_STREAM)
    }

    /// Ordinary host memory (every host page is "pinned" for a device that is the host).
    fn alloc_pinned(&self, bytes: usize) -> Result<u64> {
        let layout = pinned_layout(bytes)?;
        // SAFETY: `layout` has a non-zero size (checked by `pinned_layout`).
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return Err(Error::HostOutOfMemory { bytes });
        }
        Ok(ptr as u64)
    }

    fn free_pinned(&self, ptr: u64, bytes: usize) {
        if let Ok(layout) = pinned_layout(bytes) {
            // SAFETY: `ptr` came from `alloc_pinned` with this size, hence this layout,
            // and is freed once.
            unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
        }
    }

    fn copy_htod_async(&self, dst: u64, src: u64, bytes: usize, stream: StreamId) -> Result<()> {
        if stream != COPY_STREAM && stream != self.stream() {
            return Err(device_error(
                "emulated cuMemcpyHtoDAsync",
                format!("{stream:?} is not a stream of this device"),
            ));
        }
        check_range("emulated copy to the device", dst, bytes)?;
        // SAFETY: `src` is `bytes` readable bytes of pinned memory (the caller's
        // contract); `dst` starts `bytes` writable bytes of one live allocation
        // (checked), which cannot overlap host memory.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes) };
        Ok(())
    }

    /// Events are complete when recorded (work is synchronous); each has its own id.
    fn record_event(&self, _stream: StreamId) -> Result<EventId> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Ok(EventId(NEXT.fetch_add(1, Ordering::Relaxed)))
    }

    fn stream_wait_event(&self, _stream: StreamId, _event: EventId) -> Result<()> {
        STREAM_WAITS.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn event_synchronize(&self, _event: EventId) -> Result<()> {
        Ok(())
    }

    fn destroy_event(&self, _event: EventId) {}
}

/// The emulated device's copy stream (the compute stream is 1).
const COPY_STREAM: StreamId = StreamId(2);

/// How often a stream was made to wait for an event on the emulated device.
static STREAM_WAITS: AtomicU64 = AtomicU64::new(0);

/// How many times, in this process, a stream of the emulated device was made to wait
/// for an event (the DataLoader's compute stream waits once per uploaded batch).
pub fn stream_wait_count() -> u64 {
    STREAM_WAITS.load(Ordering::Relaxed)
}

/// The layout of a pinned buffer of `bytes` bytes: cache-line aligned.
fn pinned_layout(bytes: usize) -> Result<std::alloc::Layout> {
    std::alloc::Layout::from_size_align(bytes.max(1), 64)
        .map_err(|_| Error::HostOutOfMemory { bytes })
}

/// Guarded host memory for the caching allocator.
pub(crate) struct EmulatedMemory {
    used: usize,
    events: u64,
}

impl RawAllocator for EmulatedMemory {
    fn alloc(&mut self, bytes: usize) -> std::result::Result<u64, RawAllocError> {
        if bytes > CAPACITY - self.used {
            return Err(RawAllocError::OutOfMemory);
        }
        // SAFETY: maps fresh memory; no other state is touched.
        let ptr = unsafe { kiln_emu_alloc(bytes) };
        if ptr == 0 {
            return Err(RawAllocError::OutOfMemory);
        }
        self.used += bytes;
        Ok(ptr)
    }

    fn free(&mut self, ptr: u64, bytes: usize) -> Result<()> {
        // SAFETY: unmaps `ptr` if it is a live allocation; nothing uses it any more (the
        // caching allocator frees a segment once no block in it is in use).
        if unsafe { kiln_emu_free(ptr) } != 0 {
            return Err(device_error(
                "emulated cuMemFree",
                format!("0x{ptr:x} is not a device allocation"),
            ));
        }
        self.used -= bytes;
        Ok(())
    }

    fn record_event(&mut self, _stream: StreamId) -> Result<EventId> {
        self.events += 1;
        Ok(EventId(self.events))
    }

    fn event_done(&mut self, _event: EventId) -> Result<bool> {
        Ok(true)
    }

    fn wait_event(&mut self, _event: EventId) -> Result<()> {
        Ok(())
    }

    fn destroy_event(&mut self, _event: EventId) {}

    fn synchronize(&mut self) -> Result<()> {
        Ok(())
    }

    fn mem_info(&mut self) -> Option<(usize, usize)> {
        Some((CAPACITY - self.used, CAPACITY))
    }
}
