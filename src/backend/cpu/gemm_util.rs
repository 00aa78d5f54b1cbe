//! A safe strided GEMM wrapper for the CPU neural-network kernels (conv, linear).

use super::dtype::Num;

/// The float types the kernels compute in (f16/bf16 are widened to f32 first).
pub(crate) trait Float: Num {}
impl Float for f32 {}
impl Float for f64 {}

/// A read-only matrix inside a slice: element (i, j) is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub rs: usize,
    pub cs: usize,
}

impl<'a, T> Mat<'a, T> {
    /// A row-major matrix with no gaps.
    pub fn rows(data: &'a [T], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (a view: strides swapped).
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }
}

/// True when every element the strides reach lies inside a slice of `len`.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`), `dst` row-major `m × n` with
/// row stride `dst_rs`. `parallel` lets the GEMM use rayon's threads.
pub(crate) fn gemm<T: Float>(
    dst: &mut [T],
    dst_rs: usize,
    accumulate: bool,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    parallel: bool,
) {
    gemm_scaled(dst, dst_rs, accumulate, T::from_f64(1.0), a, b, parallel)
}

/// [`gemm`] of `scale · a · b`: `dst = scale·a·b` (or `dst += scale·a·b`), the factor
/// applied by the GEMM to each finished dot product.
pub(crate) fn gemm_scaled<T: Float>(
    dst: &mut [T],
    dst_rs: usize,
    accumulate: bool,
    scale: T,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    parallel: bool,
) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(k, b.rows, "gemm: inner dimensions differ");
    assert!(fits(dst.len(), m, n, dst_rs, 1), "gemm: dst too small");
    assert!(fits(a.data.len(), m, k, a.rs, a.cs), "gemm: lhs too small");
    assert!(fits(b.data.len(), k, n, b.rs, b.cs), "gemm: rhs too small");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst[r * dst_rs..r * dst_rs + n].fill(T::default());
            }
        }
        return;
    }
    let parallelism = if parallel && m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    let one = T::from_f64(1.0);
    // SAFETY: the asserts above check that every element reached through the given
    // dimensions and strides lies inside its slice; `dst` is borrowed mutably, so it
    // cannot alias `a` or `b`. gemm writes dst[i*dst_rs + j] only for i < m, j < n.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            one,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}
