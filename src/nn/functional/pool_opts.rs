//! [`Pool2dOpts`]: the window options of 2-D max and average pooling, with PyTorch's
//! arguments and defaults.

use super::Size2d;

/// The windows of [`max_pool2d_with`](super::max_pool2d_with) and
/// [`avg_pool2d_with`](super::avg_pool2d_with), PyTorch's arguments and defaults:
/// `Pool2dOpts::new(3).stride(2).padding(1).ceil_mode(true)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dOpts {
    /// Window size (`kernel_size`).
    pub kernel: Size2d,
    /// Step between windows; `None` (the default) is the kernel size, as PyTorch's
    /// `stride=None`.
    pub stride: Option<Size2d>,
    /// Implicit padding on each side (−∞ for max, 0 for average); at most half the
    /// kernel. Default 0.
    pub padding: Size2d,
    /// Distance between a window's elements (max pooling only; average pooling
    /// accepts 1 alone, as PyTorch has no dilated average). Default 1.
    pub dilation: Size2d,
    /// Ceil instead of floor in the output size, so a partial last window counts when
    /// it starts inside the input or its left padding. Default false.
    pub ceil_mode: bool,
    /// Whether the average divides by the window's size including padding (PyTorch's
    /// default, true) or by the input elements it holds. Average pooling only.
    pub count_include_pad: bool,
}

impl Pool2dOpts {
    /// Windows of `kernel` (a number or `(h, w)`) with PyTorch's defaults.
    pub fn new(kernel: impl Into<Size2d>) -> Pool2dOpts {
        Pool2dOpts {
            kernel: kernel.into(),
            stride: None,
            padding: Size2d::from(0),
            dilation: Size2d::from(1),
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// The step between windows.
    pub fn stride(mut self, stride: impl Into<Size2d>) -> Pool2dOpts {
        self.stride = Some(stride.into());
        self
    }

    /// Implicit padding on each side.
    pub fn padding(mut self, padding: impl Into<Size2d>) -> Pool2dOpts {
        self.padding = padding.into();
        self
    }

    /// The distance between a window's elements (max pooling).
    pub fn dilation(mut self, dilation: impl Into<Size2d>) -> Pool2dOpts {
        self.dilation = dilation.into();
        self
    }

    /// Ceil mode for the output size.
    pub fn ceil_mode(mut self, ceil_mode: bool) -> Pool2dOpts {
        self.ceil_mode = ceil_mode;
        self
    }

    /// Whether padding counts in the average's divisor.
    pub fn count_include_pad(mut self, count_include_pad: bool) -> Pool2dOpts {
        self.count_include_pad = count_include_pad;
        self
    }

    /// The stride in effect: the kernel size unless one was given.
    pub fn effective_stride(&self) -> Size2d {
        self.stride.unwrap_or(self.kernel)
    }
}
