//! Problem descriptions of the spatial primitives (convolution, pooling), shared
//! by every backend: the tensor layer validates the arguments and fills these in,
//! so a backend kernel only reads sizes that are already known to be consistent.
//!
//! All tensors are NCHW and contiguous when they reach a backend.

/// One 2-D convolution: input (n, c_in, h, w), weight (c_out, c_in / groups, kh, kw),
/// output (n, c_out, out_h, out_w).
///
/// Input row `oy * stride_h - pad_top + ky * dilation_h` (and likewise for columns)
/// feeds output row `oy` through kernel row `ky`; rows outside the input read zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dParams {
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

/// One 2-D pooling over windows: input (n, c, h, w), output (n, c, out_h, out_w).
///
/// Output `(oy, ox)` covers input rows `oy * stride_h - pad_h ..` for `kh` rows
/// (columns likewise), clipped to the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dParams {
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
pub struct AdaptivePool2dParams {
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

    /// Input rows (or columns, with `w`/`out_w`) of output index `i`: `start..end`.
    pub fn window(i: usize, input: usize, output: usize) -> (usize, usize) {
        let start = i * input / output;
        let end = ((i + 1) * input).div_ceil(output);
        (start, end)
    }
}
