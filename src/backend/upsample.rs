//! Resampling (`F::interpolate`): nearest and (bi/tri)linear interpolation of
//! contiguous (planes, d, h, w) tensors, and their gradients. 1-d and 2-d inputs are
//! 3-d ones with unit axes, which copy.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/upsample.rs"]
mod cpu;
#[path = "cuda/ops/upsample.rs"]
mod cuda;

/// How an output element is computed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpsampleMode {
    /// The input element at PyTorch's `nearest` source index (`floor(o · scale)`).
    Nearest,
    /// Linear along every axis (PyTorch's linear, bilinear, trilinear).
    Linear,
}

/// One axis of a resampling: its input and output size and the scale factor the
/// caller gave (PyTorch's `scales` argument: used in the source-index formula in
/// place of `input / output` when given, unless `align_corners`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UpsampleAxis {
    /// Input size (≥ 1).
    pub input: usize,
    /// Output size (≥ 1).
    pub output: usize,
    /// The scale factor as given (> 0), or `None` when the size was given.
    pub scale: Option<f64>,
}

impl UpsampleAxis {
    /// An axis the op does not have: size 1 to 1, a copy.
    pub fn unit() -> UpsampleAxis {
        UpsampleAxis {
            input: 1,
            output: 1,
            scale: None,
        }
    }
}

/// One resampling: input (planes, d, h, w) → output (planes, d', h', w'), axes in
/// that order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UpsampleParams {
    /// Number of (image, channel) planes.
    pub planes: usize,
    /// Depth, height and width.
    pub axes: [UpsampleAxis; 3],
    /// Nearest or linear.
    pub mode: UpsampleMode,
    /// PyTorch's `align_corners` (linear only): the corner samples of input and output
    /// coincide, so the scale is `(input − 1) / (output − 1)`.
    pub align_corners: bool,
}

impl UpsampleParams {
    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.planes * self.axes.iter().map(|a| a.input).product::<usize>()
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.planes * self.axes.iter().map(|a| a.output).product::<usize>()
    }
}

/// The resampling primitives of a backend.
pub(crate) trait UpsampleOps: Sized {
    /// The resampled input (contiguous (planes, d', h', w')).
    fn upsample(&self, layout: &Layout, params: &UpsampleParams) -> Result<Self>;

    /// The input's gradient (contiguous (planes, d, h, w)) from the output's (`self`):
    /// each input element gathers (or, on the CPU, receives) the weights of the outputs
    /// that read it. Deterministic: no atomics.
    fn upsample_backward(&self, grad_layout: &Layout, params: &UpsampleParams) -> Result<Self>;
}

impl Storage {
    /// See [`UpsampleOps::upsample`].
    pub(crate) fn upsample(&self, layout: &Layout, params: &UpsampleParams) -> Result<Storage> {
        dispatch!("upsample", (self), |(s)| s.upsample(layout, params))
    }

    /// See [`UpsampleOps::upsample_backward`].
    pub(crate) fn upsample_backward(
        &self,
        grad_layout: &Layout,
        params: &UpsampleParams,
    ) -> Result<Storage> {
        dispatch!("upsample_backward", (self), |(g)| g
            .upsample_backward(grad_layout, params))
    }
}
