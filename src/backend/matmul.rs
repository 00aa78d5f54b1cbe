//! Batched matrix products.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/matmul.rs"]
mod cpu;
#[path = "cuda/ops/matmul.rs"]
mod cuda;

pub(crate) use crate::shape::MatmulDims;

/// An activation a backend may apply in a GEMM's epilogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Activation {
    /// None: the product (plus bias).
    None,
    /// `max(x, 0)`.
    Relu,
    /// GELU's tanh approximation (`F::gelu_tanh`).
    GeluTanh,
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

    /// `act(lhs · rhs + bias)` in one fused GEMM (bias: `n` elements, contiguous from the
    /// given offset, added to every row), or `None` when this backend has no fused form
    /// for it — the caller then composes the unfused ops. CUDA fuses: cuBLASLt's
    /// epilogue, or kiln's kernels (bias, ReLU and tanh-GELU); the CPU fuses f32 and
    /// f64 (with the unfused ops' bits); the default is `None`.
    fn matmul_epilogue(
        &self,
        _lhs: &Layout,
        _rhs: &Self,
        _rhs_layout: &Layout,
        _dims: MatmulDims,
        _bias: Option<(&Self, usize)>,
        _act: Activation,
    ) -> Result<Option<Self>> {
        Ok(None)
    }

    /// For one product (batch 1): `lhs · rhs` and the sums of `lhs` over k (its `m` row
    /// sums) from one fused GEMM — a linear layer's weight and bias gradients from
    /// `gᵀ · x` — or `None` when this backend has no fused form (the default, and the
    /// CPU's): the caller computes them apart.
    fn matmul_bias_grad(
        &self,
        _lhs: &Layout,
        _rhs: &Self,
        _rhs_layout: &Layout,
        _dims: MatmulDims,
    ) -> Result<Option<(Self, Self)>> {
        Ok(None)
    }
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

impl Storage {
    /// See [`MatmulOps::matmul_epilogue`]; `bias` is a storage and the offset of its
    /// first element.
    pub(crate) fn matmul_epilogue(
        &self,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
        dims: MatmulDims,
        bias: Option<(&Storage, usize)>,
        act: Activation,
    ) -> Result<Option<Storage>> {
        let offset = bias.map_or(0, |(_, o)| o);
        dispatch!("linear", (self, rhs, bias.map(|(b, _)| b)), |(a, b, c)| a
            .matmul_epilogue(
                lhs,
                b,
                rhs_layout,
                dims,
                c.map(|c| (c, offset)),
                act
            ))
    }
}

impl Storage {
    /// See [`MatmulOps::matmul_bias_grad`].
    pub(crate) fn matmul_bias_grad(
        &self,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
        dims: MatmulDims,
    ) -> Result<Option<(Storage, Storage)>> {
        dispatch!("linear backward", (self, rhs), |(a, b)| a
            .matmul_bias_grad(lhs, b, rhs_layout, dims))
    }
}
