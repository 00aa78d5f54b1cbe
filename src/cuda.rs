//! CUDA devices: availability, memory statistics and the allocator's cache, like
//! `torch.cuda`.
//!
//! Device memory comes from a caching allocator in the style of PyTorch's; freed tensors return their blocks to it, not
//! to the driver. [`memory_stats`] reports its statistics under PyTorch's names and
//! [`empty_cache`] gives unused cached memory back to the driver.
//!
//! ```
//! # fn main() -> kiln::Result<()> {
//! if kiln::cuda::is_available() {
//!     let stats = kiln::cuda::memory_stats(0)?;
//!     println!("{} bytes allocated", stats.allocated_bytes.current);
//!     kiln::cuda::empty_cache(0)?;
//! }
//! # Ok(())
//! # }
//! ```

pub use crate::backend::cuda::runtime::allocator::{MemoryStats, Stat};
pub use crate::backend::cuda::runtime::blas::{GemmBackend, GemmChoice};

use crate::backend::cuda;
use crate::backend::cuda::runtime::{blas, config};
use crate::{Device, Result};

impl Device {
    /// `Device::Cuda(ordinal)` when a GPU, its driver and kiln's kernels are usable,
    /// otherwise `Device::Cpu`. Never fails; why CUDA cannot be used is logged through
    /// the `log` crate (`RUST_LOG=kiln=info` with `env_logger`): at `warn` level when a
    /// GPU is there but its driver is too old for kiln (the log says which is needed),
    /// else at `info` level.
    pub fn cuda_if_available(ordinal: usize) -> Device {
        match Device::cuda(ordinal) {
            Ok(dev) => {
                log::info!("using CUDA device {ordinal}");
                dev
            }
            Err(e @ crate::Error::CudaDriverTooOld { .. }) => {
                log::warn!("CUDA device {ordinal} is not used, falling back to the CPU: {e}");
                Device::Cpu
            }
            Err(e) => {
                log::info!("CUDA device {ordinal} is not used, falling back to the CPU: {e}");
                Device::Cpu
            }
        }
    }

    /// `Device::Cuda(ordinal)`, or an error that says why the GPU cannot be used:
    /// [`crate::Error::CudaDriverNotFound`], [`crate::Error::CudaDriverTooOld`] (the
    /// driver predates the CUDA version kiln's PTX needs: 12.0 for the shipped PTX),
    /// [`crate::Error::NoCudaDevice`],
    /// [`crate::Error::CudaOrdinalOutOfRange`], [`crate::Error::KernelsNotBuilt`] (or a driver error
    /// while opening the device). The device is opened on the first call.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        cuda::device(ordinal).map(|_| Device::Cuda(ordinal))
    }
}

/// True when [`crate::Device::cuda`]`(0)` would succeed: a driver, a device and kiln's
/// kernels are all present. Never fails and never panics.
pub fn is_available() -> bool {
    cuda::kernels_built() && device_count() > 0
}

/// Number of CUDA devices the driver reports (0 without a driver).
pub fn device_count() -> usize {
    cuda::device_count()
}

/// True when this build embeds the CUDA kernels: the PTX shipped with kiln (or, with
/// `KILN_NVCC=1`, a local nvcc's), or the emulated device is selected. False only when
/// the build warned that it had no usable PTX.
pub fn kernels_built() -> bool {
    cuda::kernels_built()
}

/// The name of device `ordinal` (opens the device).
pub fn device_name(ordinal: usize) -> Result<String> {
    Ok(cuda::device(ordinal)?.name())
}

/// The caching allocator's statistics for device `ordinal`.
pub fn memory_stats(ordinal: usize) -> Result<MemoryStats> {
    Ok(cuda::device(ordinal)?.memory_stats())
}

/// Sets every peak statistic of device `ordinal` to its current value.
pub fn reset_peak_memory_stats(ordinal: usize) -> Result<()> {
    cuda::device(ordinal)?.reset_peak_memory_stats();
    Ok(())
}

/// Gives the cached memory of device `ordinal` that no tensor uses back to the driver.
pub fn empty_cache(ordinal: usize) -> Result<()> {
    cuda::device(ordinal)?.empty_cache()
}

/// Waits until all work queued on device `ordinal` has finished.
pub fn synchronize(ordinal: usize) -> Result<()> {
    cuda::device(ordinal)?.synchronize()
}

/// `n` words of the Philox stream `stream`, computed by a kernel on device `ordinal`:
/// the same words as `PhiloxStream::words` computes on the CPU (the check that
/// `kernels/common.cuh` and `src/rng.rs` implement one generator). For kiln's tests.
#[doc(hidden)]
pub fn philox_words(
    ordinal: usize,
    stream: crate::rng::PhiloxStream,
    n: usize,
) -> Result<Vec<u32>> {
    crate::backend::fill::philox_words(&cuda::device(ordinal)?, stream, n)
}

/// Runs `work` and returns the milliseconds the device spent on what it queued, from
/// events recorded on device `ordinal`'s stream before and after it (as
/// `torch.cuda.Event(enable_timing=True)`; waits for the work). On the emulated device
/// the wall clock stands in. For kiln's benchmarks.
#[doc(hidden)]
pub fn time_ms(ordinal: usize, work: impl FnOnce() -> Result<()>) -> Result<f64> {
    let dev = cuda::device(ordinal)?;
    let exec = dev.exec();
    let start = exec.record_timing_event()?;
    let ms = work().and_then(|()| {
        let end = exec.record_timing_event()?;
        let ms = exec.elapsed_ms(start, end);
        exec.destroy_timing_event(end);
        ms
    });
    exec.destroy_timing_event(start);
    ms
}

/// True when CUDA devices are the emulated device: `KILN_CUDA_EMULATE=1` in a build with
/// the `cuda-emulator` feature. Kernels then run on the CPU (see DEVELOPERS.md).
pub fn is_emulated() -> bool {
    cfg!(feature = "cuda-emulator") && cuda::emulation_requested()
}

/// How often each kernel has run on the emulated device (`KILN_CUDA_EMULATE=1`) in this
/// process, for every kernel in registry order: what a test suite exercised.
#[cfg(feature = "cuda-emulator")]
pub fn emulated_launch_counts() -> Vec<(&'static str, u64)> {
    crate::backend::cuda::runtime::emulator::launch_counts()
}

/// Runs `f` while recording, in order, each kernel launched on the emulated device
/// and each collective a process group enqueues (`nccl:all_reduce`, ...) in this
/// process; returns `f`'s result and the record. For tests of the order of compute and
/// communication (DDP's overlap).
#[cfg(feature = "cuda-emulator")]
pub fn emulated_trace<R>(f: impl FnOnce() -> R) -> (R, Vec<&'static str>) {
    crate::backend::cuda::runtime::emulator::traced(f)
}

/// The module that defines kernel `name` — the stem of its source, `"conv_tc"` for
/// `kernels/conv_tc.cu` — or `None` when no kernel has that name. For the test suites'
/// checks that a family's tests launch each of its kernels.
#[doc(hidden)]
pub fn kernel_module(name: &str) -> Option<&'static str> {
    use crate::backend::cuda::runtime::kernels::{KernelId, MODULE_NAMES};
    let kernel = KernelId::ALL.into_iter().find(|k| k.name() == name)?;
    Some(MODULE_NAMES[kernel.module()])
}

/// Lets f32 matmul and linear use TF32 tensor cores (10-bit mantissa products, f32
/// accumulation) where the GEMM has them: cuBLASLt's `CUBLAS_COMPUTE_32F_FAST_TF32`.
/// Process-wide, read at each GEMM, like `torch.backends.cuda.matmul.allow_tf32`;
/// default false, so f32 products are exact f32 unless asked.
pub fn set_matmul_allow_tf32(allow: bool) {
    config::set_matmul_allow_tf32(allow);
}

/// Whether f32 matmul and linear may use TF32 (see [`set_matmul_allow_tf32`]).
pub fn matmul_allow_tf32() -> bool {
    config::matmul_allow_tf32()
}

/// Lets f32 convolutions use TF32 tensor cores where the convolution kernels have
/// them. Process-wide, like `torch.backends.cudnn.allow_tf32`; default true.
pub fn set_conv_allow_tf32(allow: bool) {
    config::set_conv_allow_tf32(allow);
}

/// Whether f32 convolutions may use TF32 (see [`set_conv_allow_tf32`]).
pub fn conv_allow_tf32() -> bool {
    config::conv_allow_tf32()
}

/// Which GEMM runs matmul and linear on device `ordinal`, and why: `cuBLASLt 13.0`, or
/// `kiln (<reason>)` — kiln's own kernels because the library is missing, lacks a
/// function, is older than 12.0, was switched off (`KILN_CUDA_GEMM=kiln`,
/// [`set_gemm_backend`]), or the device is the emulated one. Opens the device, and on
/// first use loads cuBLASLt and makes its handle; never panics.
///
/// ```
/// # fn main() -> kiln::Result<()> {
/// if kiln::cuda::is_available() {
///     println!("GEMM on device 0: {}", kiln::cuda::gemm_backend(0)?);
/// }
/// # Ok(())
/// # }
/// ```
pub fn gemm_backend(ordinal: usize) -> Result<GemmBackend> {
    let dev = cuda::device(ordinal)?;
    Ok(blas::backend(&dev))
}

/// Chooses the GEMM of device `ordinal` from code, overriding `KILN_CUDA_GEMM`:
/// [`GemmChoice::Auto`] (cuBLASLt where usable), [`GemmChoice::Kiln`] (kiln's kernels
/// always) or [`GemmChoice::Vendor`], which is an `Err` naming the reason where cuBLASLt
/// is not usable (the choice then stays as it was). `KILN_CUDA_GEMM=vendor` in the
/// environment instead falls back to kiln's kernels, and [`gemm_backend`] says why.
pub fn set_gemm_backend(ordinal: usize, choice: GemmChoice) -> Result<()> {
    let dev = cuda::device(ordinal)?;
    blas::set_choice(&dev, choice)
}

/// How many times in this process a stream of the emulated device was made to wait for
/// an event (`cuStreamWaitEvent`): the compute stream waits once per batch a
/// `DataLoader` uploads.
#[cfg(feature = "cuda-emulator")]
pub fn emulated_stream_waits() -> u64 {
    crate::backend::cuda::runtime::emulator::stream_wait_count()
}
