//! Reductions of one dimension (sum, extrema, their indices).

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::{DType, Result};

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/reduce.rs"]
mod cpu;
#[path = "cuda/ops/reduce.rs"]
mod cuda;

/// Reductions over one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReduceOp {
    /// Sum (integers sum to I64).
    Sum,
    /// Maximum (NaN propagates).
    Max,
    /// Minimum (NaN propagates).
    Min,
    /// Index of the first maximum, as I64.
    ArgMax,
    /// Index of the first minimum, as I64.
    ArgMin,
}

impl ReduceOp {
    /// Every op, for tests that check each one has a kernel case.
    #[cfg(test)]
    pub(crate) const ALL: [ReduceOp; 5] = [
        ReduceOp::Sum,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::ArgMax,
        ReduceOp::ArgMin,
    ];

    /// The op's name: in errors, and the key of its code in the CUDA kernels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::ArgMax => "argmax",
            ReduceOp::ArgMin => "argmin",
        }
    }

    /// The dtype of the result: I64 for indices and integer sums, else the input's.
    pub(crate) fn output_dtype(self, dtype: DType) -> DType {
        match self {
            ReduceOp::ArgMax | ReduceOp::ArgMin => DType::I64,
            ReduceOp::Sum if !dtype.is_float() => DType::I64,
            _ => dtype,
        }
    }
}

/// The reduction primitive of a backend.
pub(crate) trait ReduceOps: Sized {
    /// Reduces dimension `dim` away (the result has the shape without `dim`,
    /// contiguous, in [`ReduceOp::output_dtype`]).
    fn reduce(&self, op: ReduceOp, layout: &Layout, dim: usize) -> Result<Self>;
}

impl Storage {
    /// See [`ReduceOps::reduce`].
    pub(crate) fn reduce(&self, op: ReduceOp, layout: &Layout, dim: usize) -> Result<Storage> {
        dispatch!(op.name(), (self), |(s)| s.reduce(op, layout, dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_has_its_own_name_and_indices_are_i64() {
        let names: std::collections::HashSet<_> = ReduceOp::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), ReduceOp::ALL.len());
        assert_eq!(ReduceOp::ArgMax.output_dtype(DType::F16), DType::I64);
        assert_eq!(ReduceOp::Sum.output_dtype(DType::U8), DType::I64);
        assert_eq!(ReduceOp::Max.output_dtype(DType::BF16), DType::BF16);
    }
}
