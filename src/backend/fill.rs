//! Creating storage on a device: constants, ranges and random numbers, computed
//! where they will live instead of on the host and then uploaded.

use super::{CpuStorage, CudaStorage, Storage};
use crate::rng::PhiloxStream;
use crate::{DType, Device, Result};

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/fill.rs"]
mod cpu;
#[path = "cuda/ops/fill.rs"]
mod cuda;

pub(crate) use cuda::philox_words;

/// The creation primitives of a backend. Each makes a contiguous storage of `n`
/// elements of `dtype` at `place`.
pub(crate) trait FillOps: Sized {
    /// Where the backend creates memory: `()` for the host, the device for CUDA.
    type Place;

    /// `n` copies of `value` converted to `dtype` (as a host f64 → `dtype` conversion).
    fn full(place: &Self::Place, n: usize, value: f64, dtype: DType) -> Result<Self>;

    /// `[0, 1, .., n-1]` converted to `dtype`.
    fn arange(place: &Self::Place, n: usize, dtype: DType) -> Result<Self>;

    /// Uniform samples in [0, 1): element `i` is `rng::uniform(stream.word(i))`
    /// converted to `dtype` (float dtypes), bit for bit on every backend.
    fn rand(place: &Self::Place, stream: PhiloxStream, n: usize, dtype: DType) -> Result<Self>;

    /// Standard normal samples: elements `2j`, `2j+1` are `rng::normal_pair` of words
    /// `2j`, `2j+1` (Box–Muller in f64), converted to `dtype` (float dtypes).
    fn randn(place: &Self::Place, stream: PhiloxStream, n: usize, dtype: DType) -> Result<Self>;
}

/// `create!(device, method(args..))`: the [`FillOps`] constructor on `device`'s
/// backend, wrapped into [`Storage`]. Creation has no storage operand to dispatch on,
/// so the device picks the backend.
macro_rules! create {
    ($device:expr, $method:ident($($arg:expr),*)) => {
        match $device {
            Device::Cpu => Ok(Storage::Cpu(<CpuStorage as FillOps>::$method(&(), $($arg),*)?)),
            Device::Cuda(ordinal) => Ok(Storage::Cuda(<CudaStorage as FillOps>::$method(
                &crate::backend::cuda::device(*ordinal)?,
                $($arg),*
            )?)),
        }
    };
}

impl Storage {
    /// See [`FillOps::full`].
    pub(crate) fn full(device: &Device, n: usize, value: f64, dtype: DType) -> Result<Storage> {
        create!(device, full(n, value, dtype))
    }

    /// See [`FillOps::arange`].
    pub(crate) fn arange(device: &Device, n: usize, dtype: DType) -> Result<Storage> {
        create!(device, arange(n, dtype))
    }

    /// See [`FillOps::rand`].
    pub(crate) fn rand(
        device: &Device,
        stream: PhiloxStream,
        n: usize,
        dtype: DType,
    ) -> Result<Storage> {
        create!(device, rand(stream, n, dtype))
    }

    /// See [`FillOps::randn`].
    pub(crate) fn randn(
        device: &Device,
        stream: PhiloxStream,
        n: usize,
        dtype: DType,
    ) -> Result<Storage> {
        create!(device, randn(stream, n, dtype))
    }
}
