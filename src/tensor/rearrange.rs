//! Pieces and rearrangements: `split`, `split_sizes`, `chunk`, `unbind`, `select`,
//! `unflatten` and `expand` (views, as in PyTorch), and `repeat`,
//! `repeat_interleave`, `roll` and `flip` (copies made by the copy and gather
//! kernels). Gradients come from the view and copy ops they are built of, or (flip)
//! are the op itself applied to the gradient.

use super::Tensor;
use crate::autograd::record;
use crate::shape::{check_dim, checked_numel, checked_product, Layout};
use crate::{DType, Error, Result};

impl Tensor {
    /// Views of consecutive pieces of `size` elements along `dim` (the last may be
    /// shorter), like `torch.split(x, size, dim)`. `size` 0 is an `Err` unless the
    /// dimension is empty (one empty piece).
    pub fn split(&self, size: usize, dim: usize) -> Result<Vec<Tensor>> {
        check_dim("split", dim, self.rank())?;
        let len = self.shape()[dim];
        if size == 0 && len > 0 {
            return Err(Error::arg(
                "size",
                format!("split: size 0 cannot split dimension {dim} of size {len}"),
            ));
        }
        let sizes: Vec<usize> = match len {
            0 => vec![0],
            _ => (0..len)
                .step_by(size)
                .map(|at| size.min(len - at))
                .collect(),
        };
        self.split_sizes(&sizes, dim)
    }

    /// Views of consecutive pieces of `sizes[i]` elements along `dim`, like
    /// `torch.split(x, sizes, dim)` with a list; the sizes must add up to the
    /// dimension's size.
    pub fn split_sizes(&self, sizes: &[usize], dim: usize) -> Result<Vec<Tensor>> {
        check_dim("split_sizes", dim, self.rank())?;
        let len = self.shape()[dim];
        let total = sizes.iter().try_fold(0usize, |a, &s| a.checked_add(s));
        if total != Some(len) {
            return Err(Error::arg(
                "sizes",
                format!(
                    "split_sizes: {sizes:?} do not add up to the size {len} of dimension {dim}"
                ),
            ));
        }
        let mut at = 0;
        sizes
            .iter()
            .map(|&n| {
                at += n;
                self.narrow(dim, at - n, n)
            })
            .collect()
    }

    /// `chunks` views along `dim` of `ceil(size / chunks)` elements each (fewer when
    /// the last pieces would be empty), like `torch.chunk`. An empty dimension gives
    /// `chunks` empty views; `chunks` 0 is an `Err`.
    pub fn chunk(&self, chunks: usize, dim: usize) -> Result<Vec<Tensor>> {
        check_dim("chunk", dim, self.rank())?;
        if chunks == 0 {
            return Err(Error::arg("chunks", "chunk: chunks must be at least 1"));
        }
        match self.shape()[dim] {
            0 => self.split_sizes(&vec![0; chunks], dim),
            len => self.split(len.div_ceil(chunks), dim),
        }
    }

    /// Every slice along `dim`, without that dimension (views), like `torch.unbind`.
    pub fn unbind(&self, dim: usize) -> Result<Vec<Tensor>> {
        check_dim("unbind", dim, self.rank())?;
        (0..self.shape()[dim])
            .map(|i| self.select(dim, i))
            .collect()
    }

    /// The slice at `index` of `dim`, without that dimension (a view), like
    /// `x.select(dim, index)` or `x[:, index]`. The gradient fills that slice.
    pub fn select(&self, dim: usize, index: usize) -> Result<Tensor> {
        check_dim("select", dim, self.rank())?;
        let len = self.shape()[dim];
        if index >= len {
            return Err(Error::arg(
                "index",
                format!("select: index {index} is out of range for dimension {dim} of size {len}"),
            ));
        }
        self.narrow(dim, index, 1)?.drop_unit_dim(dim)
    }

    /// Dimension `dim` (of size 1) removed from the layout: always a view, unlike a
    /// reshape of a strided tensor.
    fn drop_unit_dim(&self, dim: usize) -> Result<Tensor> {
        let _op = crate::profiler::op("select", &[self]);
        let mut layout = self.layout().clone();
        layout.shape.remove(dim);
        layout.strides.remove(dim);
        Ok(record(
            self.with_layout(layout),
            "select",
            &[self],
            move |_, g| Ok(vec![Some(g.unsqueeze(dim)?)]),
        ))
    }

    /// Dimension `dim` split into `sizes` (a view), like `x.unflatten(dim, sizes)`;
    /// one size may be `usize::MAX`, inferred as with [`Tensor::reshape`]. The sizes
    /// must multiply to the dimension's size.
    pub fn unflatten(&self, dim: usize, sizes: &[usize]) -> Result<Tensor> {
        let _op = crate::profiler::op("unflatten", &[self]);
        check_dim("unflatten", dim, self.rank())?;
        let len = self.shape()[dim];
        let sizes = infer_sizes(sizes, len)?;
        let l = self.layout();
        let mut shape = l.shape[..dim].to_vec();
        let mut strides = l.strides[..dim].to_vec();
        let mut step = l.strides[dim];
        let mut new_strides: Vec<usize> = sizes
            .iter()
            .rev()
            .map(|&s| {
                let here = step;
                step = step.saturating_mul(s);
                here
            })
            .collect();
        new_strides.reverse();
        shape.extend(&sizes);
        strides.extend(new_strides);
        shape.extend(&l.shape[dim + 1..]);
        strides.extend(&l.strides[dim + 1..]);
        let layout = Layout {
            shape,
            strides,
            offset: l.offset,
        };
        let original = self.shape().to_vec();
        Ok(record(
            self.with_layout(layout),
            "unflatten",
            &[self],
            move |_, g| Ok(vec![Some(g.reshape(&original)?)]),
        ))
    }

    /// This tensor broadcast to `sizes` without copying, like `x.expand(sizes)`:
    /// size-1 dimensions stretch, new ones are added in front, and `usize::MAX`
    /// (PyTorch's -1) keeps a dimension's size. The gradient sums over the
    /// stretched dimensions.
    pub fn expand(&self, sizes: &[usize]) -> Result<Tensor> {
        let extra = sizes.len().checked_sub(self.rank()).ok_or_else(|| {
            Error::arg(
                "sizes",
                format!(
                    "expand: {} sizes for a tensor of {} dimensions",
                    sizes.len(),
                    self.rank()
                ),
            )
        })?;
        let mut shape = sizes.to_vec();
        for (d, s) in shape.iter_mut().enumerate() {
            if *s != usize::MAX {
                continue;
            }
            *s = match d.checked_sub(extra) {
                Some(own) => self.shape()[own],
                None => {
                    return Err(Error::arg(
                        "sizes",
                        format!("expand: the new leading dimension {d} cannot be -1 (usize::MAX)"),
                    ))
                }
            };
        }
        let fits = (0..self.rank()).all(|d| {
            let (have, want) = (self.shape()[d], shape[d + extra]);
            have == want || have == 1
        });
        if !fits {
            return Err(Error::arg(
                "sizes",
                format!("expand: {:?} cannot be expanded to {shape:?}", self.shape()),
            ));
        }
        self.broadcast_as(&shape)
    }

    /// This tensor tiled `repeats[d]` times along each dimension, like
    /// `x.repeat(repeats)`; with more repeats than dimensions, the tensor is first
    /// seen with leading dimensions of size 1. A copy; the gradient sums the tiles.
    pub fn repeat(&self, repeats: &[usize]) -> Result<Tensor> {
        let extra = repeats.len().checked_sub(self.rank()).ok_or_else(|| {
            Error::arg(
                "repeats",
                format!(
                    "repeat: {} repeats for a tensor of {} dimensions (at least as many needed)",
                    repeats.len(),
                    self.rank()
                ),
            )
        })?;
        let mut sizes = vec![1; extra];
        sizes.extend_from_slice(self.shape());
        // (1, s0, 1, s1, ..) stretched to (r0, s0, r1, s1, ..), then merged pairwise.
        let ones: Vec<usize> = sizes.iter().flat_map(|&s| [1, s]).collect();
        let tiled: Vec<usize> = repeats
            .iter()
            .zip(&sizes)
            .flat_map(|(&r, &s)| [r, s])
            .collect();
        let shape = repeats
            .iter()
            .zip(&sizes)
            .map(|(&r, &s)| checked_product("repeat", "a repeated dimension", &[r, s]))
            .collect::<Result<Vec<_>>>()?;
        checked_numel("repeat", &shape)?;
        // contiguous_or_copy: with every repeat 1 the broadcast moves nothing, and a
        // plain `contiguous` would hand back this tensor's own storage.
        self.reshape(&ones)?
            .broadcast_as(&tiled)?
            .contiguous_or_copy()?
            .reshape(&shape)
    }

    /// Each element repeated `repeats` times in a row along `dim`, like
    /// `x.repeat_interleave(repeats, dim)` with an integer. A copy; the gradient sums
    /// each element's copies.
    pub fn repeat_interleave(&self, repeats: usize, dim: usize) -> Result<Tensor> {
        check_dim("repeat_interleave", dim, self.rank())?;
        let mut stretched = self.shape().to_vec();
        stretched.insert(dim + 1, repeats);
        let mut shape = self.shape().to_vec();
        shape[dim] = checked_product(
            "repeat_interleave",
            "the repeated dimension",
            &[shape[dim], repeats],
        )?;
        checked_numel("repeat_interleave", &shape)?;
        self.unsqueeze(dim + 1)?
            .broadcast_as(&stretched)?
            .contiguous_or_copy()?
            .reshape(&shape)
    }

    /// The elements shifted by `shifts[i]` places along `dims[i]`, wrapping around,
    /// like `torch.roll(x, shifts, dims)` (negative shifts go the other way). With
    /// `dims` empty, the tensor is rolled as one flat line by the one shift given.
    /// A copy made of two pieces per dimension; the gradient rolls back.
    pub fn roll(&self, shifts: &[i64], dims: &[usize]) -> Result<Tensor> {
        if dims.is_empty() {
            if shifts.len() != 1 {
                return Err(Error::arg(
                    "shifts",
                    format!("roll: without dims, give one shift, got {shifts:?}"),
                ));
            }
            return self
                .reshape(&[self.numel()])?
                .roll(shifts, &[0])?
                .reshape(self.shape());
        }
        if shifts.len() != dims.len() {
            return Err(Error::arg(
                "shifts",
                format!("roll: {} shifts for {} dims", shifts.len(), dims.len()),
            ));
        }
        let mut out = self.clone();
        for (&shift, &dim) in shifts.iter().zip(dims) {
            check_dim("roll", dim, self.rank())?;
            let len = self.shape()[dim];
            let s = match len {
                0 => 0,
                _ => shift.rem_euclid(len as i64) as usize,
            };
            if s != 0 {
                let tail = out.narrow(dim, len - s, s)?;
                let head = out.narrow(dim, 0, len - s)?;
                out = Tensor::cat(&[&tail, &head], dim)?;
            }
        }
        if out.same_storage(self) {
            out = out.contiguous_or_copy()?;
        }
        Ok(out)
    }

    /// The order of the elements reversed along each of `dims` (each at most once),
    /// like `torch.flip`. A copy made by the gather kernel; the gradient is the
    /// gradient flipped.
    pub fn flip(&self, dims: &[usize]) -> Result<Tensor> {
        let _op = crate::profiler::op("flip", &[self]);
        for (i, &dim) in dims.iter().enumerate() {
            check_dim("flip", dim, self.rank())?;
            if dims[..i].contains(&dim) {
                return Err(Error::arg(
                    "dims",
                    format!("flip: dimension {dim} appears twice in {dims:?}"),
                ));
            }
        }
        let mut out = self.detach();
        for &dim in dims {
            let n = self.shape()[dim];
            // n-1, n-2, .., 0 made on the device: no index leaves the range, so the
            // gather needs no bounds check (and no readback).
            let reversed = Tensor::arange(n, DType::I64, &self.device())?
                .mul_scalar(-1.0)?
                .add_scalar(n as f64 - 1.0)?;
            out = out.index_select_checked(dim, &reversed)?;
        }
        if dims.is_empty() {
            out = out.contiguous_or_copy()?;
        }
        let dims = dims.to_vec();
        Ok(record(out, "flip", &[self], move |_, g| {
            Ok(vec![Some(g.flip(&dims)?)])
        }))
    }

    /// A copy that shares no storage with this tensor (a roll, flip or repeat that
    /// moved nothing still returns new memory, as PyTorch does).
    fn contiguous_or_copy(&self) -> Result<Tensor> {
        let _op = crate::profiler::op("clone", &[self]);
        let copy = self.contiguous_copy()?;
        Ok(record(copy, "clone", &[self], |_, g| {
            Ok(vec![Some(g.clone())])
        }))
    }
}

/// `sizes` with an inferred `usize::MAX` entry resolved so that they multiply to `len`.
fn infer_sizes(sizes: &[usize], len: usize) -> Result<Vec<usize>> {
    let inferred: Vec<usize> = (0..sizes.len())
        .filter(|&i| sizes[i] == usize::MAX)
        .collect();
    let known: Vec<usize> = sizes.iter().copied().filter(|&s| s != usize::MAX).collect();
    let product = checked_product("unflatten", "the sizes", &known)?;
    let mut out = sizes.to_vec();
    match inferred.as_slice() {
        [] if product == len => return Ok(out),
        [i] if product > 0 && len.is_multiple_of(product) => {
            out[*i] = len / product;
            return Ok(out);
        }
        _ => {}
    }
    Err(Error::arg(
        "sizes",
        format!("unflatten: {sizes:?} (usize::MAX inferred) do not multiply to {len}"),
    ))
}
