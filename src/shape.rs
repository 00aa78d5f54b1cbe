//! Shapes, strides and broadcasting.
//!
//! A [`Layout`] says where each element of a tensor lives in its storage: element
//! `(i0, i1, ..)` is at `offset + i0*strides[0] + i1*strides[1] + ..`. Views
//! (transpose, narrow, permute, broadcast) only change the layout.

use crate::{Error, Result};

/// Number of elements of a shape (1 for a scalar). A shape with a 0 has none, however
/// large its other dimensions (`[usize::MAX, usize::MAX, 0]` is a valid empty
/// tensor); a count that does not fit saturates at `usize::MAX` (no tensor has such a
/// shape: creation checks with [`checked_numel`]).
pub fn numel(shape: &[usize]) -> usize {
    if shape.contains(&0) {
        return 0;
    }
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX)
}

/// Number of elements of `shape`, or an error naming `op` when the count does not
/// fit in `usize` (a shape no memory could hold).
pub fn checked_numel(op: &'static str, shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::shape(op, format!("shape {shape:?} has too many elements")))
}

/// The product of `factors`, or an error naming `op` and `what` when it does not
/// fit in `usize`.
pub fn checked_product(op: &'static str, what: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |n, &f| n.checked_mul(f))
        .ok_or_else(|| {
            Error::shape(
                op,
                format!("{what} ({factors:?} multiplied) overflows usize"),
            )
        })
}

/// The sum of `terms`, or an error naming `op` and `what` when it does not fit in
/// `usize`.
pub fn checked_sum(op: &'static str, what: &str, terms: &[usize]) -> Result<usize> {
    terms
        .iter()
        .try_fold(0usize, |n, &t| n.checked_add(t))
        .ok_or_else(|| Error::shape(op, format!("{what} ({terms:?} added) overflows usize")))
}

/// Row-major (C-contiguous) strides for `shape`. Strides of an empty shape can
/// exceed `usize` (`[0, usize::MAX, 2]`); they saturate, since no element is ever
/// addressed through them.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1].saturating_mul(shape[d + 1]);
    }
    strides
}

/// Checks `dim < rank` and returns it.
pub fn check_dim(op: &'static str, dim: usize, rank: usize) -> Result<usize> {
    if dim < rank {
        Ok(dim)
    } else {
        Err(Error::DimOutOfRange { op, dim, rank })
    }
}

/// The shape two shapes broadcast to, following PyTorch (align right, 1 stretches).
pub fn broadcast_shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<Vec<usize>> {
    let rank = lhs.len().max(rhs.len());
    let mut out = vec![0; rank];
    for (i, o) in out.iter_mut().enumerate() {
        let l = dim_from_right(lhs, rank - 1 - i);
        let r = dim_from_right(rhs, rank - 1 - i);
        *o = match (l, r) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: lhs.to_vec(),
                    rhs: rhs.to_vec(),
                });
            }
        };
    }
    Ok(out)
}

fn dim_from_right(shape: &[usize], from_right: usize) -> usize {
    if from_right < shape.len() {
        shape[shape.len() - 1 - from_right]
    } else {
        1
    }
}

/// Where the elements of a tensor live in its storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Extent of each dimension.
    pub shape: Vec<usize>,
    /// Storage step of each dimension, in elements (0 for a broadcast dimension).
    pub strides: Vec<usize>,
    /// Storage index of the first element.
    pub offset: usize,
}

impl Layout {
    /// A contiguous layout starting at 0.
    pub fn contiguous(shape: &[usize]) -> Self {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when the elements are laid out row-major without gaps (any offset).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            // Saturates only for an empty shape, whose strides are never used.
            expected = expected.saturating_mul(d);
        }
        true
    }

    /// The range of storage this contiguous layout covers.
    pub fn contiguous_range(&self) -> Option<std::ops::Range<usize>> {
        self.is_contiguous()
            .then(|| self.offset..self.offset + self.numel())
    }

    /// This layout seen with `shape` (which it must broadcast to): stretched
    /// dimensions get stride 0, missing leading dimensions are added.
    pub fn broadcast_to(&self, op: &'static str, shape: &[usize]) -> Result<Layout> {
        let extra =
            shape
                .len()
                .checked_sub(self.shape.len())
                .ok_or_else(|| Error::ShapeMismatch {
                    op,
                    lhs: self.shape.clone(),
                    rhs: shape.to_vec(),
                })?;
        let mut strides = vec![0; shape.len()];
        for (i, &target) in shape.iter().enumerate().skip(extra) {
            let (d, s) = (self.shape[i - extra], self.strides[i - extra]);
            strides[i] = match d {
                _ if d == target => s,
                1 => 0,
                _ => {
                    return Err(Error::ShapeMismatch {
                        op,
                        lhs: self.shape.clone(),
                        rhs: shape.to_vec(),
                    })
                }
            };
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Storage indices of every element, in row-major order of the logical shape.
    pub fn indices(&self) -> StridedIndex<'_> {
        StridedIndex::new(self)
    }
}

/// Iterator over the storage index of each element of a [`Layout`], row-major.
pub struct StridedIndex<'a> {
    layout: &'a Layout,
    pos: Vec<usize>,
    next: Option<usize>,
}

impl<'a> StridedIndex<'a> {
    fn new(layout: &'a Layout) -> Self {
        let next = (layout.numel() > 0).then_some(layout.offset);
        StridedIndex {
            layout,
            pos: vec![0; layout.shape.len()],
            next,
        }
    }
}

impl Iterator for StridedIndex<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let current = self.next?;
        let (shape, strides) = (&self.layout.shape, &self.layout.strides);
        let mut idx = current;
        let mut d = shape.len();
        loop {
            if d == 0 {
                self.next = None;
                break;
            }
            d -= 1;
            self.pos[d] += 1;
            idx += strides[d];
            if self.pos[d] < shape[d] {
                self.next = Some(idx);
                break;
            }
            idx -= strides[d] * shape[d];
            self.pos[d] = 0;
        }
        Some(current)
    }
}

/// Problem sizes of a batched matmul: `batch` products of (m×k)·(k×n). Here, below the
/// backends, because both the matmul family and the CUDA runtime's cuBLASLt plans
/// describe GEMMs with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MatmulDims {
    /// Number of matrix products.
    pub batch: usize,
    /// Rows of the left operand and of the result.
    pub m: usize,
    /// Columns of the right operand and of the result.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_follows_pytorch() {
        assert_eq!(
            broadcast_shape("t", &[3, 1, 5], &[4, 1]).unwrap(),
            vec![3, 4, 5]
        );
        assert_eq!(broadcast_shape("t", &[], &[2]).unwrap(), vec![2]);
        assert!(broadcast_shape("t", &[3], &[4]).is_err());
    }

    #[test]
    fn strided_index_walks_a_transpose() {
        let l = Layout {
            shape: vec![3, 2],
            strides: vec![1, 3],
            offset: 1,
        };
        assert_eq!(l.indices().collect::<Vec<_>>(), vec![1, 4, 2, 5, 3, 6]);
        assert!(!l.is_contiguous());
        assert!(Layout::contiguous(&[2, 1, 3]).is_contiguous());
    }
}
