//! Building tensors from others or from a range: `Tensor::stack`,
//! `Tensor::arange_range`.

use super::Tensor;
use crate::shape::check_dim;
use crate::{DType, Device, Error, Result};

impl Tensor {
    /// Joins tensors of one shape along a new dimension `dim` (`0..=rank`), like
    /// `torch.stack`; the gradient splits back to each input.
    pub fn stack(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
        let first = *tensors
            .first()
            .ok_or_else(|| Error::arg("tensors", "stack needs at least one tensor"))?;
        check_dim("stack", dim, first.rank() + 1)?;
        if let Some(t) = tensors.iter().find(|t| t.shape() != first.shape()) {
            return Err(Error::arg(
                "tensors",
                format!(
                    "stack needs tensors of one shape, got {:?} and {:?}",
                    first.shape(),
                    t.shape()
                ),
            ));
        }
        let parts = tensors
            .iter()
            .map(|t| t.unsqueeze(dim))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), dim)
    }

    /// `[start, start + step, ...]` up to `end` (exclusive) as a 1-D tensor of
    /// `dtype`, like `torch.arange(start, end, step)`: `ceil((end - start) / step)`
    /// elements, element `i` being `start + i·step` computed in f64 (exact i64
    /// arithmetic for integer dtypes with integral bounds) and converted to `dtype`.
    /// Errors for a non-finite argument, `step == 0`, or a step whose sign does not
    /// lead from `start` to `end`.
    pub fn arange_range(
        start: f64,
        end: f64,
        step: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        for (name, v) in [("start", start), ("end", end), ("step", step)] {
            if !v.is_finite() {
                return Err(Error::arg(name, format!("arange: must be finite, got {v}")));
            }
        }
        if step == 0.0 {
            return Err(Error::arg("step", "arange: step must be non-zero"));
        }
        if (end - start) * step.signum() < 0.0 {
            return Err(Error::arg(
                "step",
                format!(
                    "arange: the sign of step {step} does not lead from start {start} to end {end}"
                ),
            ));
        }
        let len = ((end - start) / step).ceil();
        if len > usize::MAX as f64 / 2.0 {
            return Err(Error::arg(
                "step",
                format!("arange: {len} elements is too many"),
            ));
        }
        let len = len as usize;
        let integral = start.fract() == 0.0 && step.fract() == 0.0;
        let work = if !dtype.is_float() && integral {
            DType::I64
        } else {
            DType::F64
        };
        Tensor::arange(len, work, device)?
            .mul_scalar(step)?
            .add_scalar(start)?
            .to_dtype(dtype)
    }
}
