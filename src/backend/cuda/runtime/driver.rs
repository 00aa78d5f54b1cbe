//! The real GPU: the CUDA driver API through cudarc (loaded at run time), behind the
//! two seams the rest of the backend uses — [`Executor`] for launches and copies,
//! [`RawAllocator`] for memory (`cuMemAlloc`/`cuMemFree` directly, not cudarc's
//! event-tracked slices).
//!
//! Every entry point first makes sure the driver library exists
//! ([`driver_present`]): cudarc panics when asked for a symbol of a missing library.
//! Then [`check_driver`] makes sure it is new enough for the embedded PTX and has every
//! function kiln calls ([`driver_api`](super::driver_api)).

use super::allocator::{EventId, RawAllocError, RawAllocator, StreamId};
use super::driver_api::{self, cuda_version};
use super::kernels::{module_ptx, variant_for, KernelId, MIN_DRIVER_VERSION, MODULE_NAMES};
use super::kernels::{PTX_ISA, PTX_ORIGIN, PTX_VARIANTS};
use super::launch::{Executor, KernelArg, LaunchConfig, TimingEvent};
use crate::{Error, Result};
use cudarc::driver::result::{self as cu, DriverError};
use cudarc::driver::sys;
use parking_lot::Mutex;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// True when `libcuda` can be loaded (checked once).
pub(crate) fn driver_present() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: `is_culib_present` only tries to dlopen the library by its usual names.
    *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() })
}

/// `cuInit` once; its error text if it failed.
fn init() -> std::result::Result<(), (sys::CUresult, String)> {
    static INIT: OnceLock<std::result::Result<(), (sys::CUresult, String)>> = OnceLock::new();
    INIT.get_or_init(|| cu::init().map_err(|e| (e.0, describe(e))))
        .clone()
}

/// Number of CUDA devices, or the error that prevents using any (for `ordinal`).
pub(crate) fn device_count(ordinal: usize) -> Result<usize> {
    if !driver_present() {
        return Err(Error::CudaDriverNotFound { ordinal });
    }
    match init() {
        Ok(()) => {}
        Err((sys::CUresult::CUDA_ERROR_NO_DEVICE, reason)) => {
            return Err(Error::NoCudaDevice { ordinal, reason })
        }
        Err((_, reason)) => {
            return Err(Error::CudaUnavailable {
                ordinal,
                reason: format!("cuInit failed: {reason}"),
            })
        }
    }
    check_driver(ordinal)?;
    let count = cu::device::get_count().map_err(driver_err("cuDeviceGetCount"))?;
    if count <= 0 {
        return Err(Error::NoCudaDevice {
            ordinal,
            reason: "cuDeviceGetCount returned 0".into(),
        });
    }
    Ok(count as usize)
}

/// Err unless the driver loads the embedded PTX (`cuDriverGetVersion` at least
/// [`MIN_DRIVER_VERSION`]) and has every function kiln calls; checked once.
fn check_driver(ordinal: usize) -> Result<()> {
    static CHECK: OnceLock<std::result::Result<(), (u32, String)>> = OnceLock::new();
    let checked = CHECK.get_or_init(|| {
        let mut version = 0;
        // SAFETY: writes one int; the library is loaded (`driver_present`).
        let status = unsafe { sys::cuDriverGetVersion(&mut version) };
        if status != sys::CUresult::CUDA_SUCCESS {
            return Err((0, format!("cuDriverGetVersion failed: {status:?}")));
        }
        let version = version.max(0) as u32;
        if version < MIN_DRIVER_VERSION {
            return Err((version, String::new()));
        }
        // SAFETY: the library loads (`driver_present`), so `culib` does not panic.
        let lib = unsafe { sys::culib() };
        for (_, symbol) in driver_api::SYMBOLS {
            // SAFETY: a lookup only; nothing is called through the pointer.
            if unsafe { lib.get::<*mut c_void>(symbol.as_bytes()) }.is_err() {
                return Err((version, format!("the driver lacks {symbol}")));
            }
        }
        Ok(())
    });
    match checked {
        Ok(()) => Ok(()),
        Err((driver, reason)) if reason.is_empty() => Err(Error::CudaDriverTooOld {
            ordinal,
            driver: cuda_version(*driver),
            required: cuda_version(MIN_DRIVER_VERSION),
            ptx_isa: format!("{}.{}", PTX_ISA.0, PTX_ISA.1),
        }),
        Err((_, reason)) => Err(Error::CudaUnavailable {
            ordinal,
            reason: reason.clone(),
        }),
    }
}

fn describe(e: DriverError) -> String {
    let name = e.error_name().map(|s| s.to_string_lossy().into_owned());
    let text = e.error_string().map(|s| s.to_string_lossy().into_owned());
    match (name, text) {
        (Ok(n), Ok(t)) => format!("{n}: {t}"),
        _ => format!("{:?}", e.0),
    }
}

pub(crate) fn driver_err(op: &'static str) -> impl Fn(DriverError) -> Error {
    move |e| Error::CudaDriver {
        op,
        msg: describe(e),
    }
}

/// The context and stream of one device. The driver's handles are plain pointers;
/// they are used only after making the context current on the calling thread.
struct Handles {
    ctx: sys::CUcontext,
    stream: sys::CUstream,
}

// SAFETY: CUDA driver handles are process-wide objects that any thread may use once the
// context is current on it, which every method below ensures through `bind`.
unsafe impl Send for Handles {}
// SAFETY: as above; the driver API is thread-safe, and kiln's own state next to the
// handles is behind atomics and a mutex.
unsafe impl Sync for Handles {}

impl Handles {
    fn bind(&self) -> Result<()> {
        // SAFETY: `ctx` is the retained primary context of this device, never released.
        unsafe { cu::ctx::set_current(self.ctx) }.map_err(driver_err("cuCtxSetCurrent"))
    }
}

/// Opens device `ordinal`: its primary context and a non-blocking stream. The caller
/// has checked that the ordinal exists.
pub(crate) fn open(ordinal: usize) -> Result<(DriverExecutor, DriverRaw)> {
    let dev = cu::device::get(ordinal as i32).map_err(driver_err("cuDeviceGet"))?;
    let attr = |a| {
        // SAFETY: `dev` is a valid device handle; the attribute is a plain integer query.
        unsafe { cu::device::get_attribute(dev, a) }.map_err(driver_err("cuDeviceGetAttribute"))
    };
    use sys::CUdevice_attribute::*;
    let major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
    let minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    let cap = (major * 10 + minor) as u32;
    let variant = variant_for(cap).ok_or_else(|| Error::CudaUnavailable {
        ordinal,
        reason: format!(
            "its compute capability {major}.{minor} is below {}.{}, the oldest kiln's \
             kernels target",
            PTX_VARIANTS[0].arch / 10,
            PTX_VARIANTS[0].arch % 10
        ),
    })?;
    // SAFETY: `dev` is a valid device handle from cuDeviceGet.
    let ctx =
        unsafe { cu::primary_ctx::retain(dev) }.map_err(driver_err("cuDevicePrimaryCtxRetain"))?;
    // SAFETY: `ctx` was just retained.
    unsafe { cu::ctx::set_current(ctx) }.map_err(driver_err("cuCtxSetCurrent"))?;
    let stream = cu::stream::create(cu::stream::StreamKind::NonBlocking)
        .map_err(driver_err("cuStreamCreate"))?;
    let sm_count = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;

    let name = cu::device::get_name(dev).unwrap_or_else(|_| format!("CUDA device {ordinal}"));
    log::info!(
        "CUDA device {ordinal}: {name}, compute capability {major}.{minor}: loads the \
         compute_{} PTX, {PTX_ORIGIN}",
        PTX_VARIANTS[variant].arch
    );
    let executor = DriverExecutor {
        handles: Handles { ctx, stream },
        sm_count: sm_count.max(1) as u32,
        cap,
        variant,
        name,
        modules: (0..MODULE_NAMES.len())
            .map(|_| AtomicUsize::new(0))
            .collect(),
        functions: (0..KernelId::ALL.len())
            .map(|_| AtomicUsize::new(0))
            .collect(),
        loading: Mutex::new(()),
        copy_stream: OnceLock::new(),
    };
    let raw = DriverRaw {
        handles: Handles { ctx, stream },
    };
    Ok((executor, raw))
}

/// `cuEventElapsedTime`'s signature (CUDA 12.0's cuda.h).
type EventElapsedTime = unsafe extern "C" fn(*mut f32, sys::CUevent, sys::CUevent) -> sys::CUresult;

/// `cuEventElapsedTime`, looked up by name: cudarc's CUDA 13 bindings offer only
/// `cuEventElapsedTime_v2` (their `event::elapsed` calls it), which drivers before 12.8
/// lack (see driver_api.rs).
fn event_elapsed_time() -> Result<EventElapsedTime> {
    static FUNCTION: OnceLock<Option<EventElapsedTime>> = OnceLock::new();
    let found = FUNCTION.get_or_init(|| {
        // SAFETY: the library is loaded (a device is open, so `driver_present`), and the
        // symbol has this signature in every CUDA 12 and 13 driver.
        unsafe { sys::culib().get::<EventElapsedTime>(b"cuEventElapsedTime") }
            .ok()
            .map(|f| *f)
    });
    found.ok_or_else(|| Error::CudaDriver {
        op: "cuEventElapsedTime",
        msg: "the driver library has no cuEventElapsedTime".into(),
    })
}

/// Launches and copies on a real GPU. Modules are loaded (JIT-compiled from the PTX
/// variant of the device's compute capability) on first use of one of their kernels,
/// functions looked up once, both cached.
pub(crate) struct DriverExecutor {
    handles: Handles,
    sm_count: u32,
    /// Compute capability, 10 * major + minor.
    cap: u32,
    /// The PTX variant its modules load (index in `PTX_VARIANTS`).
    variant: usize,
    name: String,
    /// `CUmodule` per module, 0 until loaded.
    modules: Vec<AtomicUsize>,
    /// `CUfunction` per kernel, 0 until looked up.
    functions: Vec<AtomicUsize>,
    /// Serializes loading so each module is loaded once.
    loading: Mutex<()>,
    /// The upload stream (`CUstream` as an integer), created on first use.
    copy_stream: OnceLock<u64>,
}

impl DriverExecutor {
    fn function(&self, kernel: KernelId) -> Result<sys::CUfunction> {
        let cached = self.functions[kernel as usize].load(Ordering::Acquire);
        if cached != 0 {
            return Ok(cached as sys::CUfunction);
        }
        let _guard = self.loading.lock();
        let cached = self.functions[kernel as usize].load(Ordering::Acquire);
        if cached != 0 {
            return Ok(cached as sys::CUfunction);
        }
        let module = self.module(kernel.module())?;
        let name = CString::new(kernel.name()).expect("kernel names have no NUL");
        // SAFETY: `module` is a loaded module that is never unloaded.
        let f =
            unsafe { cu::module::get_function(module, name) }.map_err(|e| Error::CudaDriver {
                op: "cuModuleGetFunction",
                msg: format!("kernel {}: {}", kernel.name(), describe(e)),
            })?;
        self.functions[kernel as usize].store(f as usize, Ordering::Release);
        Ok(f)
    }

    /// Module `index`, loading it if needed; the caller holds `loading`.
    fn module(&self, index: usize) -> Result<sys::CUmodule> {
        let cached = self.modules[index].load(Ordering::Acquire);
        if cached != 0 {
            return Ok(cached as sys::CUmodule);
        }
        let ptx = module_ptx(self.variant, index)?;
        let start = std::time::Instant::now();
        // SAFETY: `ptx` is NUL-terminated PTX text embedded by build.rs; the context is
        // current (bound by the caller).
        let module =
            unsafe { cu::module::load_data(ptx.as_ptr() as *const c_void) }.map_err(|e| {
                Error::CudaDriver {
                    op: "cuModuleLoadData",
                    msg: format!(
                        "loading kernels/{}.cu's compute_{} PTX: {}",
                        MODULE_NAMES[index],
                        PTX_VARIANTS[self.variant].arch,
                        describe(e)
                    ),
                }
            })?;
        // The first launch of a family pays this (the driver's JIT; it caches the result
        // on disk, ~/.nv/ComputeCache, for later runs).
        log::debug!(
            "kernels/{}.cu: compute_{} PTX loaded in {:.1} ms",
            MODULE_NAMES[index],
            PTX_VARIANTS[self.variant].arch,
            start.elapsed().as_secs_f64() * 1e3
        );
        self.modules[index].store(module as usize, Ordering::Release);
        Ok(module)
    }
}

impl Executor for DriverExecutor {
    fn launch(&self, kernel: KernelId, cfg: LaunchConfig, args: &[KernelArg]) -> Result<()> {
        self.handles.bind()?;
        let f = self.function(kernel)?;
        let mut params: Vec<*mut c_void> = args.iter().map(|a| a.as_ptr() as *mut c_void).collect();
        // SAFETY: `f` is a function of a loaded module; `params` points at one value per
        // kernel parameter, typed as the kernel declares (the launch code in this
        // backend builds them from the signatures in kernels/*.cu), alive for the call
        // (the driver copies them at launch); device pointers among them are live
        // allocations whose reuse is ordered after this launch by the single stream.
        unsafe {
            cu::launch_kernel(
                f,
                cfg.grid,
                cfg.block,
                cfg.shared_bytes,
                self.handles.stream,
                &mut params,
            )
        }
        .map_err(|e| Error::CudaDriver {
            op: "cuLaunchKernel",
            msg: format!("{} {cfg:?}: {}", kernel.name(), describe(e)),
        })
    }

    fn copy_htod(&self, dst: u64, src: &[u8]) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: `dst` is a device allocation of at least `src.len()` bytes; for
        // pageable host memory the call returns once `src` has been staged.
        unsafe { cu::memcpy_htod_async(dst, src, self.handles.stream) }
            .map_err(driver_err("cuMemcpyHtoDAsync"))
    }

    fn copy_dtoh(&self, dst: &mut [u8], src: u64) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: `src` is a device allocation of at least `dst.len()` bytes; the stream
        // is synchronized before `dst` is read.
        unsafe { cu::memcpy_dtoh_async(dst, src, self.handles.stream) }
            .map_err(driver_err("cuMemcpyDtoHAsync"))?;
        self.synchronize()
    }

    fn copy_dtod(&self, dst: u64, src: u64, bytes: usize) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: both ranges are device allocations of at least `bytes` bytes.
        unsafe { cu::memcpy_dtod_async(dst, src, bytes, self.handles.stream) }
            .map_err(driver_err("cuMemcpyDtoDAsync"))
    }

    fn synchronize(&self) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: the stream belongs to this context and is never destroyed.
        unsafe { cu::stream::synchronize(self.handles.stream) }
            .map_err(driver_err("cuStreamSynchronize"))
    }

    fn stream(&self) -> StreamId {
        StreamId(self.handles.stream as u64)
    }

    fn sm_count(&self) -> u32 {
        self.sm_count
    }

    fn compute_capability(&self) -> u32 {
        self.cap
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    fn record_timing_event(&self) -> Result<TimingEvent> {
        self.handles.bind()?;
        let event = cu::event::create(sys::CUevent_flags::CU_EVENT_DEFAULT)
            .map_err(driver_err("cuEventCreate"))?;
        // SAFETY: `event` was just created; the stream belongs to this context and is
        // never destroyed.
        if let Err(e) = unsafe { cu::event::record(event, self.handles.stream) } {
            // SAFETY: created above and destroyed once, here.
            let _ = unsafe { cu::event::destroy(event) };
            return Err(driver_err("cuEventRecord")(e));
        }
        Ok(TimingEvent(event as u64))
    }

    fn elapsed_ms(&self, start: TimingEvent, end: TimingEvent) -> Result<f64> {
        self.handles.bind()?;
        let (start, end) = (start.0 as sys::CUevent, end.0 as sys::CUevent);
        // SAFETY: `end` came from `record_timing_event` and is not destroyed yet.
        unsafe { cu::event::synchronize(end) }.map_err(driver_err("cuEventSynchronize"))?;
        let mut ms = 0f32;
        // SAFETY: both came from `record_timing_event` (timing enabled, recorded on this
        // context's stream) and are not destroyed yet; writes one float.
        unsafe { event_elapsed_time()?(&mut ms, start, end) }
            .result()
            .map(|()| f64::from(ms))
            .map_err(driver_err("cuEventElapsedTime"))
    }

    fn destroy_timing_event(&self, event: TimingEvent) {
        if self.handles.bind().is_ok() {
            // SAFETY: `event` came from `record_timing_event` and is destroyed once.
            let _ = unsafe { cu::event::destroy(event.0 as sys::CUevent) };
        }
    }

    fn library_stream(&self) -> Result<Option<u64>> {
        self.handles.bind()?;
        Ok(Some(self.handles.stream as u64))
    }

    fn copy_stream(&self) -> Result<StreamId> {
        if let Some(&s) = self.copy_stream.get() {
            return Ok(StreamId(s));
        }
        let _guard = self.loading.lock();
        if let Some(&s) = self.copy_stream.get() {
            return Ok(StreamId(s));
        }
        self.handles.bind()?;
        // Non-blocking: it must not synchronize with the legacy default stream either.
        let stream = cu::stream::create(cu::stream::StreamKind::NonBlocking)
            .map_err(driver_err("cuStreamCreate"))?;
        let _ = self.copy_stream.set(stream as u64);
        Ok(StreamId(stream as u64))
    }

    fn alloc_pinned(&self, bytes: usize) -> Result<u64> {
        self.handles.bind()?;
        // SAFETY: a plain page-locked host allocation in the current context (flags 0:
        // portable to this context only, which is the only one kiln uses per device).
        unsafe { cu::malloc_host(bytes, 0) }
            .map(|p| p as u64)
            .map_err(driver_err("cuMemHostAlloc"))
    }

    fn free_pinned(&self, ptr: u64, _bytes: usize) {
        if self.handles.bind().is_ok() {
            // SAFETY: `ptr` came from `alloc_pinned`, no queued copy reads it any more
            // (the caller waited for the copy's event), and it is freed once.
            let _ = unsafe { cu::free_host(ptr as *mut c_void) };
        }
    }

    fn copy_htod_async(&self, dst: u64, src: u64, bytes: usize, stream: StreamId) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: `src` is `bytes` bytes of pinned host memory that the caller keeps
        // untouched until an event recorded after this copy completes; `dst` is a device
        // allocation of at least `bytes` bytes; `stream` is a stream of this context.
        let src = unsafe { std::slice::from_raw_parts(src as *const u8, bytes) };
        // SAFETY: as above.
        unsafe { cu::memcpy_htod_async(dst, src, stream.0 as sys::CUstream) }
            .map_err(driver_err("cuMemcpyHtoDAsync"))
    }

    fn record_event(&self, stream: StreamId) -> Result<EventId> {
        self.handles.bind()?;
        let event = cu::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
            .map_err(driver_err("cuEventCreate"))?;
        // SAFETY: `event` was just created; `stream` is a stream of this context.
        if let Err(e) = unsafe { cu::event::record(event, stream.0 as sys::CUstream) } {
            // SAFETY: created above and destroyed once, here.
            let _ = unsafe { cu::event::destroy(event) };
            return Err(driver_err("cuEventRecord")(e));
        }
        Ok(EventId(event as u64))
    }

    fn stream_wait_event(&self, stream: StreamId, event: EventId) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: both are live handles of this context (the event is destroyed only
        // after every wait on it has been queued).
        unsafe {
            cu::stream::wait_event(
                stream.0 as sys::CUstream,
                event.0 as sys::CUevent,
                sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
            )
        }
        .map_err(driver_err("cuStreamWaitEvent"))
    }

    fn event_synchronize(&self, event: EventId) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: `event` came from `record_event` and is not destroyed yet.
        unsafe { cu::event::synchronize(event.0 as sys::CUevent) }
            .map_err(driver_err("cuEventSynchronize"))
    }

    fn destroy_event(&self, event: EventId) {
        if self.handles.bind().is_ok() {
            // SAFETY: `event` came from `record_event` and is destroyed once (a wait
            // already queued on it still completes, as the driver documents).
            let _ = unsafe { cu::event::destroy(event.0 as sys::CUevent) };
        }
    }
}

/// Device memory straight from the driver, and events on the device's streams.
pub(crate) struct DriverRaw {
    handles: Handles,
}

impl RawAllocator for DriverRaw {
    fn alloc(&mut self, bytes: usize) -> std::result::Result<u64, RawAllocError> {
        self.handles.bind().map_err(RawAllocError::Failed)?;
        // SAFETY: a plain allocation in the current context.
        match unsafe { cu::malloc_sync(bytes) } {
            Ok(ptr) => Ok(ptr),
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
                Err(RawAllocError::OutOfMemory)
            }
            Err(e) => Err(RawAllocError::Failed(driver_err("cuMemAlloc")(e))),
        }
    }

    fn free(&mut self, ptr: u64, _bytes: usize) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: `ptr` came from `alloc` and the caching allocator frees it once, after
        // synchronizing (no queued kernel still uses it).
        unsafe { cu::free_sync(ptr) }.map_err(driver_err("cuMemFree"))
    }

    fn record_event(&mut self, stream: StreamId) -> Result<EventId> {
        self.handles.bind()?;
        let event = cu::event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING)
            .map_err(driver_err("cuEventCreate"))?;
        // SAFETY: `event` was just created; `stream` is a stream id this backend handed
        // out (a live CUstream of this context).
        unsafe { cu::event::record(event, stream.0 as sys::CUstream) }
            .map_err(driver_err("cuEventRecord"))?;
        Ok(EventId(event as u64))
    }

    fn event_done(&mut self, event: EventId) -> Result<bool> {
        self.handles.bind()?;
        // SAFETY: `event` came from `record_event` and is not destroyed yet.
        match unsafe { cu::event::query(event.0 as sys::CUevent) } {
            Ok(()) => Ok(true),
            Err(e) if e.0 == sys::CUresult::CUDA_ERROR_NOT_READY => Ok(false),
            Err(e) => Err(driver_err("cuEventQuery")(e)),
        }
    }

    fn wait_event(&mut self, event: EventId) -> Result<()> {
        self.handles.bind()?;
        // SAFETY: as in `event_done`.
        unsafe { cu::event::synchronize(event.0 as sys::CUevent) }
            .map_err(driver_err("cuEventSynchronize"))
    }

    fn destroy_event(&mut self, event: EventId) {
        if self.handles.bind().is_ok() {
            // SAFETY: `event` came from `record_event` and is destroyed once.
            let _ = unsafe { cu::event::destroy(event.0 as sys::CUevent) };
        }
    }

    fn synchronize(&mut self) -> Result<()> {
        self.handles.bind()?;
        cu::ctx::synchronize().map_err(driver_err("cuCtxSynchronize"))
    }

    fn mem_info(&mut self) -> Option<(usize, usize)> {
        self.handles.bind().ok()?;
        cu::mem_get_info().ok()
    }
}
