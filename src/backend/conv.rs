//! Convolution in one, two and three spatial dimensions: forward, and the gradients of
//! its input and weight. The transposed convolution is the same three problems in
//! another order: its forward is the input gradient (with a bias), its input gradient
//! the forward, and its weight gradient the weight gradient with the operands swapped.
//!
//! The tensor layer (`nn/functional/conv.rs`) validates the arguments and fills in
//! [`ConvParams`], so a backend only reads sizes that are already consistent. Every
//! convolution is described in three spatial dimensions (depth, height, width): a 2-d
//! one has depth 1, a 1-d one depth and height 1. All tensors are contiguous NC(D)HW
//! when they reach a backend.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/conv.rs"]
mod cpu;
#[path = "cuda/ops/conv.rs"]
mod cuda;

/// One convolution: input (n, c_in, d, h, w), weight (c_out, c_in / groups, kd, kh,
/// kw), output (n, c_out, out_d, out_h, out_w). Every `[usize; 3]` is (depth, height,
/// width).
///
/// Input row `o * stride - pad + k * dilation` (along each axis) feeds output row `o`
/// through kernel row `k`; rows outside the input read zero. `output` need not be the
/// largest size the input allows: a transposed convolution with an `output_padding`
/// below its dilation describes itself as a convolution whose output is cut short,
/// and the rows cut off are simply not computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvParams {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Channel groups; `c_in` and `c_out` are multiples of it.
    pub groups: usize,
    /// Input size.
    pub input: [usize; 3],
    /// Kernel size.
    pub kernel: [usize; 3],
    /// Stride (≥ 1).
    pub stride: [usize; 3],
    /// Zero rows added before the input (front, top, left).
    pub pad: [usize; 3],
    /// Dilation (≥ 1).
    pub dilation: [usize; 3],
    /// Output size.
    pub output: [usize; 3],
}

impl ConvParams {
    /// Input channels per group.
    pub fn c_in_per_group(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub fn c_out_per_group(&self) -> usize {
        self.c_out / self.groups
    }

    /// Kernel taps: `kd * kh * kw`.
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Rows of one group's unfolded input (im2col): `c_in_per_group * taps`.
    pub fn col_rows(&self) -> usize {
        self.c_in_per_group() * self.taps()
    }

    /// Input positions per image: `d * h * w`.
    pub fn in_spatial(&self) -> usize {
        self.input.iter().product()
    }

    /// Output positions per image: `out_d * out_h * out_w`.
    pub fn out_spatial(&self) -> usize {
        self.output.iter().product()
    }

    /// Elements of the input tensor.
    pub fn input_len(&self) -> usize {
        self.n * self.c_in * self.in_spatial()
    }

    /// Elements of the weight tensor.
    pub fn weight_len(&self) -> usize {
        self.c_out * self.col_rows()
    }

    /// Elements of the output tensor.
    pub fn output_len(&self) -> usize {
        self.n * self.c_out * self.out_spatial()
    }

    /// True when the unfolded input of a group is the input itself (a 1×1×1 kernel
    /// with stride 1, no padding and the input's size), so no im2col copy is needed.
    pub fn is_pointwise(&self) -> bool {
        self.taps() == 1 && self.stride == [1; 3] && self.pad == [0; 3] && self.output == self.input
    }
}

/// The convolution primitives of a backend.
pub(crate) trait ConvOps: Sized {
    /// Convolution: input `self` (n, c_in, d, h, w), `weight` (c_out, c_in/groups,
    /// kd, kh, kw), optional `bias` (c_out); the result is the contiguous output
    /// (n, c_out, out_d, out_h, out_w). All operands share one float dtype.
    fn conv(
        &self,
        x_layout: &Layout,
        weight: &Self,
        weight_layout: &Layout,
        bias: Option<(&Self, &Layout)>,
        params: &ConvParams,
    ) -> Result<Self>;

    /// Gradient of [`ConvOps::conv`] with respect to its input, from the output's
    /// gradient (`self`) and the weight, plus `bias` (c_in) per channel when given
    /// (the transposed convolution's forward). Contiguous (n, c_in, d, h, w).
    fn conv_backward_input(
        &self,
        grad_layout: &Layout,
        weight: &Self,
        weight_layout: &Layout,
        bias: Option<(&Self, &Layout)>,
        params: &ConvParams,
    ) -> Result<Self>;

    /// Gradient of [`ConvOps::conv`] with respect to its weight, from the input
    /// (`self`) and the output's gradient, summed over the batch. Contiguous
    /// (c_out, c_in/groups, kd, kh, kw).
    fn conv_backward_weight(
        &self,
        x_layout: &Layout,
        grad_out: &Self,
        grad_layout: &Layout,
        params: &ConvParams,
    ) -> Result<Self>;
}

impl Storage {
    /// See [`ConvOps::conv`].
    pub(crate) fn conv(
        &self,
        x_layout: &Layout,
        weight: &Storage,
        weight_layout: &Layout,
        bias: Option<(&Storage, &Layout)>,
        params: &ConvParams,
    ) -> Result<Storage> {
        let (b, bl) = bias.unzip();
        dispatch!("conv", (self, weight, b), |(x, w, b)| x.conv(
            x_layout,
            w,
            weight_layout,
            b.zip(bl),
            params
        ))
    }

    /// See [`ConvOps::conv_backward_input`].
    pub(crate) fn conv_backward_input(
        &self,
        grad_layout: &Layout,
        weight: &Storage,
        weight_layout: &Layout,
        bias: Option<(&Storage, &Layout)>,
        params: &ConvParams,
    ) -> Result<Storage> {
        let (b, bl) = bias.unzip();
        dispatch!("conv_backward_input", (self, weight, b), |(g, w, b)| g
            .conv_backward_input(
                grad_layout,
                w,
                weight_layout,
                b.zip(bl),
                params
            ))
    }

    /// See [`ConvOps::conv_backward_weight`].
    pub(crate) fn conv_backward_weight(
        &self,
        x_layout: &Layout,
        grad_out: &Storage,
        grad_layout: &Layout,
        params: &ConvParams,
    ) -> Result<Storage> {
        dispatch!("conv_backward_weight", (self, grad_out), |(x, g)| x
            .conv_backward_weight(x_layout, g, grad_layout, params))
    }
}
