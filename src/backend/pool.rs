//! 2-D pooling: max (with the index each output took), average, adaptive average,
//! and their gradients. NCHW tensors.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/pool.rs"]
mod cpu;
#[path = "cuda/ops/pool.rs"]
mod cuda;

/// One 2-D pooling over windows: input (n, c, h, w), output (n, c, out_h, out_w).
///
/// Output `(oy, ox)` covers input rows `oy * stride_h - pad_h + i * dilation_h` for
/// `i < kh` (columns likewise), clipped to the input. The output size (floor or
/// ceil mode) is the caller's: the windows are the same in both modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pool2dParams {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Window height.
    pub kh: usize,
    /// Window width.
    pub kw: usize,
    /// Vertical stride (≥ 1).
    pub stride_h: usize,
    /// Horizontal stride (≥ 1).
    pub stride_w: usize,
    /// Implicit padding rows on each side (−∞ for max, 0 for average).
    pub pad_h: usize,
    /// Implicit padding columns on each side.
    pub pad_w: usize,
    /// Distance between the rows of a window (≥ 1; max pooling only).
    pub dilation_h: usize,
    /// Distance between the columns of a window (≥ 1; max pooling only).
    pub dilation_w: usize,
    /// Whether the average divides by the window's size including padding (PyTorch's
    /// `count_include_pad`) or by the input elements it holds (average pooling only).
    pub count_include_pad: bool,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl Pool2dParams {
    /// Number of (image, channel) planes.
    pub fn planes(&self) -> usize {
        self.n * self.c
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.planes() * self.h * self.w
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.planes() * self.out_h * self.out_w
    }
}

/// One adaptive 2-D pooling: input (n, c, h, w), output (n, c, out_h, out_w), output
/// row `i` averaging input rows `floor(i*h/out_h) .. ceil((i+1)*h/out_h)` (PyTorch's
/// windows; columns likewise).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AdaptivePool2dParams {
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl AdaptivePool2dParams {
    /// Number of (image, channel) planes.
    pub fn planes(&self) -> usize {
        self.n * self.c
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.planes() * self.h * self.w
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.planes() * self.out_h * self.out_w
    }

    /// Input rows (or columns, with `w`/`out_w`) of output index `i`: `start..end`.
    pub fn window(i: usize, input: usize, output: usize) -> (usize, usize) {
        let start = i * input / output;
        let end = ((i + 1) * input).div_ceil(output);
        (start, end)
    }
}

/// The pooling primitives of a backend.
pub(crate) trait PoolOps: Sized {
    /// Max pooling: the output (n, c, out_h, out_w) and, as I64, the index within
    /// its (h·w) input plane of the element each output took.
    fn max_pool2d(&self, layout: &Layout, params: &Pool2dParams) -> Result<(Self, Self)>;

    /// Gradient of [`PoolOps::max_pool2d`]: the output's gradient (`self`) added at
    /// the recorded `indices`. Contiguous (n, c, h, w).
    fn max_pool2d_backward(
        &self,
        grad_layout: &Layout,
        indices: &Self,
        indices_layout: &Layout,
        params: &Pool2dParams,
    ) -> Result<Self>;

    /// Average pooling; the divisor counts padding when `params.count_include_pad`.
    fn avg_pool2d(&self, layout: &Layout, params: &Pool2dParams) -> Result<Self>;

    /// Gradient of [`PoolOps::avg_pool2d`] from the output's gradient (`self`).
    fn avg_pool2d_backward(&self, grad_layout: &Layout, params: &Pool2dParams) -> Result<Self>;

    /// Adaptive average pooling to (out_h, out_w).
    fn adaptive_avg_pool2d(&self, layout: &Layout, params: &AdaptivePool2dParams) -> Result<Self>;

    /// Gradient of [`PoolOps::adaptive_avg_pool2d`] from the output's gradient.
    fn adaptive_avg_pool2d_backward(
        &self,
        grad_layout: &Layout,
        params: &AdaptivePool2dParams,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`PoolOps::max_pool2d`].
    pub(crate) fn max_pool2d(
        &self,
        layout: &Layout,
        params: &Pool2dParams,
    ) -> Result<(Storage, Storage)> {
        dispatch!("max_pool2d", (self), |(s)| s.max_pool2d(layout, params))
    }

    /// See [`PoolOps::max_pool2d_backward`].
    pub(crate) fn max_pool2d_backward(
        &self,
        grad_layout: &Layout,
        indices: &Storage,
        indices_layout: &Layout,
        params: &Pool2dParams,
    ) -> Result<Storage> {
        dispatch!("max_pool2d_backward", (self, indices), |(g, i)| g
            .max_pool2d_backward(grad_layout, i, indices_layout, params))
    }

    /// See [`PoolOps::avg_pool2d`].
    pub(crate) fn avg_pool2d(&self, layout: &Layout, params: &Pool2dParams) -> Result<Storage> {
        dispatch!("avg_pool2d", (self), |(s)| s.avg_pool2d(layout, params))
    }

    /// See [`PoolOps::avg_pool2d_backward`].
    pub(crate) fn avg_pool2d_backward(
        &self,
        grad_layout: &Layout,
        params: &Pool2dParams,
    ) -> Result<Storage> {
        dispatch!("avg_pool2d_backward", (self), |(g)| g
            .avg_pool2d_backward(grad_layout, params))
    }

    /// See [`PoolOps::adaptive_avg_pool2d`].
    pub(crate) fn adaptive_avg_pool2d(
        &self,
        layout: &Layout,
        params: &AdaptivePool2dParams,
    ) -> Result<Storage> {
        dispatch!("adaptive_avg_pool2d", (self), |(s)| s
            .adaptive_avg_pool2d(layout, params))
    }

    /// See [`PoolOps::adaptive_avg_pool2d_backward`].
    pub(crate) fn adaptive_avg_pool2d_backward(
        &self,
        grad_layout: &Layout,
        params: &AdaptivePool2dParams,
    ) -> Result<Storage> {
        dispatch!("adaptive_avg_pool2d_backward", (self), |(g)| g
            .adaptive_avg_pool2d_backward(grad_layout, params))
    }
}
