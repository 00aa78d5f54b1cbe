//! [`Pool1dOpts`], [`Pool2dOpts`], [`Pool3dOpts`]: the window options of max and
//! average pooling, with PyTorch's arguments and defaults.

use super::{Size2d, Size3d, Spatial};

/// A pooling's window options along (depth, height, width), whatever its rank: the
/// missing leading axes have unit windows, strides and dilations and no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolWindow {
    /// How many spatial axes the op pools (1, 2 or 3).
    pub dims: usize,
    /// Window size.
    pub kernel: [usize; 3],
    /// Step between windows (the kernel unless given).
    pub stride: [usize; 3],
    /// Implicit padding on each side.
    pub padding: [usize; 3],
    /// Distance between a window's elements.
    pub dilation: [usize; 3],
    /// Ceil mode for the output size.
    pub ceil_mode: bool,
    /// Whether padding counts in the average's divisor.
    pub count_include_pad: bool,
}

/// Defines the options of one pooling rank: `$name` over sizes `$size`, which its
/// builders take as `$arg`.
macro_rules! pool_opts {
    ($(#[$doc:meta])* $name:ident, $size:ty, $arg:ty, $dims:literal, $example:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// Window size (`kernel_size`).
            pub kernel: $size,
            /// Step between windows; `None` (the default) is the kernel size, as
            /// PyTorch's `stride=None`.
            pub stride: Option<$size>,
            /// Implicit padding on each side (−∞ for max, 0 for average); at most half
            /// the kernel. Default 0.
            pub padding: $size,
            /// Distance between a window's elements (max pooling only; average pooling
            /// accepts 1 alone, as PyTorch has no dilated average). Default 1.
            pub dilation: $size,
            /// Ceil instead of floor in the output size, so a partial last window
            /// counts when it starts inside the input or its left padding. Default
            /// false.
            pub ceil_mode: bool,
            /// Whether the average divides by the window's size including padding
            /// (PyTorch's default, true) or by the input elements it holds. Average
            /// pooling only.
            pub count_include_pad: bool,
        }

        // A 1-d op's sizes are `usize` already: their `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            #[doc = concat!("Windows of `kernel` (", $example, ") with PyTorch's defaults.")]
            pub fn new(kernel: $arg) -> $name {
                $name {
                    kernel: kernel.into(),
                    stride: None,
                    padding: <$size>::from(0usize),
                    dilation: <$size>::from(1usize),
                    ceil_mode: false,
                    count_include_pad: true,
                }
            }

            /// The step between windows.
            pub fn stride(mut self, stride: $arg) -> $name {
                self.stride = Some(stride.into());
                self
            }

            /// Implicit padding on each side.
            pub fn padding(mut self, padding: $arg) -> $name {
                self.padding = padding.into();
                self
            }

            /// The distance between a window's elements (max pooling).
            pub fn dilation(mut self, dilation: $arg) -> $name {
                self.dilation = dilation.into();
                self
            }

            /// Ceil mode for the output size.
            pub fn ceil_mode(mut self, ceil_mode: bool) -> $name {
                self.ceil_mode = ceil_mode;
                self
            }

            /// Whether padding counts in the average's divisor.
            pub fn count_include_pad(mut self, count_include_pad: bool) -> $name {
                self.count_include_pad = count_include_pad;
                self
            }

            /// The stride in effect: the kernel size unless one was given.
            pub fn effective_stride(&self) -> $size {
                self.stride.unwrap_or(self.kernel)
            }

            /// The options along (depth, height, width).
            pub(crate) fn window(&self) -> PoolWindow {
                PoolWindow {
                    dims: $dims,
                    kernel: self.kernel.axes(1),
                    stride: self.effective_stride().axes(1),
                    padding: self.padding.axes(0),
                    dilation: self.dilation.axes(1),
                    ceil_mode: self.ceil_mode,
                    count_include_pad: self.count_include_pad,
                }
            }
        }
    };
}

pool_opts!(
    /// The windows of [`max_pool1d_with`](super::max_pool1d_with) and
    /// [`avg_pool1d_with`](super::avg_pool1d_with), PyTorch's arguments and defaults:
    /// `Pool1dOpts::new(3).stride(2).padding(1).ceil_mode(true)`.
    Pool1dOpts,
    usize,
    usize,
    1,
    "a number"
);

pool_opts!(
    /// The windows of [`max_pool2d_with`](super::max_pool2d_with) and
    /// [`avg_pool2d_with`](super::avg_pool2d_with), PyTorch's arguments and defaults:
    /// `Pool2dOpts::new(3).stride(2).padding(1).ceil_mode(true)`.
    Pool2dOpts,
    Size2d,
    impl Into<Size2d>,
    2,
    "a number or `(h, w)`"
);

pool_opts!(
    /// The windows of [`max_pool3d_with`](super::max_pool3d_with) and
    /// [`avg_pool3d_with`](super::avg_pool3d_with), PyTorch's arguments and defaults:
    /// `Pool3dOpts::new((1, 3, 3)).stride(2).padding((0, 1, 1)).ceil_mode(true)`.
    Pool3dOpts,
    Size3d,
    impl Into<Size3d>,
    3,
    "a number or `(d, h, w)`"
);
