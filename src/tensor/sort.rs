//! Sorting along a dimension (`sort`, `argsort`, `topk`), with the gradient of the
//! values scattered back through the indices.

use super::{StorageLocks, Tensor};
use crate::autograd::record;
use crate::backend::sort::SortParams;
use crate::shape::check_dim;
use crate::{Error, Result};

impl Tensor {
    /// The elements sorted along `dim` and their positions along it (I64), like
    /// `torch.sort(x, dim, descending, stable=True)`: smallest first (largest first
    /// when `descending`), NaN after every number (before, when `descending`), equal
    /// values in their original order. Every dtype; a 0-d tensor sorts along dim 0.
    /// The gradient of the values goes back to the positions the indices name.
    ///
    /// ```
    /// # use kiln::{Device, Tensor};
    /// let x = Tensor::from_vec(vec![3f32, 1., 2., 1.], &[4], &Device::Cpu)?;
    /// let (v, i) = x.sort(0, false)?;
    /// assert_eq!(v.to_vec::<f32>()?, [1., 1., 2., 3.]);
    /// assert_eq!(i.to_vec::<i64>()?, [1, 3, 2, 0]);
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn sort(&self, dim: usize, descending: bool) -> Result<(Tensor, Tensor)> {
        let p = self.sort_params("sort", dim, None, descending)?;
        self.sorted("sort", dim, p)
    }

    /// The positions that sort `dim` ([`Tensor::sort`]'s indices), I64. Ties keep
    /// their order (PyTorch's `argsort(stable=True)`).
    pub fn argsort(&self, dim: usize, descending: bool) -> Result<Tensor> {
        let p = self.sort_params("argsort", dim, None, descending)?;
        let (_, idx) = self.storage().sort(self.layout(), &p)?;
        Ok(Tensor::from_storage(idx, self.shape()))
    }

    /// The `k` largest (`largest`) or smallest elements along `dim` and their
    /// positions (I64), like `torch.topk(x, k, dim, largest, sorted)`: always in
    /// sorted order (`sorted = false` lets PyTorch return any order; kiln's is the
    /// sorted one), NaN counted as the largest value. Equal values are taken in
    /// their original order, which PyTorch leaves unspecified. `k` above the size of
    /// `dim` is an `Err`. The gradient goes back to the positions of the indices.
    pub fn topk(
        &self,
        k: usize,
        dim: usize,
        largest: bool,
        sorted: bool,
    ) -> Result<(Tensor, Tensor)> {
        // Sorted or not, the first k of the sorted line are the answer.
        let _ = sorted;
        let p = self.sort_params("topk", dim, Some(k), largest)?;
        self.sorted("topk", dim, p)
    }

    /// The (outer, len, inner) view of a sort along `dim` keeping `k` (all when
    /// `None`) per line.
    fn sort_params(
        &self,
        op: &'static str,
        dim: usize,
        k: Option<usize>,
        descending: bool,
    ) -> Result<SortParams> {
        let shape = self.shape();
        // A 0-d tensor is one line of one element, along its dim 0 as PyTorch allows.
        let dim = check_dim(op, dim, shape.len().max(1))?;
        let size = |dims: &[usize]| dims.iter().product::<usize>();
        let (outer, len, inner) = match shape.len() {
            0 => (1, 1, 1),
            _ => (size(&shape[..dim]), shape[dim], size(&shape[dim + 1..])),
        };
        let k = k.unwrap_or(len);
        if k > len {
            return Err(Error::arg(
                "k",
                format!("{op}: k = {k} exceeds the size {len} of dimension {dim}"),
            ));
        }
        if k == 0 && shape.is_empty() {
            // The result keeps the 0-d shape, which cannot hold zero elements.
            return Err(Error::arg("k", format!("{op}: k = 0 of a 0-d tensor")));
        }
        Ok(SortParams {
            outer,
            len,
            inner,
            k,
            descending,
        })
    }

    /// The sort primitive's values (recorded for autograd) and indices, with `dim`
    /// cut to `p.k`.
    fn sorted(&self, op: &'static str, dim: usize, p: SortParams) -> Result<(Tensor, Tensor)> {
        let _op = crate::profiler::op(op, &[self]);
        let (vals, idx) = self.storage().sort(self.layout(), &p)?;
        let mut shape = self.shape().to_vec();
        if let Some(d) = shape.get_mut(dim) {
            *d = p.k;
        }
        let (vals, idx) = (
            Tensor::from_storage(vals, &shape),
            Tensor::from_storage(idx, &shape),
        );
        if !vals.dtype().is_float() {
            return Ok((vals, idx));
        }
        let (positions, x_shape) = (idx.clone(), self.shape().to_vec());
        let vals = record(vals, op, &[self], move |_, g| {
            let gx = Tensor::zeros(&x_shape, g.dtype(), &g.device())?;
            {
                let mut locks = StorageLocks::new(op, &[&gx], &[&positions, g])?;
                let (mut dst, srcs) = locks.split();
                dst[0].sort_scatter(&p, srcs[0], positions.layout(), srcs[1], g.layout())?;
            }
            Ok(vec![Some(gx)])
        });
        Ok((vals, idx))
    }
}
