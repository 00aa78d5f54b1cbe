//! The CUDA backend: device memory through a caching allocator, kernels from
//! `kernels/*.cu` compiled to PTX by build.rs, launched on one stream per device.
//!
//! Two seams keep the backend independent of the real driver, so an emulated device
//! can run the same launch code: [`launch::Executor`] (every kernel launch, by
//! [`kernels::KernelId`], grid, block, shared bytes and typed arguments, and every
//! copy) and [`allocator::RawAllocator`] (all device memory). `driver.rs` implements
//! both with the CUDA driver API (cudarc, loaded at run time).
//!
//! The op modules (`elementwise`, `reduce`, `matmul`, `softmax`, and the copy kernel in
//! `storage`)
//! implement the primitives of [`crate::backend::Storage`] for [`CudaStorage`]; each
//! mirrors the CPU backend's semantics, which the GPU tests compare against. A
//! primitive without a kernel yet can use [`CudaStorage::via_host`] (a correct but slow
//! round trip through the CPU backend).

pub mod allocator;
mod conv;
pub(crate) mod device;
mod driver;
mod dropout;
mod elementwise;
#[cfg(feature = "cuda-emulator")]
pub mod emulator;
mod fill;
pub mod kernels;
pub mod launch;
mod matmul;
mod optim;
mod pool;
mod random;
mod reduce;
mod softmax;
mod storage;

pub(crate) use storage::CudaStorage;

pub(crate) use device::{device, device_count, emulation_requested};
pub(crate) use kernels::kernels_built;
pub(crate) use random::philox_words;
