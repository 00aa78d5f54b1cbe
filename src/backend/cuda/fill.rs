//! Creating storage on CUDA: `kernels/fill.cu` writes constants, ranges and Philox
//! samples in device memory, so nothing is built on the host and uploaded.

use super::device::CudaDevice;
use super::kernels::KernelId;
use super::launch::{KernelArg, LaunchConfig};
use super::storage::CudaStorage;
use crate::backend::FillOps;
use crate::rng::PhiloxStream;
use crate::{DType, Error, Result};
use std::sync::Arc;

/// The kernel `<family>_<dtype>` of `kernels/fill.cu` (`fill` for every dtype,
/// `rand` and `randn` for float dtypes).
fn kernel(family: &'static str, dtype: DType) -> Result<KernelId> {
    use KernelId::*;
    Ok(match (family, dtype) {
        ("fill", DType::F32) => FillF32,
        ("fill", DType::F64) => FillF64,
        ("fill", DType::F16) => FillF16,
        ("fill", DType::BF16) => FillBf16,
        ("fill", DType::I64) => FillI64,
        ("fill", DType::U8) => FillU8,
        ("rand", DType::F32) => RandF32,
        ("rand", DType::F64) => RandF64,
        ("rand", DType::F16) => RandF16,
        ("rand", DType::BF16) => RandBf16,
        ("randn", DType::F32) => RandnF32,
        ("randn", DType::F64) => RandnF64,
        ("randn", DType::F16) => RandnF16,
        ("randn", DType::BF16) => RandnBf16,
        (op, dtype) => return Err(Error::UnsupportedDType { op, dtype }),
    })
}

/// `out[i] = convert(start + step·i)` (just `start` when `step` is 0, keeping -0.0).
fn fill(
    dev: &Arc<CudaDevice>,
    n: usize,
    start: f64,
    step: f64,
    dtype: DType,
) -> Result<CudaStorage> {
    let kernel = kernel("fill", dtype)?;
    let out = CudaStorage::alloc(dev, n, dtype)?;
    if n > 0 {
        dev.launch(
            kernel,
            LaunchConfig::elementwise(n as u64, dev.sm_count()),
            &[
                KernelArg::U64(n as u64),
                KernelArg::F64(start),
                KernelArg::F64(step),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
    }
    Ok(out)
}

/// `n` samples of `family` ("rand" or "randn") from `stream`: one thread per Philox
/// block of four elements.
fn sample(
    dev: &Arc<CudaDevice>,
    family: &'static str,
    stream: PhiloxStream,
    n: usize,
    dtype: DType,
) -> Result<CudaStorage> {
    let kernel = kernel(family, dtype)?;
    let out = CudaStorage::alloc(dev, n, dtype)?;
    if n > 0 {
        dev.launch(
            kernel,
            LaunchConfig::elementwise(n.div_ceil(4) as u64, dev.sm_count()),
            &[
                KernelArg::U64(n as u64),
                KernelArg::U64(stream.seed),
                KernelArg::U64(stream.offset),
                KernelArg::Ptr(out.ptr()),
            ],
        )?;
    }
    Ok(out)
}

impl FillOps for CudaStorage {
    type Place = Arc<CudaDevice>;

    fn full(dev: &Arc<CudaDevice>, n: usize, value: f64, dtype: DType) -> Result<CudaStorage> {
        fill(dev, n, value, 0.0, dtype)
    }

    fn arange(dev: &Arc<CudaDevice>, n: usize, dtype: DType) -> Result<CudaStorage> {
        fill(dev, n, 0.0, 1.0, dtype)
    }

    fn rand(
        dev: &Arc<CudaDevice>,
        stream: PhiloxStream,
        n: usize,
        dtype: DType,
    ) -> Result<CudaStorage> {
        sample(dev, "rand", stream, n, dtype)
    }

    fn randn(
        dev: &Arc<CudaDevice>,
        stream: PhiloxStream,
        n: usize,
        dtype: DType,
    ) -> Result<CudaStorage> {
        sample(dev, "randn", stream, n, dtype)
    }
}
