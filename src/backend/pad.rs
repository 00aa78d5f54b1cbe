//! Padding of the last two dimensions (`F::pad`, the non-zero `padding_mode`s of
//! `conv2d`): constant, reflect, replicate and circular, and their gradients.
//!
//! The index rules are written once here and mirrored in `kernels/pad.cu`: the
//! forward pass maps each output position to the input position it copies
//! ([`source`]); the backward pass *gathers*: each input position sums the gradient of
//! every output position that copied it ([`receivers`]), in a fixed order, so the
//! CUDA gradient needs no atomics and adds in the CPU's order.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/pad.rs"]
mod cpu;
#[path = "cuda/ops/pad.rs"]
mod cuda;

/// How the border is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PadKind {
    /// A constant value.
    Constant,
    /// The input mirrored without repeating the edge (`[c b | a b c | b a]`).
    Reflect,
    /// The edge value repeated.
    Replicate,
    /// The input wrapped around (`[b c | a b c | a b]`).
    Circular,
}

impl PadKind {
    /// The name of the op code in `enum PadCode` (kernels/pad.cu).
    pub(crate) fn name(self) -> &'static str {
        match self {
            PadKind::Constant => "constant",
            PadKind::Reflect => "reflect",
            PadKind::Replicate => "replicate",
            PadKind::Circular => "circular",
        }
    }
}

/// One padding: contiguous input (planes, h, w) → output (planes, top + h + bottom,
/// left + w + right). The functional layer has checked that the mode is possible:
/// reflect pads are below the size, circular ones at most the size, and replicate,
/// reflect and circular inputs are not empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pad2dParams {
    /// Number of (h, w) planes (the product of the leading dimensions).
    pub planes: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Rows added above.
    pub top: usize,
    /// Rows added below.
    pub bottom: usize,
    /// Columns added on the left.
    pub left: usize,
    /// Columns added on the right.
    pub right: usize,
    /// The fill rule.
    pub kind: PadKind,
    /// The fill value of [`PadKind::Constant`].
    pub value: f64,
}

impl Pad2dParams {
    /// Output height.
    pub fn out_h(&self) -> usize {
        self.top + self.h + self.bottom
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        self.left + self.w + self.right
    }

    /// Elements of the input.
    pub fn input_len(&self) -> usize {
        self.planes * self.h * self.w
    }

    /// Elements of the output.
    pub fn output_len(&self) -> usize {
        self.planes * self.out_h() * self.out_w()
    }
}

/// The input index that output index `o` copies along a dimension of `size` with
/// `before` padded positions, or `None` for a constant fill.
pub(crate) fn source(o: usize, size: usize, before: usize, kind: PadKind) -> Option<usize> {
    let y = o as isize - before as isize;
    let n = size as isize;
    if (0..n).contains(&y) {
        return Some(y as usize);
    }
    let i = match kind {
        PadKind::Constant => return None,
        PadKind::Reflect if y < 0 => -y,
        PadKind::Reflect => 2 * (n - 1) - y,
        PadKind::Replicate => y.clamp(0, n - 1),
        PadKind::Circular if y < 0 => y + n,
        PadKind::Circular => y - n,
    };
    Some(i as usize)
}

/// The output indices that copy input index `i` along a dimension (`size`, `before`,
/// `after`): up to three ranges `[lo, hi)` of output positions, in this order — the
/// position itself, then the copies before it, then those after it (empty ranges
/// have `lo == hi`). The inverse of [`source`].
pub(crate) fn receivers(
    i: usize,
    size: usize,
    before: usize,
    after: usize,
    kind: PadKind,
) -> [(usize, usize); 3] {
    let direct = (before + i, before + i + 1);
    let end = before + size; // the first output position after the input
    let none = (0, 0);
    match kind {
        PadKind::Constant => [direct, none, none],
        PadKind::Reflect => {
            // -y = i for y in [-before, -1]; 2(size-1) - y = i for y in [size, size+after).
            let lo = if (1..=before).contains(&i) {
                (before - i, before - i + 1)
            } else {
                none
            };
            let mirrored = 2 * (size - 1) - i; // y of the copy after the input
            let hi = if i + 1 < size && mirrored - size < after {
                (before + mirrored, before + mirrored + 1)
            } else {
                none
            };
            [direct, lo, hi]
        }
        PadKind::Replicate => [
            direct,
            if i == 0 { (0, before) } else { none },
            if i + 1 == size {
                (end, end + after)
            } else {
                none
            },
        ],
        PadKind::Circular => [
            direct,
            // y = i - size >= -before
            if i + before >= size {
                (i + before - size, i + before - size + 1)
            } else {
                none
            },
            // y = i + size < size + after
            if i < after {
                (end + i, end + i + 1)
            } else {
                none
            },
        ],
    }
}

/// The padding primitives of a backend.
pub(crate) trait PadOps: Sized {
    /// The padded copy of the (planes, h, w) input at `layout`.
    fn pad2d(&self, layout: &Layout, params: &Pad2dParams) -> Result<Self>;

    /// The input's gradient from the output's (`self`): each input element sums the
    /// gradients of the outputs that copied it ([`receivers`]).
    fn pad2d_backward(&self, grad_layout: &Layout, params: &Pad2dParams) -> Result<Self>;
}

impl Storage {
    /// See [`PadOps::pad2d`].
    pub(crate) fn pad2d(&self, layout: &Layout, params: &Pad2dParams) -> Result<Storage> {
        dispatch!("pad2d", (self), |(s)| s.pad2d(layout, params))
    }

    /// See [`PadOps::pad2d_backward`].
    pub(crate) fn pad2d_backward(
        &self,
        grad_layout: &Layout,
        params: &Pad2dParams,
    ) -> Result<Storage> {
        dispatch!("pad2d_backward", (self), |(g)| g
            .pad2d_backward(grad_layout, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `receivers` is the exact inverse of `source` for every mode and small geometry.
    #[test]
    fn receivers_invert_source() {
        for kind in [
            PadKind::Constant,
            PadKind::Reflect,
            PadKind::Replicate,
            PadKind::Circular,
        ] {
            for size in 1..6 {
                let max_pad = match kind {
                    PadKind::Reflect => size - 1,
                    PadKind::Circular => size,
                    _ => 7,
                };
                for before in 0..=max_pad {
                    for after in 0..=max_pad {
                        let out = before + size + after;
                        for i in 0..size {
                            let mut want: Vec<usize> = (0..out)
                                .filter(|&o| source(o, size, before, kind) == Some(i))
                                .collect();
                            let mut got: Vec<usize> = receivers(i, size, before, after, kind)
                                .iter()
                                .flat_map(|&(lo, hi)| lo..hi)
                                .collect();
                            want.sort();
                            got.sort();
                            assert_eq!(
                                got, want,
                                "{kind:?} size {size} pads {before},{after} i {i}"
                            );
                        }
                    }
                }
            }
        }
    }
}
