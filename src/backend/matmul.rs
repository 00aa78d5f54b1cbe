//! Batched matrix products.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

/// Problem sizes of a batched matmul: `batch` products of (m×k)·(k×n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatmulDims {
    /// Number of matrix products.
    pub batch: usize,
    /// Rows of the left operand and of the result.
    pub m: usize,
    /// Columns of the right operand and of the result.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
}

/// The matmul primitive of a backend.
pub(crate) trait MatmulOps: Sized {
    /// Batched matmul; each layout is 3-D (batch, rows, cols), a batch stride may be
    /// 0 (broadcast). The result is contiguous (batch, m, n).
    fn matmul(
        &self,
        lhs: &Layout,
        rhs: &Self,
        rhs_layout: &Layout,
        dims: MatmulDims,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`MatmulOps::matmul`].
    pub(crate) fn matmul(
        &self,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
        dims: MatmulDims,
    ) -> Result<Storage> {
        dispatch!("matmul", (self, rhs), |(a, b)| a
            .matmul(lhs, b, rhs_layout, dims))
    }
}
