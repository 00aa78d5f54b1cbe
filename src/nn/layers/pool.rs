//! Pooling modules: thin holders of the window options around the functional ops,
//! one per PyTorch module (`MaxPool1d/2d/3d`, `AvgPool1d/2d/3d`,
//! `AdaptiveMaxPool1d/2d/3d`, `AdaptiveAvgPool1d/2d/3d`).

use crate::nn::functional::{self as F, Pool1dOpts, Pool2dOpts, Pool3dOpts, Size2d, Size3d};
use crate::nn::{self, Forward};
use crate::{Result, Tensor};

/// A size as PyTorch prints the argument it was given: `2` when every axis agrees (a
/// kiln size does not remember whether it was given as a tuple; windows usually are
/// numbers), `(2, 3)` otherwise.
trait PySize: Copy {
    /// The size as a module's `extra_repr` prints it.
    fn repr(self) -> String;

    /// As `AvgPool1d` prints it: it keeps its sizes as 1-tuples.
    fn avg_repr(self) -> String {
        self.repr()
    }
}

impl PySize for usize {
    fn repr(self) -> String {
        self.to_string()
    }

    fn avg_repr(self) -> String {
        format!("({self},)")
    }
}

impl PySize for Size2d {
    fn repr(self) -> String {
        if self.h == self.w {
            self.h.to_string()
        } else {
            self.to_string()
        }
    }
}

impl PySize for Size3d {
    fn repr(self) -> String {
        if self.d == self.h && self.h == self.w {
            self.d.to_string()
        } else {
            self.to_string()
        }
    }
}

/// PyTorch's Python spelling of a flag.
fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// Defines a max pooling module `$name` over options `$opts`, taking sizes as `$arg`.
macro_rules! max_pool_module {
    ($name:ident, $opts:ident, $arg:ty, $f:path, $shape:literal) => {
        #[doc = concat!("`nn.", stringify!($name), "(kernel, stride)` on ", $shape, " inputs; add padding,")]
        /// dilation and ceil mode with the builder methods.
        #[derive(Debug, Clone, Copy, nn::Module)]
        #[module(stateless, extra_repr)]
        pub struct $name {
            #[module(skip)]
            opts: $opts,
        }

        // A 1-d module's sizes are `usize` already: their `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            /// Windows of `kernel` moved by `stride`.
            pub fn new(kernel: $arg, stride: $arg) -> $name {
                $name {
                    opts: $opts::new(kernel).stride(stride),
                }
            }

            /// Implicit −∞ padding on each side.
            pub fn padding(mut self, padding: $arg) -> $name {
                self.opts.padding = padding.into();
                self
            }

            /// The distance between a window's elements.
            pub fn dilation(mut self, dilation: $arg) -> $name {
                self.opts.dilation = dilation.into();
                self
            }

            /// Ceil instead of floor in the output size.
            pub fn ceil_mode(mut self, ceil_mode: bool) -> $name {
                self.opts.ceil_mode = ceil_mode;
                self
            }

            /// PyTorch's `_MaxPoolNd.extra_repr`.
            fn extra_repr(&self) -> String {
                let o = &self.opts;
                format!(
                    "kernel_size={}, stride={}, padding={}, dilation={}, ceil_mode={}",
                    o.kernel.repr(),
                    o.effective_stride().repr(),
                    o.padding.repr(),
                    o.dilation.repr(),
                    py_bool(o.ceil_mode)
                )
            }
        }

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $f(x, self.opts)
            }
        }
    };
}

/// Defines an average pooling module `$name` over options `$opts`, taking sizes as `$arg`.
macro_rules! avg_pool_module {
    ($name:ident, $opts:ident, $arg:ty, $f:path, $shape:literal) => {
        #[doc = concat!("`nn.", stringify!($name), "(kernel, stride)` on ", $shape, " inputs (padding counts in")]
        /// the divisor, as PyTorch's default); add padding, ceil mode and
        /// `count_include_pad` with the builder methods.
        #[derive(Debug, Clone, Copy, nn::Module)]
        #[module(stateless, extra_repr)]
        pub struct $name {
            #[module(skip)]
            opts: $opts,
        }

        // A 1-d module's sizes are `usize` already: their `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            /// Windows of `kernel` moved by `stride`.
            pub fn new(kernel: $arg, stride: $arg) -> $name {
                $name {
                    opts: $opts::new(kernel).stride(stride),
                }
            }

            /// Implicit zero padding on each side.
            pub fn padding(mut self, padding: $arg) -> $name {
                self.opts.padding = padding.into();
                self
            }

            /// Ceil instead of floor in the output size.
            pub fn ceil_mode(mut self, ceil_mode: bool) -> $name {
                self.opts.ceil_mode = ceil_mode;
                self
            }

            /// Whether padding counts in the divisor (default true).
            pub fn count_include_pad(mut self, count_include_pad: bool) -> $name {
                self.opts.count_include_pad = count_include_pad;
                self
            }

            /// PyTorch's `AvgPoolNd.extra_repr`.
            fn extra_repr(&self) -> String {
                let o = &self.opts;
                format!(
                    "kernel_size={}, stride={}, padding={}",
                    o.kernel.avg_repr(),
                    o.effective_stride().avg_repr(),
                    o.padding.avg_repr()
                )
            }
        }

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $f(x, self.opts)
            }
        }
    };
}

/// Defines an adaptive pooling module `$name` to outputs of size `$size`.
macro_rules! adaptive_pool_module {
    ($name:ident, $size:ty, $arg:ty, $f:path, $shape:literal) => {
        #[doc = concat!("`nn.", stringify!($name), "(output_size)` on ", $shape, " inputs.")]
        #[derive(Debug, Clone, Copy, nn::Module)]
        #[module(stateless, extra_repr)]
        pub struct $name {
            #[module(skip)]
            output: $size,
        }

        // A 1-d module's size is a `usize` already: its `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            /// Pools any input to `output`.
            pub fn new(output: $arg) -> $name {
                $name {
                    output: output.into(),
                }
            }

            /// PyTorch's `_Adaptive*PoolNd.extra_repr` (a size as a tuple: adaptive pools are
            /// usually given one).
            fn extra_repr(&self) -> String {
                format!("output_size={}", self.output)
            }
        }

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $f(x, self.output)
            }
        }
    };
}

max_pool_module!(
    MaxPool1d,
    Pool1dOpts,
    usize,
    F::max_pool1d_with,
    "(N, C, L) or (C, L)"
);
max_pool_module!(
    MaxPool2d,
    Pool2dOpts,
    impl Into<Size2d>,
    F::max_pool2d_with,
    "(N, C, H, W) or (C, H, W)"
);
max_pool_module!(
    MaxPool3d,
    Pool3dOpts,
    impl Into<Size3d>,
    F::max_pool3d_with,
    "(N, C, D, H, W) or (C, D, H, W)"
);
avg_pool_module!(
    AvgPool1d,
    Pool1dOpts,
    usize,
    F::avg_pool1d_with,
    "(N, C, L) or (C, L)"
);
avg_pool_module!(
    AvgPool2d,
    Pool2dOpts,
    impl Into<Size2d>,
    F::avg_pool2d_with,
    "(N, C, H, W) or (C, H, W)"
);
avg_pool_module!(
    AvgPool3d,
    Pool3dOpts,
    impl Into<Size3d>,
    F::avg_pool3d_with,
    "(N, C, D, H, W) or (C, D, H, W)"
);
adaptive_pool_module!(
    AdaptiveAvgPool1d,
    usize,
    usize,
    F::adaptive_avg_pool1d,
    "(N, C, L) or (C, L)"
);
adaptive_pool_module!(
    AdaptiveAvgPool2d,
    Size2d,
    impl Into<Size2d>,
    F::adaptive_avg_pool2d,
    "(N, C, H, W) or (C, H, W)"
);
adaptive_pool_module!(
    AdaptiveAvgPool3d,
    Size3d,
    impl Into<Size3d>,
    F::adaptive_avg_pool3d,
    "(N, C, D, H, W) or (C, D, H, W)"
);
adaptive_pool_module!(
    AdaptiveMaxPool1d,
    usize,
    usize,
    F::adaptive_max_pool1d,
    "(N, C, L) or (C, L)"
);
adaptive_pool_module!(
    AdaptiveMaxPool2d,
    Size2d,
    impl Into<Size2d>,
    F::adaptive_max_pool2d,
    "(N, C, H, W) or (C, H, W)"
);
adaptive_pool_module!(
    AdaptiveMaxPool3d,
    Size3d,
    impl Into<Size3d>,
    F::adaptive_max_pool3d,
    "(N, C, D, H, W) or (C, D, H, W)"
);
