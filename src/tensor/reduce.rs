//! Reductions (`sum`, `mean`, `max`, `argmax`, ...) and their gradients.

use super::Tensor;
use crate::autograd::record;
use crate::backend::reduce::ReduceOp;
use crate::shape::{check_dim, checked_numel};
use crate::{DType, Error, Result};

impl Tensor {
    /// The primitive: reduce `dim` with `op`, keeping it as size 1 when `keepdim`.
    fn reduce_raw(
        &self,
        op: ReduceOp,
        dim: usize,
        keepdim: bool,
        name: &'static str,
    ) -> Result<Tensor> {
        check_dim(name, dim, self.rank())?;
        // A sum over nothing is 0; max, min and their indices have no answer.
        if self.shape()[dim] == 0 && op != ReduceOp::Sum {
            return Err(Error::shape(
                name,
                format!(
                    "dimension {dim} of shape {:?} is empty; {name} needs at least one element",
                    self.shape()
                ),
            ));
        }
        let mut shape = self.shape().to_vec();
        if keepdim {
            shape[dim] = 1;
        } else {
            shape.remove(dim);
        }
        // Removing an empty dim can leave more elements than the input had:
        // `[usize::MAX, 0].sum(1)`.
        checked_numel(name, &shape)?;
        let out = self.storage().reduce(op, self.layout(), dim)?;
        Ok(Tensor::from_storage(out, &shape))
    }

    /// Sum over `dim`. Integer tensors sum to I64.
    pub fn sum(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.sum(dim, keepdim)) {
            return y;
        }
        let _op = crate::profiler::op("sum", &[self]);
        let out = self.reduce_raw(ReduceOp::Sum, dim, keepdim, "sum")?;
        if !out.dtype().is_float() {
            return Ok(out);
        }
        let shape = self.shape().to_vec();
        Ok(record(out, "sum", &[self], move |_, g| {
            let g = if keepdim {
                g.clone()
            } else {
                g.unsqueeze(dim)?
            };
            Ok(vec![Some(g.broadcast_as(&shape)?.contiguous()?)])
        }))
    }

    /// Mean over `dim` (float dtypes).
    pub fn mean(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.mean(dim, keepdim)) {
            return y;
        }
        self.check_float("mean")?;
        check_dim("mean", dim, self.rank())?;
        self.sum(dim, keepdim)?.div_scalar(self.shape()[dim] as f64)
    }

    /// Maximum over `dim`; the gradient goes to the element [`Tensor::argmax`] picks.
    pub fn max(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.extremum(ReduceOp::Max, ReduceOp::ArgMax, dim, keepdim, "max")
    }

    /// Minimum over `dim`; the gradient goes to the element [`Tensor::argmin`] picks.
    pub fn min(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.extremum(ReduceOp::Min, ReduceOp::ArgMin, dim, keepdim, "min")
    }

    fn extremum(
        &self,
        op: ReduceOp,
        arg: ReduceOp,
        dim: usize,
        keepdim: bool,
        name: &'static str,
    ) -> Result<Tensor> {
        let _op = crate::profiler::op(name, &[self]);
        let out = self.reduce_raw(op, dim, keepdim, name)?;
        if !out.dtype().is_float() {
            return Ok(out);
        }
        let x = self.detach();
        Ok(record(out, name, &[self], move |_, g| {
            let index = x.reduce_raw(arg, dim, true, name)?;
            let g = if keepdim {
                g.clone()
            } else {
                g.unsqueeze(dim)?
            };
            Ok(vec![Some(g.mul(&x.one_hot_along(dim, &index)?)?)])
        }))
    }

    /// A float tensor of this shape with 1 where the position along `dim` equals
    /// `index` (I64, size 1 along `dim`) and 0 elsewhere.
    pub(crate) fn one_hot_along(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        let mut positions_shape = vec![1; self.rank()];
        positions_shape[dim] = self.shape()[dim];
        let positions = Tensor::arange(self.shape()[dim], DType::I64, &self.device())?
            .reshape(&positions_shape)?;
        positions.eq(index)?.to_dtype(self.dtype())
    }

    /// Index of the first maximum along `dim`, as I64.
    pub fn argmax(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce_raw(ReduceOp::ArgMax, dim, keepdim, "argmax")
    }

    /// Index of the first minimum along `dim`, as I64.
    pub fn argmin(&self, dim: usize, keepdim: bool) -> Result<Tensor> {
        self.reduce_raw(ReduceOp::ArgMin, dim, keepdim, "argmin")
    }

    /// Sum of every element, as a rank-0 tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.sum_all()) {
            return y;
        }
        self.reshape(&[self.numel()])?.sum(0, false)
    }

    /// Mean of every element, as a rank-0 tensor (float dtypes).
    pub fn mean_all(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.mean_all()) {
            return y;
        }
        self.check_float("mean_all")?;
        self.sum_all()?.div_scalar(self.numel() as f64)
    }

    /// Sums a broadcast gradient back to `shape` (the shape of the operand that was
    /// broadcast): leading dimensions are summed away, stretched ones kept as 1.
    pub fn sum_to_shape(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        if self.rank() < shape.len() {
            return Err(Error::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        let mut g = self.clone();
        while g.rank() > shape.len() {
            g = g.sum(0, false)?;
        }
        for (d, &size) in shape.iter().enumerate() {
            if size == 1 && g.shape()[d] != 1 {
                g = g.sum(d, true)?;
            }
        }
        if g.shape() != shape {
            return Err(Error::ShapeMismatch {
                op: "sum_to_shape",
                lhs: self.shape().to_vec(),
                rhs: shape.to_vec(),
            });
        }
        Ok(g)
    }
}
