//! Every pointwise op with a backward, at its edges, against PyTorch: the values and
//! the gradients at ±0, ±inf, NaN, negative bases, and the exponents 0 and 1
//! (`x.pow(0)` has gradient 0 at 0, not `0 · 0^-1` = NaN), on every device.
//!
//! The fixture is written by `scripts/golden/pointwise_edges.py`, whose table holds
//! the PyTorch expression of each case; `x[0]` is its input (the edge values), and a
//! binary case's `x[0]`, `x[1]` are every pair of edges. NaN must meet NaN and an
//! infinity the same infinity, in the values and in the gradients.

mod common;

use common::{golden_case_names, golden_cases, Golden};
use kiln::nn::functional as F;
use kiln::Tensor;
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("pointwise_edges"))
}

golden_cases! {
    neg(1) => |x| x[0].neg();
    exp(1) => |x| x[0].exp();
    log(1) => |x| x[0].log();
    sqrt(1) => |x| x[0].sqrt();
    rsqrt(1) => |x| x[0].rsqrt();
    relu(1) => |x| x[0].relu();
    sigmoid(1) => |x| x[0].sigmoid();
    tanh(1) => |x| x[0].tanh();
    abs(1) => |x| x[0].abs();
    sin(1) => |x| x[0].sin();
    cos(1) => |x| x[0].cos();
    pow_0(1) => |x| x[0].pow_scalar(0.0);
    pow_1(1) => |x| x[0].pow_scalar(1.0);
    pow_2(1) => |x| x[0].pow_scalar(2.0);
    pow_3(1) => |x| x[0].pow_scalar(3.0);
    pow_half(1) => |x| x[0].pow_scalar(0.5);
    pow_2_5(1) => |x| x[0].pow_scalar(2.5);
    pow_m1(1) => |x| x[0].pow_scalar(-1.0);
    pow_m2(1) => |x| x[0].pow_scalar(-2.0);
    pow_m_half(1) => |x| x[0].pow_scalar(-0.5);
    add_scalar(1) => |x| x[0].add_scalar(2.0);
    mul_scalar(1) => |x| x[0].mul_scalar(-3.0);
    mul_scalar_0(1) => |x| x[0].mul_scalar(0.0);
    mul_scalar_inf(1) => |x| x[0].mul_scalar(f64::INFINITY);
    div_scalar(1) => |x| x[0].div_scalar(4.0);
    div_scalar_0(1) => |x| x[0].div_scalar(0.0);
    clamp_both(1) => |x| x[0].clamp(-1.0, 1.0);
    clamp_min_0(1) => |x| x[0].clamp(0.0, None);
    clamp_max_0(1) => |x| x[0].clamp(None, 0.0);
    clamp_infinite(1) => |x| x[0].clamp(f64::NEG_INFINITY, f64::INFINITY);
    gelu(1) => |x| F::gelu(&x[0]);
    gelu_tanh(1) => |x| F::gelu_tanh(&x[0]);
    leaky_relu(1) => |x| F::leaky_relu(&x[0], 0.01);
    silu(1) => |x| F::silu(&x[0]);
    softplus(1) => |x| F::softplus(&x[0], 1.0, 20.0);
    softplus_beta(1) => |x| F::softplus(&x[0], 2.0, 1.0);
    add(2) => |x| x[0].add(&x[1]);
    sub(2) => |x| x[0].sub(&x[1]);
    mul(2) => |x| x[0].mul(&x[1]);
    div(2) => |x| x[0].div(&x[1]);
    maximum(2) => |x| x[0].maximum(&x[1]);
    minimum(2) => |x| x[0].minimum(&x[1]);
}

/// Every case in the fixture has a test above, and every test has its case.
#[test]
fn every_fixture_case_is_checked() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("pointwise_edges"), tested);
}
