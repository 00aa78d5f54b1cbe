//! The per-element formulas of the activations, their derivatives and the pointwise
//! losses, as PyTorch's CPU kernels write them (`aten/src/ATen/native/cpu/
//! Activation.cpp`, `BinaryOpsKernel.cpp`): the same branches, the same comparisons
//! (so a NaN takes the branch it takes there) and the same constants, so results agree
//! to the last ulps. `kernels/elementwise.cu` repeats each one for the GPU.

use crate::backend::cpu::math::Float;

/// `min(max(v, 0), 6)` with NaN passing through, as `std::min(std::max(v, 0), 6)`.
fn clamp_0_6<T: Float>(v: T) -> T {
    let (zero, six) = (T::from_f64(0.0), T::from_f64(6.0));
    if v < zero {
        zero
    } else if six < v {
        six
    } else {
        v
    }
}

/// `x·min(max(x + 3, 0), 6)/6`.
pub(super) fn hardswish<T: Float>(x: T) -> T {
    x * clamp_0_6(x + T::from_f64(3.0)) / T::from_f64(6.0)
}

/// 0 for `x ≤ -3`, `x/3 + 1/2` for `x < 3`, else 1 (NaN: 1, as PyTorch).
pub(super) fn hardswish_grad<T: Float>(x: T) -> T {
    let three = T::from_f64(3.0);
    if x <= -three {
        T::from_f64(0.0)
    } else if x < three {
        x / three + T::from_f64(0.5)
    } else {
        T::from_f64(1.0)
    }
}

/// `min(max(x + 3, 0), 6)/6`.
pub(super) fn hardsigmoid<T: Float>(x: T) -> T {
    clamp_0_6(x + T::from_f64(3.0)) / T::from_f64(6.0)
}

/// 1/6 strictly inside (-3, 3), else 0. PyTorch's backward kernel holds 1/6 as the
/// f32 constant `1.0f / 6.0f` for every dtype, f64 included; so does this.
pub(super) fn hardsigmoid_grad<T: Float>(x: T) -> T {
    let three = T::from_f64(3.0);
    if x > -three && x < three {
        T::from_f64(f64::from(1.0f32 / 6.0f32))
    } else {
        T::from_f64(0.0)
    }
}

/// `x` limited to `[min, max]`, NaN passing through.
pub(super) fn hardtanh<T: Float>(x: T, min: T, max: T) -> T {
    let low = if x < min { min } else { x };
    if max < low {
        max
    } else {
        low
    }
}

/// 0 where `x ≤ min` or `x ≥ max`, else 1 (NaN: 1, as PyTorch).
pub(super) fn hardtanh_grad<T: Float>(x: T, min: T, max: T) -> T {
    if x <= min || x >= max {
        T::from_f64(0.0)
    } else {
        T::from_f64(1.0)
    }
}

/// The coefficients of PyTorch's general ELU, `elu(x; α, scale, input_scale)`:
/// `x·scale` where `x > 0`, else `expm1(x·input_scale)·α·scale`.
#[derive(Clone, Copy)]
pub(super) struct EluCoefs<T> {
    /// `α·scale`, the negative branch's factor.
    neg: T,
    /// `input_scale`.
    input: T,
    /// `scale`, the positive branch's slope.
    pos: T,
}

/// PyTorch's SELU constants (`torch/nn/functional.py`, ATen's `SELU_ALPHA`/`SELU_SCALE`).
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

impl<T: Float> EluCoefs<T> {
    /// `elu(x, α)`.
    pub(super) fn elu(alpha: f64) -> Self {
        Self::new(alpha, 1.0, 1.0)
    }

    /// `selu(x)`: `elu(x; SELU_ALPHA, SELU_SCALE, 1)`.
    pub(super) fn selu() -> Self {
        Self::new(SELU_ALPHA, SELU_SCALE, 1.0)
    }

    /// `celu(x, α)`: `elu(x; α, 1, 1/α)`, `1/α` taken in f64 as PyTorch does.
    pub(super) fn celu(alpha: f64) -> Self {
        Self::new(alpha, 1.0, 1.0 / alpha)
    }

    /// The coefficients of CELU's derivative: PyTorch's backward
    /// (`derivatives.yaml`) takes `1/α` of α rounded to f32 (`alpha.toFloat()`).
    pub(super) fn celu_grad(alpha: f64) -> Self {
        Self::new(alpha, 1.0, 1.0 / f64::from(alpha as f32))
    }

    /// The coefficients in `T` (the product `α·scale` rounded in `T`, as PyTorch's
    /// opmath computes it).
    fn new(alpha: f64, scale: f64, input_scale: f64) -> Self {
        EluCoefs {
            neg: T::from_f64(alpha) * T::from_f64(scale),
            input: T::from_f64(input_scale),
            pos: T::from_f64(scale),
        }
    }

    pub(super) fn apply(self, x: T) -> T {
        if x <= T::from_f64(0.0) {
            (x * self.input).exp_m1() * self.neg
        } else {
            x * self.pos
        }
    }

    /// The derivative: `input_scale·α·scale·e^(x·input_scale)` where `x ≤ 0`, else
    /// `scale`.
    pub(super) fn grad(self, x: T) -> T {
        if x <= T::from_f64(0.0) {
            self.input * self.neg * (x * self.input).exp()
        } else {
            self.pos
        }
    }
}

/// `x·tanh(ln(1 + e^x))`.
pub(super) fn mish<T: Float>(x: T) -> T {
    x * x.exp().ln_1p().tanh()
}

/// `t + x·σ(x)·(1 - t²)` with `t = tanh(ln(1 + e^x))`.
pub(super) fn mish_grad<T: Float>(x: T) -> T {
    let one = T::from_f64(1.0);
    let sigmoid = one / (one + (-x).exp());
    let t = x.exp().ln_1p().tanh();
    t + x * sigmoid * (one - t * t)
}

/// `x / (1 + |x|)`.
pub(super) fn softsign<T: Float>(x: T) -> T {
    x / (T::from_f64(1.0) + x.abs())
}

/// `1 / (1 + |x|)²`, but NaN at ±inf: PyTorch's softsign is the composition
/// `x / (1 + |x|)`, whose gradient there is `1/d - x·sign(x)/d²`, i.e. `inf/inf`.
pub(super) fn softsign_grad<T: Float>(x: T) -> T {
    let a = x.abs();
    if a == T::from_f64(f64::INFINITY) {
        return T::from_f64(f64::NAN);
    }
    let d = T::from_f64(1.0) + a;
    T::from_f64(1.0) / (d * d)
}

/// `-1`, `0` or `1`; 0 for NaN (PyTorch's `(0 < x) - (x < 0)`).
pub(super) fn sign<T: Float>(x: T) -> T {
    let zero = T::from_f64(0.0);
    if x > zero {
        T::from_f64(1.0)
    } else if x < zero {
        T::from_f64(-1.0)
    } else {
        zero
    }
}

/// Smooth L1 of a difference `d`: `0.5·z·z/β` where `z = |d| < β`, else `z - 0.5·β`.
pub(super) fn smooth_l1<T: Float>(d: T, beta: T) -> T {
    let (z, half) = (d.abs(), T::from_f64(0.5));
    if z < beta {
        half * z * z / beta
    } else {
        z - half * beta
    }
}

/// `-1` where `d ≤ -β`, `1` where `d ≥ β`, else `d/β`.
pub(super) fn smooth_l1_grad<T: Float>(d: T, beta: T) -> T {
    if d <= -beta {
        T::from_f64(-1.0)
    } else if d >= beta {
        T::from_f64(1.0)
    } else {
        d / beta
    }
}

/// Huber loss of a difference `d`: `0.5·z·z` where `z = |d| < δ`, else `δ·(z - 0.5·δ)`.
pub(super) fn huber<T: Float>(d: T, delta: T) -> T {
    let (z, half) = (d.abs(), T::from_f64(0.5));
    if z < delta {
        half * z * z
    } else {
        delta * (z - half * delta)
    }
}

/// `-δ` where `d ≤ -δ`, `δ` where `d ≥ δ`, else `d`.
pub(super) fn huber_grad<T: Float>(d: T, delta: T) -> T {
    if d <= -delta {
        -delta
    } else if d >= delta {
        delta
    } else {
        d
    }
}

/// `(t - 1)·max(ln(1 - p), -100) - t·max(ln p, -100)`, NaN passing through the
/// clamps (`std::max(NaN, -100)` is NaN).
pub(super) fn binary_cross_entropy<T: Float>(p: T, t: T) -> T {
    let floor = T::from_f64(-100.0);
    let clamp = |v: T| if v < floor { floor } else { v };
    let one = T::from_f64(1.0);
    (t - one) * clamp((-p).ln_1p()) - t * clamp(p.ln())
}

/// `(p - t) / max((1 - p)·p, ε)`, ε PyTorch's `EPSILON`, the f32 nearest 1e-12 (also
/// for f64).
pub(super) fn binary_cross_entropy_grad<T: Float>(p: T, t: T) -> T {
    let eps = T::from_f64(f64::from(1e-12f32));
    let v = (T::from_f64(1.0) - p) * p;
    (p - t) / if v < eps { eps } else { v }
}
