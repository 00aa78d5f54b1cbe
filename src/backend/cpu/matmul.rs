//! Batched matrix multiplication through the `gemm` crate (a BLAS-class GEMM in
//! pure Rust that reads strided operands, so transposed views need no copy), and the
//! linear layer's fused form (f32, f64): the product, then the bias and the
//! activation over the output (the unfused ops' bits, without their extra buffers).

use super::{Activation, MatmulDims, MatmulOps};
use crate::backend::cpu::dtype::contiguous_as;
use crate::backend::cpu::math::Float;
use crate::backend::cpu::{alloc, vectorized};
use crate::backend::CpuStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

impl MatmulOps for CpuStorage {
    fn matmul(
        &self,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
        dims: MatmulDims,
    ) -> Result<CpuStorage> {
        self.epilogue(ll, rhs, rl, dims, None, Activation::None)
    }

    fn matmul_epilogue(
        &self,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
        dims: MatmulDims,
        bias: Option<(&CpuStorage, usize)>,
        act: Activation,
    ) -> Result<Option<CpuStorage>> {
        // Halves compose with a rounding to their dtype after the product and after
        // the bias; one rounding of the f32 result would differ from them.
        let exact = matches!(self.dtype(), DType::F32 | DType::F64);
        if !exact || bias.is_some_and(|(b, _)| b.dtype() != self.dtype()) || dims.batch != 1 {
            return Ok(None);
        }
        self.epilogue(ll, rhs, rl, dims, bias, act).map(Some)
    }
}

impl CpuStorage {
    /// `act(lhs · rhs + bias)` in the compute type, converted back.
    fn epilogue(
        &self,
        ll: &Layout,
        rhs: &CpuStorage,
        rl: &Layout,
        dims: MatmulDims,
        bias: Option<(&CpuStorage, usize)>,
        act: Activation,
    ) -> Result<CpuStorage> {
        let dtype = self.dtype();
        if dtype != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                expected: dtype,
                got: rhs.dtype(),
            });
        }
        if !dtype.is_float() {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype,
            });
        }
        let ((a, al), (b, bl)) = (self.widened(ll)?, rhs.widened(rl)?);
        let bias_at = |o: usize| Layout {
            shape: vec![dims.n],
            strides: vec![1],
            offset: o,
        };
        let out = match (a.as_ref(), b.as_ref()) {
            (CpuStorage::F64(x), CpuStorage::F64(y)) => {
                let bias = bias
                    .map(|(s, o)| contiguous_as::<f64>(s, &bias_at(o)))
                    .transpose()?;
                CpuStorage::F64(matmul(x, &al, y, &bl, dims, bias.as_deref(), act)?)
            }
            (CpuStorage::F32(x), CpuStorage::F32(y)) => {
                let bias = bias
                    .map(|(s, o)| contiguous_as::<f32>(s, &bias_at(o)))
                    .transpose()?;
                CpuStorage::F32(matmul(x, &al, y, &bl, dims, bias.as_deref(), act)?)
            }
            _ => unreachable!("float operands of one dtype, f16/bf16 widened to f32"),
        };
        out.convert(dtype)
    }
}

/// Below this many multiply-adds per product, parallelise over the batch instead.
const SMALL_PRODUCT: usize = 64 * 64 * 64;

/// `out[b] = act(lhs[b] · rhs[b] + bias)` for 3-D layouts (batch, rows, cols); out
/// is contiguous, `bias` `n` values added to every row.
pub(crate) fn matmul<T: Float>(
    lhs: &[T],
    ll: &Layout,
    rhs: &[T],
    rl: &Layout,
    dims: MatmulDims,
    bias: Option<&[T]>,
    act: Activation,
) -> Result<Vec<T>> {
    let MatmulDims { batch, m, n, k } = dims;
    let len = batch
        .checked_mul(m)
        .and_then(|bm| bm.checked_mul(n))
        .ok_or_else(|| Error::shape("matmul", format!("{dims:?} has too many elements")))?;
    let mut out = alloc::buffer(len)?;
    if len == 0 {
        return Ok(out);
    }
    let threads = rayon::current_num_threads();
    let small = m * n * k < SMALL_PRODUCT && batch > 1;
    let product = |b: usize, dst: &mut [MaybeUninit<T>]| {
        // The GEMM overwrites `dst` unread; an empty product (k = 0) is zeros.
        if k == 0 {
            dst.iter_mut().for_each(|d| {
                d.write(T::default());
            });
            return;
        }
        let parallelism = if small || m * n * k < SMALL_PRODUCT || threads == 1 {
            gemm::Parallelism::None
        } else {
            gemm::Parallelism::Rayon(threads)
        };
        let (lo, ro) = (ll.offset + b * ll.strides[0], rl.offset + b * rl.strides[0]);
        let one = T::from_f64(1.0);
        // SAFETY: `dst` holds m*n elements written with row stride n, column stride 1
        // (a MaybeUninit<T> has T's layout; they are only written, never read). The operand pointers start at in-bounds offsets, and
        // every element they reach, offset + i*row_stride + j*col_stride for i < rows,
        // j < cols, lies inside the storage because the layouts come from valid tensor
        // views of these slices.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                dst.as_mut_ptr().cast::<T>(),
                1,
                n as isize,
                false,
                lhs.as_ptr().add(lo),
                ll.strides[2] as isize,
                ll.strides[1] as isize,
                rhs.as_ptr().add(ro),
                rl.strides[2] as isize,
                rl.strides[1] as isize,
                one,
                one,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let slots = &mut out.spare_capacity_mut()[..len];
    if small && threads > 1 {
        slots
            .par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(b, dst)| product(b, dst));
    } else {
        slots
            .chunks_mut(m * n)
            .enumerate()
            .for_each(|(b, dst)| product(b, dst));
    }
    // SAFETY: the capacity is at least `len`, and each of the `batch` chunks of m*n
    // slots was written above: zeros (k = 0) or by the GEMM, which stores every
    // element of its m × n output; T is Copy.
    unsafe { out.set_len(len) };
    // The bias after the whole product, as the unfused `matmul` then `add` sum: the
    // fused linear layer gives their bits.
    if let Some(bias) = bias {
        for row in out.chunks_mut(n) {
            row.iter_mut().zip(bias).for_each(|(o, &b)| *o = *o + b);
        }
    }
    apply(&mut out, act);
    Ok(out)
}

/// The epilogue's activation, in place.
fn apply<T: Float>(out: &mut [T], act: Activation) {
    struct Act<'a, T>(&'a mut [T], Activation);
    impl<T: Float> pulp::WithSimd for Act<'_, T> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) {
            let zero = T::default();
            match self.1 {
                Activation::None => {}
                // `x <= 0` is false for NaN, so NaN passes through as in PyTorch.
                Activation::Relu => self.0.iter_mut().for_each(|x| {
                    if *x <= zero {
                        *x = zero
                    }
                }),
                Activation::GeluTanh => self.0.iter_mut().for_each(|x| *x = x.gelu_tanh()),
            }
        }
    }
    if act != Activation::None {
        out.par_chunks_mut(1 << 14)
            .for_each(|c| vectorized(Act(c, act)));
    }
}
