//! Views and layout ops: `reshape`, `transpose`, `permute`, `narrow`, `flatten`,
//! `unsqueeze`, `squeeze`, `broadcast_as`, `contiguous`, and `cat`.
//!
//! Views share storage and only change the layout; their gradients apply the inverse
//! layout change to the incoming gradient.

use super::Tensor;
use crate::autograd::{record, record_region, Region};
use crate::shape::{
    check_dim, checked_numel, checked_product, checked_sum, contiguous_strides, Layout,
};
use crate::{Error, Result};

impl Tensor {
    /// The same elements with `shape`. One dimension may be `usize::MAX`, meaning
    /// "inferred" (PyTorch's `-1`). A view when the tensor is contiguous, else a copy.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let _op = crate::profiler::op("reshape", &[self]);
        let shape = self.infer_shape(shape)?;
        if shape == self.shape() {
            return Ok(self.clone());
        }
        let src = self.contiguous()?;
        let layout = Layout {
            strides: contiguous_strides(&shape),
            shape: shape.clone(),
            offset: src.layout().offset,
        };
        let out = src.with_layout(layout);
        let original = self.shape().to_vec();
        Ok(record(out, "reshape", &[&src], move |_, g| {
            Ok(vec![Some(g.reshape(&original)?)])
        }))
    }

    fn infer_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let inferred: Vec<usize> = (0..shape.len())
            .filter(|&i| shape[i] == usize::MAX)
            .collect();
        let mut out = shape.to_vec();
        match inferred.as_slice() {
            [] => {}
            [i] => {
                let mut known_dims = shape.to_vec();
                known_dims.remove(*i);
                let known = checked_numel("reshape", &known_dims)?;
                if known == 0 || !self.numel().is_multiple_of(known) {
                    return Err(Error::arg(
                        "shape",
                        format!(
                            "cannot infer dimension {i} (usize::MAX marks the inferred dimension) \
                             of {}: the other dimensions hold {known} elements, and {} elements \
                             are not a multiple of that",
                            shown_shape(shape),
                            self.numel()
                        ),
                    ));
                }
                out[*i] = self.numel() / known;
            }
            _ => {
                return Err(Error::arg(
                    "shape",
                    format!(
                        "at most one dimension can be inferred (marked usize::MAX), got {}",
                        shown_shape(shape)
                    ),
                ))
            }
        }
        let expected = checked_numel("reshape", &out)?;
        if expected != self.numel() {
            return Err(Error::ElementCount {
                op: "reshape",
                shape: out.clone(),
                expected,
                got: self.numel(),
            });
        }
        Ok(out)
    }

    /// Merges dimensions `start..=end` into one.
    pub fn flatten(&self, start: usize, end: usize) -> Result<Tensor> {
        if self.rank() == 0 {
            // A scalar flattens like a 1-D tensor of one element: only dim 0 exists.
            check_dim("flatten", start.max(end), 1)?;
            return self.reshape(&[1]);
        }
        check_dim("flatten", end, self.rank())?;
        if start > end {
            return Err(Error::arg(
                "start",
                format!("start ({start}) must not exceed end ({end})"),
            ));
        }
        let s = self.shape();
        let mut shape = s[..start].to_vec();
        // An empty tensor's other dims can multiply past usize (`[0, 2^40, 2^40]`).
        shape.push(checked_product(
            "flatten",
            "the merged dimension",
            &s[start..=end],
        )?);
        shape.extend_from_slice(&s[end + 1..]);
        self.reshape(&shape)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `dims[i]`.
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        let _op = crate::profiler::op("permute", &[self]);
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if dims.len() != rank
            || dims
                .iter()
                .any(|&d| d >= rank || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::arg(
                "dims",
                format!("{dims:?} is not a permutation of 0..{rank}"),
            ));
        }
        let l = self.layout();
        let layout = Layout {
            shape: dims.iter().map(|&d| l.shape[d]).collect(),
            strides: dims.iter().map(|&d| l.strides[d]).collect(),
            offset: l.offset,
        };
        let mut inverse = vec![0; rank];
        for (i, &d) in dims.iter().enumerate() {
            inverse[d] = i;
        }
        Ok(record(
            self.with_layout(layout),
            "permute",
            &[self],
            move |_, g| Ok(vec![Some(g.permute(&inverse)?)]),
        ))
    }

    /// Swaps dimensions `a` and `b` (a view).
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        check_dim("transpose", a, self.rank())?;
        check_dim("transpose", b, self.rank())?;
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// The slice `start..start+len` of dimension `dim` (a view).
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        let _op = crate::profiler::op("narrow", &[self]);
        check_dim("narrow", dim, self.rank())?;
        let size = self.shape()[dim];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::arg(
                "len",
                format!("narrow({dim}, {start}, {len}) exceeds the dimension's size {size}"),
            ));
        }
        let layout = self.narrow_layout(dim, start, len);
        let shape = self.shape().to_vec();
        Ok(record_region(
            self.with_layout(layout),
            self,
            Region { dim, start, len },
            move |_, g| {
                let grad = Tensor::zeros(&shape, g.dtype(), &g.device())?;
                let region = grad.narrow_layout(dim, start, len);
                grad.copy_region_from(&region, g)?;
                Ok(vec![Some(grad)])
            },
        ))
    }

    /// `self[region] += g` in place, for a gradient buffer that backward owns.
    pub(crate) fn add_into_region(&self, region: Region, g: &Tensor) -> Result<()> {
        let layout = self.narrow_layout(region.dim, region.start, region.len);
        let sum = self.with_layout(layout.clone()).add(g)?;
        self.copy_region_from(&layout, &sum)
    }

    /// Inserts a dimension of size 1 at `dim` (a view).
    pub fn unsqueeze(&self, dim: usize) -> Result<Tensor> {
        check_dim("unsqueeze", dim, self.rank() + 1)?;
        let mut shape = self.shape().to_vec();
        shape.insert(dim, 1);
        self.reshape(&shape)
    }

    /// Removes dimension `dim`, which must have size 1 (a view).
    pub fn squeeze(&self, dim: usize) -> Result<Tensor> {
        check_dim("squeeze", dim, self.rank())?;
        if self.shape()[dim] != 1 {
            return Err(Error::arg(
                "dim",
                format!("dimension {dim} has size {}, not 1", self.shape()[dim]),
            ));
        }
        let mut shape = self.shape().to_vec();
        shape.remove(dim);
        self.reshape(&shape)
    }

    /// This tensor broadcast to `shape` without copying (stride 0 on stretched dims).
    pub fn broadcast_as(&self, shape: &[usize]) -> Result<Tensor> {
        let _op = crate::profiler::op("broadcast_as", &[self]);
        if shape == self.shape() {
            return Ok(self.clone());
        }
        checked_numel("broadcast_as", shape)?;
        let layout = self.layout().broadcast_to("broadcast_as", shape)?;
        let original = self.shape().to_vec();
        Ok(record(
            self.with_layout(layout),
            "broadcast_as",
            &[self],
            move |_, g| Ok(vec![Some(g.sum_to_shape(&original)?)]),
        ))
    }

    /// A contiguous tensor with the same elements (this tensor when already contiguous).
    pub fn contiguous(&self) -> Result<Tensor> {
        let _op = crate::profiler::op("contiguous", &[self]);
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        let out = self.contiguous_copy()?;
        Ok(record(out, "contiguous", &[self], |_, g| {
            Ok(vec![Some(g.clone())])
        }))
    }

    /// A fresh contiguous copy outside the graph.
    pub(crate) fn contiguous_copy(&self) -> Result<Tensor> {
        Ok(Tensor::from_storage(
            self.storage().copy_as(self.layout(), self.dtype())?,
            self.shape(),
        ))
    }

    /// Joins tensors along `dim`; all other dimensions must agree.
    pub fn cat(tensors: &[&Tensor], dim: usize) -> Result<Tensor> {
        let _op = crate::profiler::op("cat", tensors);
        let first = *tensors
            .first()
            .ok_or_else(|| Error::arg("tensors", "cat needs at least one tensor"))?;
        check_dim("cat", dim, first.rank())?;
        for t in &tensors[1..] {
            first.check_same_device("cat", t)?;
            first.check_same_dtype("cat", t)?;
            let same_rest = t.rank() == first.rank()
                && (0..first.rank()).all(|d| d == dim || t.shape()[d] == first.shape()[d]);
            if !same_rest {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().to_vec(),
                    rhs: t.shape().to_vec(),
                });
            }
        }
        let mut shape = first.shape().to_vec();
        let sizes_along: Vec<usize> = tensors.iter().map(|t| t.shape()[dim]).collect();
        shape[dim] = checked_sum("cat", "the joined dimension", &sizes_along)?;
        let out = Tensor::zeros(&shape, first.dtype(), &first.device())?;
        let mut sizes = Vec::with_capacity(tensors.len());
        let mut at = 0;
        for t in tensors {
            let n = t.shape()[dim];
            let region = out.narrow_layout(dim, at, n);
            out.copy_region_from(&region, t)?;
            sizes.push((at, n));
            at += n;
        }
        Ok(record(out, "cat", tensors, move |_, g| {
            sizes
                .iter()
                .map(|&(at, n)| Ok(Some(g.narrow(dim, at, n)?)))
                .collect()
        }))
    }

    /// The layout of `narrow(dim, start, len)` without building a tensor.
    fn narrow_layout(&self, dim: usize, start: usize, len: usize) -> Layout {
        let mut layout = self.layout().clone();
        // An empty tensor's strides may be saturated and its offset is never read;
        // a non-empty one's `start * stride` stays inside its storage.
        if layout.numel() > 0 {
            layout.offset += start * layout.strides[dim];
        }
        layout.shape[dim] = len;
        layout
    }
}

/// A requested shape as the user thinks of it: the inferred dimension (`usize::MAX`)
/// shown as `-1` (PyTorch's spelling) instead of 18446744073709551615.
fn shown_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|&d| {
            if d == usize::MAX {
                "-1".to_owned()
            } else {
                d.to_string()
            }
        })
        .collect();
    format!("[{}]", dims.join(", "))
}
