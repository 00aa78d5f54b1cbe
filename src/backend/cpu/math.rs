//! The f32 transcendental functions of the elementwise ops, written in plain
//! branch-free arithmetic so that loops over them vectorize (inside a
//! [`pulp::WithSimd`]; a call into libm per element cannot), each within 2 ulp of the
//! correctly rounded result over the whole f32 range (the tests below sweep every
//! binade against f64 references).
//!
//! The recipe: the exponential's argument reduction and polynomial run in f32, eight
//! lanes at a time; the few operations where an f32 rounding would cost accuracy
//! (the combination of e^x with its neighbours, the normal tail's rational function,
//! the logarithm's series) run in f64 on the widened values, and each function rounds
//! to f32 once at the end. Most results are within 0.6 ulp. The f64 kernels keep
//! libm's functions. [`Float`] is the math the float kernels of every family are
//! generic over.

use crate::backend::cpu::Num;

/// e^x in f32, at most 1 ulp from the correctly rounded value (tested over the
/// whole finite range below); NaN stays NaN, +inf and large x give +inf,
/// -inf and very negative x give 0, with subnormal results in between, as libm's.
///
/// x = n·ln2 + r with n the integer nearest x·log2(e) and |r| ≤ ln2/2; e^r comes
/// from its Taylor series to degree 7 (remainder below 0.1 ulp on that interval), and
/// 2^n is applied as two exact power-of-two factors so that neither overflows the
/// exponent field and subnormal results are rounded once.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    // Beyond these, e^x is +inf or 0 in f32 anyway; clamping keeps n in range.
    // `clamp` passes NaN through.
    let x_in = x.clamp(-104.0, 89.0);
    let (s, n) = exp_reduced::<false>(x_in, 0.0);
    let p = 1.0 + s;
    // n ∈ [-151, 129]: each half lies in [-76, 65], a normal exponent. The halves
    // stay floats: Rust's saturating `as i32` compiles to scalar compares and
    // inserts, which kept this loop at a quarter of its vector speed.
    let n1 = (n * 0.5).floor();
    let n2 = n - n1;
    // 2^e for an integer-valued e in [-126, 127]: e + 127 lands in the low bits of
    // e + 127 + 2^23, and the shift moves it into the exponent field (the bits of
    // 2^23 shift out). A NaN n gives 0 here and NaN from p.
    let pow2 = |e: f32| f32::from_bits((e + (127.0 + 8_388_608.0)).to_bits() << 23);
    p * pow2(n1) * pow2(n2)
}

/// e^(x + lo) = (1 + s)·2^n for `x` in [-104, 89] and a small correction `lo`
/// (|lo| < 2^-4): `(s, n)` with n an integer-valued f32 and |s| ≤ 0.45.
///
/// x = n·ln2 + r with n the integer nearest x·log2(e), r = x - n·ln2 + lo; e^r - 1 =
/// r + r²·q(r) with q the Taylor series of (e^r - 1 - r)/r² to degree 5 (remainder
/// below 0.1 ulp). Returning e^r - 1 rather than e^r keeps its rounding error four
/// times smaller relative to e^r.
///
/// `FUSED` evaluates q with fused multiply-adds: one instruction each inside the
/// SIMD dispatch (and a chain half as long), but a libm call each in scalar code,
/// so only callers that always run vectorized set it.
#[inline(always)]
fn exp_reduced<const FUSED: bool>(x: f32, lo: f32) -> (f32, f32) {
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits so n·LN2_HI is exact.
    const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // 0.693359375
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds a float of magnitude < 2^22 to an integer.
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = ((x - n * LN2_HI) - n * LN2_LO) + lo;
    let step = |acc: f32, c: f32| {
        if FUSED {
            r.mul_add(acc, c)
        } else {
            r * acc + c
        }
    };
    // Horner's rule written out (an iterator's fold can stop the loop vectorizing).
    let q = step(step(1.0 / 5040.0, 1.0 / 720.0), 1.0 / 120.0);
    let q = step(step(step(q, 1.0 / 24.0), 1.0 / 6.0), 1.0 / 2.0);
    (r + r * r * q, n)
}

/// e^(x + lo) in f64 for f32 `x` (any value) and a small correction `lo`, within
/// 0.2 f32 ulp: exactly 0 below -150 (e^-150 is far below every f32 result built
/// from it here), +inf above 89 — results that stay beyond f32's range once rounded.
/// Its polynomial is fused (see [`exp_reduced`]): the functions built on it are
/// called from vectorized loops only.
#[inline(always)]
fn exp_wide(x: f32, lo: f32) -> f64 {
    let (s, n) = exp_reduced::<true>(x.clamp(-150.0, 89.0), lo);
    // 2^n from the integer-valued n: its biased exponent lands in the low bits of
    // n + 1023 + 2^52, and a shift moves it into place (no 64-bit integer
    // arithmetic, which AVX2 lacks).
    let pow2 = f64::from_bits(((n as f64) + (1023.0 + 4_503_599_627_370_496.0)).to_bits() << 52);
    let e = (1.0 + s as f64) * pow2;
    match x {
        x if x < -150.0 => 0.0,
        x if x > 89.0 => f64::INFINITY,
        _ => e,
    }
}

/// ln m for m in [√½, √2], relative error below 2^-33: m = (1 + s)/(1 - s), and
/// ln m = 2·atanh(s) = 2s·(1 + s²/3 + s⁴/5 + …) with |s| ≤ 0.172.
#[inline(always)]
fn ln_near_one(m: f64) -> f64 {
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    2.0 * s
        * (1.0
            + z * (1.0 / 3.0
                + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0 + z * (1.0 / 11.0))))))
}

const LN2: f64 = std::f64::consts::LN_2;

/// ln x; -inf at ±0, NaN below 0 and for NaN, +inf at +inf. Within 0.6 ulp.
#[inline(always)]
pub(crate) fn ln_f32(x: f32) -> f32 {
    // x = 2^e·m with m in [√½, √2); subnormals are scaled into the normal range first.
    let sub = x < f32::MIN_POSITIVE;
    let bits = if sub { x * 8_388_608.0 } else { x }.to_bits();
    let e = ((bits >> 23) & 0xff) as i32 - if sub { 150 } else { 127 };
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000) as f64;
    let big = m > std::f64::consts::SQRT_2;
    let (m, e) = if big { (m * 0.5, e + 1) } else { (m, e) };
    let r = (e as f64 * LN2 + ln_near_one(m)) as f32;
    match x {
        0.0 => f32::NEG_INFINITY,
        f32::INFINITY => f32::INFINITY,
        x if x > 0.0 => r,
        _ => f32::NAN,
    }
}

/// ln(1 + e) for e in [0, 1], in f64 (relative error below 2^-33).
#[inline(always)]
fn ln_1p_unit(e: f64) -> f64 {
    let u = 1.0 + e;
    // u's rounding error, exactly (|e| ≤ 1): ln(1 + e) = ln u + c/u to first order.
    let c = e - (u - 1.0);
    let big = u > std::f64::consts::SQRT_2;
    let (m, k) = if big { (u * 0.5, LN2) } else { (u, 0.0) };
    k + ln_near_one(m) + c / u
}

/// (σ(x), e^-|x|) in f64: 1/(1 + e^-x) for x ≥ 0, e^x/(1 + e^x) below, so that
/// neither branch divides by a huge number or loses the tail.
#[inline(always)]
fn sigmoid_wide(x: f32) -> (f64, f64) {
    let e = exp_wide(-x.abs(), 0.0);
    ((if x >= 0.0 { 1.0 } else { e }) / (1.0 + e), e)
}

/// The logistic sigmoid `1/(1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid_f32(x: f32) -> f32 {
    sigmoid_wide(x).0 as f32
}

/// SiLU, `x·σ(x)`.
#[inline(always)]
pub(crate) fn silu_f32(x: f32) -> f32 {
    (x as f64 * sigmoid_wide(x).0) as f32
}

/// SiLU's derivative, `σ(x)·(1 + x·(1 - σ(x)))`.
#[inline(always)]
pub(crate) fn silu_grad_f32(x: f32) -> f32 {
    let (s, e) = sigmoid_wide(x);
    // 1 - σ(x) without cancellation.
    let rest = if x >= 0.0 { e } else { 1.0 } / (1.0 + e);
    (s * (1.0 + x as f64 * rest)) as f32
}

/// Softplus with threshold `t`: `x` where `x > t`, else `ln(1 + e^x)`, computed as
/// `max(x, 0) + ln(1 + e^-|x|)`.
#[inline(always)]
pub(crate) fn softplus_f32(x: f32, t: f32) -> f32 {
    let e = exp_wide(-x.abs(), 0.0);
    let y = ((x as f64).max(0.0) + ln_1p_unit(e)) as f32;
    if x > t {
        x
    } else {
        y
    }
}

/// Softplus's derivative with threshold `t`: 1 where `x > t`, else `σ(x)`.
#[inline(always)]
pub(crate) fn softplus_grad_f32(x: f32, t: f32) -> f32 {
    if x > t {
        1.0
    } else {
        sigmoid_f32(x)
    }
}

/// ln σ(x) = `min(x, 0) - ln(1 + e^-|x|)`, in f64 from e^-|x| (no overflow for any x).
#[inline(always)]
pub(crate) fn log_sigmoid_f32(x: f32) -> f32 {
    // f64::min ignores a NaN x; e^-|x| is NaN then, and so is the result.
    ((x as f64).min(0.0) - ln_1p_unit(exp_wide(-x.abs(), 0.0))) as f32
}

/// ln σ(x)'s derivative, σ(-x).
#[inline(always)]
pub(crate) fn log_sigmoid_grad_f32(x: f32) -> f32 {
    sigmoid_f32(-x)
}

/// tanh x: an odd polynomial below |x| = 0.5 (fitted to tanh(a)/a - 1 on
/// a² ∈ [0, 0.25], error below 2^-34), `(1 - e^-2|x|)/(1 + e^-2|x|)` above.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = a * a;
    let p = -0.333_333_33
        + z * (0.133_333_3
            + z * (-0.053_966_54 + z * (0.021_839_51 + z * (-0.008_623_774 + z * 0.002_682_864))));
    let small = a as f64 + a as f64 * z as f64 * p as f64;
    let e = exp_wide(-2.0 * a, 0.0);
    let large = (1.0 - e) / (1.0 + e);
    let t = (if a < 0.5 { small } else { large }) as f32;
    if x < 0.0 {
        -t
    } else {
        t
    }
}

/// `1/√(2π)`, the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
/// `√(2/π)`, the slope of the tanh approximation's argument.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation (Hendrycks & Gimpel).
const GELU_CUBIC: f64 = 0.044_715;

/// (Φ(x), e^(-x²/2)) in f64, Φ the standard normal CDF.
///
/// The tail Q(y) = 1 - Φ(y) for y = |x| is e^(-y²/2)·R(y) with R a rational function
/// of degrees (4, 5) fitted to Q(y)·e^(y²/2) on [0, 14.5] (relative error 6·10⁻⁹;
/// beyond 14.5, Q is below every f32 result). -y²/2 is passed to the exponential as
/// an exact sum: y splits into 12-bit halves whose products are exact in f32.
#[inline(always)]
fn normal_cdf_wide(x: f32) -> (f64, f64) {
    let y = x.abs();
    let yh = f32::from_bits(y.to_bits() & 0xffff_f000);
    let yl = y - yh;
    let e = exp_wide(-0.5 * yh * yh, -(yh * yl + 0.5 * yl * yl));
    let q = e * normal_tail_ratio(y.min(14.5) as f64);
    (if x >= 0.0 { 1.0 - q } else { q }, e)
}

/// R(t) = Q(t)·e^(t²/2) for t in [0, 14.5], Q(t) = 1 - Φ(t): a rational function of
/// degrees (4, 5), relative error 6·10⁻⁹.
#[inline(always)]
fn normal_tail_ratio(t: f64) -> f64 {
    // Horner's rule with fused multiply-adds: inside the SIMD dispatch they are single
    // instructions, and they shorten the dependency chain this loop waits on.
    let num = t.mul_add(0.004_116_301_405_408_695_5, 0.040_633_304_817_550_74);
    let num = t.mul_add(num, 0.183_235_568_269_828_3);
    let num = t.mul_add(num, 0.438_295_835_411_893_2);
    let num = t.mul_add(num, 0.500_000_002_948_896_5);
    let den = t.mul_add(0.010_317_917_773_269_389, 0.101_859_036_728_524_46);
    let den = t.mul_add(den, 0.469_471_706_760_515_86);
    let den = t.mul_add(den, 1.202_505_418_122_696_8);
    let den = t.mul_add(den, 1.674_476_651_533_47);
    let den = t.mul_add(den, 1.0);
    num / den
}

/// erf(x) = 2/√π·Σ (-1)ⁿ·x²ⁿ⁺¹/(n!·(2n+1)), the coefficients with 2/√π folded in, up
/// to n = 10: for |x| < 1 the first term left out is below 1.3·10⁻⁹, 0.03 ulp.
const ERF_SERIES: [f64; 11] = [
    std::f64::consts::FRAC_2_SQRT_PI,
    -0.376_126_389_031_837_54,
    0.112_837_916_709_551_28,
    -0.026_866_170_645_131_252,
    0.005_223_977_625_442_188,
    -0.000_854_832_702_345_085_3,
    0.000_120_553_329_817_896_65,
    -1.492_565_035_840_625_2e-5,
    1.646_211_436_588_924_8e-6,
    -1.636_584_469_123_492_4e-7,
    1.480_719_281_587_922e-8,
];

/// The error function in f32, within 1 ulp, branch-free so that it vectorizes: the
/// Taylor series (in f64) below |x| = 1, and above it 1 - erfc(|x|) with
/// erfc(y) = 2·Q(y·√2) = e^(-y²)·2R(y·√2), Q and R the normal tail of
/// [`normal_cdf_wide`]. e^(-y²) gets -y² as an exact sum, as there. |x| is clamped to
/// 6, past which erf rounds to ±1 (and NaN takes the series, which keeps it).
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let (xw, y) = (x as f64, x.abs());
    let x2 = xw * xw;
    let c = &ERF_SERIES;
    // Horner's rule written out (an iterator's fold here stops the loop vectorizing),
    // fused as in `normal_tail_ratio`.
    let h = |acc: f64, k: usize| x2.mul_add(acc, c[k]);
    let series = xw
        * h(
            h(h(h(h(h(h(h(h(h(c[10], 9), 8), 7), 6), 5), 4), 3), 2), 1),
            0,
        );
    let y = y.min(6.0);
    let yh = f32::from_bits(y.to_bits() & 0xffff_f000);
    let yl = y - yh;
    let e = exp_wide(-(yh * yh), -(2.0 * yh * yl + yl * yl));
    let tail = 1.0 - 2.0 * e * normal_tail_ratio(y as f64 * std::f64::consts::SQRT_2);
    let r = if x.abs() >= 1.0 {
        tail.copysign(xw)
    } else {
        series
    };
    r as f32
}

/// GELU, `x·Φ(x)`.
#[inline(always)]
pub(crate) fn gelu_f32(x: f32) -> f32 {
    (x as f64 * normal_cdf_wide(x).0) as f32
}

/// GELU's derivative, `Φ(x) + x·φ(x)`.
#[inline(always)]
pub(crate) fn gelu_grad_f32(x: f32) -> f32 {
    let (cdf, e) = normal_cdf_wide(x);
    (cdf + x as f64 * e * INV_SQRT_2PI) as f32
}

/// (σ(2u), e^-|2u|, x) in f64 for GELU's tanh form, where `x/2·(1 + tanh(u)) =
/// x·σ(2u)` and u = √(2/π)·(x + 0.044715·x³). 2u is made in f64 and handed to the
/// exponential as an f32 pair, since e^-|2u| reaches e^-100 where an f32 rounding of
/// 2u would cost dozens of ulp.
#[inline(always)]
fn gelu_tanh_wide(x: f32) -> (f64, f64, f64) {
    let x = x as f64;
    let u2 = 2.0 * SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x);
    let a = -u2.abs();
    let hi = a as f32;
    let e = exp_wide(hi, (a - hi as f64) as f32);
    ((if u2 >= 0.0 { 1.0 } else { e }) / (1.0 + e), e, x)
}

/// GELU, tanh approximation: `x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
#[inline(always)]
pub(crate) fn gelu_tanh_f32(x: f32) -> f32 {
    let (s, _, x) = gelu_tanh_wide(x);
    (x * s) as f32
}

/// The derivative of GELU's tanh form: `σ(2u) + x·σ(2u)·(1 - σ(2u))·2u'`.
#[inline(always)]
pub(crate) fn gelu_tanh_grad_f32(x: f32) -> f32 {
    let (s, e, x) = gelu_tanh_wide(x);
    // σ(1 - σ) = e^-|2u| / (1 + e^-|2u|)², without cancellation.
    let ds = e / ((1.0 + e) * (1.0 + e));
    let du2 = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
    (s + x * ds * du2) as f32
}

/// Float element types with the math the unary ops need. f32's transcendental
/// functions are the vectorizable ones above (within 2 ulp); f64 keeps
/// libm's.
pub(crate) trait Float:
    Num
    + std::ops::Neg<Output = Self>
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn abs(self) -> Self;
    fn powf(self, e: Self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    /// `1/(1 + e^-x)`.
    fn sigmoid(self) -> Self;
    /// `x·σ(x)`.
    fn silu(self) -> Self;
    /// `σ(x)·(1 + x·(1 - σ(x)))`.
    fn silu_grad(self) -> Self;
    /// `x` where `x > t`, else `ln(1 + e^x)`.
    fn softplus(self, t: Self) -> Self;
    /// 1 where `x > t`, else `σ(x)`.
    fn softplus_grad(self, t: Self) -> Self;
    /// `ln σ(x) = min(x, 0) - ln(1 + e^-|x|)`.
    fn log_sigmoid(self) -> Self;
    /// `σ(-x)`.
    fn log_sigmoid_grad(self) -> Self;
    /// `x·Φ(x)` with Φ the standard normal CDF.
    fn gelu(self) -> Self;
    /// `Φ(x) + x·φ(x)`.
    fn gelu_grad(self) -> Self;
    /// `x/2·(1 + tanh(u))` with `u = √(2/π)·(x + 0.044715·x³)`.
    fn gelu_tanh(self) -> Self;
    /// `(1 + t)/2 + x/2·(1 - t²)·du/dx` with `t = tanh(u)`.
    fn gelu_tanh_grad(self) -> Self;
    /// The error function.
    fn erf(self) -> Self;
    fn ln_1p(self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    /// Nearest integer, halves to even (PyTorch's `round`).
    fn round_even(self) -> Self;
    fn trunc(self) -> Self;
    fn exp_m1(self) -> Self;
    fn exp2(self) -> Self;
    fn log2(self) -> Self;
    fn atan2(self, x: Self) -> Self;
}

/// PyTorch's `pow(x, e)`: `sqrt` for `e = 0.5` and `1 / sqrt` for `-0.5`, as it
/// computes them (they differ from `pow` at -inf and -0).
macro_rules! torch_powf {
    ($t:ty, $x:expr, $e:expr) => {
        if $e == 0.5 {
            <$t>::sqrt($x)
        } else if $e == -0.5 {
            1.0 / <$t>::sqrt($x)
        } else {
            <$t>::powf($x, $e)
        }
    };
}

/// The rounding and elementary functions of [`Float`] that both float types take
/// from the standard library.
macro_rules! std_math {
    ($t:ty) => {
        fn ln_1p(self) -> Self {
            <$t>::ln_1p(self)
        }
        fn floor(self) -> Self {
            <$t>::floor(self)
        }
        fn ceil(self) -> Self {
            <$t>::ceil(self)
        }
        fn round_even(self) -> Self {
            <$t>::round_ties_even(self)
        }
        fn trunc(self) -> Self {
            <$t>::trunc(self)
        }
        fn exp_m1(self) -> Self {
            <$t>::exp_m1(self)
        }
        fn exp2(self) -> Self {
            <$t>::exp2(self)
        }
        fn log2(self) -> Self {
            <$t>::log2(self)
        }
        fn atan2(self, x: Self) -> Self {
            <$t>::atan2(self, x)
        }
    };
}

impl Float for f32 {
    std_math!(f32);
    #[inline(always)]
    fn erf(self) -> Self {
        erf_f32(self)
    }
    #[inline(always)]
    fn exp(self) -> Self {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        ln_f32(self)
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        tanh_f32(self)
    }
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn powf(self, e: Self) -> Self {
        torch_powf!(f32, self, e)
    }
    fn sin(self) -> Self {
        f32::sin(self)
    }
    fn cos(self) -> Self {
        f32::cos(self)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        sigmoid_f32(self)
    }
    #[inline(always)]
    fn silu(self) -> Self {
        silu_f32(self)
    }
    #[inline(always)]
    fn silu_grad(self) -> Self {
        silu_grad_f32(self)
    }
    #[inline(always)]
    fn softplus(self, t: Self) -> Self {
        softplus_f32(self, t)
    }
    #[inline(always)]
    fn softplus_grad(self, t: Self) -> Self {
        softplus_grad_f32(self, t)
    }
    #[inline(always)]
    fn log_sigmoid(self) -> Self {
        log_sigmoid_f32(self)
    }
    #[inline(always)]
    fn log_sigmoid_grad(self) -> Self {
        log_sigmoid_grad_f32(self)
    }
    #[inline(always)]
    fn gelu(self) -> Self {
        gelu_f32(self)
    }
    #[inline(always)]
    fn gelu_grad(self) -> Self {
        gelu_grad_f32(self)
    }
    #[inline(always)]
    fn gelu_tanh(self) -> Self {
        gelu_tanh_f32(self)
    }
    #[inline(always)]
    fn gelu_tanh_grad(self) -> Self {
        gelu_tanh_grad_f32(self)
    }
}

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// f64: libm's functions and the textbook formulas (PyTorch's CPU forms).
impl Float for f64 {
    std_math!(f64);
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
    fn ln(self) -> Self {
        f64::ln(self)
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn tanh(self) -> Self {
        f64::tanh(self)
    }
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn powf(self, e: Self) -> Self {
        torch_powf!(f64, self, e)
    }
    fn sin(self) -> Self {
        f64::sin(self)
    }
    fn cos(self) -> Self {
        f64::cos(self)
    }
    fn sigmoid(self) -> Self {
        1.0 / (1.0 + (-self).exp())
    }
    fn silu(self) -> Self {
        self / (1.0 + (-self).exp())
    }
    fn silu_grad(self) -> Self {
        let sig = self.sigmoid();
        sig * (1.0 + self * (1.0 - sig))
    }
    // PyTorch's form: linear above the threshold, `ln(1 + e^x)` (as log1p) below.
    fn softplus(self, t: Self) -> Self {
        if self > t {
            self
        } else {
            self.exp().ln_1p()
        }
    }
    fn softplus_grad(self, t: Self) -> Self {
        if self > t {
            1.0
        } else {
            self.sigmoid()
        }
    }
    /// `min(x, 0) - ln(1 + e^-|x|)`: no overflow for any `x`.
    fn log_sigmoid(self) -> Self {
        self.min(0.0) - (-self.abs()).exp().ln_1p()
    }
    /// `σ(-x)` from `z = e^-|x|`: `1/(1 + z)` for `x < 0`, else `z/(1 + z)`.
    fn log_sigmoid_grad(self) -> Self {
        let z = (-self.abs()).exp();
        (if self < 0.0 { 1.0 } else { z }) / (1.0 + z)
    }
    fn gelu(self) -> Self {
        0.5 * self * (1.0 + libm::erf(self * FRAC_1_SQRT_2))
    }
    /// `d/dx x·Φ(x) = Φ(x) + x·φ(x)`.
    fn gelu_grad(self) -> Self {
        let cdf = 0.5 * (1.0 + libm::erf(self * FRAC_1_SQRT_2));
        cdf + self * INV_SQRT_2PI * (-(0.5 * self * self)).exp()
    }
    fn gelu_tanh(self) -> Self {
        let u = SQRT_2_OVER_PI * (self + GELU_CUBIC * self * self * self);
        0.5 * self * (1.0 + u.tanh())
    }
    fn gelu_tanh_grad(self) -> Self {
        let x = self;
        let t = (SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)).tanh();
        let du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    }
}

#[cfg(test)]
mod tests;
