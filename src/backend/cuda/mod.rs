//! The CUDA backend: device memory through a caching allocator, kernels from
//! `kernels/*.cu` compiled to PTX by build.rs, launched on one stream per device.
//!
//! Two parts:
//!
//! * [`runtime`]: what every op uses — the driver (cudarc, loaded at run time), the
//!   device and its streams, the kernel registry, launches, the caching allocator,
//!   pinned staging for uploads, cuBLASLt loading, the settings (TF32, GEMM choice),
//!   [`CudaStorage`] and its copies, and the emulated device.
//! * `ops/<family>.rs`: one file per op family, implementing that family's trait for
//!   [`CudaStorage`] by launching `kernels/<family>.cu`. Each is declared by its
//!   family's trait file (`backend/<family>.rs`), beside the CPU implementation, so a
//!   family is registered in one place; each mirrors the CPU backend's semantics, which
//!   the golden tests check on every device. Nothing runs through the host.
//!
//! Two seams keep the backend independent of the real driver, so an emulated device
//! can run the same launch code: [`runtime::launch::Executor`] (every kernel launch and
//! every copy) and [`runtime::allocator::RawAllocator`] (all device memory);
//! `runtime/driver.rs` implements both with the CUDA driver API.

pub(crate) mod nccl;
pub(crate) mod runtime;

pub(crate) use runtime::{device, device_count, emulation_requested, kernels_built, CudaStorage};
