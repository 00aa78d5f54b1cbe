//! cross_entropy (with and without label smoothing), nll_loss and mse_loss against
//! PyTorch (scripts/golden/functional.py holds each case's snippet), against finite
//! differences in f64, and on bad input.

mod common;

use common::{assert_close, Golden};
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
    loss.mul(&golden.get(&format!("{case}.gout")))
        .unwrap()
        .backward()
        .unwrap();
}

fn check_cross_entropy(case: &str, atol: f64, rtol: f64) {
    let golden = Golden::load("functional");
    let logits = golden.get(&format!("{case}.logits")).requires_grad();
    let target = golden.get(&format!("{case}.target"));
    let smoothing = golden
        .get(&format!("{case}.smoothing"))
        .item::<f64>()
        .unwrap();
    let loss = F::cross_entropy_with(&logits, &target, smoothing).unwrap();
    assert_eq!(loss.shape(), &[] as &[usize]);
    assert_close(&loss, &golden.get(&format!("{case}.out")), atol, rtol);
    backprop(&loss, &golden, case);
    let want = golden.get(&format!("{case}.grad_logits"));
    assert_close(&logits.grad().unwrap(), &want, atol, rtol);
}

#[test]
fn cross_entropy_matches_pytorch_2d() {
    check_cross_entropy("ce_2d", 1e-14, 1e-12);
}

#[test]
fn cross_entropy_with_label_smoothing_matches_pytorch() {
    check_cross_entropy("ce_2d_smooth", 1e-14, 1e-12);
    check_cross_entropy("ce_2d_smooth_full", 1e-14, 1e-12);
    check_cross_entropy("ce_4d_smooth", 1e-14, 1e-12);
}

#[test]
fn cross_entropy_matches_pytorch_for_spatial_and_unbatched_inputs() {
    check_cross_entropy("ce_4d", 1e-14, 1e-12);
    check_cross_entropy("ce_1d", 1e-14, 1e-12);
}

#[test]
fn cross_entropy_matches_pytorch_f32() {
    let golden = Golden::load("functional");
    let logits = golden.get("ce_f32.logits").requires_grad();
    let loss = F::cross_entropy(&logits, &golden.get("ce_f32.target")).unwrap();
    assert_eq!(loss.dtype(), DType::F32);
    assert_close(&loss, &golden.get("ce_f32.out"), 1e-6, 1e-6);
    backprop(&loss, &golden, "ce_f32");
    assert_close(
        &logits.grad().unwrap(),
        &golden.get("ce_f32.grad_logits"),
        1e-7,
        1e-5,
    );
}

#[test]
fn cross_entropy_is_nll_of_log_softmax() {
    let logits = randn64(&[5, 7], 21);
    let target = labels(vec![0, 6, 3, 3, 1], &[5]);
    let ce = F::cross_entropy(&logits, &target).unwrap();
    let nll = F::nll_loss(&F::log_softmax(&logits, 1).unwrap(), &target).unwrap();
    assert_close(&ce, &nll, 1e-14, 1e-14);
}

#[test]
fn nll_loss_matches_pytorch() {
    let golden = Golden::load("functional");
    for case in ["nll_2d", "nll_3d"] {
        let lp = golden.get(&format!("{case}.log_probs")).requires_grad();
        let loss = F::nll_loss(&lp, &golden.get(&format!("{case}.target"))).unwrap();
        assert_close(&loss, &golden.get(&format!("{case}.out")), 1e-14, 1e-12);
        backprop(&loss, &golden, case);
        let want = golden.get(&format!("{case}.grad_log_probs"));
        assert_close(&lp.grad().unwrap(), &want, 1e-14, 1e-12);
    }
}

#[test]
fn mse_loss_matches_pytorch_with_both_gradients() {
    let golden = Golden::load("functional");
    let input = golden.get("mse.input").requires_grad();
    let target = golden.get("mse.target").requires_grad();
    let loss = F::mse_loss(&input, &target).unwrap();
    assert_close(&loss, &golden.get("mse.out"), 1e-14, 1e-12);
    backprop(&loss, &golden, "mse");
    assert_close(
        &input.grad().unwrap(),
        &golden.get("mse.grad_input"),
        1e-14,
        1e-12,
    );
    assert_close(
        &target.grad().unwrap(),
        &golden.get("mse.grad_target"),
        1e-14,
        1e-12,
    );
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

#[test]
fn empty_batch_gives_nan_like_pytorch() {
    let logits = Tensor::zeros(&[0, 3], DType::F32, &CPU).unwrap();
    let target = labels(vec![], &[0]);
    let loss = F::cross_entropy(&logits, &target).unwrap();
    assert!(loss.item::<f32>().unwrap().is_nan());
}
