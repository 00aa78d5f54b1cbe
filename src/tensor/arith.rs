//! Elementwise arithmetic, activations and comparisons, with their gradients.
//!
//! Binary ops broadcast like PyTorch; the gradient of a broadcast operand is summed
//! back to its shape ([`Tensor::sum_to_shape`]).

use super::{StorageLocks, Tensor};
use crate::autograd::record;
use crate::backend::elementwise::{is_int_scalar, BinaryOp, CmpOp, UnaryOp};
use crate::shape::{broadcast_shape, checked_numel, Layout};
use crate::{DType, Result};

impl Tensor {
    /// The primitive of every binary op: checks, broadcasting, one backend call.
    pub(super) fn binary_raw(
        &self,
        op: BinaryOp,
        rhs: &Tensor,
        name: &'static str,
    ) -> Result<Tensor> {
        let (shape, ll, rl) = self.broadcast_layouts(rhs, name)?;
        let locks = StorageLocks::read(&[self, rhs]);
        let out = locks.get(0).binary(op, &ll, locks.get(1), &rl)?;
        Ok(Tensor::from_storage(out, &shape))
    }

    fn broadcast_layouts(
        &self,
        rhs: &Tensor,
        name: &'static str,
    ) -> Result<(Vec<usize>, Layout, Layout)> {
        self.check_same_device(name, rhs)?;
        self.check_same_dtype(name, rhs)?;
        let shape = broadcast_shape(name, self.shape(), rhs.shape())?;
        checked_numel(name, &shape)?;
        let ll = self.layout().broadcast_to(name, &shape)?;
        let rl = rhs.layout().broadcast_to(name, &shape)?;
        Ok((shape, ll, rl))
    }

    /// `self + rhs`, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::promote([self, rhs], [], |[a, b], []| a.add(b)) {
            return y;
        }
        let _op = crate::profiler::op("add", &[self, rhs]);
        let out = self.binary_raw(BinaryOp::Add, rhs, "add")?;
        let (ls, rs) = (self.shape().to_vec(), rhs.shape().to_vec());
        Ok(record(out, "add", &[self, rhs], move |_, g| {
            Ok(vec![Some(g.sum_to_shape(&ls)?), Some(g.sum_to_shape(&rs)?)])
        }))
    }

    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::promote([self, rhs], [], |[a, b], []| a.sub(b)) {
            return y;
        }
        let _op = crate::profiler::op("sub", &[self, rhs]);
        let out = self.binary_raw(BinaryOp::Sub, rhs, "sub")?;
        let (ls, rs) = (self.shape().to_vec(), rhs.shape().to_vec());
        Ok(record(out, "sub", &[self, rhs], move |_, g| {
            Ok(vec![
                Some(g.sum_to_shape(&ls)?),
                Some(g.neg()?.sum_to_shape(&rs)?),
            ])
        }))
    }

    /// `self * rhs`, broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::promote([self, rhs], [], |[a, b], []| a.mul(b)) {
            return y;
        }
        let _op = crate::profiler::op("mul", &[self, rhs]);
        let out = self.binary_raw(BinaryOp::Mul, rhs, "mul")?;
        let (a, b) = (self.detach(), rhs.detach());
        Ok(record(out, "mul", &[self, rhs], move |_, g| {
            Ok(vec![
                Some(g.mul(&b)?.sum_to_shape(a.shape())?),
                Some(g.mul(&a)?.sum_to_shape(b.shape())?),
            ])
        }))
    }

    /// `self / rhs`, broadcasting (float dtypes).
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::promote([self, rhs], [], |[a, b], []| a.div(b)) {
            return y;
        }
        let _op = crate::profiler::op("div", &[self, rhs]);
        let out = self.binary_raw(BinaryOp::Div, rhs, "div")?;
        let (a, b) = (self.detach(), rhs.detach());
        Ok(record(out, "div", &[self, rhs], move |out, g| {
            let ga = g.div(&b)?.sum_to_shape(a.shape())?;
            let gb = g.mul(out)?.div(&b)?.neg()?.sum_to_shape(b.shape())?;
            Ok(vec![Some(ga), Some(gb)])
        }))
    }

    /// Elementwise maximum, broadcasting; the gradient goes to the larger operand
    /// (split evenly on ties, as PyTorch does).
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.pairwise_extremum(rhs, BinaryOp::Maximum, CmpOp::Gt, "maximum")
    }

    /// Elementwise minimum, broadcasting; the gradient goes to the smaller operand.
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.pairwise_extremum(rhs, BinaryOp::Minimum, CmpOp::Lt, "minimum")
    }

    fn pairwise_extremum(
        &self,
        rhs: &Tensor,
        op: BinaryOp,
        wins: CmpOp,
        name: &'static str,
    ) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::promote([self, rhs], [], |[a, b], []| {
            a.pairwise_extremum(b, op, wins, name)
        }) {
            return y;
        }
        let _op = crate::profiler::op(name, &[self, rhs]);
        let out = self.binary_raw(op, rhs, name)?;
        let (a, b) = (self.detach(), rhs.detach());
        // PyTorch's: half the gradient to each on a tie, none to the operand the other
        // beats, all of it otherwise — to both where a NaN makes no comparison hold.
        Ok(record(out, name, &[self, rhs], move |_, g| {
            let zero = Tensor::zeros(&[], g.dtype(), &g.device())?;
            let shared = a.eq(&b)?.where_cond(&g.mul_scalar(0.5)?, g)?;
            let ga = b.compare(&a, wins)?.where_cond(&zero, &shared)?;
            let gb = a.compare(&b, wins)?.where_cond(&zero, &shared)?;
            Ok(vec![
                Some(ga.sum_to_shape(a.shape())?),
                Some(gb.sum_to_shape(b.shape())?),
            ])
        }))
    }

    /// The primitive of every unary op.
    pub(super) fn unary_raw(&self, op: UnaryOp) -> Result<Tensor> {
        let out = self.storage().unary(op, self.layout())?;
        Ok(Tensor::from_storage(out, self.shape()))
    }

    /// A unary op whose gradient is `g * local(x, out)`.
    pub(super) fn unary_with(
        &self,
        op: UnaryOp,
        name: &'static str,
        local: fn(&Tensor, &Tensor) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let _op = crate::profiler::op(name, &[self]);
        let out = self.unary_raw(op)?;
        let x = self.detach();
        Ok(record(out, name, &[self], move |out, g| {
            Ok(vec![Some(g.mul(&local(&x, out)?)?)])
        }))
    }

    /// `-self`.
    pub fn neg(&self) -> Result<Tensor> {
        let _op = crate::profiler::op("neg", &[self]);
        let out = self.unary_raw(UnaryOp::Neg)?;
        Ok(record(out, "neg", &[self], |_, g| Ok(vec![Some(g.neg()?)])))
    }

    /// `e^self`.
    pub fn exp(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.exp()) {
            return y;
        }
        self.unary_with(UnaryOp::Exp, "exp", |_, out| Ok(out.clone()))
    }

    /// Natural logarithm.
    pub fn log(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.log()) {
            return y;
        }
        self.unary_with(UnaryOp::Log, "log", |x, _| x.powf(-1.0))
    }

    /// Square root.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Sqrt, "sqrt", |_, out| {
            out.mul_scalar(2.0)?.powf(-1.0)
        })
    }

    /// `max(self, 0)`; the gradient is 0 where the result is `<= 0` (at 0 too) and
    /// passes elsewhere, NaN included, as PyTorch's `threshold_backward`.
    pub fn relu(&self) -> Result<Tensor> {
        let _op = crate::profiler::op("relu", &[self]);
        let out = self.unary_raw(UnaryOp::Relu)?;
        Ok(record(out, "relu", &[self], |out, g| {
            let zero = Tensor::zeros(&[], g.dtype(), &g.device())?;
            let dead = out.le(&Tensor::zeros(&[], out.dtype(), &out.device())?)?;
            Ok(vec![Some(dead.where_cond(&zero, g)?)])
        }))
    }

    /// The logistic function.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Sigmoid, "sigmoid", |_, out| {
            out.mul(&out.neg()?.add_scalar(1.0)?)
        })
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Tanh, "tanh", |_, out| {
            out.mul(out)?.neg()?.add_scalar(1.0)
        })
    }

    /// `|self|`; the gradient at 0 is 0, as in PyTorch.
    pub fn abs(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Abs, "abs", |x, _| {
            let dtype = x.dtype();
            x.gt_scalar(0.0)?
                .to_dtype(dtype)?
                .sub(&x.lt_scalar(0.0)?.to_dtype(dtype)?)
        })
    }

    /// `self ^ e` for a scalar exponent (`e = 0.5` is `sqrt` and `-0.5` is `1 / sqrt`,
    /// as PyTorch computes them). The gradient is `e · x^(e-1)`, and 0 everywhere
    /// for `e = 0` (not `0 · 0^-1`, NaN, at 0), as in PyTorch.
    pub fn powf(&self, e: f64) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.powf(e)) {
            return y;
        }
        let _op = crate::profiler::op("powf", &[self]);
        let out = self.unary_raw(UnaryOp::PowScalar(e))?;
        let x = self.detach();
        Ok(record(out, "powf", &[self], move |_, g| {
            if e == 0.0 {
                return Ok(vec![Some(g.zeros_like()?)]);
            }
            Ok(vec![Some(g.mul(&x.powf(e - 1.0)?.mul_scalar(e)?)?)])
        }))
    }

    /// The operand of a tensor-scalar op, following PyTorch's type promotion: a float
    /// tensor, or an integer tensor with an integer scalar (integral and within
    /// i64's range), is used as it is, and the scalar wraps into an integer dtype
    /// (`U8 [5] + (-1)` is `[4]`, `U8 [200] + 100` is `[44]`, as in PyTorch); an
    /// integer tensor with any other scalar (`0.5`, NaN, ±inf, `1e30`) is first
    /// converted to F32, PyTorch's default dtype, as `int_tensor * 0.5` is there.
    fn scalar_operand(&self, s: f64) -> Result<Tensor> {
        if self.dtype().is_float() || is_int_scalar(s) {
            Ok(self.clone())
        } else {
            self.to_dtype(DType::F32)
        }
    }

    /// `self + s`. Integer tensors follow PyTorch's promotion: an integer `s` wraps
    /// into the dtype, a fractional one gives an F32 result (see
    /// [`Tensor::mul_scalar`]).
    pub fn add_scalar(&self, s: f64) -> Result<Tensor> {
        let _op = crate::profiler::op("add_scalar", &[self]);
        let x = self.scalar_operand(s)?;
        let out = x.unary_raw(UnaryOp::AddScalar(s))?;
        Ok(record(out, "add_scalar", &[&x], |_, g| {
            Ok(vec![Some(g.clone())])
        }))
    }

    /// `self - s` (as [`Tensor::add_scalar`] of `-s`).
    pub fn sub_scalar(&self, s: f64) -> Result<Tensor> {
        self.add_scalar(-s)
    }

    /// `self * s`. On an integer tensor, an integer `s` keeps the dtype (wrapping
    /// like PyTorch: `I64 [1, 2] * 3` is `[3, 6]`), any other `s` gives F32, PyTorch's
    /// default dtype (`I64 [1, 2, 3] * 0.5` is `[0.5, 1.0, 1.5]`), the same on every
    /// device.
    pub fn mul_scalar(&self, s: f64) -> Result<Tensor> {
        let _op = crate::profiler::op("mul_scalar", &[self]);
        let x = self.scalar_operand(s)?;
        let out = x.unary_raw(UnaryOp::MulScalar(s))?;
        Ok(record(out, "mul_scalar", &[&x], move |_, g| {
            Ok(vec![Some(g.mul_scalar(s)?)])
        }))
    }

    /// `self / s`: true division, so an integer tensor gives F32 (PyTorch's default
    /// dtype), as `torch.tensor([1, 2]) / 2` does.
    pub fn div_scalar(&self, s: f64) -> Result<Tensor> {
        let _op = crate::profiler::op("div_scalar", &[self]);
        let x = if self.dtype().is_float() {
            self.clone()
        } else {
            self.to_dtype(DType::F32)?
        };
        let out = x.unary_raw(UnaryOp::DivScalar(s))?;
        Ok(record(out, "div_scalar", &[&x], move |_, g| {
            Ok(vec![Some(g.div_scalar(s)?)])
        }))
    }

    fn compare(&self, rhs: &Tensor, op: CmpOp) -> Result<Tensor> {
        let (shape, ll, rl) = self.broadcast_layouts(rhs, "compare")?;
        let locks = StorageLocks::read(&[self, rhs]);
        let out = locks.get(0).compare(op, &ll, locks.get(1), &rl)?;
        Ok(Tensor::from_storage(out, &shape))
    }

    fn compare_scalar(&self, s: f64, op: CmpOp) -> Result<Tensor> {
        // Comparisons are of numbers, as in PyTorch: a scalar this dtype does not
        // hold as it is — a fraction against an integer tensor (`1 < 1.5`), one
        // beyond the dtype's range (`U8 < 300`, `F16 < 1e6`) — compares in F64;
        // converting it would change the answer.
        // (F64 holds every scalar as it is, so this recurses at most once.)
        let dtype = self.dtype();
        if dtype.scalar(s).is_none_or(|v| v.to_bits() != s.to_bits()) {
            return self.to_dtype(DType::F64)?.compare_scalar(s, op);
        }
        self.compare(&Tensor::full(&[], s, dtype, &self.device())?, op)
    }

    /// `self == rhs` as a U8 tensor of 0/1, broadcasting.
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Eq)
    }

    /// `self != rhs` as U8.
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Ne)
    }

    /// `self < rhs` as U8.
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Lt)
    }

    /// `self <= rhs` as U8.
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Le)
    }

    /// `self > rhs` as U8.
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Gt)
    }

    /// `self >= rhs` as U8.
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare(rhs, CmpOp::Ge)
    }

    /// `self > s` as U8.
    pub fn gt_scalar(&self, s: f64) -> Result<Tensor> {
        self.compare_scalar(s, CmpOp::Gt)
    }

    /// `self < s` as U8.
    pub fn lt_scalar(&self, s: f64) -> Result<Tensor> {
        self.compare_scalar(s, CmpOp::Lt)
    }

    /// `self == s` as U8.
    pub fn eq_scalar(&self, s: f64) -> Result<Tensor> {
        self.compare_scalar(s, CmpOp::Eq)
    }
}
