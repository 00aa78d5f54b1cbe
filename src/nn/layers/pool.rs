//! Pooling modules: thin holders of the window sizes around the functional ops.

use crate::nn::functional::{self as F, Size2d};
use crate::nn::{self, Forward};
use crate::{Result, Tensor};

/// Window geometry shared by the max and average pools.
#[derive(Debug, Clone, Copy)]
struct Window {
    kernel: Size2d,
    stride: Size2d,
    padding: Size2d,
}

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

impl Window {
    /// `kernel_size=.., stride=.., padding=..`, PyTorch's `_AvgPoolNd.extra_repr`.
    fn repr(&self) -> String {
        format!(
            "kernel_size={}, stride={}, padding={}",
            size_repr(self.kernel),
            size_repr(self.stride),
            size_repr(self.padding)
        )
    }

    fn new(kernel: impl Into<Size2d>, stride: impl Into<Size2d>) -> Window {
        Window {
            kernel: kernel.into(),
            stride: stride.into(),
            padding: Size2d::from(0),
        }
    }
}

/// `nn.MaxPool2d(kernel, stride)`; add padding with [`MaxPool2d::padding`].
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct MaxPool2d {
    #[module(skip)]
    window: Window,
}

impl MaxPool2d {
    /// Windows of `kernel` moved by `stride` (each a number or `(h, w)`).
    pub fn new(kernel: impl Into<Size2d>, stride: impl Into<Size2d>) -> MaxPool2d {
        MaxPool2d {
            window: Window::new(kernel, stride),
        }
    }

    /// Implicit −∞ padding on each side.
    pub fn padding(mut self, padding: impl Into<Size2d>) -> MaxPool2d {
        self.window.padding = padding.into();
        self
    }

    /// PyTorch's `_MaxPoolNd.extra_repr` (kiln's max pool has dilation 1, no ceil mode).
    fn extra_repr(&self) -> String {
        format!("{}, dilation=1, ceil_mode=False", self.window.repr())
    }
}

impl Forward for MaxPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.window;
        F::max_pool2d(x, w.kernel, w.stride, w.padding)
    }
}

/// `nn.AvgPool2d(kernel, stride)` (padding counts in the divisor, as PyTorch's default).
#[derive(Debug, Clone, Copy, nn::Module)]
#[module(stateless, extra_repr)]
pub struct AvgPool2d {
    #[module(skip)]
    window: Window,
}

impl AvgPool2d {
    /// Windows of `kernel` moved by `stride` (each a number or `(h, w)`).
    pub fn new(kernel: impl Into<Size2d>, stride: impl Into<Size2d>) -> AvgPool2d {
        AvgPool2d {
            window: Window::new(kernel, stride),
        }
    }

    /// Implicit zero padding on each side.
    pub fn padding(mut self, padding: impl Into<Size2d>) -> AvgPool2d {
        self.window.padding = padding.into();
        self
    }

    /// PyTorch's `AvgPool2d.extra_repr`.
    fn extra_repr(&self) -> String {
        self.window.repr()
    }
}

impl Forward for AvgPool2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.window;
        F::avg_pool2d(x, w.kernel, w.stride, w.padding)
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
