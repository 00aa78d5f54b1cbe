//! Pooling modules: thin holders of the window sizes around the functional ops.

use crate::nn::functional::{self as F, Pool2dOpts, Size2d};
use crate::nn::{self, Forward};
use crate::{Result, Tensor};

/// A size as PyTorch prints the argument it was given: `2` when both sides agree
/// (a `Size2d` does not remember whether it was given as a pair; windows usually
/// are numbers), `(2, 3)` otherwise.
fn size_repr(s: Size2d) -> String {
    if s.h == s.w {
        s.h.to_string()
    } else {
        s.to_string()
    }
}

/// `kernel_size=.., stride=.., padding=..`, the start of PyTorch's pools' `extra_repr`.
fn window_repr(o: &Pool2dOpts) -> String {
    format!(
        "kernel_size={}, stride={}, padding={}",
        size_repr(o.kernel),
        size_repr(o.effective_stride()),
        size_repr(o.padding)
    )
}

/// PyTorch's Python spelling of a flag.
fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// `nn.MaxPool2d(kernel, stride)`; add padding, dilation and ceil mode with the
/// builder methods.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct MaxPool2d {
    #[module(skip)]
    opts: Pool2dOpts,
}

impl MaxPool2d {
    /// Windows of `kernel` moved by `stride` (each a number or `(h, w)`).
    pub fn new(kernel: impl Into<Size2d>, stride: impl Into<Size2d>) -> MaxPool2d {
        MaxPool2d {
            opts: Pool2dOpts::new(kernel).stride(stride),
        }
    }

    /// Implicit −∞ padding on each side.
    pub fn padding(mut self, padding: impl Into<Size2d>) -> MaxPool2d {
        self.opts.padding = padding.into();
        self
    }

    /// The distance between a window's elements.
    pub fn dilation(mut self, dilation: impl Into<Size2d>) -> MaxPool2d {
        self.opts.dilation = dilation.into();
        self
    }

    /// Ceil instead of floor in the output size ([`Pool2dOpts::ceil_mode`]).
    pub fn ceil_mode(mut self, ceil_mode: bool) -> MaxPool2d {
        self.opts.ceil_mode = ceil_mode;
        self
    }

    /// PyTorch's `_MaxPoolNd.extra_repr`.
    fn extra_repr(&self) -> String {
        format!(
            "{}, dilation={}, ceil_mode={}",
            window_repr(&self.opts),
            size_repr(self.opts.dilation),
            py_bool(self.opts.ceil_mode)
        )
    }
}

impl Forward for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::max_pool2d_with(x, self.opts)
    }
}

/// `nn.AvgPool2d(kernel, stride)` (padding counts in the divisor, as PyTorch's
/// default); add padding, ceil mode and `count_include_pad` with the builder methods.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct AvgPool2d {
    #[module(skip)]
    opts: Pool2dOpts,
}

impl AvgPool2d {
    /// Windows of `kernel` moved by `stride` (each a number or `(h, w)`).
    pub fn new(kernel: impl Into<Size2d>, stride: impl Into<Size2d>) -> AvgPool2d {
        AvgPool2d {
            opts: Pool2dOpts::new(kernel).stride(stride),
        }
    }

    /// Implicit zero padding on each side.
    pub fn padding(mut self, padding: impl Into<Size2d>) -> AvgPool2d {
        self.opts.padding = padding.into();
        self
    }

    /// Ceil instead of floor in the output size ([`Pool2dOpts::ceil_mode`]).
    pub fn ceil_mode(mut self, ceil_mode: bool) -> AvgPool2d {
        self.opts.ceil_mode = ceil_mode;
        self
    }

    /// Whether padding counts in the divisor (default true).
    pub fn count_include_pad(mut self, count_include_pad: bool) -> AvgPool2d {
        self.opts.count_include_pad = count_include_pad;
        self
    }

    /// PyTorch's `AvgPool2d.extra_repr`.
    fn extra_repr(&self) -> String {
        window_repr(&self.opts)
    }
}

impl Forward for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::avg_pool2d_with(x, self.opts)
    }
}

/// `nn.AdaptiveAvgPool2d(output_size)`.
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct AdaptiveAvgPool2d {
    #[module(skip)]
    output: Size2d,
}

impl AdaptiveAvgPool2d {
    /// Pools any input to `output` (a number or `(h, w)`).
    pub fn new(output: impl Into<Size2d>) -> AdaptiveAvgPool2d {
        AdaptiveAvgPool2d {
            output: output.into(),
        }
    }

    /// PyTorch's `_AdaptiveAvgPoolNd.extra_repr`.
    fn extra_repr(&self) -> String {
        // PyTorch prints the argument as given; a kiln Size2d does not remember
        // whether it was a pair, and adaptive pools are usually given one.
        format!("output_size={}", self.output)
    }
}

impl Forward for AdaptiveAvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::adaptive_avg_pool2d(x, self.output)
    }
}
