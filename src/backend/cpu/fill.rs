//! Creating storage on the host: the reference for `kernels/fill.cu`. Values are
//! made in f64 and converted to the dtype, as every backend must.

use super::dtype::compute_dtype;
use super::CpuStorage;
use crate::backend::FillOps;
use crate::rng::{self, PhiloxStream};
use crate::{DType, Result};

impl FillOps for CpuStorage {
    type Place = ();

    fn full(_: &(), n: usize, value: f64, dtype: DType) -> Result<CpuStorage> {
        Ok(CpuStorage::full(n, value, dtype))
    }

    fn arange(_: &(), n: usize, dtype: DType) -> Result<CpuStorage> {
        Ok(CpuStorage::F64((0..n).map(|i| i as f64).collect()).convert(dtype))
    }

    fn rand(_: &(), stream: PhiloxStream, n: usize, dtype: DType) -> Result<CpuStorage> {
        compute_dtype("rand", dtype)?;
        Ok(CpuStorage::F64(rng::uniform_values(stream, n)).convert(dtype))
    }

    fn randn(_: &(), stream: PhiloxStream, n: usize, dtype: DType) -> Result<CpuStorage> {
        compute_dtype("randn", dtype)?;
        Ok(CpuStorage::F64(rng::normal_values(stream, n)).convert(dtype))
    }
}
