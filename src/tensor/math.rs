//! Math with autograd built on the elementwise and reduce primitives: `sin`, `cos`,
//! `rsqrt`, `pow_scalar`, `clamp`, `var`, the rounding functions (`floor`, `ceil`,
//! `round`, `trunc`, `sign`), `erf`, `log1p`, `expm1`, `reciprocal`, `square`,
//! `exp2`, `log2` and `atan2`.
//!
//! Each is one elementwise primitive forward; the gradients are PyTorch's formulas
//! (`tools/autograd/derivatives.yaml`) composed of tensor ops.

use super::Tensor;
use crate::autograd::record;
use crate::backend::elementwise::{is_int_scalar, BinaryOp, UnaryOp};
use crate::shape::check_dim;
use crate::{DType, Error, Result};

impl Tensor {
    /// Sine (float dtypes); the gradient is `cos(x)`.
    pub fn sin(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Sin, "sin", |x, _| x.cos())
    }

    /// Cosine (float dtypes); the gradient is `-sin(x)`.
    pub fn cos(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Cos, "cos", |x, _| x.sin()?.neg())
    }

    /// The largest integer `≤ x` elementwise (integer dtypes: a copy). The gradient
    /// is 0, as PyTorch's.
    pub fn floor(&self) -> Result<Tensor> {
        self.piecewise_constant(UnaryOp::Floor, "floor")
    }

    /// The smallest integer `≥ x` elementwise (integer dtypes: a copy); gradient 0.
    pub fn ceil(&self) -> Result<Tensor> {
        self.piecewise_constant(UnaryOp::Ceil, "ceil")
    }

    /// The nearest integer elementwise, halves to even (`round(2.5)` is 2, as
    /// PyTorch's `round`; integer dtypes: a copy); gradient 0.
    pub fn round(&self) -> Result<Tensor> {
        self.piecewise_constant(UnaryOp::Round, "round")
    }

    /// The integer part elementwise, rounding towards zero (integer dtypes: a copy);
    /// gradient 0.
    pub fn trunc(&self) -> Result<Tensor> {
        self.piecewise_constant(UnaryOp::Trunc, "trunc")
    }

    /// -1, 0 or 1 by the sign of each element, as PyTorch's `sign`: 0 for ±0 and
    /// NaN; integer dtypes keep theirs (U8 gives 0 or 1). The gradient is 0.
    pub fn sign(&self) -> Result<Tensor> {
        self.piecewise_constant(UnaryOp::Sign, "sign")
    }

    /// An op whose gradient is 0 wherever it exists (rounding, sign): PyTorch gives
    /// zeros, not `0·g` (which would keep a NaN of `g`).
    fn piecewise_constant(&self, op: UnaryOp, name: &'static str) -> Result<Tensor> {
        let _op = crate::profiler::op(name, &[self]);
        let out = self.unary_raw(op)?;
        Ok(record(out, name, &[self], |_, g| {
            Ok(vec![Some(g.zeros_like()?)])
        }))
    }

    /// The error function elementwise (float dtypes); the gradient is
    /// `2/√π·e^(-x²)`.
    pub fn erf(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Erf, "erf", |x, _| {
            x.square()?
                .neg()?
                .exp()?
                .mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)
        })
    }

    /// `ln(1 + x)` elementwise, accurate for small `x` (float dtypes); the gradient
    /// is `1/(1 + x)`.
    pub fn log1p(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.log1p()) {
            return y;
        }
        self.unary_with(UnaryOp::Log1p, "log1p", |x, _| {
            x.add_scalar(1.0)?.reciprocal()
        })
    }

    /// `e^x - 1` elementwise, accurate for small `x` (float dtypes); the gradient is
    /// `out + 1`.
    pub fn expm1(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.expm1()) {
            return y;
        }
        self.unary_with(UnaryOp::Expm1, "expm1", |_, out| out.add_scalar(1.0))
    }

    /// `1/x` elementwise (float dtypes; `1/0` is `inf`); the gradient is `-out²`.
    pub fn reciprocal(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.reciprocal()) {
            return y;
        }
        self.unary_with(UnaryOp::Reciprocal, "reciprocal", |_, out| {
            out.square()?.neg()
        })
    }

    /// `x·x` elementwise (integers wrap, as PyTorch's); the gradient is `2x`.
    pub fn square(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Square, "square", |x, _| x.mul_scalar(2.0))
    }

    /// `2^x` elementwise (float dtypes); the gradient is `out·ln 2`.
    pub fn exp2(&self) -> Result<Tensor> {
        self.unary_with(UnaryOp::Exp2, "exp2", |_, out| {
            out.mul_scalar(std::f64::consts::LN_2)
        })
    }

    /// The base-2 logarithm elementwise (float dtypes); the gradient is
    /// `1/(x·ln 2)`.
    pub fn log2(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.log2()) {
            return y;
        }
        self.unary_with(UnaryOp::Log2, "log2", |x, _| {
            x.mul_scalar(std::f64::consts::LN_2)?.reciprocal()
        })
    }

    /// `atan2(self, other)` elementwise, broadcasting (float dtypes): the angle in
    /// `[-π, π]` of the point `(other, self)`, signed zeros included, as PyTorch's
    /// `atan2`. The gradients are `other/r²` and `-self/r²` with `r² = self² +
    /// other²`, and 0 at the origin (where PyTorch's are 0 too).
    pub fn atan2(&self, other: &Tensor) -> Result<Tensor> {
        if let Some(y) =
            crate::tensor::autocast::promote([self, other], [], |[a, b], []| a.atan2(b))
        {
            return y;
        }
        let _op = crate::profiler::op("atan2", &[self, other]);
        let out = self.binary_raw(BinaryOp::Atan2, other, "atan2")?;
        let (a, b) = (self.detach(), other.detach());
        Ok(record(out, "atan2", &[self, other], move |_, g| {
            let r2 = a.square()?.add(&b.square()?)?;
            let origin = r2.eq_scalar(0.0)?;
            let inv = origin.where_cond(&r2.zeros_like()?, &r2.reciprocal()?)?;
            Ok(vec![
                Some(g.mul(&b)?.mul(&inv)?.sum_to_shape(a.shape())?),
                Some(g.mul(&a.neg()?)?.mul(&inv)?.sum_to_shape(b.shape())?),
            ])
        }))
    }

    /// `1 / sqrt(self)` (float dtypes; `rsqrt(0)` is `inf`, as in PyTorch). The
    /// gradient is PyTorch's `-0.5 · rsqrt(x)³`, from the result (NaN at -inf, where
    /// `-0.5 · x^-1.5` would be 0).
    pub fn rsqrt(&self) -> Result<Tensor> {
        if let Some(y) = crate::tensor::autocast::fp32([self], [], |[x], []| x.rsqrt()) {
            return y;
        }
        self.unary_with(UnaryOp::PowScalar(-0.5), "rsqrt", |_, out| {
            out.powf(3.0)?.mul_scalar(-0.5)
        })
    }

    /// `self ^ p` for a scalar exponent (PyTorch's `pow(tensor, scalar)`); the same
    /// op as [`Tensor::powf`].
    pub fn pow_scalar(&self, p: f64) -> Result<Tensor> {
        self.powf(p)
    }

    /// Every element limited to `[min, max]` (PyTorch's `clamp`); each bound is an
    /// `f64` or an `Option<f64>` (`None`: unbounded on that side), and at least one
    /// must be given. With `min > max` every element becomes `max`, as in PyTorch.
    /// NaN stays NaN. The gradient is 1 where `min < x < max` and 0 elsewhere,
    /// boundaries included: what PyTorch 2.15 computes for scalar bounds (the golden
    /// case `clamp_both` holds both bounds exactly; older PyTorch passed the gradient
    /// at the boundaries).
    ///
    /// Bounds follow PyTorch's scalar rules: on a float tensor a finite bound beyond
    /// the dtype's range is an `Err` naming it (`1e6` for F16); on an integer tensor
    /// an integral bound compares as a number (`U8.clamp(-5, 300)` changes nothing),
    /// and one that no element can reach is an `Err` naming it (`U8.clamp(300,
    /// None)`), while a fractional or non-finite bound clamps in F32, PyTorch's
    /// default dtype, as `int_tensor.clamp(min=0.5)` does.
    pub fn clamp(
        &self,
        min: impl Into<Option<f64>>,
        max: impl Into<Option<f64>>,
    ) -> Result<Tensor> {
        let _op = crate::profiler::op("clamp", &[self]);
        let (lo, hi) = (min.into(), max.into());
        if lo.is_none() && hi.is_none() {
            return Err(Error::arg(
                "min",
                "clamp: at least one of min and max must be given",
            ));
        }
        let dtype = self.dtype();
        if !dtype.is_float() && lo.into_iter().chain(hi).any(|b| !is_int_scalar(b)) {
            return self.to_dtype(DType::F32)?.clamp(lo, hi);
        }
        let lo = lo.map(|v| clamp_bound(dtype, "min", v, true)).transpose()?;
        let hi = hi
            .map(|v| clamp_bound(dtype, "max", v, false))
            .transpose()?;
        let (x, dev) = (self.detach(), self.device());
        let bound = |v: f64| Tensor::full(&[], v, dtype, &dev);
        let mut out = x.clone();
        if let Some(l) = lo {
            out = out.maximum(&bound(l)?)?;
        }
        if let Some(h) = hi {
            out = out.minimum(&bound(h)?)?;
        }
        Ok(record(out, "clamp", &[self], move |_, g| {
            let (gd, gdev) = (g.dtype(), g.device());
            let mut inside: Option<Tensor> = None;
            for (limit, above) in [(lo, true), (hi, false)] {
                let Some(v) = limit else { continue };
                let v = Tensor::full(&[], v, x.dtype(), &gdev)?;
                let ok = if above { x.gt(&v)? } else { x.lt(&v)? };
                inside = Some(match inside {
                    None => ok,
                    Some(prev) => prev.mul(&ok)?,
                });
            }
            let zero = Tensor::zeros(&[], gd, &gdev)?;
            let inside = inside.ok_or_else(|| Error::arg("min", "clamp: no bound"))?;
            Ok(vec![Some(inside.where_cond(g, &zero)?)])
        }))
    }

    /// Variance along `dim` (float dtypes): the mean squared deviation from the mean,
    /// divided by `n - 1` when `unbiased` (Bessel's correction, PyTorch's default
    /// `correction=1`) or by `n`. A dimension of one element with `unbiased` gives
    /// NaN, as in PyTorch. `keepdim` keeps `dim` with size 1.
    pub fn var(&self, dim: usize, unbiased: bool, keepdim: bool) -> Result<Tensor> {
        check_dim("var", dim, self.rank())?;
        self.check_float("var")?;
        let n = self.shape()[dim] as f64;
        let dev = self.sub(&self.mean(dim, true)?)?;
        let divisor = (n - if unbiased { 1.0 } else { 0.0 }).max(0.0);
        dev.mul(&dev)?.sum(dim, keepdim)?.div_scalar(divisor)
    }
}

/// A clamp bound `v` (argument `name`, the lower one when `is_min`) as a `dtype`
/// element. Float dtypes check it as every scalar is checked ([`DType::scalar`]);
/// on an integer dtype (an integral `v`) a bound beyond the range on the side it
/// does not limit saturates to the range, and one beyond on the side it limits — a
/// minimum above the largest element, a maximum below the lowest — is an `Err`, as
/// in PyTorch ("Clamp min value 300 is outside the representable range of Byte").
fn clamp_bound(dtype: DType, name: &'static str, v: f64, is_min: bool) -> Result<f64> {
    let (lowest, highest) = match dtype {
        DType::U8 => (0.0, 255.0),
        DType::I64 => (-9_223_372_036_854_775_808.0, 9_223_372_036_854_775_808.0),
        _ => return super::checked_scalar(dtype, name, v),
    };
    if (is_min && v > highest) || (!is_min && v < lowest) {
        return Err(Error::arg(
            name,
            format!("clamp: {v} is outside the representable range of {dtype:?}"),
        ));
    }
    Ok(v.clamp(lowest, highest))
}
