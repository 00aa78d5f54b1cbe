//! Creating tensors: constants, host data, random numbers.

use super::Tensor;
use crate::backend::{CpuStorage, Storage};
use crate::dtype::WithDType;
use crate::shape::checked_numel;
use crate::{rng, DType, Device, Error, Result};

impl Tensor {
    /// A tensor of `shape` filled with `value`, converted to `dtype` by PyTorch's
    /// rules for a scalar: an `Err` naming `value` when the dtype cannot hold it
    /// (`300` or NaN in U8, `1e6` in F16), a negative integer wrapping into U8 (`-1`
    /// is 255), a fraction truncated into an integer dtype (`2.7` is 2). The same
    /// conversion serves [`Tensor::fill_`], [`Tensor::masked_fill`] and
    /// [`Tensor::clamp`]'s bounds.
    pub fn full(shape: &[usize], value: f64, dtype: DType, device: &Device) -> Result<Tensor> {
        let value = checked_scalar(dtype, "value", value)?;
        let n = alloc_len("full", shape, dtype)?;
        Ok(Tensor::from_storage(
            Storage::full(device, n, value, dtype)?,
            shape,
        ))
    }

    /// Zeros.
    pub fn zeros(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::full(shape, 0.0, dtype, device)
    }

    /// Ones.
    pub fn ones(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        Tensor::full(shape, 1.0, dtype, device)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Tensor::zeros(self.shape(), self.dtype(), &self.device())
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Result<Tensor> {
        Tensor::ones(self.shape(), self.dtype(), &self.device())
    }

    /// A tensor holding `data` in row-major order; its length must match `shape`.
    pub fn from_vec<T: WithDType>(
        data: Vec<T>,
        shape: &[usize],
        device: &Device,
    ) -> Result<Tensor> {
        let expected = checked_numel("from_vec", shape)?;
        if data.len() != expected {
            return Err(Error::ElementCount {
                op: "from_vec",
                shape: shape.to_vec(),
                expected,
                got: data.len(),
            });
        }
        Tensor::from_cpu(CpuStorage::from_vec(data), shape, device)
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar<T: WithDType>(value: T, device: &Device) -> Result<Tensor> {
        Tensor::from_vec(vec![value], &[], device)
    }

    /// `[0, 1, .., n-1]` as a 1-D tensor of `dtype`.
    pub fn arange(n: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        alloc_len("arange", &[n], dtype)?;
        Ok(Tensor::from_storage(
            Storage::arange(device, n, dtype)?,
            &[n],
        ))
    }

    /// Uniform samples in [0, 1) from kiln's seeded Philox generator, computed on
    /// `device` (the same values on every device for the same seed).
    pub fn rand(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let n = random_len("rand", shape, dtype)?;
        let stream = rng::reserve(n);
        Ok(Tensor::from_storage(
            Storage::rand(device, stream, n, dtype)?,
            shape,
        ))
    }

    /// Standard normal samples from kiln's seeded Philox generator, computed on
    /// `device` (Box–Muller in f64 on every device).
    pub fn randn(shape: &[usize], dtype: DType, device: &Device) -> Result<Tensor> {
        let n = random_len("randn", shape, dtype)?;
        let stream = rng::reserve(rng::normal_words(n));
        Ok(Tensor::from_storage(
            Storage::randn(device, stream, n, dtype)?,
            shape,
        ))
    }

    /// Host data placed on `device`.
    pub(crate) fn from_cpu(
        storage: CpuStorage,
        shape: &[usize],
        device: &Device,
    ) -> Result<Tensor> {
        Tensor::from_storage(Storage::Cpu(storage), shape).to_device(device)
    }
}

/// The element count of a random tensor: float dtypes only (samples are made in
/// `dtype` directly, on every backend).
fn random_len(op: &'static str, shape: &[usize], dtype: DType) -> Result<usize> {
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op, dtype });
    }
    alloc_len(op, shape, dtype)
}

/// The element count of a new tensor of `shape`, or an error when the count or its
/// size in bytes overflows (such a request would otherwise abort the process).
fn alloc_len(op: &'static str, shape: &[usize], dtype: DType) -> Result<usize> {
    let n = checked_numel(op, shape)?;
    match n.checked_mul(dtype.size_in_bytes()) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(n),
        _ => Err(Error::shape(
            op,
            format!("shape {shape:?} of {dtype:?} needs more bytes than can be addressed"),
        )),
    }
}

/// The bytes of [`rng_state`]: the seed, then the offset, little-endian.
const STATE_BYTES: usize = 16;

/// The state of kiln's random generator (PyTorch's `get_rng_state`), to resume a run
/// with the same random numbers: a U8 CPU tensor of 16 bytes, the seed then the
/// Philox offset as little-endian u64s. There is one generator for every device (the
/// CPU and CUDA draw from one Philox stream, `src/rng.rs`), so this is also
/// the state of the CUDA dropout streams. Save it with [`crate::save_tensors`].
pub fn rng_state() -> Tensor {
    let (seed, offset) = rng::state();
    let mut bytes = Vec::with_capacity(STATE_BYTES);
    bytes.extend_from_slice(&seed.to_le_bytes());
    bytes.extend_from_slice(&offset.to_le_bytes());
    Tensor::from_vec(bytes, &[STATE_BYTES], &Device::Cpu).expect("a CPU tensor of matching shape")
}

/// Restores a state from [`rng_state`] (on any device): the random numbers that
/// follow are those that followed when it was taken. Err naming `state` unless it is
/// a U8 tensor of shape `[16]`; the generator is unchanged then.
pub fn set_rng_state(state: &Tensor) -> Result<()> {
    if state.dtype() != DType::U8 || state.shape() != [STATE_BYTES] {
        return Err(Error::arg(
            "state",
            format!(
                "must be a U8 tensor of shape [{STATE_BYTES}] from kiln::rng_state, got {:?} of shape {:?}",
                state.dtype(),
                state.shape()
            ),
        ));
    }
    let bytes = state.to_vec::<u8>()?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[8 * i..8 * i + 8]);
        u64::from_le_bytes(w)
    };
    rng::set_state(word(0), word(1));
    Ok(())
}

/// `value` as a `dtype` element ([`DType::scalar`]: PyTorch's rules), or an `Err`
/// naming the argument `name` that PyTorch's "cannot be converted" would be.
pub(crate) fn checked_scalar(dtype: DType, name: &'static str, value: f64) -> Result<f64> {
    dtype.scalar(value).ok_or_else(|| {
        Error::arg(
            name,
            format!("{value} cannot be converted to {dtype:?} without overflow"),
        )
    })
}
