//! The CUDA runtime under every op: driver, devices and streams, kernel registry,
//! launches, memory, staging, cuBLASLt loading, settings, and the emulated device.

pub mod allocator;
pub(crate) mod blas;
pub(crate) mod config;
pub(crate) mod device;
mod driver;
mod driver_api;
#[cfg(feature = "cuda-emulator")]
pub mod emulator;
pub mod kernels;
pub mod launch;
pub(crate) mod staging;
mod storage;

pub(crate) use device::{device, device_count, emulation_requested};
pub(crate) use kernels::kernels_built;
pub(crate) use storage::CudaStorage;
