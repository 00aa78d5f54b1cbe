//! Finite-difference checks (`kiln::autograd::gradcheck`, f64) of the gradient of
//! every differentiable tensor op, one test per op. Each op is checked on
//! contiguous inputs, on strided views (transposed and offset), and where it
//! broadcasts, with operands stretched along inner and leading dimensions.

mod common;

use common::rng::signed_away_from_zero;
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{DType, Device, Result, Tensor};

/// Deterministic values in (-2, 2) with |v| >= 0.1, distinct in practice, so no
/// kink (relu, abs, max) or tie lies within the finite-difference step.
fn values(n: usize, seed: u64) -> Vec<f64> {
    signed_away_from_zero(n, seed, usize::MAX)
}

/// A contiguous f64 tensor of `shape`.
fn t(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(values(n, seed), shape, &Device::Cpu).expect("test tensor")
}

/// A contiguous f64 tensor of `shape` with values in [0.55, 2): for log, sqrt,
/// division and fractional powers.
fn pos(shape: &[usize], seed: u64) -> Tensor {
    t(shape, seed)
        .abs()
        .unwrap()
        .mul_scalar(0.75)
        .unwrap()
        .add_scalar(0.5)
        .unwrap()
}

/// An f64 tensor of `shape` that is a strided view into a larger storage: offset
/// (narrowed) and, for rank >= 2, with its last two dimensions transposed.
fn strided(shape: &[usize], seed: u64) -> Tensor {
    let r = shape.len();
    if r == 0 {
        return t(shape, seed);
    }
    let mut base_shape = shape.to_vec();
    if r >= 2 {
        base_shape.swap(r - 2, r - 1);
    }
    base_shape[0] += 1;
    let mut v = t(&base_shape, seed)
        .narrow(0, 1, base_shape[0] - 1)
        .unwrap();
    if r >= 2 {
        v = v.transpose(r - 2, r - 1).unwrap();
    }
    assert_eq!(v.shape(), shape);
    assert!(v.storage_offset() > 0);
    if r >= 2 && shape[r - 1] > 1 && shape[r - 2] > 1 {
        assert!(!v.is_contiguous());
    }
    v
}

/// [`strided`] with positive values.
fn strided_pos(shape: &[usize], seed: u64) -> Tensor {
    let v = strided(shape, seed);
    // abs/mul/add make a contiguous result; copy it back into the strided view.
    let p = v
        .abs()
        .unwrap()
        .mul_scalar(0.75)
        .unwrap()
        .add_scalar(0.5)
        .unwrap();
    v.copy_(&p).unwrap();
    v
}

#[track_caller]
fn check(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    if let Err(e) = gradcheck(f, inputs, GradcheckOpts::default()) {
        let shapes: Vec<_> = inputs.iter().map(|x| x.shape().to_vec()).collect();
        panic!("inputs {shapes:?}: {e}");
    }
}

type Binary = fn(&Tensor, &Tensor) -> Result<Tensor>;
type Gen = fn(&[usize], u64) -> Tensor;

/// Shape pairs that cover equal shapes, inner stretching, leading-dim broadcast
/// on either side, and both operands stretched.
const BROADCAST_PAIRS: &[(&[usize], &[usize])] = &[
    (&[3, 4], &[3, 4]),
    (&[2, 3, 4], &[4]),
    (&[4], &[2, 3, 4]),
    (&[3, 1], &[3, 5]),
    (&[2, 1, 3], &[4, 1]),
    (&[3, 1, 4], &[2, 1, 5, 1]),
    (&[3, 4], &[]),
];

/// Checks `op` on every pair of [`BROADCAST_PAIRS`], contiguous and strided.
fn check_binary(op: Binary, lhs: (Gen, Gen), rhs: (Gen, Gen)) {
    for (k, &(ls, rs)) in BROADCAST_PAIRS.iter().enumerate() {
        let seed = 10 * k as u64;
        let f = |x: &[Tensor]| op(&x[0], &x[1]);
        check(f, &[lhs.0(ls, seed), rhs.0(rs, seed + 1)]);
        check(f, &[lhs.1(ls, seed + 2), rhs.0(rs, seed + 3)]);
        check(f, &[lhs.0(ls, seed + 4), rhs.1(rs, seed + 5)]);
        check(f, &[lhs.1(ls, seed + 6), rhs.1(rs, seed + 7)]);
    }
}

/// Checks a unary op on a contiguous tensor, a strided view and a rank-0 tensor.
fn check_unary(op: fn(&Tensor) -> Result<Tensor>, gen: (Gen, Gen)) {
    let f = |x: &[Tensor]| op(&x[0]);
    check(f, &[gen.0(&[3, 5], 1)]);
    check(f, &[gen.1(&[2, 3, 4], 2)]);
    check(f, &[gen.0(&[], 3)]);
}

const ANY: (Gen, Gen) = (t, strided);
const POSITIVE: (Gen, Gen) = (pos, strided_pos);

// ------------------------------------------------------------------ binary

#[test]
fn add() {
    check_binary(|a, b| a.add(b), ANY, ANY);
}

#[test]
fn sub() {
    check_binary(|a, b| a.sub(b), ANY, ANY);
}

#[test]
fn mul() {
    check_binary(|a, b| a.mul(b), ANY, ANY);
    // One input reaching the op twice: the two gradients must add up.
    check(|x| x[0].mul(&x[0]), &[strided(&[3, 4], 9)]);
}

#[test]
fn div() {
    check_binary(|a, b| a.div(b), ANY, POSITIVE);
}

#[test]
fn maximum() {
    check_binary(|a, b| a.maximum(b), ANY, ANY);
}

#[test]
fn minimum() {
    check_binary(|a, b| a.minimum(b), ANY, ANY);
}

// ------------------------------------------------------------------ unary

#[test]
fn neg() {
    check_unary(|x| x.neg(), ANY);
}

#[test]
fn exp() {
    check_unary(|x| x.exp(), ANY);
}

#[test]
fn log() {
    check_unary(|x| x.log(), POSITIVE);
}

#[test]
fn sqrt() {
    check_unary(|x| x.sqrt(), POSITIVE);
}

#[test]
fn relu() {
    check_unary(|x| x.relu(), ANY);
}

#[test]
fn sigmoid() {
    check_unary(|x| x.sigmoid(), ANY);
}

#[test]
fn tanh() {
    check_unary(|x| x.tanh(), ANY);
}

#[test]
fn abs() {
    check_unary(|x| x.abs(), ANY);
}

#[test]
fn powf() {
    check_unary(|x| x.powf(2.5), POSITIVE);
    check_unary(|x| x.powf(-1.5), POSITIVE);
    check_unary(|x| x.powf(3.0), ANY);
    check_unary(|x| x.powf(0.0), ANY);
}

#[test]
fn add_scalar() {
    check_unary(|x| x.add_scalar(2.5), ANY);
}

#[test]
fn sub_scalar() {
    check_unary(|x| x.sub_scalar(-1.25), ANY);
}

#[test]
fn mul_scalar() {
    check_unary(|x| x.mul_scalar(-3.0), ANY);
}

#[test]
fn div_scalar() {
    check_unary(|x| x.div_scalar(0.4), ANY);
}

// ------------------------------------------------------------------ reductions

/// Checks a reduction over every dim of a rank-3 tensor, both keepdim modes,
/// contiguous and strided.
fn check_reduction(op: fn(&Tensor, usize, bool) -> Result<Tensor>) {
    for dim in 0..3 {
        for keepdim in [false, true] {
            let f = |x: &[Tensor]| op(&x[0], dim, keepdim);
            check(f, &[t(&[2, 3, 4], dim as u64)]);
            check(f, &[strided(&[3, 4, 2], 7 + dim as u64)]);
        }
    }
    // A 1-D input reduces to rank 0.
    check(|x| op(&x[0], 0, false), &[t(&[5], 20)]);
}

#[test]
fn sum() {
    check_reduction(|x, d, k| x.sum(d, k));
}

#[test]
fn mean() {
    check_reduction(|x, d, k| x.mean(d, k));
}

#[test]
fn max() {
    check_reduction(|x, d, k| x.max(d, k));
}

#[test]
fn min() {
    check_reduction(|x, d, k| x.min(d, k));
}

#[test]
fn sum_all() {
    check(|x| x[0].sum_all(), &[t(&[3, 5], 1)]);
    check(|x| x[0].sum_all(), &[strided(&[2, 3, 4], 2)]);
    check(|x| x[0].sum_all(), &[t(&[], 3)]);
}

#[test]
fn mean_all() {
    check(|x| x[0].mean_all(), &[t(&[3, 5], 1)]);
    check(|x| x[0].mean_all(), &[strided(&[2, 3, 4], 2)]);
    check(|x| x[0].mean_all(), &[t(&[], 3)]);
}

#[test]
fn sum_to_shape() {
    check(|x| x[0].sum_to_shape(&[3, 1]), &[t(&[2, 3, 4], 1)]);
    check(|x| x[0].sum_to_shape(&[4]), &[strided(&[2, 3, 4], 2)]);
    check(|x| x[0].sum_to_shape(&[1, 3, 4]), &[t(&[2, 3, 4], 3)]);
    check(|x| x[0].sum_to_shape(&[]), &[t(&[2, 3], 4)]);
}

// ------------------------------------------------------------------ matmul

fn mm(x: &[Tensor]) -> Result<Tensor> {
    x[0].matmul(&x[1])
}

#[test]
fn matmul_2d() {
    check(mm, &[t(&[3, 4], 1), t(&[4, 5], 2)]);
    check(mm, &[strided(&[3, 4], 3), t(&[4, 5], 4)]);
    check(mm, &[t(&[3, 4], 5), strided(&[4, 5], 6)]);
    check(mm, &[strided(&[1, 4], 7), strided(&[4, 1], 8)]);
}

#[test]
fn matmul_batched_and_broadcast() {
    check(mm, &[t(&[2, 3, 4], 1), t(&[2, 4, 5], 2)]);
    check(mm, &[strided(&[2, 3, 4], 3), strided(&[2, 4, 5], 4)]);
    check(mm, &[t(&[2, 1, 3, 4], 5), t(&[5, 4, 2], 6)]);
    check(mm, &[t(&[3, 4], 7), strided(&[2, 4, 5], 8)]);
    check(mm, &[strided(&[2, 3, 4], 9), t(&[4, 5], 10)]);
}

#[test]
fn matmul_vectors() {
    check(mm, &[t(&[3, 4], 1), t(&[4], 2)]);
    check(mm, &[t(&[4], 3), strided(&[4, 5], 4)]);
    check(mm, &[strided(&[4], 5), t(&[4], 6)]);
    check(mm, &[t(&[4], 7), t(&[2, 4, 3], 8)]);
    check(mm, &[strided(&[2, 3, 4], 9), t(&[4], 10)]);
}

#[test]
fn matmul_permuted_batch() {
    // Batch dims that cannot be merged into one stride force a copy in the kernel.
    check(
        |x| x[0].permute(&[1, 0, 2])?.matmul(&x[1]),
        &[t(&[3, 2, 4], 1), t(&[4, 5], 2)],
    );
    check(
        |x| x[0].matmul(&x[1].permute(&[2, 0, 1, 3])?),
        &[t(&[3, 4], 3), t(&[2, 4, 3, 5], 4)],
    );
}

// ------------------------------------------------------------------ views and layout

/// Checks `op` (a view followed by an op whose gradient depends on the position)
/// on a contiguous and on a strided input of `shape`.
fn check_view(shape: &[usize], op: impl Fn(&Tensor) -> Result<Tensor>) {
    // Multiplying by position-dependent weights makes a mixed-up gradient visible
    // even when the view's consumer is linear.
    let f = |x: &[Tensor]| {
        let y = op(&x[0])?;
        let w = t(y.shape(), 99);
        y.mul(&w)?.exp()
    };
    check(f, &[t(shape, 1)]);
    check(f, &[strided(shape, 2)]);
}

#[test]
fn reshape() {
    check_view(&[2, 3, 4], |x| x.reshape(&[4, 6]));
    check_view(&[2, 3, 4], |x| x.reshape(&[usize::MAX, 3]));
    check_view(&[3, 4], |x| x.reshape(&[12]));
    check_view(&[1], |x| x.reshape(&[]));
}

#[test]
fn flatten() {
    check_view(&[2, 3, 4, 5], |x| x.flatten(1, 2));
    check_view(&[2, 3, 4], |x| x.flatten(0, 2));
    check_view(&[3, 4], |x| x.flatten(1, 1));
}

#[test]
fn permute() {
    check_view(&[2, 3, 4], |x| x.permute(&[2, 0, 1]));
    check_view(&[2, 3, 4, 5], |x| x.permute(&[3, 1, 0, 2]));
    check_view(&[2, 3, 4], |x| x.permute(&[0, 1, 2]));
}

#[test]
fn transpose() {
    check_view(&[3, 4], |x| x.transpose(0, 1));
    check_view(&[2, 3, 4], |x| x.transpose(0, 2));
    check_view(&[2, 3, 4], |x| x.transpose(1, 1));
}

#[test]
fn narrow() {
    check_view(&[3, 7], |x| x.narrow(1, 2, 4));
    check_view(&[5, 3], |x| x.narrow(0, 1, 3));
    check_view(&[2, 5, 3], |x| x.narrow(1, 4, 1));
    check_view(&[4, 6], |x| x.transpose(0, 1)?.narrow(0, 3, 2));
    check_view(&[3, 7], |x| x.narrow(1, 1, 4)?.narrow(1, 1, 2));
}

#[test]
fn unsqueeze() {
    check_view(&[3, 4], |x| x.unsqueeze(0));
    check_view(&[3, 4], |x| x.unsqueeze(1));
    check_view(&[3, 4], |x| x.unsqueeze(2));
}

#[test]
fn squeeze() {
    check_view(&[3, 1, 4], |x| x.squeeze(1));
    check_view(&[1, 4], |x| x.squeeze(0));
}

#[test]
fn broadcast_as() {
    check_view(&[3, 1], |x| x.broadcast_as(&[3, 4]));
    check_view(&[4], |x| x.broadcast_as(&[2, 3, 4]));
    check_view(&[2, 1, 3], |x| x.broadcast_as(&[5, 2, 4, 3]));
}

#[test]
fn contiguous() {
    check_view(&[3, 4], |x| x.contiguous());
    check_view(&[3, 4], |x| x.transpose(0, 1)?.contiguous());
}

#[test]
fn cat() {
    let f1 = |x: &[Tensor]| Tensor::cat(&[&x[0], &x[1], &x[2]], 1)?.exp();
    check(f1, &[t(&[2, 3], 1), t(&[2, 5], 2), t(&[2, 1], 3)]);
    check(
        f1,
        &[strided(&[2, 3], 4), t(&[2, 5], 5), strided(&[2, 1], 6)],
    );
    let f0 = |x: &[Tensor]| Tensor::cat(&[&x[0], &x[1]], 0)?.sigmoid();
    check(f0, &[strided(&[4, 3], 7), t(&[2, 3], 8)]);
    check(f0, &[t(&[1, 2, 3], 9), strided(&[3, 2, 3], 10)]);
    // One tensor twice: both slices' gradients reach it.
    let twice = |x: &[Tensor]| Tensor::cat(&[&x[0], &x[0]], 2)?.tanh();
    check(twice, &[strided(&[2, 3, 2], 11)]);
}

#[test]
fn to_dtype() {
    // Through f32 and back: the step must be large against f32 rounding.
    let opts = GradcheckOpts {
        eps: 1e-3,
        atol: 1e-3,
        rtol: 1e-3,
    };
    let f = |x: &[Tensor]| {
        x[0].to_dtype(DType::F32)?
            .mul_scalar(3.0)?
            .to_dtype(DType::F64)
    };
    gradcheck(f, &[t(&[3, 4], 1)], opts).unwrap();
    gradcheck(f, &[strided(&[3, 4], 2)], opts).unwrap();
    // An f32 result: gradcheck reduces it in f32 and differentiates the f64 input.
    let g = |x: &[Tensor]| x[0].to_dtype(DType::F32)?.tanh();
    gradcheck(g, &[t(&[2, 3], 3)], opts).unwrap();
}

#[test]
fn to_device_on_cpu_is_identity_for_gradients() {
    check(|x| x[0].to_device(&Device::Cpu)?.exp(), &[t(&[3, 2], 1)]);
}

/// gradcheck itself must catch a wrong gradient, or the tests above prove nothing.
#[test]
fn gradcheck_rejects_a_wrong_gradient() {
    // For detach(x) * x autograd sees only the second factor and reports x, while
    // finite differences see d(x^2)/dx = 2x.
    let f = |x: &[Tensor]| x[0].detach().mul(&x[0]);
    let err = gradcheck(f, &[t(&[2, 3], 1)], GradcheckOpts::default()).unwrap_err();
    assert!(matches!(err, kiln::Error::Gradcheck { .. }), "{err}");
}
