//! Accuracy of the f32 functions against f64 references, over every binade of the
//! f32 range (a strided walk of all bit patterns, so tails, subnormals and huge
//! arguments are covered) and densely over [-20, 20], plus their special values.

use super::*;

/// The error of `got` in ulp of the f32 binade of `want` (fractional; 0 when both are
/// NaN or equal, infinite when only one is NaN or only one overflows).
fn ulp_error(got: f32, want: f64) -> f64 {
    if got.is_nan() && want.is_nan() || got as f64 == want {
        return 0.0;
    }
    if got.is_nan() || want.is_nan() || got.is_infinite() || want.abs() > f32::MAX as f64 {
        return if want as f32 == got {
            0.0
        } else {
            f64::INFINITY
        };
    }
    let a = want.abs().max(f32::MIN_POSITIVE as f64);
    let ulp = 2f64.powi(a.log2().floor() as i32 - 23);
    (got as f64 - want).abs() / ulp
}

/// The arguments every sweep visits: all f32 bit patterns 1031 apart (about
/// 8000 per binade, both signs), then a uniform grid over [-20, 20].
fn arguments() -> impl Iterator<Item = f32> {
    let strided = (0..=u32::MAX / 1031).map(|i| f32::from_bits(i * 1031));
    let grid = (0..=400_000).map(|i| -20.0 + i as f32 * 1e-4);
    strided.chain(grid).filter(|x| !x.is_nan())
}

/// The worst error of `f` against `reference` over [`arguments`] (measured in ulp
/// of `scale(x)` when given, for derivatives whose terms cancel near a root), and
/// where it happens.
fn worst(
    f: impl Fn(f32) -> f32,
    reference: impl Fn(f64) -> f64,
    scale: Option<&dyn Fn(f64) -> f64>,
) -> (f64, f32) {
    arguments()
        .map(|x| {
            let (got, want) = (f(x), reference(x as f64));
            let err = match scale {
                Some(s) if got.is_finite() && want.is_finite() => {
                    (got as f64 - want).abs() / ulp_of(s(x as f64))
                }
                _ => ulp_error(got, want),
            };
            (err, x)
        })
        .fold((0.0, 0.0), |w, e| if e.0 > w.0 { e } else { w })
}

/// One ulp of the f32 binade of `v` (the smallest subnormal's at least).
fn ulp_of(v: f64) -> f64 {
    let a = v.abs().max(f32::MIN_POSITIVE as f64);
    2f64.powi(a.log2().floor() as i32 - 23)
}

fn assert_within(name: &str, bound: f64, (err, x): (f64, f32)) {
    assert!(err <= bound, "{name}: {err:.2} ulp at x = {x:e}");
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// 2u of GELU's tanh form.
fn u2(x: f64) -> f64 {
    2.0 * SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)
}

#[test]
fn exp_is_within_one_ulp() {
    assert_within("exp", 1.01, worst(exp_f32, f64::exp, None));
}

#[test]
fn ln_is_within_one_ulp() {
    assert_within("ln", 1.0, worst(ln_f32, f64::ln, None));
}

#[test]
fn tanh_sigmoid_and_silu_are_within_two_ulp() {
    assert_within("tanh", 2.0, worst(tanh_f32, f64::tanh, None));
    assert_within("sigmoid", 2.0, worst(sigmoid_f32, sigmoid, None));
    assert_within("silu", 2.0, worst(silu_f32, |x| x * sigmoid(x), None));
}

#[test]
fn softplus_is_within_two_ulp() {
    let reference = |x: f64| if x > 20.0 { x } else { x.exp().ln_1p() };
    assert_within(
        "softplus",
        2.0,
        worst(|x| softplus_f32(x, 20.0), reference, None),
    );
    let reference = |x: f64| if x > 1.5 { x } else { x.exp().ln_1p() };
    assert_within(
        "softplus t=1.5",
        2.0,
        worst(|x| softplus_f32(x, 1.5), reference, None),
    );
}

#[test]
fn log_sigmoid_and_its_derivative_are_within_two_ulp() {
    let reference = |x: f64| x.min(0.0) - (-x.abs()).exp().ln_1p();
    assert_within("log_sigmoid", 2.0, worst(log_sigmoid_f32, reference, None));
    let grad = |x: f64| sigmoid(-x);
    assert_within(
        "log_sigmoid_grad",
        2.0,
        worst(log_sigmoid_grad_f32, grad, None),
    );
    assert_eq!(log_sigmoid_f32(f32::INFINITY).to_bits(), 0.0f32.to_bits());
    assert_eq!(log_sigmoid_f32(f32::NEG_INFINITY), f32::NEG_INFINITY);
    assert!(log_sigmoid_f32(f32::NAN).is_nan());
}

#[test]
fn erf_is_within_one_ulp() {
    assert_within("erf", 1.0, worst(erf_f32, libm::erf, None));
    for (x, want) in [
        (0.0f32, 0.0f32),
        (-0.0, -0.0),
        (f32::INFINITY, 1.0),
        (f32::NEG_INFINITY, -1.0),
    ] {
        assert_eq!(erf_f32(x).to_bits(), want.to_bits(), "erf({x})");
    }
    assert!(erf_f32(f32::NAN).is_nan());
}

#[test]
fn gelu_is_within_two_ulp() {
    assert_within("gelu", 2.0, worst(gelu_f32, |x| x * normal_cdf(x), None));
}

#[test]
fn gelu_tanh_is_within_two_ulp() {
    // x·σ(2u): the f64 reference must not form 1 + tanh(u), which cancels.
    assert_within(
        "gelu_tanh",
        2.0,
        worst(gelu_tanh_f32, |x| x * sigmoid(u2(x)), None),
    );
}

/// The derivatives cross zero where their terms cancel, so their error is measured
/// in ulp of the larger term: within 2 of those.
#[test]
fn derivatives_are_within_two_ulp_of_their_terms() {
    let density = |x: f64| (-0.5 * x * x).exp() * INV_SQRT_2PI;
    assert_within(
        "gelu_grad",
        2.0,
        worst(
            gelu_grad_f32,
            |x| normal_cdf(x) + x * density(x),
            Some(&|x| normal_cdf(x).max((x * density(x)).abs())),
        ),
    );
    let tanh_terms = |x: f64| {
        let s = sigmoid(u2(x));
        let du2 = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x);
        (s, x * s * (1.0 - s) * du2)
    };
    assert_within(
        "gelu_tanh_grad",
        2.0,
        worst(
            gelu_tanh_grad_f32,
            |x| {
                let (a, b) = tanh_terms(x);
                a + b
            },
            Some(&|x| {
                let (a, b) = tanh_terms(x);
                a.max(b.abs())
            }),
        ),
    );
    let silu_terms = |x: f64| {
        let s = sigmoid(x);
        (s, x * s * (1.0 - s))
    };
    assert_within(
        "silu_grad",
        2.0,
        worst(
            silu_grad_f32,
            |x| {
                let (a, b) = silu_terms(x);
                a + b
            },
            Some(&|x| {
                let (a, b) = silu_terms(x);
                a.max(b.abs())
            }),
        ),
    );
    assert_within(
        "softplus_grad",
        2.0,
        worst(
            |x| softplus_grad_f32(x, 20.0),
            |x| if x > 20.0 { 1.0 } else { sigmoid(x) },
            None,
        ),
    );
}

/// NaN, infinities, zeros and subnormals give what PyTorch's CPU kernels give.
#[test]
fn special_values_follow_pytorch() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    assert_eq!(exp_f32(0.0), 1.0);
    assert!(exp_f32(nan).is_nan());
    assert_eq!((exp_f32(inf), exp_f32(-inf)), (inf, 0.0));
    assert_eq!((exp_f32(88.8), exp_f32(-200.0)), (inf, 0.0));
    assert!(exp_f32(-100.0).is_subnormal());
    assert_eq!((ln_f32(0.0), ln_f32(-0.0), ln_f32(inf)), (-inf, -inf, inf));
    assert!(ln_f32(-1.0).is_nan() && ln_f32(-inf).is_nan() && ln_f32(nan).is_nan());
    assert_eq!(ln_f32(1.0), 0.0);
    assert!(ulp_error(ln_f32(f32::from_bits(1)), (f32::from_bits(1) as f64).ln()) <= 1.0);
    assert_eq!((tanh_f32(inf), tanh_f32(-inf)), (1.0, -1.0));
    let tiny = f32::from_bits(1);
    assert_eq!((tanh_f32(tiny), tanh_f32(-tiny)), (tiny, -tiny));
    assert_eq!(
        (sigmoid_f32(inf), sigmoid_f32(-inf), sigmoid_f32(0.0)),
        (1.0, 0.0, 0.5)
    );
    assert_eq!(
        (softplus_f32(inf, 20.0), softplus_f32(-inf, 20.0)),
        (inf, 0.0)
    );
    assert_eq!(softplus_f32(0.0, 20.0), std::f32::consts::LN_2);
    assert_eq!(
        (gelu_f32(inf), gelu_tanh_f32(inf), silu_f32(inf)),
        (inf, inf, inf)
    );
    // x·Φ(x) at -inf is -inf·0, NaN in PyTorch's kernels too; likewise the tanh
    // form, SiLU and the derivatives at ±inf.
    for f in [gelu_f32, gelu_tanh_f32, silu_f32] {
        assert!(f(-inf).is_nan() && f(nan).is_nan());
    }
    for f in [gelu_grad_f32, gelu_tanh_grad_f32, silu_grad_f32] {
        assert!(f(inf).is_nan() && f(-inf).is_nan() && f(nan).is_nan());
    }
    assert_eq!((gelu_f32(0.0), gelu_grad_f32(0.0)), (0.0, 0.5));
    for f in [sigmoid_f32, silu_f32, tanh_f32, gelu_f32, gelu_tanh_f32] {
        assert!(f(nan).is_nan());
    }
    assert!(softplus_f32(nan, 20.0).is_nan());
}
