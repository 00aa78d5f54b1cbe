//! cross_entropy (with and without label smoothing), nll_loss and mse_loss against
//! PyTorch (scripts/golden/functional.py holds each case's snippet), against finite
//! differences in f64, and on bad input.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Result, Tensor};

const CPU: Device = Device::Cpu;

fn randn64(shape: &[usize], seed: u64) -> Tensor {
    kiln::manual_seed(seed);
    Tensor::randn(shape, DType::F64, &CPU).unwrap()
}

fn labels(values: Vec<i64>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape, &CPU).unwrap()
}

fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

/// Backpropagates `loss * gout` (the scalar weight PyTorch's side used).
fn backprop(loss: &Tensor, golden: &Golden, case: &str) {
    loss.mul(&golden.on(&format!("{case}.gout"), &loss.device()))
        .unwrap()
        .backward()
        .unwrap();
}

fn check_cross_entropy(case: &str, dev: &Device, atol: f64, rtol: f64) {
    let golden = Golden::load("functional");
    let logits = golden.on(&format!("{case}.logits"), dev).requires_grad();
    let target = golden.on(&format!("{case}.target"), dev);
    let smoothing = golden
        .get(&format!("{case}.smoothing"))
        .item::<f64>()
        .unwrap();
    let loss = F::cross_entropy_with(&logits, &target, smoothing).unwrap();
    assert_eq!(loss.shape(), &[] as &[usize]);
    assert_close(&loss, &golden.get(&format!("{case}.out")), dev, atol, rtol);
    backprop(&loss, &golden, case);
    let want = golden.get(&format!("{case}.grad_logits"));
    assert_close(&logits.grad().unwrap(), &want, dev, atol, rtol);
}

device_test! {
    fn cross_entropy_matches_pytorch_2d(dev) {
        check_cross_entropy("ce_2d", dev, 1e-14, 1e-12);
    }

    fn cross_entropy_with_label_smoothing_matches_pytorch(dev) {
        check_cross_entropy("ce_2d_smooth", dev, 1e-14, 1e-12);
        check_cross_entropy("ce_2d_smooth_full", dev, 1e-14, 1e-12);
        check_cross_entropy("ce_4d_smooth", dev, 1e-14, 1e-12);
    }

    fn cross_entropy_matches_pytorch_for_spatial_and_unbatched_inputs(dev) {
        check_cross_entropy("ce_4d", dev, 1e-14, 1e-12);
        check_cross_entropy("ce_1d", dev, 1e-14, 1e-12);
    }

    fn cross_entropy_matches_pytorch_f32(dev) {
        let golden = Golden::load("functional");
        let logits = golden.on("ce_f32.logits", dev).requires_grad();
        let loss = F::cross_entropy(&logits, &golden.on("ce_f32.target", dev)).unwrap();
        assert_eq!(loss.dtype(), DType::F32);
        assert_close(&loss, &golden.get("ce_f32.out"), dev, 1e-6, 1e-6);
        backprop(&loss, &golden, "ce_f32");
        assert_close(
            &logits.grad().unwrap(),
            &golden.get("ce_f32.grad_logits"),
            dev,
            1e-7,
            1e-5,
        );
    }

    fn cross_entropy_is_nll_of_log_softmax(dev) {
        let logits = randn64(&[5, 7], 21).to_device(dev).unwrap();
        let target = labels(vec![0, 6, 3, 3, 1], &[5]).to_device(dev).unwrap();
        let ce = F::cross_entropy(&logits, &target).unwrap();
        let nll = F::nll_loss(&F::log_softmax(&logits, 1).unwrap(), &target).unwrap();
        assert_close(&ce, &nll, dev, 1e-14, 1e-14);
    }

    fn nll_loss_matches_pytorch(dev) {
        let golden = Golden::load("functional");
        for case in ["nll_2d", "nll_3d"] {
            let lp = golden.on(&format!("{case}.log_probs"), dev).requires_grad();
            let loss = F::nll_loss(&lp, &golden.on(&format!("{case}.target"), dev)).unwrap();
            assert_close(&loss, &golden.get(&format!("{case}.out")), dev, 1e-14, 1e-12);
            backprop(&loss, &golden, case);
            let want = golden.get(&format!("{case}.grad_log_probs"));
            assert_close(&lp.grad().unwrap(), &want, dev, 1e-14, 1e-12);
        }
    }

    fn mse_loss_matches_pytorch_with_both_gradients(dev) {
        let golden = Golden::load("functional");
        let input = golden.on("mse.input", dev).requires_grad();
        let target = golden.on("mse.target", dev).requires_grad();
        let loss = F::mse_loss(&input, &target).unwrap();
        assert_close(&loss, &golden.get("mse.out"), dev, 1e-14, 1e-12);
        backprop(&loss, &golden, "mse");
        let want = golden.get("mse.grad_input");
        assert_close(&input.grad().unwrap(), &want, dev, 1e-14, 1e-12);
        let want = golden.get("mse.grad_target");
        assert_close(&target.grad().unwrap(), &want, dev, 1e-14, 1e-12);
    }
}

#[test]
fn gradcheck_losses_f64() {
    let opts = GradcheckOpts::default();
    let logits = randn64(&[4, 5], 22);
    let target = labels(vec![4, 0, 2, 2], &[4]);
    for smoothing in [0.0, 0.2, 1.0] {
        gradcheck(
            |t| F::cross_entropy_with(&t[0], &t[1], smoothing),
            &[logits.clone(), target.clone()],
            opts,
        )
        .unwrap();
    }
    // Spatial targets through a non-contiguous logits view.
    let spatial = randn64(&[2, 3, 2, 3], 23);
    let spatial_target = labels(vec![0, 1, 2, 2, 1, 0, 2, 2, 0, 1, 1, 0], &[2, 3, 2]);
    gradcheck(
        |t| F::cross_entropy_with(&t[0].transpose(2, 3)?, &t[1], 0.1),
        &[spatial, spatial_target],
        opts,
    )
    .unwrap();
    gradcheck(
        |t| F::nll_loss(&t[0], &t[1]),
        &[logits.clone(), target.clone()],
        opts,
    )
    .unwrap();
    gradcheck(
        |t| F::mse_loss(&t[0], &t[1]),
        &[randn64(&[3, 2, 5], 24), randn64(&[3, 2, 5], 25)],
        opts,
    )
    .unwrap();
}

#[test]
fn targets_out_of_range_name_target() {
    let logits = randn64(&[3, 4], 26);
    for bad in [vec![0, 4, 1], vec![-1, 0, 1], vec![2, 3, -100]] {
        let target = labels(bad, &[3]);
        assert_invalid_arg(F::cross_entropy(&logits, &target), "target");
        assert_invalid_arg(F::nll_loss(&logits, &target), "target");
    }
    // The message says which index and how many classes.
    let err = F::cross_entropy(&logits, &labels(vec![0, 7, 1], &[3])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains('7') && msg.contains("4 classes"), "{msg}");
}

#[test]
fn targets_of_the_wrong_dtype_or_shape_name_target() {
    let logits = randn64(&[3, 4], 27);
    let float_target = Tensor::from_vec(vec![0.0f64, 1.0, 2.0], &[3], &CPU).unwrap();
    assert_invalid_arg(F::cross_entropy(&logits, &float_target), "target");
    assert_invalid_arg(F::nll_loss(&logits, &float_target), "target");
    // Batch size mismatch, extra dims, and a 4-D input with 2-D targets.
    assert_invalid_arg(
        F::cross_entropy(&logits, &labels(vec![0, 1], &[2])),
        "target",
    );
    assert_invalid_arg(
        F::cross_entropy(&logits, &labels(vec![0, 1, 2], &[3, 1])),
        "target",
    );
    let spatial = randn64(&[2, 4, 3, 3], 28);
    assert_invalid_arg(
        F::cross_entropy(&spatial, &labels(vec![0, 1], &[2])),
        "target",
    );
    let scalar = Tensor::scalar(1.0f64, &CPU).unwrap();
    assert_invalid_arg(F::cross_entropy(&scalar, &labels(vec![0], &[])), "input");
}

#[test]
fn label_smoothing_outside_unit_interval_is_an_error() {
    let logits = randn64(&[2, 3], 29);
    let target = labels(vec![0, 2], &[2]);
    for bad in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert_invalid_arg(
            F::cross_entropy_with(&logits, &target, bad),
            "label_smoothing",
        );
    }
}

#[test]
fn integer_logits_and_mismatched_mse_operands_are_errors() {
    let int_logits = labels(vec![1, 2, 3, 4], &[2, 2]);
    let target = labels(vec![0, 1], &[2]);
    assert!(matches!(
        F::cross_entropy(&int_logits, &target),
        Err(Error::UnsupportedDType { .. })
    ));
    let a = randn64(&[2, 3], 30);
    assert_invalid_arg(F::mse_loss(&a, &randn64(&[3, 2], 31)), "target");
    assert_invalid_arg(F::mse_loss(&a, &randn64(&[1, 3], 31)), "target");
    let a32 = a.to_dtype(DType::F32).unwrap();
    assert!(matches!(
        F::mse_loss(&a32, &a),
        Err(Error::DTypeMismatch { .. })
    ));
    assert!(matches!(
        F::mse_loss(&int_logits, &int_logits),
        Err(Error::UnsupportedDType { .. })
    ));
}

device_test! {
    fn empty_batch_gives_nan_like_pytorch(dev) {
        let logits = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap();
        let target = labels(vec![], &[0]).to_device(dev).unwrap();
        let loss = F::cross_entropy(&logits, &target).unwrap();
        assert_eq!(loss.device(), *dev);
        assert!(loss.item::<f32>().unwrap().is_nan());
    }

    fn targets_out_of_range_are_errors_on_every_device(dev) {
        // The range check reads the targets wherever they live.
        let logits = randn64(&[3, 4], 26).to_device(dev).unwrap();
        let target = labels(vec![0, 4, 1], &[3]).to_device(dev).unwrap();
        assert_invalid_arg(F::cross_entropy(&logits, &target), "target");
        assert_invalid_arg(F::nll_loss(&logits, &target), "target");
    }
}
