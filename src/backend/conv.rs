//! 2-D convolution: forward, and the gradients of its input and weight.
//!
//! The tensor layer (`nn/functional/conv.rs`) validates the arguments and fills in
//! [`Conv2dParams`], so a backend only reads sizes that are already consistent. All
//! tensors are NCHW and contiguous when they reach a backend.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/conv.rs"]
mod cpu;
#[path = "cuda/ops/conv.rs"]
mod cuda;

/// One 2-D convolution: input (n, c_in, h, w), weight (c_out, c_in / groups, kh, kw),
/// output (n, c_out, out_h, out_w).
///
/// Input row `oy * stride_h - pad_top + ky * dilation_h` (and likewise for columns)
/// feeds output row `oy` through kernel row `ky`; rows outside the input read zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conv2dParams {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub c_out: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride (≥ 1).
    pub stride_h: usize,
    /// Horizontal stride (≥ 1).
    pub stride_w: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Vertical dilation (≥ 1).
    pub dilation_h: usize,
    /// Horizontal dilation (≥ 1).
    pub dilation_w: usize,
    /// Channel groups; `c_in` and `c_out` are multiples of it.
    pub groups: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl Conv2dParams {
    /// Input channels per group.
    pub fn c_in_per_group(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub fn c_out_per_group(&self) -> usize {
        self.c_out / self.groups
    }

    /// Rows of one group's unfolded input (im2col): `c_in_per_group * kh * kw`.
    pub fn col_rows(&self) -> usize {
        self.c_in_per_group() * self.kh * self.kw
    }

    /// Output positions per image: `out_h * out_w`.
    pub fn out_plane(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.n * self.c_in * self.h * self.w
    }

    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.col_rows()
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.n * self.c_out * self.out_plane()
    }

    /// True when the unfolded input of a group is the input itself (a 1×1 kernel
    /// with stride 1 and no padding), so no im2col copy is needed.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride_h == 1
            && self.stride_w == 1
            && self.pad_top == 0
            && self.pad_left == 0
            && self.out_h == self.h
            && self.out_w == self.w
    }
}

/// The convolution primitives of a backend.
pub(crate) trait ConvOps: Sized {
    /// 2-D convolution: input `self` (n, c_in, h, w), `weight` (c_out, c_in/groups,
    /// kh, kw), optional `bias` (c_out); the result is the contiguous output
    /// (n, c_out, out_h, out_w). All operands share one float dtype.
    fn conv2d(
        &self,
        x_layout: &Layout,
        weight: &Self,
        weight_layout: &Layout,
        bias: Option<(&Self, &Layout)>,
        params: &Conv2dParams,
    ) -> Result<Self>;

    /// Gradient of [`ConvOps::conv2d`] with respect to its input, from the output's
    /// gradient (`self`) and the weight. Contiguous (n, c_in, h, w).
    fn conv2d_backward_input(
        &self,
        grad_layout: &Layout,
        weight: &Self,
        weight_layout: &Layout,
        params: &Conv2dParams,
    ) -> Result<Self>;

    /// Gradient of [`ConvOps::conv2d`] with respect to its weight, from the input
    /// (`self`) and the output's gradient, summed over the batch. Contiguous
    /// (c_out, c_in/groups, kh, kw).
    fn conv2d_backward_weight(
        &self,
        x_layout: &Layout,
        grad_out: &Self,
        grad_layout: &Layout,
        params: &Conv2dParams,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`ConvOps::conv2d`].
    pub(crate) fn conv2d(
        &self,
        x_layout: &Layout,
        weight: &Storage,
        weight_layout: &Layout,
        bias: Option<(&Storage, &Layout)>,
        params: &Conv2dParams,
    ) -> Result<Storage> {
        let (b, bl) = bias.unzip();
        dispatch!("conv2d", (self, weight, b), |(x, w, b)| x.conv2d(
            x_layout,
            w,
            weight_layout,
            b.zip(bl),
            params
        ))
    }

    /// See [`ConvOps::conv2d_backward_input`].
    pub(crate) fn conv2d_backward_input(
        &self,
        grad_layout: &Layout,
        weight: &Storage,
        weight_layout: &Layout,
        params: &Conv2dParams,
    ) -> Result<Storage> {
        dispatch!("conv2d_backward_input", (self, weight), |(g, w)| g
            .conv2d_backward_input(grad_layout, w, weight_layout, params))
    }

    /// See [`ConvOps::conv2d_backward_weight`].
    pub(crate) fn conv2d_backward_weight(
        &self,
        x_layout: &Layout,
        grad_out: &Storage,
        grad_layout: &Layout,
        params: &Conv2dParams,
    ) -> Result<Storage> {
        dispatch!("conv2d_backward_weight", (self, grad_out), |(x, g)| x
            .conv2d_backward_weight(x_layout, g, grad_layout, params))
    }
}
