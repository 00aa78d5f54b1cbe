//! Indexing with autograd: `gather`, `index_select`, `scatter_add` (the backward of
//! the first two), `where_cond`, `masked_fill`, `tril`, `triu`.
//!
//! Indices are I64 and checked where they live before any op reads through them
//! (`index_bounds`: on CUDA one reduction kernel and a 16-byte readback), so an
//! out-of-range index is an `Err` naming the argument, never a device fault or a
//! silently wrong value. Backward passes reuse the already checked index and skip
//! that check. `scatter_add` sums in a fixed order on every device (no atomics).

use super::{StorageLocks, Tensor};
use crate::autograd::record;
use crate::shape::{broadcast_shape, check_dim, checked_numel};
use crate::{DType, Error, Result};

impl Tensor {
    /// Err unless `index` is an I64 tensor on this tensor's device whose values lie
    /// in `[0, len)`; `arg` names it in the error.
    fn check_index(
        &self,
        op: &'static str,
        arg: &'static str,
        index: &Tensor,
        len: usize,
    ) -> Result<()> {
        if index.dtype() != DType::I64 {
            return Err(Error::arg(
                arg,
                format!("{op}: indices must be I64, got {:?}", index.dtype()),
            ));
        }
        self.check_same_device(op, index)?;
        let bounds = index.storage().index_bounds(index.layout())?;
        if let Some((lo, hi)) = bounds {
            let bad = if lo < 0 {
                lo
            } else if hi >= len as i64 {
                hi
            } else {
                return Ok(());
            };
            return Err(Error::arg(
                arg,
                format!("{op}: index {bad} is out of range for a dimension of size {len}"),
            ));
        }
        Ok(())
    }

    /// Err unless `index` has this tensor's rank and `index.shape[d] <= limit[d]`
    /// for every `d` (but `dim` when `skip_dim`).
    fn check_index_shape(
        op: &'static str,
        arg: &'static str,
        index: &Tensor,
        limit: &[usize],
        dim: usize,
        skip_dim: bool,
    ) -> Result<()> {
        let fits = index.rank() == limit.len()
            && (0..limit.len()).all(|d| (skip_dim && d == dim) || index.shape()[d] <= limit[d]);
        if fits {
            Ok(())
        } else {
            Err(Error::arg(
                arg,
                format!(
                    "{op}: index of shape {:?} does not fit a tensor of shape {limit:?} \
                     (same rank, no larger on any dimension but {dim})",
                    index.shape()
                ),
            ))
        }
    }

    /// Values along `dim` picked by `index` (PyTorch's `torch.gather`):
    /// `out[i][j][k] = self[index[i][j][k]][j][k]` for `dim = 0`. `index` is I64 with
    /// this tensor's rank and no larger on any dimension but `dim`; the result has
    /// `index`'s shape. An index outside `[0, self.shape()[dim])` is an `Err`.
    /// The gradient scatters back with [`Tensor::scatter_add`].
    pub fn gather(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        check_dim("gather", dim, self.rank())?;
        Tensor::check_index_shape("gather", "index", index, self.shape(), dim, true)?;
        self.check_index("gather", "index", index, self.shape()[dim])?;
        self.gather_checked(dim, index)
    }

    /// [`Tensor::gather`] of an index already checked.
    fn gather_checked(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        let _op = crate::profiler::op("gather", &[self, index]);
        let out = {
            let locks = StorageLocks::read(&[self, index]);
            locks
                .get(0)
                .gather(self.layout(), dim, locks.get(1), index.layout())?
        };
        let out = Tensor::from_storage(out, index.shape());
        let (idx, shape) = (index.detach(), self.shape().to_vec());
        Ok(record(out, "gather", &[self], move |_, g| {
            let zeros = Tensor::zeros(&shape, g.dtype(), &g.device())?;
            Ok(vec![Some(zeros.scatter_add_checked(dim, &idx, g)?)])
        }))
    }

    /// The slices of `dim` named by `index` (1-D or 0-d, I64), in its order, repeats
    /// allowed (PyTorch's `torch.index_select`): the result has this shape with
    /// `dim`'s size replaced by the number of indices. The gradient adds each
    /// output slice back into its source slice (deterministic).
    pub fn index_select(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        self.index_select_named(dim, index, "index")
    }

    /// [`Tensor::index_select`] whose errors name the index `arg`.
    pub(crate) fn index_select_named(
        &self,
        dim: usize,
        index: &Tensor,
        arg: &'static str,
    ) -> Result<Tensor> {
        check_dim("index_select", dim, self.rank())?;
        if index.rank() > 1 {
            return Err(Error::arg(
                arg,
                format!(
                    "index_select: the index must be 1-D or 0-d, got shape {:?}",
                    index.shape()
                ),
            ));
        }
        self.check_index("index_select", arg, index, self.shape()[dim])?;
        self.index_select_checked(dim, index)
    }

    /// [`Tensor::index_select`] of a 1-D or 0-d I64 index on this device whose
    /// values are known to lie in range (no check, so no readback).
    pub(crate) fn index_select_checked(&self, dim: usize, index: &Tensor) -> Result<Tensor> {
        let n = index.numel();
        let mut along = vec![1; self.rank()];
        along[dim] = n;
        let mut shape = self.shape().to_vec();
        shape[dim] = n;
        // A gather whose index is broadcast over every other dimension (stride 0).
        let expanded = index.detach().reshape(&along)?.broadcast_as(&shape)?;
        self.gather_checked(dim, &expanded)
    }

    /// `self` plus every element of `src` added at its position with the `dim`
    /// coordinate replaced by `index`'s (PyTorch's out-of-place `scatter_add`):
    /// `out[index[i][j]][j] += src[i][j]` for `dim = 0`. `index` (I64) has this rank,
    /// is no larger than `src` on any dimension and no larger than `self` on any but
    /// `dim`; its values lie in `[0, self.shape()[dim])`. Float dtypes. Sums run in a
    /// fixed order (deterministic on CUDA: each output element sums its own terms,
    /// no atomics).
    pub fn scatter_add(&self, dim: usize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        check_dim("scatter_add", dim, self.rank())?;
        self.check_same_device("scatter_add", src)?;
        self.check_same_dtype("scatter_add", src)?;
        self.check_float("scatter_add")?;
        Tensor::check_index_shape("scatter_add", "index", index, src.shape(), dim, false)?;
        Tensor::check_index_shape("scatter_add", "index", index, self.shape(), dim, true)?;
        self.check_index("scatter_add", "index", index, self.shape()[dim])?;
        self.scatter_add_checked(dim, index, src)
    }

    /// [`Tensor::scatter_add`] of an index already checked.
    fn scatter_add_checked(&self, dim: usize, index: &Tensor, src: &Tensor) -> Result<Tensor> {
        let _op = crate::profiler::op("scatter_add", &[self, index, src]);
        let out = {
            let locks = StorageLocks::read(&[self, index, src]);
            locks.get(0).scatter_add(
                self.layout(),
                dim,
                locks.get(1),
                index.layout(),
                locks.get(2),
                src.layout(),
            )?
        };
        let out = Tensor::from_storage(out, self.shape());
        let (idx, src_shape) = (index.detach(), src.shape().to_vec());
        Ok(record(out, "scatter_add", &[self, src], move |_, g| {
            let picked = g.gather_checked(dim, &idx)?;
            Ok(vec![
                Some(g.clone()),
                Some(pad_with_zeros(picked, &src_shape)?),
            ])
        }))
    }

    /// `a` where this U8 condition is non-zero, else `b` (PyTorch's
    /// `torch.where(cond, a, b)`), broadcasting all three. The gradient flows to `a`
    /// where the condition holds and to `b` elsewhere.
    pub fn where_cond(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let _op = crate::profiler::op("where_cond", &[self, a, b]);
        if self.dtype() != DType::U8 {
            return Err(Error::arg(
                "condition",
                format!(
                    "where_cond: the condition must be U8, got {:?}",
                    self.dtype()
                ),
            ));
        }
        a.check_same_device("where_cond", b)?;
        self.check_same_device("where_cond", a)?;
        a.check_same_dtype("where_cond", b)?;
        let shape = broadcast_shape("where_cond", self.shape(), a.shape())?;
        let shape = broadcast_shape("where_cond", &shape, b.shape())?;
        checked_numel("where_cond", &shape)?;
        let cl = self.layout().broadcast_to("where_cond", &shape)?;
        let al = a.layout().broadcast_to("where_cond", &shape)?;
        let bl = b.layout().broadcast_to("where_cond", &shape)?;
        let out = {
            let locks = StorageLocks::read(&[self, a, b]);
            locks
                .get(0)
                .where_cond(&cl, locks.get(1), &al, locks.get(2), &bl)?
        };
        let out = Tensor::from_storage(out, &shape);
        let (cond, a_shape, b_shape) = (self.detach(), a.shape().to_vec(), b.shape().to_vec());
        Ok(record(out, "where_cond", &[a, b], move |_, g| {
            let zero = Tensor::zeros(&[], g.dtype(), &g.device())?;
            Ok(vec![
                Some(cond.where_cond(g, &zero)?.sum_to_shape(&a_shape)?),
                Some(cond.where_cond(&zero, g)?.sum_to_shape(&b_shape)?),
            ])
        }))
    }

    /// This tensor with `value` where the U8 `mask` (broadcastable to this shape) is
    /// non-zero (PyTorch's `masked_fill`). No gradient flows through filled places.
    /// `value` is converted as [`Tensor::full`] converts it: one this dtype cannot
    /// hold (`300`, NaN or `-0.5` for U8) is an `Err` naming `value`.
    pub fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        if mask.dtype() != DType::U8 {
            return Err(Error::arg(
                "mask",
                format!("masked_fill: the mask must be U8, got {:?}", mask.dtype()),
            ));
        }
        let shape = broadcast_shape("masked_fill", mask.shape(), self.shape())?;
        if shape != self.shape() {
            return Err(Error::arg(
                "mask",
                format!(
                    "masked_fill: a mask of shape {:?} does not broadcast to {:?}",
                    mask.shape(),
                    self.shape()
                ),
            ));
        }
        let fill = Tensor::full(&[], value, self.dtype(), &self.device())?;
        mask.where_cond(&fill, self)
    }

    /// The lower triangle of the last two dimensions (batched): elements with
    /// `col - row <= k` kept, the rest zero (PyTorch's `tril(diagonal=k)`).
    pub fn tril(&self, k: i64) -> Result<Tensor> {
        self.triangle(k, true)
    }

    /// The upper triangle of the last two dimensions (batched): elements with
    /// `col - row >= k` kept, the rest zero (PyTorch's `triu(diagonal=k)`).
    pub fn triu(&self, k: i64) -> Result<Tensor> {
        self.triangle(k, false)
    }

    fn triangle(&self, k: i64, lower: bool) -> Result<Tensor> {
        let op = if lower { "tril" } else { "triu" };
        let r = self.rank();
        if r < 2 {
            return Err(Error::arg(
                "self",
                format!(
                    "{op}: needs at least 2 dimensions, got shape {:?}",
                    self.shape()
                ),
            ));
        }
        let (m, n, dev) = (self.shape()[r - 2], self.shape()[r - 1], self.device());
        // col - row for every (row, col), made on the device.
        let rows = Tensor::arange(m, DType::I64, &dev)?.reshape(&[m, 1])?;
        let cols = Tensor::arange(n, DType::I64, &dev)?.reshape(&[1, n])?;
        let offset = cols.sub(&rows)?;
        // Every offset lies in [-m, n], so k saturated to that range (exact in f64)
        // keeps the same elements.
        let span = |d: usize| i64::try_from(d).unwrap_or(i64::MAX);
        let k = k.clamp(-span(m), span(n));
        let k = Tensor::full(&[], k as f64, DType::I64, &dev)?;
        let keep = if lower {
            offset.le(&k)?
        } else {
            offset.ge(&k)?
        };
        let zero = Tensor::zeros(&[], self.dtype(), &dev)?;
        keep.where_cond(self, &zero)
    }
}

/// `t` extended with zeros at the end of each dimension up to `shape`.
fn pad_with_zeros(t: Tensor, shape: &[usize]) -> Result<Tensor> {
    let mut t = t;
    for (d, &want) in shape.iter().enumerate() {
        let have = t.shape()[d];
        if have < want {
            let mut zeros_shape = t.shape().to_vec();
            zeros_shape[d] = want - have;
            let zeros = Tensor::zeros(&zeros_shape, t.dtype(), &t.device())?;
            t = Tensor::cat(&[&t, &zeros], d)?;
        }
    }
    Ok(t)
}
