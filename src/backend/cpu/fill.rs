//! Creating storage on the host: the reference for `kernels/fill.cu`. Each value is
//! computed in f64 and converted to the dtype as it is written, as every backend
//! must; the buffer is made in the target dtype (no f64 staging copy), fallibly.

use super::FillOps;
use crate::backend::cpu::dtype::{compute_dtype, dispatch_dtype};
use crate::backend::cpu::{alloc, CpuStorage};
use crate::dtype::WithDType;
use crate::rng::{self, PhiloxStream};
use crate::{DType, Result};
use rayon::prelude::*;

impl FillOps for CpuStorage {
    type Place = ();

    fn full(_: &(), n: usize, value: f64, dtype: DType) -> Result<CpuStorage> {
        CpuStorage::full(n, value, dtype)
    }

    fn arange(_: &(), n: usize, dtype: DType) -> Result<CpuStorage> {
        dispatch_dtype!(dtype, T => generate::<T>(n, |b| {
            std::array::from_fn(|k| (4 * b + k) as f64)
        }))
    }

    fn rand(_: &(), stream: PhiloxStream, n: usize, dtype: DType) -> Result<CpuStorage> {
        compute_dtype("rand", dtype)?;
        dispatch_dtype!(dtype, T => generate::<T>(n, |b| stream.block(b).map(rng::uniform)))
    }

    fn randn(_: &(), stream: PhiloxStream, n: usize, dtype: DType) -> Result<CpuStorage> {
        compute_dtype("randn", dtype)?;
        dispatch_dtype!(dtype, T => generate::<T>(n, |b| {
            let w = stream.block(b);
            let ([x0, x1], [x2, x3]) = (rng::normal_pair(w[0], w[1]), rng::normal_pair(w[2], w[3]));
            [x0, x1, x2, x3]
        }))
    }
}

/// Elements per parallel task; a multiple of 4, so every task starts on a Philox block.
const CHUNK: usize = 4096;

/// `n` elements of `T`, elements `4b .. 4b+4` being `quad(b)` converted from f64
/// (the last quad may be cut short), written in parallel.
fn generate<T: WithDType>(n: usize, quad: impl Fn(usize) -> [f64; 4] + Sync) -> Result<CpuStorage> {
    let mut out = alloc::filled(n, T::from_f64(0.0))?;
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(c, chunk)| {
            for (j, dst) in chunk.chunks_mut(4).enumerate() {
                dst.iter_mut()
                    .zip(quad(c * CHUNK / 4 + j))
                    .for_each(|(d, x)| *d = T::from_f64(x));
            }
        });
    Ok(CpuStorage::from_vec(out))
}
