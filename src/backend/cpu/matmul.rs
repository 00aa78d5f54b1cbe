//! Batched matrix multiplication through the `gemm` crate (a BLAS-class GEMM in
//! pure Rust that reads strided operands, so transposed views need no copy).

use super::{MatmulDims, MatmulOps};
use crate::backend::CpuStorage;
use crate::shape::Layout;
use crate::{Error, Result};
use rayon::prelude::*;

impl MatmulOps for CpuStorage {
    fn matmul(
        &self,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
        dims: MatmulDims,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        let ((a, al), (b, bl)) = (self.widened(ll)?, rhs.widened(rl)?);
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => {
                CpuStorage::F32(matmul(x, &al, y, &bl, dims)?)
            }
            (CpuStorage::F64(x), CpuStorage::F64(y)) => {
                CpuStorage::F64(matmul(x, &al, y, &bl, dims)?)
            }
            _ if dtype != rhs.dtype() => {
                return Err(Error::DTypeMismatch {
                    op: "matmul",
                    expected: dtype,
                    got: rhs.dtype(),
                })
            }
            _ => {
                return Err(Error::UnsupportedDType {
                    op: "matmul",
                    dtype,
                })
            }
        };
        out.convert(dtype)
    }
}

/// Below this many multiply-adds per product, parallelise over the batch instead.
const SMALL_PRODUCT: usize = 64 * 64 * 64;

/// `out[b] = lhs[b] · rhs[b]` for 3-D layouts (batch, rows, cols); out is contiguous.
pub(crate) fn matmul<T: crate::dtype::WithDType + Default>(
    lhs: &[T],
    ll: &Layout,
    rhs: &[T],
    rl: &Layout,
    dims: MatmulDims,
) -> Result<Vec<T>> {
    let MatmulDims { batch, m, n, k } = dims;
    let len = batch
        .checked_mul(m)
        .and_then(|bm| bm.checked_mul(n))
        .ok_or_else(|| Error::shape("matmul", format!("{dims:?} has too many elements")))?;
    let mut out = crate::backend::cpu::alloc::filled(len, T::default())?;
    if out.is_empty() {
        return Ok(out);
    }
    let small = m * n * k < SMALL_PRODUCT && batch > 1;
    let product = |b: usize, dst: &mut [T]| {
        let parallelism = if small || m * n * k < SMALL_PRODUCT {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(rayon::current_num_threads())
        };
        let (lo, ro) = (ll.offset + b * ll.strides[0], rl.offset + b * rl.strides[0]);
        let (one, zero) = (T::from_f64(1.0), T::from_f64(0.0));
        // k == 0 gives a zero matrix, already in `dst`.
        if k == 0 {
            return;
        }
        // SAFETY: `dst` holds m*n elements written with row stride n, column stride 1.
        // The operand pointers start at in-bounds offsets, and every element they reach,
        // offset + i*row_stride + j*col_stride for i < rows, j < cols, lies inside the
        // storage because the layouts come from valid tensor views of these slices.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr(),
                1,
                n as isize,
                false,
                lhs.as_ptr().add(lo),
                ll.strides[2] as isize,
                ll.strides[1] as isize,
                rhs.as_ptr().add(ro),
                rl.strides[2] as isize,
                rl.strides[1] as isize,
                zero,
                one,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    if small {
        out.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(b, dst)| product(b, dst));
    } else {
        out.chunks_mut(m * n)
            .enumerate()
            .for_each(|(b, dst)| product(b, dst));
    }
    Ok(out)
}
