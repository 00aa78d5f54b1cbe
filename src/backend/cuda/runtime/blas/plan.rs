//! The layout planner: how kiln's row-major, strided, batched matmul operands are
//! described to a column-major BLAS (cuBLASLt) without copies.
//!
//! kiln computes `C = A·B` with A (m×k), B (k×n), C (m×n) row-major and contiguous.
//! A column-major library sees the memory of a row-major C (m×n) as Cᵀ (n×m) with
//! leading dimension n, so kiln asks it for `Cᵀ = Bᵀ·Aᵀ`: the library's first operand
//! is kiln's B, its second is kiln's A, and its (M, N, K) are kiln's (n, m, k).
//!
//! Each operand is a strided view (row stride `rs`, column stride `cs`). The library
//! needs `op(X)` = the operand transposed; [`describe`] finds a stored column-major
//! matrix X and a transpose flag that give it:
//!
//! * `cs == 1` (rows contiguous): X is the operand's transpose, stored as is
//!   (`OP_N`, X is cols×rows, ld = rs);
//! * `rs == 1` (a transposed view): X is the operand itself (`OP_T`, X is rows×cols,
//!   ld = cs);
//! * anything else (a broadcast row or column, a step > 1 in both dims): no plan, and
//!   kiln's own kernel, which reads any strides, runs instead.
//!
//! A stride of a dimension of extent 1 is never used, so it does not constrain the
//! plan. The unit tests execute every plan with a column-major reference GEMM and
//! compare with a naive row-major product: the proof of the mapping without a GPU.

use crate::shape::Layout;
use crate::shape::MatmulDims;

/// A column-major transpose flag (`CUBLAS_OP_N` / `CUBLAS_OP_T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Trans {
    /// Use the stored matrix as is.
    N,
    /// Use the stored matrix transposed.
    T,
}

/// One operand as the column-major library reads it: a stored rows×cols matrix with
/// leading dimension `ld`, used through `trans`; matrix `b` of the batch starts at
/// element `offset + b·batch_stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Operand {
    /// Transpose flag.
    pub trans: Trans,
    /// Rows of the stored matrix.
    pub rows: u64,
    /// Columns of the stored matrix.
    pub cols: u64,
    /// Leading dimension (≥ max(1, rows)).
    pub ld: i64,
    /// Elements between consecutive matrices of the batch (0: the same matrix for all).
    pub batch_stride: i64,
}

/// A whole column-major GEMM: `D (M×N) = op(A) (M×K) · op(B) (K×N)`, `batch` times,
/// D contiguous (ld = M, batch stride M·N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GemmPlan {
    /// The library's first operand: kiln's right-hand side.
    pub a: Operand,
    /// The library's second operand: kiln's left-hand side.
    pub b: Operand,
    /// The library's M: kiln's n.
    pub m: u64,
    /// The library's N: kiln's m.
    pub n: u64,
    /// The contracted dimension.
    pub k: u64,
    /// Leading dimension of D.
    pub ldd: i64,
    /// Elements between consecutive matrices of D.
    pub batch_stride_d: i64,
    /// Number of products.
    pub batch: i32,
}

/// The column-major description of a row-major operand of extent rows×cols with strides
/// `(batch_stride, rs, cs)` whose transpose the library must read, or `None` when no
/// transpose flag and leading dimension describe it.
pub(crate) fn describe(
    rows: usize,
    cols: usize,
    batch_stride: usize,
    rs: usize,
    cs: usize,
) -> Option<Operand> {
    let batch_stride = i64::try_from(batch_stride).ok()?;
    let (r, c) = (u64::try_from(rows).ok()?, u64::try_from(cols).ok()?);
    // Rows contiguous: the stored matrix is cols×rows (column j of it = row j of ours).
    if cs == 1 || cols == 1 {
        let ld = if rows == 1 { cols.max(1) } else { rs };
        if ld >= cols.max(1) {
            return Some(Operand {
                trans: Trans::N,
                rows: c,
                cols: r,
                ld: i64::try_from(ld).ok()?,
                batch_stride,
            });
        }
    }
    // Columns contiguous: the stored matrix is ours, rows×cols, read transposed.
    if rs == 1 || rows == 1 {
        let ld = if cols == 1 { rows.max(1) } else { cs };
        if ld >= rows.max(1) {
            return Some(Operand {
                trans: Trans::T,
                rows: r,
                cols: c,
                ld: i64::try_from(ld).ok()?,
                batch_stride,
            });
        }
    }
    None
}

/// The plan for kiln's batched matmul (3-D layouts (batch, rows, cols), result
/// contiguous (batch, m, n)), or `None` when an operand has no column-major description
/// or a size exceeds the library's integer types. Empty problems have no plan (the
/// caller returns the empty result itself).
pub(crate) fn plan(lhs: &Layout, rhs: &Layout, dims: MatmulDims) -> Option<GemmPlan> {
    let MatmulDims { batch, m, n, k } = dims;
    if lhs.shape.len() != 3 || rhs.shape.len() != 3 || batch * m * n * k == 0 {
        return None;
    }
    let s = |l: &Layout, d: usize| if l.shape[0] == 1 { 0 } else { l.strides[d] };
    let a = describe(k, n, s(rhs, 0), rhs.strides[1], rhs.strides[2])?;
    let b = describe(m, k, s(lhs, 0), lhs.strides[1], lhs.strides[2])?;
    Some(GemmPlan {
        a,
        b,
        m: n as u64,
        n: m as u64,
        k: k as u64,
        ldd: i64::try_from(n).ok()?,
        batch_stride_d: i64::try_from(m.checked_mul(n)?).ok()?,
        batch: i32::try_from(batch).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `op(X)[i][j]` of a stored column-major matrix at `base`.
    fn op_at(x: &[f64], o: &Operand, base: usize, i: usize, j: usize) -> f64 {
        let (r, c) = match o.trans {
            Trans::N => (i, j),
            Trans::T => (j, i),
        };
        assert!(
            (r as u64) < o.rows && (c as u64) < o.cols,
            "inside the stored matrix"
        );
        x[base + r + c * o.ld as usize]
    }

    /// A column-major reference GEMM that executes `p` as the library would:
    /// D = op(A)·op(B), batched, D contiguous with ld = M.
    fn run_plan(p: &GemmPlan, a: &[f64], a_off: usize, b: &[f64], b_off: usize) -> Vec<f64> {
        let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
        assert!(p.a.ld >= p.a.rows.max(1) as i64 && p.b.ld >= p.b.rows.max(1) as i64);
        // op(A) must be M×K and op(B) K×N.
        let dims = |o: &Operand| match o.trans {
            Trans::N => (o.rows, o.cols),
            Trans::T => (o.cols, o.rows),
        };
        assert_eq!(dims(&p.a), (p.m, p.k));
        assert_eq!(dims(&p.b), (p.k, p.n));
        let mut d = vec![0.0; p.batch as usize * p.batch_stride_d as usize];
        for bi in 0..p.batch as usize {
            let (ab, bb) = (
                a_off + bi * p.a.batch_stride as usize,
                b_off + bi * p.b.batch_stride as usize,
            );
            for j in 0..n {
                for i in 0..m {
                    let acc: f64 = (0..k)
                        .map(|l| op_at(a, &p.a, ab, i, l) * op_at(b, &p.b, bb, l, j))
                        .sum();
                    d[bi * p.batch_stride_d as usize + i + j * p.ldd as usize] = acc;
                }
            }
        }
        d
    }

    /// Naive row-major batched matmul over strided layouts: what kiln means.
    fn naive(a: &[f64], al: &Layout, b: &[f64], bl: &Layout, dims: MatmulDims) -> Vec<f64> {
        let at = |x: &[f64], l: &Layout, bi: usize, i: usize, j: usize| {
            x[l.offset + bi * l.strides[0] + i * l.strides[1] + j * l.strides[2]]
        };
        let mut out = Vec::new();
        for bi in 0..dims.batch {
            for i in 0..dims.m {
                for j in 0..dims.n {
                    out.push(
                        (0..dims.k)
                            .map(|l| at(a, al, bi, i, l) * at(b, bl, bi, l, j))
                            .sum(),
                    );
                }
            }
        }
        out
    }

    fn layout(shape: [usize; 3], strides: [usize; 3], offset: usize) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            offset,
        }
    }

    /// Storage big enough for `l`, filled with distinct values.
    fn storage(l: &Layout, seed: usize) -> Vec<f64> {
        let last = l.offset
            + (0..3)
                .map(|d| l.shape[d].saturating_sub(1) * l.strides[d])
                .sum::<usize>();
        (0..=last)
            .map(|i| ((i * 31 + seed * 17) % 23) as f64 - 11.0)
            .collect()
    }

    /// The plan exists and reproduces the naive product.
    fn check(al: Layout, bl: Layout, dims: MatmulDims) {
        let (a, b) = (storage(&al, 1), storage(&bl, 2));
        let p = plan(&al, &bl, dims).unwrap_or_else(|| panic!("no plan for {al:?} {bl:?}"));
        let got = run_plan(&p, &b, bl.offset, &a, al.offset);
        assert_eq!(got, naive(&a, &al, &b, &bl, dims), "{al:?} · {bl:?}: {p:?}");
    }

    fn dims(batch: usize, m: usize, n: usize, k: usize) -> MatmulDims {
        MatmulDims { batch, m, n, k }
    }

    #[test]
    fn contiguous_operands_are_op_n_with_ld_of_the_row_length() {
        let (al, bl) = (
            Layout::contiguous(&[2, 5, 3]),
            Layout::contiguous(&[2, 3, 4]),
        );
        let p = plan(&al, &bl, dims(2, 5, 4, 3)).unwrap();
        assert_eq!((p.a.trans, p.a.rows, p.a.cols, p.a.ld), (Trans::N, 4, 3, 4));
        assert_eq!((p.b.trans, p.b.rows, p.b.cols, p.b.ld), (Trans::N, 3, 5, 3));
        assert_eq!((p.m, p.n, p.k, p.ldd, p.batch_stride_d), (4, 5, 3, 4, 20));
        check(al, bl, dims(2, 5, 4, 3));
    }

    #[test]
    fn transposed_views_become_op_t_without_copies() {
        // B = Wᵀ for W (4×3) contiguous: the linear layer's weight.
        let bl = layout([1, 3, 4], [0, 1, 3], 0);
        let al = Layout::contiguous(&[1, 6, 3]);
        let p = plan(&al, &bl, dims(1, 6, 4, 3)).unwrap();
        assert_eq!((p.a.trans, p.a.rows, p.a.cols, p.a.ld), (Trans::T, 3, 4, 3));
        check(al, bl, dims(1, 6, 4, 3));
        // Both transposed, batched.
        check(
            layout([3, 5, 2], [10, 1, 5], 0),
            layout([3, 2, 7], [14, 1, 2], 0),
            dims(3, 5, 7, 2),
        );
    }

    #[test]
    fn sliced_views_use_their_row_stride_as_leading_dimension() {
        // Columns 1..4 of a 6×9 matrix at offset 1, and rows of a padded buffer.
        check(
            layout([1, 6, 3], [0, 9, 1], 1),
            layout([1, 3, 5], [0, 8, 1], 2),
            dims(1, 6, 5, 3),
        );
        // A transposed slice: ld = the column stride, larger than the rows.
        check(
            layout([2, 4, 3], [40, 1, 10], 3),
            layout([2, 3, 2], [0, 1, 7], 0),
            dims(2, 4, 2, 3),
        );
    }

    #[test]
    fn broadcast_batches_have_batch_stride_zero() {
        let al = layout([4, 3, 5], [15, 5, 1], 0);
        let bl = layout([4, 5, 2], [0, 2, 1], 0);
        let p = plan(&al, &bl, dims(4, 3, 2, 5)).unwrap();
        assert_eq!((p.a.batch_stride, p.b.batch_stride), (0, 15));
        check(al, bl, dims(4, 3, 2, 5));
    }

    #[test]
    fn extent_one_dimensions_ignore_their_strides() {
        // Vectors: (1×k)·(k×1), with strides that mean nothing for extent-1 dims.
        check(
            layout([1, 1, 6], [0, 0, 1], 0),
            layout([1, 6, 1], [0, 1, 0], 0),
            dims(1, 1, 1, 6),
        );
        // A column vector read with a large step: (m×1)·(1×n), an outer product.
        check(
            layout([1, 5, 1], [0, 3, 99], 0),
            layout([1, 1, 4], [0, 7, 2], 0),
            dims(1, 5, 4, 1),
        );
        // k = 1 with the lhs transposed-looking strides.
        check(
            layout([2, 3, 1], [3, 1, 0], 0),
            layout([2, 1, 4], [4, 4, 1], 0),
            dims(2, 3, 4, 1),
        );
    }

    #[test]
    fn unrepresentable_operands_have_no_plan() {
        let c = Layout::contiguous(&[1, 3, 4]);
        // A broadcast row (row stride 0) cannot be a leading dimension.
        let bcast = layout([1, 3, 4], [0, 0, 1], 0);
        assert_eq!(
            plan(&bcast, &Layout::contiguous(&[1, 4, 2]), dims(1, 3, 2, 4)),
            None
        );
        // Steps of 2 in both dims.
        let stepped = layout([1, 4, 2], [0, 8, 2], 0);
        assert_eq!(plan(&c, &stepped, dims(1, 3, 2, 4)), None);
        // A leading dimension shorter than the rows would overlap columns.
        let overlapping = layout([1, 4, 2], [0, 1, 3], 0);
        assert_eq!(plan(&c, &overlapping, dims(1, 3, 2, 4)), None);
        // Empty problems are the caller's.
        assert_eq!(
            plan(
                &Layout::contiguous(&[1, 3, 0]),
                &Layout::contiguous(&[1, 0, 2]),
                dims(1, 3, 2, 0)
            ),
            None
        );
        // Batch counts beyond i32.
        let huge = layout([1 << 31, 1, 1], [0, 1, 1], 0);
        assert_eq!(plan(&huge, &huge, dims(1 << 31, 1, 1, 1)), None);
    }

    #[test]
    fn every_small_layout_combination_matches_the_naive_product() {
        // Each operand contiguous, transposed, or a padded slice of either.
        let views = |rows: usize, cols: usize, batch: usize| -> Vec<Layout> {
            let (pr, pc) = (rows + 2, cols + 3);
            vec![
                layout([batch, rows, cols], [rows * cols, cols, 1], 0),
                layout([batch, rows, cols], [rows * cols, 1, rows], 0),
                layout([batch, rows, cols], [rows * pc, pc, 1], 1),
                layout([batch, rows, cols], [pr * cols, 1, pr], 2),
                layout([batch, rows, cols], [0, cols, 1], 0),
            ]
        };
        let mut n_checked = 0;
        for (batch, m, n, k) in [(1, 1, 1, 1), (2, 3, 5, 4), (3, 1, 4, 2), (2, 4, 1, 3)] {
            for al in views(m, k, batch) {
                for bl in views(k, n, batch) {
                    check(al.clone(), bl, dims(batch, m, n, k));
                    n_checked += 1;
                }
            }
        }
        assert_eq!(n_checked, 100);
    }
}
