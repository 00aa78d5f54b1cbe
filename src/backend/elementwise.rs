//! Elementwise primitives: ops of one operand (activations, scalar arithmetic), of
//! two operands (arithmetic, extrema) and comparisons, over strided and broadcast
//! operands into a contiguous result.
//!
//! An op's identity lives on its enum: [`UnaryOp::name`] (and friends) is the name
//! errors show and the name the CUDA registry finds the op's code by, in
//! `kernels/elementwise.cu`'s `UnaryCode`/`BinaryCode`/`CmpCode` enums.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/elementwise.rs"]
mod cpu;
#[path = "cuda/ops/elementwise.rs"]
mod cuda;

/// Elementwise ops of one operand. Scalar parameters are given as f64.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum UnaryOp {
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
    /// `x` where `x > 0`, else `s·x` (PyTorch's `leaky_relu` with slope `s`)
    LeakyRelu(f64),
    /// derivative of [`UnaryOp::LeakyRelu`]: 1 where `x > 0`, else `s`
    LeakyReluGrad(f64),
    /// SiLU (swish): `x·σ(x)`
    Silu,
    /// derivative of [`UnaryOp::Silu`]: `σ(x)·(1 + x·(1 - σ(x)))`
    SiluGrad,
    /// softplus with β = 1 and threshold `s`: `x` where `x > s`, else `ln(1 + e^x)`
    /// (β ≠ 1 is a scaling around it, in `F::softplus`)
    Softplus(f64),
    /// derivative of [`UnaryOp::Softplus`]: 1 where `x > s`, else `σ(x)`
    SoftplusGrad(f64),
    /// sine
    Sin,
    /// cosine
    Cos,
    /// largest integer `≤ x` (integers: the value itself)
    Floor,
    /// smallest integer `≥ x` (integers: the value itself)
    Ceil,
    /// nearest integer, halves to even, as PyTorch (integers: the value itself)
    Round,
    /// integer part, towards zero (integers: the value itself)
    Trunc,
    /// `(x > 0) - (x < 0)`: -1, 0 or 1, and 0 for NaN, as PyTorch
    Sign,
    /// the error function
    Erf,
    /// `ln(1 + x)`, accurate near 0
    Log1p,
    /// `e^x - 1`, accurate near 0
    Expm1,
    /// `1 / x`
    Reciprocal,
    /// `x·x`
    Square,
    /// `2^x`
    Exp2,
    /// base-2 logarithm
    Log2,
    /// `x·relu6(x + 3)/6`
    Hardswish,
    /// derivative of [`UnaryOp::Hardswish`]: 0 for `x ≤ -3`, `x/3 + 1/2` below 3, else 1
    HardswishGrad,
    /// `relu6(x + 3)/6`
    Hardsigmoid,
    /// derivative of [`UnaryOp::Hardsigmoid`]: 1/6 strictly inside (-3, 3), else 0
    HardsigmoidGrad,
    /// `x` limited to `[min, max]` (`relu6` is `min = 0, max = 6`)
    Hardtanh {
        /// lower bound
        min: f64,
        /// upper bound
        max: f64,
    },
    /// derivative of [`UnaryOp::Hardtanh`]: 1 strictly inside `(min, max)`, else 0
    HardtanhGrad {
        /// lower bound
        min: f64,
        /// upper bound
        max: f64,
    },
    /// ELU with `α = s`: `x` where `x > 0`, else `α·(e^x - 1)`
    Elu(f64),
    /// derivative of [`UnaryOp::Elu`]: 1 where `x > 0`, else `α·e^x`
    EluGrad(f64),
    /// SELU: `λ·elu(x, α)` with PyTorch's constants λ and α
    Selu,
    /// derivative of [`UnaryOp::Selu`]
    SeluGrad,
    /// CELU with `α = s`: `x` where `x > 0`, else `α·(e^(x/α) - 1)`
    Celu(f64),
    /// derivative of [`UnaryOp::Celu`]: 1 where `x > 0`, else `e^(x/α)`
    CeluGrad(f64),
    /// Mish: `x·tanh(ln(1 + e^x))`
    Mish,
    /// derivative of [`UnaryOp::Mish`]
    MishGrad,
    /// `ln σ(x) = -ln(1 + e^-x)`, computed without overflow
    LogSigmoid,
    /// derivative of [`UnaryOp::LogSigmoid`]: `σ(-x)`
    LogSigmoidGrad,
    /// `x / (1 + |x|)`
    Softsign,
    /// derivative of [`UnaryOp::Softsign`]: `1 / (1 + |x|)²`
    SoftsignGrad,
    /// smooth L1 of a difference with `β = s > 0`: `x²/(2β)` where `|x| < β`, else `|x| - β/2`
    SmoothL1(f64),
    /// derivative of [`UnaryOp::SmoothL1`]: `x/β` where `|x| < β`, else `sign(x)`
    SmoothL1Grad(f64),
    /// Huber loss of a difference with `δ = s`: `x²/2` where `|x| < δ`, else `δ·(|x| - δ/2)`
    Huber(f64),
    /// derivative of [`UnaryOp::Huber`]: `x` where `|x| < δ`, else `δ·sign(x)`
    HuberGrad(f64),
}

impl UnaryOp {
    /// Every op (scalar ops with a placeholder scalar), for tests that check each one
    /// has a kernel case.
    #[cfg(test)]
    pub(crate) const ALL: [UnaryOp; 58] = [
        UnaryOp::Neg,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Abs,
        UnaryOp::AddScalar(0.0),
        UnaryOp::MulScalar(0.0),
        UnaryOp::DivScalar(0.0),
        UnaryOp::PowScalar(0.0),
        UnaryOp::Gelu,
        UnaryOp::GeluGrad,
        UnaryOp::GeluTanh,
        UnaryOp::GeluTanhGrad,
        UnaryOp::LeakyRelu(0.0),
        UnaryOp::LeakyReluGrad(0.0),
        UnaryOp::Silu,
        UnaryOp::SiluGrad,
        UnaryOp::Softplus(0.0),
        UnaryOp::SoftplusGrad(0.0),
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::Round,
        UnaryOp::Trunc,
        UnaryOp::Sign,
        UnaryOp::Erf,
        UnaryOp::Log1p,
        UnaryOp::Expm1,
        UnaryOp::Reciprocal,
        UnaryOp::Square,
        UnaryOp::Exp2,
        UnaryOp::Log2,
        UnaryOp::Hardswish,
        UnaryOp::HardswishGrad,
        UnaryOp::Hardsigmoid,
        UnaryOp::HardsigmoidGrad,
        UnaryOp::Hardtanh { min: 0.0, max: 0.0 },
        UnaryOp::HardtanhGrad { min: 0.0, max: 0.0 },
        UnaryOp::Elu(0.0),
        UnaryOp::EluGrad(0.0),
        UnaryOp::Selu,
        UnaryOp::SeluGrad,
        UnaryOp::Celu(0.0),
        UnaryOp::CeluGrad(0.0),
        UnaryOp::Mish,
        UnaryOp::MishGrad,
        UnaryOp::LogSigmoid,
        UnaryOp::LogSigmoidGrad,
        UnaryOp::Softsign,
        UnaryOp::SoftsignGrad,
        UnaryOp::SmoothL1(0.0),
        UnaryOp::SmoothL1Grad(0.0),
        UnaryOp::Huber(0.0),
        UnaryOp::HuberGrad(0.0),
    ];

    /// The op's name: in errors, and the key of its code in the CUDA kernels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Abs => "abs",
            UnaryOp::AddScalar(_) => "add_scalar",
            UnaryOp::MulScalar(_) => "mul_scalar",
            UnaryOp::DivScalar(_) => "div_scalar",
            UnaryOp::PowScalar(_) => "pow_scalar",
            UnaryOp::Gelu => "gelu",
            UnaryOp::GeluGrad => "gelu_grad",
            UnaryOp::GeluTanh => "gelu_tanh",
            UnaryOp::GeluTanhGrad => "gelu_tanh_grad",
            UnaryOp::LeakyRelu(_) => "leaky_relu",
            UnaryOp::LeakyReluGrad(_) => "leaky_relu_grad",
            UnaryOp::Silu => "silu",
            UnaryOp::SiluGrad => "silu_grad",
            UnaryOp::Softplus(_) => "softplus",
            UnaryOp::SoftplusGrad(_) => "softplus_grad",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::Round => "round",
            UnaryOp::Trunc => "trunc",
            UnaryOp::Sign => "sign",
            UnaryOp::Erf => "erf",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Expm1 => "expm1",
            UnaryOp::Reciprocal => "reciprocal",
            UnaryOp::Square => "square",
            UnaryOp::Exp2 => "exp2",
            UnaryOp::Log2 => "log2",
            UnaryOp::Hardswish => "hardswish",
            UnaryOp::HardswishGrad => "hardswish_grad",
            UnaryOp::Hardsigmoid => "hardsigmoid",
            UnaryOp::HardsigmoidGrad => "hardsigmoid_grad",
            UnaryOp::Hardtanh { .. } => "hardtanh",
            UnaryOp::HardtanhGrad { .. } => "hardtanh_grad",
            UnaryOp::Elu(_) => "elu",
            UnaryOp::EluGrad(_) => "elu_grad",
            UnaryOp::Selu => "selu",
            UnaryOp::SeluGrad => "selu_grad",
            UnaryOp::Celu(_) => "celu",
            UnaryOp::CeluGrad(_) => "celu_grad",
            UnaryOp::Mish => "mish",
            UnaryOp::MishGrad => "mish_grad",
            UnaryOp::LogSigmoid => "log_sigmoid",
            UnaryOp::LogSigmoidGrad => "log_sigmoid_grad",
            UnaryOp::Softsign => "softsign",
            UnaryOp::SoftsignGrad => "softsign_grad",
            UnaryOp::SmoothL1(_) => "smooth_l1",
            UnaryOp::SmoothL1Grad(_) => "smooth_l1_grad",
            UnaryOp::Huber(_) => "huber",
            UnaryOp::HuberGrad(_) => "huber_grad",
        }
    }

    /// The op's scalar parameter (0 for ops without one).
    pub(crate) fn scalar(self) -> f64 {
        match self {
            UnaryOp::AddScalar(s)
            | UnaryOp::MulScalar(s)
            | UnaryOp::DivScalar(s)
            | UnaryOp::PowScalar(s)
            | UnaryOp::LeakyRelu(s)
            | UnaryOp::LeakyReluGrad(s)
            | UnaryOp::Softplus(s)
            | UnaryOp::SoftplusGrad(s)
            | UnaryOp::Elu(s)
            | UnaryOp::EluGrad(s)
            | UnaryOp::Celu(s)
            | UnaryOp::CeluGrad(s)
            | UnaryOp::SmoothL1(s)
            | UnaryOp::SmoothL1Grad(s)
            | UnaryOp::Huber(s)
            | UnaryOp::HuberGrad(s) => s,
            UnaryOp::Hardtanh { min, .. } | UnaryOp::HardtanhGrad { min, .. } => min,
            _ => 0.0,
        }
    }

    /// The op's second scalar (0 for ops without one): `max` of hardtanh, and `1/α`
    /// of CELU, which PyTorch takes in f64 before its kernel rounds it.
    pub(crate) fn scalar2(self) -> f64 {
        match self {
            UnaryOp::Hardtanh { max, .. } | UnaryOp::HardtanhGrad { max, .. } => max,
            UnaryOp::Celu(alpha) => 1.0 / alpha,
            // PyTorch's backward rounds α to f32 first (see EluCoefs::celu_grad).
            UnaryOp::CeluGrad(alpha) => 1.0 / f64::from(alpha as f32),
            _ => 0.0,
        }
    }

    /// The scalar as an integer dtype applies it: the exact i64 value, which each
    /// backend wraps into its element type (`U8 + (-1)` subtracts one, as in PyTorch).
    /// The tensor layer sends integer tensors only integral scalars within i64's
    /// range (others promote to F32 there); [`UnaryOp::check_int_scalar`] guards the
    /// backends against the rest.
    pub(crate) fn int_scalar(self) -> i64 {
        self.scalar() as i64
    }

    /// Err unless the scalar of this op is one an integer tensor can apply exactly:
    /// integral and within i64's range (±2^63, exclusive at the top).
    pub(crate) fn check_int_scalar(self) -> crate::Result<()> {
        let s = self.scalar();
        if is_int_scalar(s) {
            Ok(())
        } else {
            Err(crate::Error::arg(
                "scalar",
                format!(
                    "{}: {s} is not an integer an integer tensor can apply exactly",
                    self.name()
                ),
            ))
        }
    }

    /// Err unless the op applies to `dtype`: floats take every op; integers take only
    /// the ops [`UnaryOp::allows_integers`] lists, with an integral scalar. Both
    /// backends check this first, so they refuse the same inputs.
    pub(crate) fn check_dtype(self, dtype: crate::DType) -> crate::Result<()> {
        if dtype.is_float() {
            return Ok(());
        }
        if !self.allows_integers() {
            return Err(crate::Error::UnsupportedDType {
                op: self.name(),
                dtype,
            });
        }
        self.check_int_scalar()
    }

    /// True when the op is defined for integer dtypes too.
    pub(crate) fn allows_integers(self) -> bool {
        matches!(
            self,
            UnaryOp::Neg
                | UnaryOp::Relu
                | UnaryOp::Abs
                | UnaryOp::AddScalar(_)
                | UnaryOp::MulScalar(_)
                | UnaryOp::Floor
                | UnaryOp::Ceil
                | UnaryOp::Round
                | UnaryOp::Trunc
                | UnaryOp::Sign
                | UnaryOp::Square
        )
    }
}

/// True when `s` is integral and within i64's range, so that an integer tensor
/// applies it exactly (wrapping into its dtype); PyTorch's "integer scalar".
pub(crate) fn is_int_scalar(s: f64) -> bool {
    // -2^63 is an i64; 2^63 is not.
    s.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&s)
}

/// Elementwise ops of two operands of one dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
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
    /// `atan2(a, b)`: the angle of the point `(b, a)`, in `[-π, π]`
    Atan2,
    /// binary cross entropy of a probability `a` and a target `b`, PyTorch's form:
    /// `(b - 1)·max(ln(1 - a), -100) - b·max(ln a, -100)`
    BinaryCrossEntropy,
    /// derivative of [`BinaryOp::BinaryCrossEntropy`] in `a`:
    /// `(a - b) / max((1 - a)·a, ε)`, ε the f32 nearest 1e-12 (PyTorch's `EPSILON`)
    BinaryCrossEntropyGrad,
}

impl BinaryOp {
    /// Every op, for tests that check each one has a kernel case.
    #[cfg(test)]
    pub(crate) const ALL: [BinaryOp; 9] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Atan2,
        BinaryOp::BinaryCrossEntropy,
        BinaryOp::BinaryCrossEntropyGrad,
    ];

    /// The op's name: in errors, and the key of its code in the CUDA kernels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Atan2 => "atan2",
            BinaryOp::BinaryCrossEntropy => "binary_cross_entropy",
            BinaryOp::BinaryCrossEntropyGrad => "binary_cross_entropy_grad",
        }
    }

    /// Err unless the op applies to `dtype`: floats take every op, integers the
    /// arithmetic and extrema but not division (PyTorch's true division gives a
    /// float) nor the float-only functions. Both backends check this first.
    pub(crate) fn check_dtype(self, dtype: crate::DType) -> crate::Result<()> {
        let int_op = matches!(
            self,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Maximum | BinaryOp::Minimum
        );
        if dtype.is_float() || int_op {
            Ok(())
        } else {
            Err(crate::Error::UnsupportedDType {
                op: self.name(),
                dtype,
            })
        }
    }
}

/// Elementwise comparisons; the result is a U8 tensor of 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
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

impl CmpOp {
    /// Every op, for tests that check each one has a kernel case.
    #[cfg(test)]
    pub(crate) const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    /// The op's name: in errors, and the key of its code in the CUDA kernels.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// The elementwise primitives of a backend.
pub(crate) trait ElementwiseOps: Sized {
    /// `op` on every element of `layout`; the result is contiguous.
    fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<Self>;

    /// `op` elementwise; both layouts are already broadcast to the output shape and
    /// both operands have one dtype.
    fn binary(&self, op: BinaryOp, lhs: &Layout, rhs: &Self, rhs_layout: &Layout) -> Result<Self>;

    /// Comparison elementwise, giving U8; layouts already broadcast.
    fn compare(&self, op: CmpOp, lhs: &Layout, rhs: &Self, rhs_layout: &Layout) -> Result<Self>;
}

impl Storage {
    /// See [`ElementwiseOps::unary`].
    pub(crate) fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<Storage> {
        dispatch!(op.name(), (self), |(s)| s.unary(op, layout))
    }

    /// See [`ElementwiseOps::binary`].
    pub(crate) fn binary(
        &self,
        op: BinaryOp,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        dispatch!(op.name(), (self, rhs), |(a, b)| a
            .binary(op, lhs, b, rhs_layout))
    }

    /// See [`ElementwiseOps::compare`].
    pub(crate) fn compare(
        &self,
        op: CmpOp,
        lhs: &Layout,
        rhs: &Storage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        dispatch!(op.name(), (self, rhs), |(a, b)| a
            .compare(op, lhs, b, rhs_layout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Names key the kernels' op codes, so two ops with one name would run one kernel
    /// case.
    #[test]
    fn every_op_has_its_own_name() {
        let unary: HashSet<_> = UnaryOp::ALL.iter().map(|o| o.name()).collect();
        let binary: HashSet<_> = BinaryOp::ALL.iter().map(|o| o.name()).collect();
        let cmp: HashSet<_> = CmpOp::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(unary.len(), UnaryOp::ALL.len());
        assert_eq!(binary.len(), BinaryOp::ALL.len());
        assert_eq!(cmp.len(), CmpOp::ALL.len());
    }
}
