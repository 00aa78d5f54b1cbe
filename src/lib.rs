//! # kiln
//!
//! A deep-learning framework for NVIDIA GPUs, with a CPU backend that is both the
//! correctness reference and the default where there is no GPU.
//!
//! ```
//! use kiln::{DType, Device, Tensor};
//! # fn main() -> kiln::Result<()> {
//! kiln::manual_seed(0);
//! let dev = Device::cuda_if_available(0);
//! let w = Tensor::randn(&[3, 4], DType::F32, &dev)?.requires_grad();
//! let x = Tensor::randn(&[5, 4], DType::F32, &dev)?;
//! let loss = x.matmul(&w.transpose(0, 1)?)?.relu()?.sum_all()?;
//! loss.backward()?;
//! assert_eq!(w.grad().unwrap().shape(), &[3, 4]);
//! # Ok(())
//! # }
//! ```
//!
//! Layers, bottom to top: the backends (CPU, CUDA; internal) → [`Tensor`] →
//! [`autograd`] → [`nn::functional`] → [`nn`] modules → [`optim`]. [`cuda`] manages
//! CUDA devices (memory statistics, the allocator cache); [`distributed`] is where the
//! ranks of a multi-process run meet; [`profiler`] shows where a step's time goes.
//! `docs/ARCHITECTURE.md` in the repository says where each op's code lives and how to
//! add one.
#![warn(missing_docs)]

// `#[derive(nn::Module)]` expands to `::kiln::...` paths; this makes them resolve
// inside kiln too.
extern crate self as kiln;

pub mod amp;
pub mod autograd;
pub(crate) mod backend;
pub mod cuda;
pub mod data;
mod device;
pub mod distributed;
mod dtype;
mod error;
#[cfg(feature = "models")]
pub mod models;
pub mod nn;
pub mod optim;
pub mod profiler;
mod rng;
mod shape;
mod tensor;
pub mod utils;

pub use amp::{autocast, autocast_dtype, autocast_off, is_autocast_enabled, AutocastGuard};
pub use autograd::{is_grad_enabled, no_grad, NoGradGuard};
pub use device::{Device, ParseDeviceError};
pub use dtype::{DType, WithDType};
pub use error::{Error, Result};
pub use nn::checkpoint::{load_tensors, save_tensors};
pub use rng::manual_seed;
pub use tensor::{einsum, rng_state, set_rng_state, Tensor, TensorId};

/// The names most programs need: `use kiln::prelude::*;`.
pub mod prelude {
    pub use crate::nn::{self, functional as F, Forward, Module};
    pub use crate::{DType, Device, Result, Tensor};
}

impl Tensor {
    /// Computes the gradient of this one-element tensor with respect to every leaf
    /// it depends on and adds it to each leaf's [`Tensor::grad`]. Then the graph is
    /// released (its saved tensors freed), as in PyTorch: a second `backward` through
    /// any part of it is [`Error::GraphReleased`] and changes no gradient. Use
    /// [`Tensor::backward_retain_graph`] for the calls before the last.
    pub fn backward(&self) -> Result<()> {
        autograd::backward(self, false)
    }

    /// [`Tensor::backward`] that keeps the graph for another `backward` (PyTorch's
    /// `backward(retain_graph=True)`); gradients accumulate over the calls.
    pub fn backward_retain_graph(&self) -> Result<()> {
        autograd::backward(self, true)
    }
}

/// Pieces of kiln's internals that its own benchmarks and tests reach into (the
/// caching allocator over a host raw allocator, the Philox stream dropout uses, a
/// thread's own generator for tests that need a seed's numbers).
/// Not part of the API: anything here may change in any release.
#[doc(hidden)]
pub mod internals {
    pub use crate::backend::cuda::runtime::allocator::{
        CachingAllocator, HostRawAllocator, RawAllocator, StreamId,
    };
    pub use crate::rng::{keep_threshold, thread_generator, PhiloxStream, ThreadGenerator};
}
