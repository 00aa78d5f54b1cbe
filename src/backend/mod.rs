//! Backends: where tensor memory lives and the primitive ops that run on it.
//!
//! [`Storage`] is the memory of one tensor (or of several views). The tensor layer
//! calls the primitives below; each dispatches to the CPU backend (the reference) or,
//! when built, the CUDA backend. Every higher op — autograd included — is written
//! with these primitives, so a backend that implements them runs all of kiln.

pub mod cpu;

use crate::shape::Layout;
use crate::{DType, Device, Result};
pub use cpu::CpuStorage;

/// Elementwise ops of one operand. Scalar parameters are given as f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// square root
    Sqrt,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// hyperbolic tangent
    Tanh,
    /// `|x|`
    Abs,
    /// `x + s`
    AddScalar(f64),
    /// `x * s`
    MulScalar(f64),
    /// `x / s`
    DivScalar(f64),
    /// `x ^ s`
    PowScalar(f64),
    /// GELU, exact form: `x·Φ(x) = x/2·(1 + erf(x/√2))`
    Gelu,
    /// derivative of [`UnaryOp::Gelu`]: `Φ(x) + x·φ(x)`
    GeluGrad,
    /// GELU, tanh approximation: `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`
    GeluTanh,
    /// derivative of [`UnaryOp::GeluTanh`]
    GeluTanhGrad,
}

impl UnaryOp {
    /// True when the op is defined for integer dtypes too.
    pub fn allows_integers(self) -> bool {
        matches!(
            self,
            UnaryOp::Neg
                | UnaryOp::Relu
                | UnaryOp::Abs
                | UnaryOp::AddScalar(_)
                | UnaryOp::MulScalar(_)
        )
    }
}

/// Elementwise ops of two operands of one dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// elementwise maximum (NaN propagates)
    Maximum,
    /// elementwise minimum (NaN propagates)
    Minimum,
}

/// Elementwise comparisons; the result is a U8 tensor of 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
}

/// Reductions over one dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum (integers sum to I64).
    Sum,
    /// Maximum (NaN propagates).
    Max,
    /// Minimum (NaN propagates).
    Min,
    /// Index of the first maximum, as I64.
    ArgMax,
    /// Index of the first minimum, as I64.
    ArgMin,
}

/// The memory of a tensor on one device.
#[derive(Debug)]
pub enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
}

/// Problem sizes of a batched matmul: `batch` products of (m×k)·(k×n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulDims {
    /// Number of matrix products.
    pub batch: usize,
    /// Rows of the left operand and of the result.
    pub m: usize,
    /// Columns of the right operand and of the result.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
}

impl Storage {
    /// The device this memory is on.
    pub fn device(&self) -> Device {
        match self {
            Storage::Cpu(_) => Device::Cpu,
        }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => s.dtype(),
        }
    }

    /// `op` on every element of `layout`; the result is contiguous.
    pub fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.unary(op, layout)?)),
        }
    }

    /// `op` elementwise; both layouts are already broadcast to the output shape.
    pub fn binary(
        &self,
        op: BinaryOp,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                Ok(Storage::Cpu(a.binary(op, lhs, b, rhs_layout)?))
            }
        }
    }

    /// Comparison elementwise, giving U8; layouts already broadcast.
    pub fn compare(
        &self,
        op: CmpOp,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                Ok(Storage::Cpu(a.compare(op, lhs, b, rhs_layout)?))
            }
        }
    }

    /// Reduces dimension `dim` away (the result has the shape without `dim`).
    pub fn reduce(&self, op: ReduceOp, layout: &Layout, dim: usize) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.reduce(op, layout, dim)?)),
        }
    }

    /// Batched matmul; each layout is 3-D (batch, rows, cols), batch stride may be 0.
    pub fn matmul(
        &self,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
        dims: MatmulDims,
    ) -> Result<Storage> {
        match (self, rhs) {
            (Storage::Cpu(a), Storage::Cpu(b)) => {
                Ok(Storage::Cpu(a.matmul(lhs, b, rhs_layout, dims)?))
            }
        }
    }

    /// A contiguous copy of the elements of `layout`, converted to `dtype`.
    pub fn copy_as(&self, layout: &Layout, dtype: DType) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.copy_as(layout, dtype))),
        }
    }

    /// Writes the elements of `src` (at `src_layout`) into `self` at `dst_layout`.
    pub fn copy_from(
        &mut self,
        dst_layout: &Layout,
        src: &Storage,
        src_layout: &Layout,
    ) -> Result<()> {
        match (self, src) {
            (Storage::Cpu(d), Storage::Cpu(s)) => d.copy_from(dst_layout, s, src_layout),
        }
    }

    /// Softmax (or log-softmax when `log`) of the elements of `layout` along `dim`
    /// (`dim < rank`, checked by the caller), computed stably: each slice's maximum is
    /// subtracted before `exp`. The result is contiguous with `layout`'s shape.
    pub fn softmax(&self, layout: &Layout, dim: usize, log: bool) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.softmax(layout, dim, log)?)),
        }
    }

    /// The elements of `layout` on the host, as a CPU storage.
    pub fn to_cpu(&self, layout: &Layout) -> Result<CpuStorage> {
        match self {
            Storage::Cpu(s) => Ok(s.copy_as(layout, s.dtype())),
        }
    }

    /// 2-D convolution (see [`Conv2dParams`]): input `x` (n, c_in, h, w), `weight`
    /// (c_out, c_in/groups, kh, kw), optional `bias` (c_out); the result is the
    /// contiguous output (n, c_out, out_h, out_w). All operands share one float dtype.
    pub fn conv2d(
        &self,
        x_layout: &Layout,
        weight: &Storage,
        weight_layout: &Layout,
        bias: Option<(&Storage, &Layout)>,
        params: &Conv2dParams,
    ) -> Result<Storage> {
        match (self, weight) {
            (Storage::Cpu(x), Storage::Cpu(w)) => {
                let bias = bias.map(|(b, bl)| match b {
                    Storage::Cpu(b) => (b, bl),
                });
                Ok(Storage::Cpu(x.conv2d(
                    x_layout,
                    w,
                    weight_layout,
                    bias,
                    params,
                )?))
            }
        }
    }

    /// Gradient of [`Storage::conv2d`] with respect to its input, from the output's
    /// gradient (`self`, shaped like the output) and the weight. Contiguous (n, c_in, h, w).
    pub fn conv2d_backward_input(
        &self,
        grad_layout: &Layout,
        weight: &Storage,
        weight_layout: &Layout,
        params: &Conv2dParams,
    ) -> Result<Storage> {
        match (self, weight) {
            (Storage::Cpu(g), Storage::Cpu(w)) => Ok(Storage::Cpu(g.conv2d_backward_input(
                grad_layout,
                w,
                weight_layout,
                params,
            )?)),
        }
    }

    /// Gradient of [`Storage::conv2d`] with respect to its weight, from the input
    /// (`self`) and the output's gradient, summed over the batch. Contiguous
    /// (c_out, c_in/groups, kh, kw).
    pub fn conv2d_backward_weight(
        &self,
        x_layout: &Layout,
        grad_out: &Storage,
        grad_layout: &Layout,
        params: &Conv2dParams,
    ) -> Result<Storage> {
        match (self, grad_out) {
            (Storage::Cpu(x), Storage::Cpu(g)) => Ok(Storage::Cpu(x.conv2d_backward_weight(
                x_layout,
                g,
                grad_layout,
                params,
            )?)),
        }
    }

    /// Max pooling (see [`Pool2dParams`]): the output (n, c, out_h, out_w) and, as I64,
    /// the index within its (h·w) input plane of the element each output took.
    pub fn max_pool2d(&self, layout: &Layout, params: &Pool2dParams) -> Result<(Storage, Storage)> {
        match self {
            Storage::Cpu(s) => {
                let (values, indices) = s.max_pool2d(layout, params)?;
                Ok((Storage::Cpu(values), Storage::Cpu(indices)))
            }
        }
    }

    /// Gradient of [`Storage::max_pool2d`]: the output's gradient (`self`) added at the
    /// recorded `indices`. Contiguous (n, c, h, w).
    pub fn max_pool2d_backward(
        &self,
        grad_layout: &Layout,
        indices: &Storage,
        indices_layout: &Layout,
        params: &Pool2dParams,
    ) -> Result<Storage> {
        match (self, indices) {
            (Storage::Cpu(g), Storage::Cpu(i)) => Ok(Storage::Cpu(g.max_pool2d_backward(
                grad_layout,
                i,
                indices_layout,
                params,
            )?)),
        }
    }

    /// Average pooling with padding counted in the divisor (PyTorch's default).
    pub fn avg_pool2d(&self, layout: &Layout, params: &Pool2dParams) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.avg_pool2d(layout, params)?)),
        }
    }

    /// Gradient of [`Storage::avg_pool2d`] from the output's gradient (`self`).
    pub fn avg_pool2d_backward(
        &self,
        grad_layout: &Layout,
        params: &Pool2dParams,
    ) -> Result<Storage> {
        match self {
            Storage::Cpu(g) => Ok(Storage::Cpu(g.avg_pool2d_backward(grad_layout, params)?)),
        }
    }

    /// Adaptive average pooling to (out_h, out_w) (see [`AdaptivePool2dParams`]).
    pub fn adaptive_avg_pool2d(
        &self,
        layout: &Layout,
        params: &AdaptivePool2dParams,
    ) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.adaptive_avg_pool2d(layout, params)?)),
        }
    }

    /// Gradient of [`Storage::adaptive_avg_pool2d`] from the output's gradient (`self`).
    pub fn adaptive_avg_pool2d_backward(
        &self,
        grad_layout: &Layout,
        params: &AdaptivePool2dParams,
    ) -> Result<Storage> {
        match self {
            Storage::Cpu(g) => Ok(Storage::Cpu(
                g.adaptive_avg_pool2d_backward(grad_layout, params)?,
            )),
        }
    }

    /// Dropout with drop probability `p` in (0, 1): element `i` (row-major in
    /// `layout`) is kept and scaled by `1/(1-p)` iff `stream.word(i) <
    /// rng::keep_threshold(p)`, else zeroed. The same call on the output's gradient
    /// gives the input's gradient. Contiguous result.
    pub fn dropout(&self, layout: &Layout, stream: PhiloxStream, p: f64) -> Result<Storage> {
        match self {
            Storage::Cpu(s) => Ok(Storage::Cpu(s.dropout(layout, stream, p)?)),
        }
    }
}

mod spatial;
use crate::rng::PhiloxStream;
pub use spatial::{AdaptivePool2dParams, Conv2dParams, Pool2dParams};
