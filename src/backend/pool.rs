//! Pooling over 1, 2 or 3 spatial axes: max (with the index each output took) and
//! average, over fixed (strided) or adaptive windows, and their gradients.
//!
//! One implementation serves every rank: the input is a contiguous stack of `planes`
//! (image, channel) volumes of (depth, height, width); 1-d and 2-d poolings are the
//! same buffers seen with unit leading axes and unit windows along them, as the
//! convolution family does.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/pool.rs"]
mod cpu;
#[path = "cuda/ops/pool.rs"]
mod cuda;

/// The windows of a pooling along each of the three axes (depth, height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Windows {
    /// Output `o` covers input `o * stride - pad + i * dilation` for `i < kernel`,
    /// clipped to the input (PyTorch's `max_poolNd`/`avg_poolNd`). The output size
    /// (floor or ceil mode) is the caller's: the windows are the same in both modes.
    Strided {
        /// Window size per axis.
        kernel: [usize; 3],
        /// Step between windows per axis (≥ 1).
        stride: [usize; 3],
        /// Implicit padding on each side per axis (−∞ for max, 0 for average).
        pad: [usize; 3],
        /// Distance between a window's elements per axis (≥ 1; 1 for average).
        dilation: [usize; 3],
        /// Whether the average divides by the window's size including padding
        /// (PyTorch's `count_include_pad`) or by the input elements it holds.
        count_include_pad: bool,
    },
    /// Output `i` of `out` covers input `floor(i*in/out) .. ceil((i+1)*in/out)`
    /// (PyTorch's `adaptive_*_poolNd`).
    Adaptive,
}

/// One pooling: input (planes, d, h, w), output (planes, out_d, out_h, out_w).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PoolParams {
    /// Number of (image, channel) volumes.
    pub planes: usize,
    /// Input size (depth, height, width); 1 along the axes a lower rank lacks.
    pub input: [usize; 3],
    /// Output size (depth, height, width).
    pub output: [usize; 3],
    /// The windows.
    pub windows: Windows,
}

/// The input range `lo..hi` (read every `step`-th) of one window along one axis and
/// `count`, its share of an average's divisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// First input index read.
    pub lo: usize,
    /// End of the range read (exclusive; `lo` when none is).
    pub hi: usize,
    /// Step between the indices read (the dilation).
    pub step: usize,
    /// The divisor's factor of an average along this axis.
    pub count: usize,
}

impl PoolParams {
    /// Elements of one input volume.
    pub fn input_plane(&self) -> usize {
        self.input.iter().product()
    }

    /// Elements of one output volume.
    pub fn output_plane(&self) -> usize {
        self.output.iter().product()
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.planes * self.input_plane()
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.planes * self.output_plane()
    }

    /// The window of output `o` along axis `a` (0 depth, 1 height, 2 width); `max`
    /// picks max pooling's strided rule over average pooling's.
    pub fn span(&self, a: usize, o: usize, max: bool) -> Span {
        let (input, output) = (self.input[a], self.output[a]);
        let Windows::Strided {
            kernel,
            stride,
            pad,
            dilation,
            count_include_pad,
        } = self.windows
        else {
            let (lo, hi) = (o * input / output, ((o + 1) * input).div_ceil(output));
            return Span {
                lo,
                hi,
                step: 1,
                count: hi - lo,
            };
        };
        let (k, pad, d) = (kernel[a] as isize, pad[a] as isize, dilation[a]);
        let start = (o * stride[a]) as isize - pad;
        if max {
            // PyTorch's hstart/hend: the span clipped to the input, its start moved
            // on past the padding by whole dilations.
            let end = (start + (k - 1) * d as isize + 1).min(input as isize);
            let lo = match usize::try_from(-start) {
                Ok(before) => before.div_ceil(d) * d - before,
                Err(_) => start as usize,
            };
            let hi = (end.max(0) as usize).max(lo);
            return Span {
                lo,
                hi,
                step: d,
                count: 1,
            };
        }
        // PyTorch's pool_size counts padding but not the part of a window beyond the
        // padded input (ceil mode's overhang).
        let end = (start + k).min(input as isize + pad);
        let lo = start.max(0) as usize;
        let hi = (end.clamp(0, input as isize) as usize).max(lo);
        let count = if count_include_pad {
            (end - start).max(0) as usize
        } else {
            hi - lo
        };
        Span {
            lo,
            hi,
            step: 1,
            count,
        }
    }
}

/// The pooling primitives of a backend. Each takes fixed or adaptive windows.
pub(crate) trait PoolOps: Sized {
    /// Max pooling: the output (planes, out_d, out_h, out_w) and, as I64, the index
    /// within its (d·h·w) input volume of the element each output took (the first
    /// largest; a NaN wins).
    fn max_pool(&self, layout: &Layout, params: &PoolParams) -> Result<(Self, Self)>;

    /// Gradient of [`PoolOps::max_pool`]: the output's gradient (`self`) added at the
    /// recorded `indices`. Contiguous (planes, d, h, w).
    fn max_pool_backward(
        &self,
        grad_layout: &Layout,
        indices: &Self,
        indices_layout: &Layout,
        params: &PoolParams,
    ) -> Result<Self>;

    /// Average pooling; a window that reads no input gives 0.
    fn avg_pool(&self, layout: &Layout, params: &PoolParams) -> Result<Self>;

    /// Gradient of [`PoolOps::avg_pool`] from the output's gradient (`self`).
    fn avg_pool_backward(&self, grad_layout: &Layout, params: &PoolParams) -> Result<Self>;
}

impl Storage {
    /// See [`PoolOps::max_pool`].
    pub(crate) fn max_pool(
        &self,
        layout: &Layout,
        params: &PoolParams,
    ) -> Result<(Storage, Storage)> {
        dispatch!("max_pool", (self), |(s)| s.max_pool(layout, params))
    }

    /// See [`PoolOps::max_pool_backward`].
    pub(crate) fn max_pool_backward(
        &self,
        grad_layout: &Layout,
        indices: &Storage,
        indices_layout: &Layout,
        params: &PoolParams,
    ) -> Result<Storage> {
        dispatch!("max_pool_backward", (self, indices), |(g, i)| g
            .max_pool_backward(grad_layout, i, indices_layout, params))
    }

    /// See [`PoolOps::avg_pool`].
    pub(crate) fn avg_pool(&self, layout: &Layout, params: &PoolParams) -> Result<Storage> {
        dispatch!("avg_pool", (self), |(s)| s.avg_pool(layout, params))
    }

    /// See [`PoolOps::avg_pool_backward`].
    pub(crate) fn avg_pool_backward(
        &self,
        grad_layout: &Layout,
        params: &PoolParams,
    ) -> Result<Storage> {
        dispatch!("avg_pool_backward", (self), |(g)| g
            .avg_pool_backward(grad_layout, params))
    }
}
