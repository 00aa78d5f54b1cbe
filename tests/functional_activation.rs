//! Activations, softmax and flatten against PyTorch (golden values from
//! scripts/golden/functional.py and, for silu and softplus,
//! scripts/golden/transformer_ops.py, whose comments hold the PyTorch snippet of
//! each case), against finite differences (gradcheck in f64), and on bad input.

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
    check_unary_in("functional", case, dev, view, f, atol, rtol);
}

/// As [`check_unary_on`], with the case in `tests/data/<area>.safetensors`.
fn check_unary_in(
    area: &str,
    case: &str,
    dev: &Device,
    view: impl Fn(&Tensor) -> Tensor,
    f: impl Fn(&Tensor) -> Result<Tensor>,
    atol: f64,
    rtol: f64,
) {
    let golden = Golden::load(area);
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

    fn leaky_relu_matches_pytorch_for_positive_and_negative_slopes(dev) {
        // Each case's x holds exact zeros, where the gradient is the slope.
        let golden = Golden::load("functional");
        for (case, tol) in [("leaky_relu", 0.0), ("leaky_relu_neg", 0.0), ("leaky_relu_f32", 0.0)] {
            let slope: f64 = golden.get(&format!("{case}.negative_slope")).item().unwrap();
            check_unary(case, dev, |x| F::leaky_relu(x, slope), tol, tol);
        }
    }

    fn nn_leaky_relu_is_f_leaky_relu_with_pytorchs_default_slope(dev) {
        use kiln::nn::Forward;
        let x = Tensor::from_vec(vec![-2.0f32, -0.5, 0.0, 3.0], &[4], dev).unwrap();
        let module = kiln::nn::LeakyReLU::new(0.2).unwrap();
        assert_close(&module.forward(&x).unwrap(), &F::leaky_relu(&x, 0.2).unwrap(), dev, 0.0, 0.0);
        let default = kiln::nn::LeakyReLU::default();
        assert_eq!(default.negative_slope(), 0.01);
        let want = Tensor::from_vec(vec![-0.02f32, -0.005, 0.0, 3.0], &[4], &CPU).unwrap();
        assert_close(&default.forward(&x).unwrap(), &want, dev, 0.0, 0.0);
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
    let ops: [(&str, Op); 7] = [
        ("relu", F::relu),
        ("leaky_relu", |x| F::leaky_relu(x, 0.1)),
        ("leaky_relu_negative_slope", |x| F::leaky_relu(x, -0.7)),
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
    assert!(matches!(
        F::leaky_relu(&ints, 0.1),
        Err(Error::UnsupportedDType { .. })
    ));
    let floats = Tensor::from_vec(vec![1.0f32, -1.0], &[2], &CPU).unwrap();
    assert_invalid_arg(F::leaky_relu(&floats, f64::NAN), "negative_slope");
    assert_invalid_arg(kiln::nn::LeakyReLU::new(f64::INFINITY), "negative_slope");
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

device_test! {
    fn silu_matches_pytorch_f64_and_f32(dev) {
        let same = |t: &Tensor| t.clone();
        check_unary_in("transformer_ops", "silu", dev, same, F::silu, 1e-14, 1e-12);
        check_unary_in("transformer_ops", "silu_f32", dev, same, F::silu, 1e-6, 1e-5);
    }

    fn softplus_matches_pytorch_on_both_sides_of_the_threshold(dev) {
        // Each case's x holds values above the threshold (passed through, gradient 1).
        let golden = Golden::load("transformer_ops");
        for (case, tol) in [("softplus", 1e-14), ("softplus_beta", 1e-14), ("softplus_f32", 1e-6)] {
            let beta: f64 = golden.get(&format!("{case}.beta")).item().unwrap();
            let threshold: f64 = golden.get(&format!("{case}.threshold")).item().unwrap();
            check_unary_in(
                "transformer_ops",
                case,
                dev,
                |t| t.clone(),
                |x| F::softplus(x, beta, threshold),
                tol,
                tol * 100.0,
            );
        }
    }

    fn silu_and_softplus_of_non_contiguous_and_empty_inputs(dev) {
        kiln::manual_seed(71);
        let x = Tensor::randn(&[4, 6], DType::F64, dev).unwrap();
        let t = x.transpose(0, 1).unwrap();
        let c = t.contiguous().unwrap();
        assert_close(&F::silu(&t).unwrap(), &F::silu(&c).unwrap(), dev, 0.0, 0.0);
        let sp = |x: &Tensor| F::softplus(x, 2.0, 3.0).unwrap();
        assert_close(&sp(&t), &sp(&c), dev, 0.0, 0.0);
        let empty = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap();
        assert_eq!(F::silu(&empty).unwrap().shape(), &[0, 3]);
        assert_eq!(F::softplus(&empty, 1.0, 20.0).unwrap().shape(), &[0, 3]);
    }

    fn activation_modules_call_the_functional_ops(dev) {
        use kiln::nn::Forward;
        kiln::manual_seed(72);
        let x = Tensor::randn(&[3, 5], DType::F32, dev).unwrap().mul_scalar(10.0).unwrap();
        assert_close(&kiln::nn::SiLU.forward(&x).unwrap(), &F::silu(&x).unwrap(), dev, 0.0, 0.0);
        assert_close(&kiln::nn::Tanh.forward(&x).unwrap(), &F::tanh(&x).unwrap(), dev, 0.0, 0.0);
        let sp = kiln::nn::Softplus::default();
        assert_eq!((sp.beta(), sp.threshold()), (1.0, 20.0));
        let want = F::softplus(&x, 1.0, 20.0).unwrap();
        assert_close(&sp.forward(&x).unwrap(), &want, dev, 0.0, 0.0);
        let sp = kiln::nn::Softplus::new(0.5, 4.0).unwrap();
        let want = F::softplus(&x, 0.5, 4.0).unwrap();
        assert_close(&sp.forward(&x).unwrap(), &want, dev, 0.0, 0.0);
    }

    fn silu_and_softplus_in_half_precision_follow_f32(dev) {
        kiln::manual_seed(73);
        let x = Tensor::randn(&[5, 7], DType::F32, dev).unwrap().mul_scalar(4.0).unwrap();
        for dtype in [DType::F16, DType::BF16] {
            let h = x.to_dtype(dtype).unwrap();
            let xr = h.to_dtype(DType::F32).unwrap();
            let tol = if dtype == DType::F16 { 4e-3 } else { 2e-2 };
            let got = F::silu(&h).unwrap();
            assert_eq!(got.dtype(), dtype);
            common::assert_values("silu", &got, &F::silu(&xr).unwrap(), tol, tol);
            let got = F::softplus(&h, 1.0, 20.0).unwrap();
            let want = F::softplus(&xr, 1.0, 20.0).unwrap();
            common::assert_values("softplus", &got, &want, tol, tol);
        }
    }
}

#[test]
fn gradcheck_silu_and_softplus_f64() {
    let opts = GradcheckOpts::default();
    // Values on both sides of softplus's thresholds (1.5 with beta 2: x = 0.75).
    let x = randn64(&[3, 4, 5], 74).mul_scalar(2.0).unwrap();
    gradcheck(|t| F::silu(&t[0]), std::slice::from_ref(&x), opts).unwrap();
    gradcheck(
        |t| F::softplus(&t[0], 1.0, 20.0),
        std::slice::from_ref(&x),
        opts,
    )
    .unwrap();
    gradcheck(
        |t| F::softplus(&t[0], 2.0, 1.5),
        std::slice::from_ref(&x),
        opts,
    )
    .unwrap();
    gradcheck(
        |t| F::softplus(&t[0].transpose(0, 2)?, -1.5, 2.0),
        &[x],
        opts,
    )
    .unwrap();
}

#[test]
fn softplus_bad_arguments_name_the_argument() {
    let x = randn64(&[3], 75);
    assert_invalid_arg(F::softplus(&x, 0.0, 20.0), "beta");
    assert_invalid_arg(F::softplus(&x, f64::NAN, 20.0), "beta");
    assert_invalid_arg(F::softplus(&x, 1.0, f64::NAN), "threshold");
    assert_invalid_arg(kiln::nn::Softplus::new(f64::INFINITY, 20.0), "beta");
    let ints = Tensor::from_vec(vec![1i64, 2, 3], &[3], &CPU).unwrap();
    assert!(F::silu(&ints).is_err());
    assert!(F::softplus(&ints, 2.0, 20.0).is_err());
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The softmax kernels on every float dtype, dim and edge case against the CPU
/// backend (tests/common/parity.rs), and the check that these tests launch every kernel
/// of kernels/softmax.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, pair_t, tol, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{Device, Tensor};

    #[test]
    fn softmax_and_log_softmax_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("softmax_and_log_softmax_match_the_cpu");
        for dtype in FLOATS {
            let (cpu, gpu) = pair_t(&[7, 130, 3], dtype, 60, &dev);
            let (atol, rtol) = tol(dtype);
            for d in 0..3 {
                let what = format!("softmax dim {d} {dtype:?}");
                assert_close(
                    &what,
                    &F::softmax(&gpu, d).unwrap(),
                    &F::softmax(&cpu, d).unwrap(),
                    atol,
                    rtol,
                );
                assert_close(
                    &what,
                    &F::log_softmax(&gpu, d).unwrap(),
                    &F::log_softmax(&cpu, d).unwrap(),
                    atol * 4.0,
                    rtol * 4.0,
                );
            }
        }
        let edge = Tensor::from_vec(
            vec![
                1000.0f32,
                1001.0,
                f32::NEG_INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                1.0,
                0.0,
                0.0,
            ],
            &[4, 2],
            &Device::Cpu,
        )
        .unwrap();
        let eg = edge.to_device(&dev).unwrap();
        assert_close(
            "softmax edges",
            &F::softmax(&eg, 1).unwrap(),
            &F::softmax(&edge, 1).unwrap(),
            1e-6,
            1e-6,
        );
        assert_close(
            "log_softmax edges",
            &F::log_softmax(&eg, 1).unwrap(),
            &F::log_softmax(&edge, 1).unwrap(),
            1e-5,
            1e-6,
        );
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/softmax.cu.
    #[test]
    fn every_softmax_kernel_is_launched() {
        let suite: [fn(); 1] = [softmax_and_log_softmax_match_the_cpu];
        assert_every_kernel_launched("softmax", &suite, &[]);
    }
}
