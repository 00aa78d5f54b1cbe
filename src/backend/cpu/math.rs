//! Elementary functions written in plain arithmetic, so that loops over them
//! auto-vectorize (a call into libm per element cannot), and [`Float`], the math the
//! float kernels of every family are generic over.

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
    // ln 2 = LN2_HI + LN2_LO, LN2_HI with 9 significant bits so n·LN2_HI is exact.
    const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // 0.693359375
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2^23 rounds a float of magnitude < 2^22 to an integer held in the
    // low mantissa bits of the sum.
    const ROUND: f32 = 12_582_912.0;
    // Beyond these, e^x is +inf or 0 in f32 anyway; clamping keeps n in range.
    // `clamp` passes NaN through.
    let x_in = x.clamp(-104.0, 89.0);
    let shifted = x_in * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let n_int = shifted.to_bits() as i32 - ROUND.to_bits() as i32;
    let r = (x_in - n * LN2_HI) - n * LN2_LO;
    // 1 + (r + r²·q): the small terms are summed before the 1, so their rounding
    // errors shrink by |r| ≤ 0.35 relative to the result.
    let q = 1.0 / 2.0
        + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))));
    let p = 1.0 + (r + r * r * q);
    // n ∈ [-151, 129]: each half lies in [-76, 65], a normal exponent.
    let n1 = n_int >> 1;
    let n2 = n_int - n1;
    let pow2 = |e: i32| f32::from_bits(((e + 127) as u32) << 23);
    p * pow2(n1) * pow2(n2)
}

/// Float element types with the math the unary ops need.
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
    fn erf(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
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

macro_rules! float_impl {
    ($t:ty, $exp:path, $erf:path) => {
        impl Float for $t {
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
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
        }
    };
}
// f32 exp is computed inline so that exp and sigmoid loops vectorize (see `math`);
// f64 keeps libm's.
float_impl!(f32, exp_f32, libm::erff);
float_impl!(f64, f64::exp, libm::erf);

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between `got` and the correctly rounded
    /// value of `want` (both finite and non-negative, so bit patterns are ordered).
    fn ulps(got: f32, want: f64) -> u32 {
        got.to_bits().abs_diff((want as f32).to_bits())
    }

    #[test]
    fn exp_is_within_one_ulp_over_the_whole_range() {
        let (lo, hi, steps) = (-103.9f32, 88.72f32, 2_000_000);
        let mut worst = (0, 0.0f32);
        for i in 0..=steps {
            let x = lo + (hi - lo) * (i as f32 / steps as f32);
            let err = ulps(exp_f32(x), (x as f64).exp());
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(worst.0 <= 1, "{} ulp at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_special_values() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(88.8), f32::INFINITY);
        assert_eq!(exp_f32(-200.0), 0.0);
        // Largest finite result and a subnormal one, as the f64 reference rounds them.
        assert_eq!(exp_f32(88.72), (88.72f32 as f64).exp() as f32);
        assert!(ulps(exp_f32(-100.0), (-100f64).exp()) <= 1);
        assert!(exp_f32(-100.0).is_subnormal());
    }
}
