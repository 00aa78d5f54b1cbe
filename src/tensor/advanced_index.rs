//! Advanced indexing with I64 index tensors: `index` (`x[:, rows]`) and `index_put`
//! (`x[:, rows] = v`, `index_put_(.., accumulate)`), with PyTorch's broadcasting and
//! placement rules.
//!
//! Both are planned on rows: the indexed dimensions are moved to the front and merged
//! into one (P rows of R elements), the index tensors combine into one linear row
//! index (N entries, their broadcast shape flattened), and the op becomes a gather of
//! rows (`index_select`, whose gradient is the row scatter) or the row kernel of
//! `index_put_rows` (deterministic: each output row sums its own terms in order).

use super::{StorageLocks, Tensor};
use crate::autograd::record;
use crate::shape::broadcast_shape;
use crate::{DType, Error, Result};

/// How an advanced index maps onto rows.
struct IndexPlan {
    /// The indexed dimensions, in order.
    dims: Vec<usize>,
    /// The other dimensions, in order.
    others: Vec<usize>,
    /// The broadcast shape of the index tensors.
    index_shape: Vec<usize>,
    /// Row of each entry of the broadcast index (flattened, `N`), in `[0, P)`.
    rows: Tensor,
    /// Where the index's dimensions go in the result: before the other dimensions,
    /// or (when the indexed dimensions are adjacent) in place of them, after this
    /// many others.
    at: usize,
}

impl Tensor {
    /// The elements picked by `indices`, like PyTorch's `x[indices]` with index
    /// tensors: entry `d` is `None` (the whole dimension, `:`) or an I64 tensor of
    /// positions along dimension `d` (negative ones count from the end); missing
    /// trailing entries are `None`. The index tensors broadcast together to one shape
    /// B, which replaces the indexed dimensions in the result — where they were when
    /// they are adjacent, else in front (PyTorch's rule). A position out of range is
    /// an `Err`. The gradient adds each picked element back where it came from.
    ///
    /// ```
    /// # use kiln::{Device, Tensor};
    /// let dev = Device::Cpu;
    /// let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[3, 4], &dev)?;
    /// let cols = Tensor::from_vec(vec![3i64, 0], &[2], &dev)?;
    /// let y = x.index(&[None, Some(&cols)])?; // x[:, [3, 0]]
    /// assert_eq!(y.to_vec::<f32>()?, [3., 0., 7., 4., 11., 8.]);
    /// # Ok::<(), kiln::Error>(())
    /// ```
    pub fn index(&self, indices: &[Option<&Tensor>]) -> Result<Tensor> {
        let Some(plan) = IndexPlan::new(self, indices, "index")? else {
            return Ok(self.clone());
        };
        let picked = plan.to_rows(self)?.index_select_checked(0, &plan.rows)?;
        plan.result_of_picked(self, picked)
    }

    /// A copy of this tensor with the elements `indices` picks (as in
    /// [`Tensor::index`]) set to `values` (broadcast to the picked shape, same
    /// dtype), or with `values` added to them when `accumulate` — PyTorch's
    /// `x.index_put(indices, values, accumulate)`. With repeated positions, the sums
    /// run in index order and, without `accumulate`, the last value wins: both
    /// deterministic on every device. At least one index tensor is needed. Every
    /// dtype; gradients flow to this tensor (not through replaced elements) and to
    /// `values`.
    pub fn index_put(
        &self,
        indices: &[Option<&Tensor>],
        values: &Tensor,
        accumulate: bool,
    ) -> Result<Tensor> {
        self.check_same_device("index_put", values)?;
        if values.dtype() != self.dtype() {
            return Err(Error::arg(
                "values",
                format!(
                    "index_put: values are {:?}, the tensor is {:?}",
                    values.dtype(),
                    self.dtype()
                ),
            ));
        }
        let plan = IndexPlan::new(self, indices, "index_put")?
            .ok_or_else(|| Error::arg("indices", "index_put: needs at least one index tensor"))?;
        let picked = plan.picked_shape(self);
        let v = values.broadcast_as(&picked).map_err(|_| {
            Error::arg(
                "values",
                format!(
                    "index_put: values of shape {:?} do not broadcast to the indexed shape {picked:?}",
                    values.shape()
                ),
            )
        })?;
        let rows = plan.to_rows(self)?;
        let v = plan.to_picked_rows(self, &v)?;
        let out = rows.put_rows(&plan.rows, &v, accumulate)?;
        plan.tensor_of_rows(self, out)
    }

    /// [`IndexOps::index_put_rows`](crate::backend::index::IndexOps::index_put_rows) on
    /// this (P, R) tensor with rows `idx` (N,) of `src` (N, R), recorded for autograd.
    fn put_rows(&self, idx: &Tensor, src: &Tensor, accumulate: bool) -> Result<Tensor> {
        let _op = crate::profiler::op("index_put", &[self, src]);
        let out = {
            let locks = StorageLocks::read(&[self, idx, src]);
            locks.get(0).index_put_rows(
                self.layout(),
                locks.get(1),
                idx.layout(),
                locks.get(2),
                src.layout(),
                accumulate,
            )?
        };
        let out = Tensor::from_storage(out, self.shape());
        let (idx, src_shape) = (idx.detach(), src.shape().to_vec());
        Ok(record(out, "index_put", &[self, src], move |_, g| {
            let g_self = match accumulate {
                true => g.clone(),
                // Replaced elements get nothing.
                false => {
                    let zeros = Tensor::zeros(&src_shape, g.dtype(), &g.device())?;
                    g.detach().put_rows(&idx, &zeros, false)?
                }
            };
            Ok(vec![Some(g_self), Some(g.index_select_checked(0, &idx)?)])
        }))
    }
}

impl IndexPlan {
    /// The plan of `x[indices]`, or `None` when no entry is a tensor (the whole of
    /// `x`). Errs naming `indices` for too many entries, a non-I64 index, a position
    /// out of range, or shapes that do not broadcast.
    fn new(x: &Tensor, indices: &[Option<&Tensor>], op: &'static str) -> Result<Option<Self>> {
        if indices.len() > x.rank() {
            return Err(Error::arg(
                "indices",
                format!(
                    "{op}: {} indices for a tensor of {} dimensions",
                    indices.len(),
                    x.rank()
                ),
            ));
        }
        let dims: Vec<usize> = (0..indices.len())
            .filter(|&d| indices[d].is_some())
            .collect();
        if dims.is_empty() {
            return Ok(None);
        }
        let mut index_shape: Vec<usize> = Vec::new();
        for &d in &dims {
            let t = indices[d].expect("an indexed dimension");
            x.check_same_device(op, t)?;
            if t.dtype() != DType::I64 {
                return Err(Error::arg(
                    "indices",
                    format!("{op}: index {d} must be I64, got {:?}", t.dtype()),
                ));
            }
            index_shape = broadcast_shape(op, &index_shape, t.shape()).map_err(|_| {
                Error::arg(
                    "indices",
                    format!(
                        "{op}: index {d} of shape {:?} does not broadcast with {index_shape:?}",
                        t.shape()
                    ),
                )
            })?;
        }
        let rows = row_index(x, indices, &dims, &index_shape, op)?;
        let others: Vec<usize> = (0..x.rank()).filter(|d| !dims.contains(d)).collect();
        let adjacent = dims.windows(2).all(|w| w[1] == w[0] + 1);
        let at = if adjacent { dims[0] } else { 0 };
        Ok(Some(IndexPlan {
            dims,
            others,
            index_shape,
            rows,
            at,
        }))
    }

    /// The order that puts the indexed dimensions first.
    fn order(&self) -> Vec<usize> {
        self.dims.iter().chain(&self.others).copied().collect()
    }

    /// Sizes of `x`'s other dimensions.
    fn other_sizes(&self, x: &Tensor) -> Vec<usize> {
        self.others.iter().map(|&d| x.shape()[d]).collect()
    }

    /// `x` as (P, R): the indexed dimensions merged into rows.
    fn to_rows(&self, x: &Tensor) -> Result<Tensor> {
        let p: usize = self.dims.iter().map(|&d| x.shape()[d]).product();
        let r: usize = self.other_sizes(x).iter().product();
        x.permute(&self.order())?.reshape(&[p, r])
    }

    /// The shape `x[indices]` has.
    fn picked_shape(&self, x: &Tensor) -> Vec<usize> {
        let mut shape = self.other_sizes(x);
        let tail = shape.split_off(self.at);
        shape.extend(&self.index_shape);
        shape.extend(tail);
        shape
    }

    /// The order of the result's dimensions seen from (B, others): the index's
    /// dimensions moved to position `at`.
    fn result_order(&self) -> Vec<usize> {
        let nb = self.index_shape.len();
        let n = nb + self.others.len();
        (nb..nb + self.at)
            .chain(0..nb)
            .chain(nb + self.at..n)
            .collect()
    }

    /// The picked rows (N, R) as the result of `x[indices]`.
    fn result_of_picked(&self, x: &Tensor, picked: Tensor) -> Result<Tensor> {
        let mut shape = self.index_shape.clone();
        shape.extend(self.other_sizes(x));
        picked.reshape(&shape)?.permute(&self.result_order())
    }

    /// `v`, of the result's shape, as rows (N, R) matching [`IndexPlan::rows`].
    fn to_picked_rows(&self, x: &Tensor, v: &Tensor) -> Result<Tensor> {
        let order = self.result_order();
        let mut inverse = vec![0; order.len()];
        for (i, &o) in order.iter().enumerate() {
            inverse[o] = i;
        }
        let n: usize = self.index_shape.iter().product();
        let r: usize = self.other_sizes(x).iter().product();
        v.permute(&inverse)?.reshape(&[n, r])
    }

    /// The (P, R) rows put back into `x`'s shape and dimension order (contiguous).
    fn tensor_of_rows(&self, x: &Tensor, rows: Tensor) -> Result<Tensor> {
        let order = self.order();
        let shape: Vec<usize> = order.iter().map(|&d| x.shape()[d]).collect();
        let mut inverse = vec![0; order.len()];
        for (i, &o) in order.iter().enumerate() {
            inverse[o] = i;
        }
        rows.reshape(&shape)?.permute(&inverse)?.contiguous()
    }
}

/// The row (in the indexed dimensions merged, row-major) of every entry of the
/// broadcast index, flattened: `Σ_k idx_k · Π_{k' > k} size_{k'}`, each index first
/// checked against `[-size, size)` and negative ones wrapped. Computed on the device.
fn row_index(
    x: &Tensor,
    indices: &[Option<&Tensor>],
    dims: &[usize],
    index_shape: &[usize],
    op: &'static str,
) -> Result<Tensor> {
    let mut rows: Option<Tensor> = None;
    let mut step = 1usize;
    for &d in dims.iter().rev() {
        let t = indices[d].expect("an indexed dimension").detach();
        let size = x.shape()[d];
        let t = match t.storage().index_bounds(t.layout())? {
            Some((lo, hi)) if lo < -(size as i64) || hi >= size as i64 => {
                let bad = if hi >= size as i64 { hi } else { lo };
                return Err(Error::arg(
                    "indices",
                    format!("{op}: index {bad} is out of range for dimension {d} of size {size}"),
                ));
            }
            // Negative positions count from the end.
            Some((lo, _)) if lo < 0 => {
                let wrap = t
                    .lt_scalar(0.0)?
                    .to_dtype(DType::I64)?
                    .mul_scalar(size as f64)?;
                t.add(&wrap)?
            }
            _ => t.clone(),
        };
        let term = t.mul_scalar(step as f64)?;
        rows = Some(match rows {
            None => term,
            Some(r) => r.add(&term)?,
        });
        step *= size;
    }
    let rows = rows.expect("at least one index tensor");
    let n: usize = index_shape.iter().product();
    rows.broadcast_as(index_shape)?.reshape(&[n])
}
