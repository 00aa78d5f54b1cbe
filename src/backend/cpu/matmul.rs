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

/// Below this many multiply-adds a product runs on one thread (a batch of them in
/// parallel, one product per task).
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
    // Whole products per thread when the batch has enough of them (or they are
    // small); else each product is split into bands over the threads.
    let per_product = batch > 1 && (m * n * k < SMALL_PRODUCT || batch >= threads);
    let product = |b: usize, dst: &mut [MaybeUninit<T>]| {
        let (lo, ro) = (ll.offset + b * ll.strides[0], rl.offset + b * rl.strides[0]);
        let product = Product {
            dst: dst.as_mut_ptr().cast::<T>(),
            n,
            k,
            // Not dereferenced when k = 0, where an empty operand's offset may be past its end.
            lhs: lhs.as_ptr().wrapping_add(lo),
            lhs_strides: [ll.strides[1], ll.strides[2]],
            rhs: rhs.as_ptr().wrapping_add(ro),
            rhs_strides: [rl.strides[1], rl.strides[2]],
            bias,
            act,
        };
        let blocks = if per_product || m * n * k < SMALL_PRODUCT {
            1
        } else {
            threads
        };
        product.run_split(m, blocks);
    };
    let slots = &mut out.spare_capacity_mut()[..len];
    if per_product && threads > 1 {
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
    Ok(out)
}

/// One m × n product `dst = act(lhs · rhs + bias)` (strided operands, `dst`
/// contiguous rows of `n`), shared by the threads that each compute a block of it.
struct Product<'a, T> {
    dst: *mut T,
    n: usize,
    k: usize,
    lhs: *const T,
    /// (row, column) strides.
    lhs_strides: [usize; 2],
    rhs: *const T,
    rhs_strides: [usize; 2],
    /// `n` values added to every row.
    bias: Option<&'a [T]>,
    act: Activation,
}

// SAFETY: the pointers are only dereferenced by `block`, whose callers give each
// thread a disjoint block of `dst`; the operands are only read.
unsafe impl<T: Sync> Sync for Product<'_, T> {}

impl<T: Float> Product<'_, T> {
    /// The `m` rows computed as `blocks` single-threaded GEMMs in parallel, over
    /// bands of rows, or of columns when the output is wider than tall.
    ///
    /// Why not the `gemm` crate's own threading: on the small-k products of a
    /// transformer (2048 × 96 · 96 × 384) it made two threads slower than one, while
    /// independent bands halve the time; each band repacks its share, which costs
    /// little next to the product once a band has a few hundred rows or columns.
    fn run_split(&self, m: usize, blocks: usize) {
        let by_rows = m >= self.n;
        let extent = if by_rows { m } else { self.n };
        // Bands in whole micro-kernel tiles (16 covers the f32 and f64 kernels' rows).
        let band = extent.div_ceil(blocks).next_multiple_of(16).max(1);
        let bands = extent.div_ceil(band);
        let run = |i: usize| {
            let (start, len) = (i * band, band.min(extent - i * band));
            if by_rows {
                self.block(start, len, 0, self.n);
            } else {
                self.block(0, m, start, len);
            }
        };
        if bands > 1 {
            (0..bands).into_par_iter().for_each(run);
        } else {
            run(0);
        }
    }

    /// `dst[rows, cols] = lhs[rows, :] · rhs[:, cols]` for `rows` starting at `row`
    /// and `cols` starting at `col`, on this thread.
    fn block(&self, row: usize, rows: usize, col: usize, cols: usize) {
        let [lr, lc] = self.lhs_strides;
        let [rr, rc] = self.rhs_strides;
        let one = T::from_f64(1.0);
        if self.k == 0 {
            // An empty sum: zeros.
            for r in row..row + rows {
                // SAFETY: row r's `cols` elements from `col` lie in this thread's
                // block of `dst`; no other reference to them exists.
                unsafe { std::ptr::write_bytes(self.dst.add(r * self.n + col), 0, cols) };
            }
        } else {
            // SAFETY: `dst` holds m·n elements written with row stride n, column stride 1,
            // and (row, col) + (rows, cols) stays inside it; callers hand each thread a
            // disjoint block, so no element is written twice at once, and none is read.
            // The operand pointers start at in-bounds offsets and every element reached,
            // offset + i·row_stride + j·col_stride for the block's i and j < k, lies
            // inside the storage because the layouts come from valid tensor views.
            unsafe {
                gemm::gemm(
                    rows,
                    cols,
                    self.k,
                    self.dst.add(row * self.n + col),
                    1,
                    self.n as isize,
                    false,
                    self.lhs.add(row * lr),
                    lc as isize,
                    lr as isize,
                    self.rhs.add(col * rc),
                    rc as isize,
                    rr as isize,
                    one,
                    one,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        if self.bias.is_none() && self.act == Activation::None {
            return;
        }
        for r in row..row + rows {
            // SAFETY: row r's `cols` elements from `col` lie in this thread's block,
            // written by the GEMM above; no other reference to them exists.
            let out =
                unsafe { std::slice::from_raw_parts_mut(self.dst.add(r * self.n + col), cols) };
            let bias = self.bias.map(|b| &b[col..col + cols]);
            vectorized(Epilogue {
                out,
                bias,
                act: self.act,
            });
        }
    }
}

/// The epilogue over one row segment of the output, in place: the bias after the
/// product (the unfused `matmul` then `add` sum, so the fused linear layer gives
/// their bits), then the activation.
struct Epilogue<'a, T> {
    out: &'a mut [T],
    bias: Option<&'a [T]>,
    act: Activation,
}

impl<T: Float> pulp::WithSimd for Epilogue<'_, T> {
    type Output = ();
    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        if let Some(bias) = self.bias {
            self.out
                .iter_mut()
                .zip(bias)
                .for_each(|(o, &b)| *o = *o + b);
        }
        let zero = T::default();
        match self.act {
            Activation::None => {}
            // `x <= 0` is false for NaN, so NaN passes through as in PyTorch.
            Activation::Relu => self.out.iter_mut().for_each(|x| {
                if *x <= zero {
                    *x = zero
                }
            }),
            Activation::GeluTanh => self.out.iter_mut().for_each(|x| *x = x.gelu_tanh()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    /// Products split into bands of rows (tall outputs) and of columns (wide ones),
    /// with an uneven last band, transposed operands, and the bias and ReLU applied
    /// per band, equal a plain triple loop; an empty sum (k = 0) gives relu(bias).
    #[test]
    fn split_products_equal_the_plain_sum() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let shapes = [
            (301, 40, 70),
            (40, 301, 70),
            (2, 9000, 64),
            (700, 700, 3),
            (3, 5, 0),
        ];
        for (m, n, k) in shapes {
            for (lhs_t, rhs_t, fused) in [(false, false, false), (true, true, true)] {
                let (a, b, bias) = (values(m * k, 1), values(k * n, 2), values(n, 3));
                // A transposed operand is stored (cols, rows) and read through swapped strides.
                let layout = |rows: usize, cols: usize, t: bool| Layout {
                    shape: vec![1, rows, cols],
                    strides: if t {
                        vec![0, 1, rows]
                    } else {
                        vec![0, cols, 1]
                    },
                    offset: 0,
                };
                let (al, bl) = (layout(m, k, lhs_t), layout(k, n, rhs_t));
                let dims = MatmulDims { batch: 1, m, n, k };
                let (bias, act) = match fused {
                    true => (Some(&bias[..]), Activation::Relu),
                    false => (None, Activation::None),
                };
                let out = pool
                    .install(|| matmul(&a, &al, &b, &bl, dims, bias, act))
                    .unwrap();
                let at = |v: &[f64], l: &Layout, i: usize, j: usize| {
                    v[i * l.strides[1] + j * l.strides[2]]
                };
                for (i, j) in [
                    (0, 0),
                    (m - 1, n - 1),
                    (m / 2, n / 3),
                    (m - 1, 0),
                    (0, n - 1),
                ] {
                    let sum: f64 = (0..k).map(|p| at(&a, &al, i, p) * at(&b, &bl, p, j)).sum();
                    let want = match bias {
                        Some(bias) => (sum + bias[j]).max(0.0),
                        None => sum,
                    };
                    let got = out[i * n + j];
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{m}x{n}x{k} ({i}, {j}): {got} vs {want}"
                    );
                }
            }
        }
    }
}
