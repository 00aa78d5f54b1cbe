//! A CUDA device as the backend uses it: an [`Executor`] (launches, copies, one
//! stream) and a caching allocator over a [`RawAllocator`]. Devices are opened once
//! and live for the rest of the process.

use super::allocator::{CachingAllocator, MemoryStats, RawAllocator, StreamId};
use super::driver;
use super::kernels::{kernels_built, KernelId};
use super::launch::{check_args, Executor, KernelArg, LaunchConfig};
use crate::{Error, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// One CUDA device (real, or anything else that implements the two seams).
pub struct CudaDevice {
    ordinal: usize,
    exec: Box<dyn Executor>,
    alloc: Mutex<CachingAllocator<Box<dyn RawAllocator>>>,
    transfers: Transfers,
}

/// Host↔device copy counters: bytes and copies in each direction. Atomics, because
/// copies run from any thread without the allocator's lock.
#[derive(Default)]
struct Transfers {
    bytes_htod: AtomicU64,
    bytes_dtoh: AtomicU64,
    num_htod: AtomicU64,
    num_dtoh: AtomicU64,
}

impl Transfers {
    /// Counts one copy of `bytes` bytes into `total` and `count`.
    fn count(total: &AtomicU64, count: &AtomicU64, bytes: usize) {
        total.fetch_add(bytes as u64, Ordering::Relaxed);
        count.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the counters into `s`.
    fn report(&self, s: &mut MemoryStats) {
        s.bytes_host_to_device = self.bytes_htod.load(Ordering::Relaxed);
        s.bytes_device_to_host = self.bytes_dtoh.load(Ordering::Relaxed);
        s.num_host_to_device = self.num_htod.load(Ordering::Relaxed);
        s.num_device_to_host = self.num_dtoh.load(Ordering::Relaxed);
    }

    /// Sets every counter to 0.
    fn reset(&self) {
        for c in [
            &self.bytes_htod,
            &self.bytes_dtoh,
            &self.num_htod,
            &self.num_dtoh,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaDevice({}, {})", self.ordinal, self.exec.name())
    }
}

fn registry() -> &'static Mutex<HashMap<usize, Arc<CudaDevice>>> {
    static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
    DEVICES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// True when `KILN_CUDA_EMULATE=1`: CUDA devices are then emulated devices
/// (`KILN_CUDA_EMULATE_DEVICES`, default 1), which needs kiln built with the
/// `cuda-emulator` feature.
pub(crate) fn emulation_requested() -> bool {
    static REQUESTED: OnceLock<bool> = OnceLock::new();
    *REQUESTED.get_or_init(|| std::env::var("KILN_CUDA_EMULATE").is_ok_and(|v| v == "1"))
}

/// Device `ordinal`, opened on first use. The errors say what is missing, in the order
/// a user fixes them: driver library, any device, this ordinal, kiln's kernels.
pub(crate) fn device(ordinal: usize) -> Result<Arc<CudaDevice>> {
    let mut devices = registry().lock();
    if let Some(dev) = devices.get(&ordinal) {
        return Ok(dev.clone());
    }
    let count = count_devices(ordinal)?;
    if ordinal >= count {
        return Err(Error::CudaOrdinalOutOfRange { ordinal, count });
    }
    if !kernels_built() {
        return Err(Error::KernelsNotBuilt);
    }
    let (exec, raw) = open(ordinal)?;
    let dev = Arc::new(CudaDevice::new(ordinal, exec, raw));
    devices.insert(ordinal, dev.clone());
    Ok(dev)
}

/// Number of CUDA devices (0 without a driver or device).
pub(crate) fn device_count() -> usize {
    count_devices(0).unwrap_or(0)
}

/// The devices there are, or why none can be used (for `ordinal`).
fn count_devices(ordinal: usize) -> Result<usize> {
    if !emulation_requested() {
        return driver::device_count(ordinal);
    }
    if cfg!(feature = "cuda-emulator") {
        emulated_device_count()
    } else {
        Err(Error::CudaUnavailable {
            ordinal,
            reason: "KILN_CUDA_EMULATE=1, but kiln was built without its `cuda-emulator` \
                     feature"
                .into(),
        })
    }
}

/// `KILN_CUDA_EMULATE_DEVICES` (default 1): how many emulated devices there are, so
/// that one emulated box runs a rank per `Device::cuda(local_rank)`. Each is a
/// separate emulated device with its own memory.
fn emulated_device_count() -> Result<usize> {
    match std::env::var("KILN_CUDA_EMULATE_DEVICES") {
        Err(_) => Ok(1),
        Ok(v) => v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::arg(
                "KILN_CUDA_EMULATE_DEVICES",
                format!("`{v}`: a number of emulated devices, 1 or more"),
            )
        }),
    }
}

/// The two seams of device `ordinal`: the emulator's or the driver's.
fn open(ordinal: usize) -> Result<(Box<dyn Executor>, Box<dyn RawAllocator>)> {
    #[cfg(feature = "cuda-emulator")]
    if emulation_requested() {
        super::emulator::capability()?;
        let (exec, raw) = super::emulator::open();
        return Ok((Box::new(exec), Box::new(raw)));
    }
    let (exec, raw) = driver::open(ordinal)?;
    Ok((Box::new(exec), Box::new(raw)))
}

impl CudaDevice {
    /// A device over the given seams (the GPU's, or an emulator's).
    pub(crate) fn new(ordinal: usize, exec: Box<dyn Executor>, raw: Box<dyn RawAllocator>) -> Self {
        CudaDevice {
            ordinal,
            exec,
            alloc: Mutex::new(CachingAllocator::new(raw, ordinal)),
            transfers: Transfers::default(),
        }
    }

    /// The device ordinal.
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }

    /// The device's name.
    pub fn name(&self) -> String {
        self.exec.name()
    }

    /// Number of multiprocessors.
    pub(crate) fn sm_count(&self) -> u32 {
        self.exec.sm_count()
    }

    /// The compute capability, 10 * major + minor (86 for 8.6).
    pub(crate) fn compute_capability(&self) -> u32 {
        self.exec.compute_capability()
    }

    /// Whether the device has the tensor cores kiln's mma.sync kernels use (compute
    /// capability 8.0 or newer; a Volta's or Turing's take the SIMT kernels, and its
    /// PTX variant has no tensor-core code).
    pub(crate) fn has_tensor_cores(&self) -> bool {
        self.compute_capability() >= 80
    }

    /// `bytes` of device memory from the caching allocator, freed when dropped.
    pub(crate) fn alloc(self: &Arc<Self>, bytes: usize) -> Result<DeviceBuffer> {
        let ptr = if bytes == 0 {
            0
        } else {
            let ptr = self.alloc.lock().alloc(bytes, self.exec.stream())?;
            crate::profiler::alloc(bytes);
            ptr
        };
        Ok(DeviceBuffer {
            ptr,
            bytes,
            device: self.clone(),
        })
    }

    /// Queues a kernel: the one place where the backend launches anything.
    pub(crate) fn launch(
        &self,
        kernel: KernelId,
        cfg: LaunchConfig,
        args: &[KernelArg],
    ) -> Result<()> {
        check_args(kernel, args)?;
        if !self.has_tensor_cores() && kernel.needs_tensor_cores() {
            // Its compute_70 PTX has an empty body: refuse rather than return nothing.
            return Err(Error::CudaDriver {
                op: "kernel launch",
                msg: format!(
                    "{} needs tensor cores (compute capability 8.0); device {} has {}.{}",
                    kernel.name(),
                    self.ordinal,
                    self.compute_capability() / 10,
                    self.compute_capability() % 10
                ),
            });
        }
        crate::profiler::launch();
        self.exec.launch(kernel, cfg, args)
    }

    /// Launches a grid-stride kernel over `items` items (outputs, elements, rows) with
    /// [`LaunchConfig::elementwise`]'s configuration; nothing is queued for 0 items.
    pub(crate) fn launch_grid_stride(
        &self,
        kernel: KernelId,
        items: usize,
        args: &[KernelArg],
    ) -> Result<()> {
        if items == 0 {
            return Ok(());
        }
        self.launch(
            kernel,
            LaunchConfig::elementwise(items as u64, self.sm_count()),
            args,
        )
    }

    /// The executor (device-to-device copies, synchronization). Host↔device copies go
    /// through [`CudaDevice::copy_htod`] and [`CudaDevice::copy_dtoh`], which count them.
    pub(crate) fn exec(&self) -> &dyn Executor {
        self.exec.as_ref()
    }

    /// Copies `src` from the host to device address `dst`, counted in the transfer
    /// statistics.
    pub(crate) fn copy_htod(&self, dst: u64, src: &[u8]) -> Result<()> {
        let t = &self.transfers;
        Transfers::count(&t.bytes_htod, &t.num_htod, src.len());
        self.exec.copy_htod(dst, src)
    }

    /// Copies `dst.len()` bytes from device address `src` to the host, counted in the
    /// transfer statistics.
    pub(crate) fn copy_dtoh(&self, dst: &mut [u8], src: u64) -> Result<()> {
        let t = &self.transfers;
        Transfers::count(&t.bytes_dtoh, &t.num_dtoh, dst.len());
        self.exec.copy_dtoh(dst, src)
    }

    /// The allocator's statistics and the transfer counters.
    pub(crate) fn memory_stats(&self) -> MemoryStats {
        let mut s = self.alloc.lock().stats();
        self.transfers.report(&mut s);
        s
    }

    /// Sets every peak statistic to its current value and the transfer counters to 0.
    pub(crate) fn reset_peak_memory_stats(&self) {
        self.alloc.lock().reset_peak_stats();
        self.transfers.reset();
    }

    /// Returns cached, unused segments to the driver.
    pub(crate) fn empty_cache(&self) -> Result<()> {
        self.alloc.lock().empty_cache()
    }

    /// Waits for all queued work.
    pub(crate) fn synchronize(&self) -> Result<()> {
        self.exec.synchronize()
    }

    /// `bytes` of device memory for work on `stream` (the copy stream's uploads): the
    /// allocator reuses the block for that stream's later work only.
    pub(crate) fn alloc_on(
        self: &Arc<Self>,
        bytes: usize,
        stream: StreamId,
    ) -> Result<DeviceBuffer> {
        let ptr = if bytes == 0 {
            0
        } else {
            self.alloc.lock().alloc(bytes, stream)?
        };
        Ok(DeviceBuffer {
            ptr,
            bytes,
            device: self.clone(),
        })
    }

    /// Marks `buf` as used by the compute stream too, so that its block is reused only
    /// after the compute work queued before its free has run (PyTorch's `record_stream`).
    pub(crate) fn record_compute_use(&self, buf: &DeviceBuffer) -> Result<()> {
        if buf.bytes == 0 {
            return Ok(());
        }
        self.alloc.lock().record_stream(buf.ptr, self.exec.stream())
    }

    /// Queues a copy of `bytes` bytes from pinned host memory `src` to device address
    /// `dst` on `stream`, counted in the transfer statistics.
    pub(crate) fn copy_htod_async(
        &self,
        dst: u64,
        src: u64,
        bytes: usize,
        stream: StreamId,
    ) -> Result<()> {
        let t = &self.transfers;
        Transfers::count(&t.bytes_htod, &t.num_htod, bytes);
        self.exec.copy_htod_async(dst, src, bytes, stream)
    }
}

/// A device allocation; returned to the caching allocator on drop. Work queued on the
/// device's stream before the drop still sees valid memory: a later allocation reuses
/// the block only for work queued after it on the same stream.
pub(crate) struct DeviceBuffer {
    ptr: u64,
    bytes: usize,
    device: Arc<CudaDevice>,
}

impl DeviceBuffer {
    /// The device address (0 for an empty buffer).
    pub(crate) fn ptr(&self) -> u64 {
        self.ptr
    }

    /// The device the memory is on.
    pub(crate) fn device(&self) -> &Arc<CudaDevice> {
        &self.device
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        if self.bytes > 0 {
            crate::profiler::free(self.bytes);
            // A failure here means allocator state is corrupt; nothing a drop can fix.
            let _ = self.device.alloc.lock().free(self.ptr);
        }
    }
}
