//! Creating storage on CUDA: `kernels/fill.cu` writes constants, ranges and Philox
//! samples in device memory, so nothing is built on the host and uploaded.

use super::FillOps;
use crate::backend::cuda::runtime::device::CudaDevice;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::rng::PhiloxStream;
use crate::{DType, Result};
use std::sync::Arc;

/// `out[i] = convert(start + step·i)` (just `start` when `step` is 0, keeping -0.0).
fn fill(
    dev: &Arc<CudaDevice>,
    n: usize,
    start: f64,
    step: f64,
    dtype: DType,
) -> Result<CudaStorage> {
    let kernel = KernelId::for_dtype("fill", dtype)?;
    let out = CudaStorage::alloc(dev, n, dtype)?;
    if n > 0 {
        dev.launch_grid_stride(
            kernel,
            n,
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
    let kernel = KernelId::for_dtype(family, dtype)?;
    let out = CudaStorage::alloc(dev, n, dtype)?;
    if n > 0 {
        dev.launch_grid_stride(
            kernel,
            n.div_ceil(4),
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

/// `n` words of `stream` computed on the device (the same words as
/// [`PhiloxStream::words`] on the CPU).
pub(crate) fn philox_words(
    dev: &Arc<CudaDevice>,
    stream: PhiloxStream,
    n: usize,
) -> Result<Vec<u32>> {
    let mut words = vec![0u32; n];
    if n == 0 {
        return Ok(words);
    }
    let buf = dev.alloc(n * 4)?;
    dev.launch_grid_stride(
        KernelId::PhiloxWords,
        n.div_ceil(4),
        &[
            KernelArg::U64(n as u64),
            KernelArg::U64(stream.seed),
            KernelArg::U64(stream.offset),
            KernelArg::Ptr(buf.ptr()),
        ],
    )?;
    let mut bytes = vec![0u8; n * 4];
    dev.copy_dtoh(&mut bytes, buf.ptr())?;
    for (w, b) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *w = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    }
    Ok(words)
}
