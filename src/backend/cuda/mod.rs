//! The CUDA backend: device memory through a caching allocator, kernels from
//! `kernels/*.cu` compiled to PTX by build.rs, launched on one stream per device.
//!
//! Two seams keep the backend independent of the real driver, so an emulated device
//! can run the same launch code: [`launch::Executor`] (every kernel launch, by
//! [`kernels::KernelId`], grid, block, shared bytes and typed arguments, and every
//! copy) and [`allocator::RawAllocator`] (all device memory). `driver.rs` implements
//! both with the CUDA driver API (cudarc, loaded at run time).
//!
//! One module per op family (`elementwise`, `reduce`, `softmax`, `matmul`, `conv`,
//! `pool`, `dropout`, `optim`, `fill`, and the copy kernel in `storage`) implements that
//! family's backend trait for [`CudaStorage`], launching `kernels/<family>.cu`; each
//! mirrors the CPU backend's semantics, which the golden tests check on every device.
//! Nothing runs through the host.

pub mod allocator;
mod amp;
mod attention;
pub(crate) mod blas;
mod conv;
pub(crate) mod device;
mod driver;
mod dropout;
mod elementwise;
#[cfg(feature = "cuda-emulator")]
pub mod emulator;
mod fill;
mod image;
mod index;
pub mod kernels;
pub mod launch;
mod loss;
mod matmul;
mod norm;
mod optim;
mod pad;
mod pool;
mod random;
mod reduce;
mod softmax;
pub(crate) mod staging;
mod storage;

pub(crate) use storage::CudaStorage;

pub(crate) use device::{device, device_count, emulation_requested};
pub(crate) use kernels::kernels_built;
pub(crate) use random::philox_words;
