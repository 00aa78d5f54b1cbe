//! Mixed precision: the fused non-finite check and unscale of
//! [`GradScaler`](crate::amp::GradScaler) (PyTorch's
//! `_amp_foreach_non_finite_check_and_unscale_`), one pass over a gradient.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::{DType, Error, Result};

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/amp.rs"]
mod cpu;
#[path = "cuda/ops/amp.rs"]
mod cuda;

/// The mixed-precision primitives of a backend.
pub(crate) trait AmpOps: Sized {
    /// A contiguous copy of the elements of `layout` multiplied by `inv_scale` (rounded
    /// to f32 first, computed in f32 for f32/bf16 and f64 for f64); sets `found_inf`
    /// (one f32 element on the same device) to 1 when an element is inf or NaN, and
    /// leaves it unchanged otherwise. F32, F64 and BF16 only: PyTorch refuses to
    /// unscale F16 gradients.
    fn amp_unscale(&self, layout: &Layout, found_inf: &mut Self, inv_scale: f64) -> Result<Self>;
}

/// Err unless a gradient of `dtype` can be unscaled into a `found_inf` of
/// `flag_dtype` holding `flag_len` elements. Both backends call it before touching
/// memory.
pub(crate) fn check_unscale_operands(
    dtype: DType,
    flag_dtype: DType,
    flag_len: usize,
) -> Result<()> {
    const OP: &str = "amp_unscale";
    if !matches!(dtype, DType::F32 | DType::F64 | DType::BF16) {
        return Err(Error::UnsupportedDType { op: OP, dtype });
    }
    if flag_dtype != DType::F32 {
        return Err(Error::DTypeMismatch {
            op: OP,
            expected: DType::F32,
            got: flag_dtype,
        });
    }
    if flag_len != 1 {
        return Err(Error::shape(
            OP,
            format!("found_inf must hold one element, it holds {flag_len}"),
        ));
    }
    Ok(())
}

impl Storage {
    /// See [`AmpOps::amp_unscale`].
    pub(crate) fn amp_unscale(
        &self,
        layout: &Layout,
        found_inf: &mut Storage,
        inv_scale: f64,
    ) -> Result<Storage> {
        dispatch!("amp_unscale", (self, found_inf), |(g, f)| g
            .amp_unscale(layout, f, inv_scale))
    }
}
