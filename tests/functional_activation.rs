//! Activations, softmax and flatten against PyTorch (golden values from
//! scripts/golden/functional.py, whose comments hold the PyTorch snippet of each
//! case), against finite differences (gradcheck in f64), and on bad input.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Result, Tensor};

const CPU: Device = Device::Cpu;

/// Runs `f` on the case's `x` on `dev`, compares the output and the gradient of
/// `(out * gout).sum()` with PyTorch's.
fn check_unary(
    case: &str,
    dev: &Device,
    f: impl Fn(&Tensor) -> Result<Tensor>,
    atol: f64,
    rtol: f64,
) {
    check_unary_on(case, dev, |t| t.clone(), f, atol, rtol);
}

/// As [`check_unary`], with `view` applied to the stored `x` before `f`.
fn check_unary_on(
    case: &str,
    dev: &Device,
    view: impl Fn(&Tensor) -> Tensor,
    f: impl Fn(&Tensor) -> Result<Tensor>,
    atol: f64,
    rtol: f64,
) {
    let golden = Golden::load("functional");
    let x = golden.on(&format!("{case}.x"), dev).requires_grad();
    let y = f(&view(&x)).unwrap();
    assert_close(&y, &golden.get(&format!("{case}.out")), dev, atol, rtol);
    let gout = golden.on(&format!("{case}.gout"), dev);
    y.mul(&gout).unwrap().sum_all().unwrap().backward().unwrap();
    let grad = x.grad().expect("x got a gradient");
    let want = golden.get(&format!("{case}.grad_x"));
    assert_close(&grad, &want, dev, atol, rtol);
}

fn randn64(shape: &[usize], seed: u64) -> Tensor {
    kiln::manual_seed(seed);
    Tensor::randn(shape, DType::F64, &CPU).unwrap()
}

fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

device_test! {
    fn relu_matches_pytorch_including_zero_inputs(dev) {
        check_unary("relu", dev, F::relu, 0.0, 0.0);
    }

    fn gelu_matches_pytorch_f64_and_f32(dev) {
        check_unary("gelu", dev, F::gelu, 1e-14, 1e-12);
        check_unary("gelu_f32", dev, F::gelu, 1e-6, 1e-5);
    }

    fn gelu_tanh_matches_pytorch(dev) {
        check_unary("gelu_tanh", dev, F::gelu_tanh, 1e-14, 1e-12);
    }

    fn sigmoid_and_tanh_match_pytorch(dev) {
        check_unary("sigmoid", dev, F::sigmoid, 1e-14, 1e-12);
        check_unary("tanh", dev, F::tanh, 1e-14, 1e-12);
    }

    fn softmax_and_log_softmax_match_pytorch_on_every_dim(dev) {
        for dim in 0..3 {
            let softmax = format!("softmax_d{dim}");
            check_unary(&softmax, dev, |x| F::softmax(x, dim), 1e-14, 1e-12);
            let log_softmax = format!("log_softmax_d{dim}");
            check_unary(&log_softmax, dev, |x| F::log_softmax(x, dim), 1e-14, 1e-12);
        }
    }

    fn softmax_of_a_transposed_view_matches_pytorch(dev) {
        // PyTorch: F.softmax(x.transpose(0, 2), 1) with x stored as (5, 4, 3).
        check_unary_on(
            "softmax_transposed",
            dev,
            |x| x.transpose(0, 2).unwrap(),
            |x| F::softmax(x, 1),
            1e-14,
            1e-12,
        );
    }

    fn softmax_is_stable_for_large_f32_logits(dev) {
        check_unary("softmax_large_f32", dev, |x| F::softmax(x, 1), 1e-6, 1e-5);
        check_unary(
            "log_softmax_large_f32",
            dev,
            |x| F::log_softmax(x, 1),
            1e-4,
            1e-5,
        );
    }

    fn softmax_results_are_contiguous_and_rows_sum_to_one(dev) {
        // Large enough for the parallel kernel path, on the last and a leading dim.
        kiln::manual_seed(3);
        let x = Tensor::randn(&[300, 170], DType::F32, dev).unwrap();
        for dim in [0, 1] {
            let p = F::softmax(&x, dim).unwrap();
            assert!(p.is_contiguous());
            let sums = common::host(&p.sum(dim, false).unwrap());
            assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5), "dim {dim}");
            // exp(log_softmax) is softmax.
            let lp = F::log_softmax(&x, dim).unwrap();
            assert_close(&lp.exp().unwrap(), &p, dev, 1e-6, 1e-5);
            // Composed reference: exp(x - max) / sum(exp(x - max)).
            let e = x.sub(&x.max(dim, true).unwrap()).unwrap().exp().unwrap();
            let reference = e.div(&e.sum(dim, true).unwrap()).unwrap();
            assert_close(&p, &reference, dev, 1e-7, 1e-5);
        }
    }

    fn softmax_of_a_scalar_is_one_with_zero_gradient(dev) {
        let x = Tensor::scalar(3.5f64, dev).unwrap().requires_grad();
        let p = F::softmax(&x, 0).unwrap();
        assert_eq!(p.shape(), &[] as &[usize]);
        assert_eq!(p.item::<f64>().unwrap(), 1.0);
        p.backward().unwrap();
        assert_eq!(x.grad().unwrap().item::<f64>().unwrap(), 0.0);
        assert_eq!(F::log_softmax(&x, 0).unwrap().item::<f64>().unwrap(), 0.0);
    }

    fn softmax_propagates_nan_and_all_neg_inf_rows_like_pytorch(dev) {
        let inf = f32::INFINITY;
        let x = Tensor::from_vec(vec![f32::NAN, 1.0, -inf, -inf, 0.0, -inf], &[3, 2], dev).unwrap();
        let p = common::host(&F::softmax(&x, 1).unwrap());
        assert!(p[0].is_nan() && p[1].is_nan());
        assert!(p[2].is_nan() && p[3].is_nan());
        assert_eq!(&p[4..], &[1.0, 0.0]);
    }

    fn activations_keep_half_dtypes(dev) {
        let x = Tensor::from_vec(vec![-1.5f32, 0.0, 0.5, 2.0], &[4], dev).unwrap();
        for dtype in [DType::F16, DType::BF16] {
            let h = x.to_dtype(dtype).unwrap();
            let y = F::gelu(&h).unwrap();
            assert_eq!(y.dtype(), dtype);
            let want = F::gelu(&x).unwrap();
            assert_close(&y, &want, dev, 1e-2, 1e-2);
            assert_eq!(F::softmax(&h, 0).unwrap().dtype(), dtype);
        }
    }
}

#[test]
fn gradcheck_activations_f64() {
    let opts = GradcheckOpts::default();
    let x = randn64(&[3, 4, 5], 11).mul_scalar(2.0).unwrap();
    type Op = fn(&Tensor) -> Result<Tensor>;
    let ops: [(&str, Op); 5] = [
        ("relu", F::relu),
        ("gelu", F::gelu),
        ("gelu_tanh", F::gelu_tanh),
        ("sigmoid", F::sigmoid),
        ("tanh", F::tanh),
    ];
    for (name, op) in ops {
        gradcheck(|t| op(&t[0]), std::slice::from_ref(&x), opts)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn gradcheck_softmax_and_log_softmax_f64_every_dim() {
    let opts = GradcheckOpts::default();
    let x = randn64(&[2, 3, 4], 12);
    for dim in 0..3 {
        gradcheck(|t| F::softmax(&t[0], dim), std::slice::from_ref(&x), opts).unwrap();
        gradcheck(
            |t| F::log_softmax(&t[0], dim),
            std::slice::from_ref(&x),
            opts,
        )
        .unwrap();
    }
    // Through a non-contiguous view.
    gradcheck(
        |t| F::log_softmax(&t[0].transpose(0, 2)?, 1),
        std::slice::from_ref(&x),
        opts,
    )
    .unwrap();
}

#[test]
fn flatten_merges_the_given_dims_and_carries_gradients() {
    let x = randn64(&[2, 3, 4, 5], 13);
    assert_eq!(F::flatten(&x, 1, 3).unwrap().shape(), &[2, 60]);
    assert_eq!(F::flatten(&x, 0, 3).unwrap().shape(), &[120]);
    assert_eq!(F::flatten(&x, 1, 2).unwrap().shape(), &[2, 12, 5]);
    assert_eq!(F::flatten(&x, 2, 2).unwrap().shape(), &[2, 3, 4, 5]);
    let y = F::flatten(&x, 1, 3).unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), x.to_vec::<f64>().unwrap());
    gradcheck(
        |t| F::flatten(&t[0].transpose(1, 3)?, 1, 2),
        std::slice::from_ref(&x),
        GradcheckOpts::default(),
    )
    .unwrap();
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let ints = Tensor::from_vec(vec![1i64, 2, 3], &[3], &CPU).unwrap();
    assert!(matches!(
        F::gelu(&ints),
        Err(Error::UnsupportedDType { .. })
    ));
    assert!(matches!(
        F::gelu_tanh(&ints),
        Err(Error::UnsupportedDType { .. })
    ));
    assert!(matches!(
        F::softmax(&ints, 0),
        Err(Error::UnsupportedDType { .. })
    ));
    assert!(matches!(
        F::sigmoid(&ints),
        Err(Error::UnsupportedDType { .. })
    ));
    let x = randn64(&[2, 3], 14);
    assert!(matches!(
        F::softmax(&x, 2),
        Err(Error::DimOutOfRange {
            dim: 2,
            rank: 2,
            ..
        })
    ));
    assert!(matches!(
        F::log_softmax(&x, 5),
        Err(Error::DimOutOfRange { .. })
    ));
    let scalar = Tensor::scalar(1.0f64, &CPU).unwrap();
    assert!(matches!(
        F::softmax(&scalar, 1),
        Err(Error::DimOutOfRange { .. })
    ));
    assert!(matches!(
        F::flatten(&x, 0, 2),
        Err(Error::DimOutOfRange { .. })
    ));
    assert_invalid_arg(F::flatten(&x, 1, 0), "start");
}
