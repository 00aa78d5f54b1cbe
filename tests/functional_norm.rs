//! batch_norm in training and eval, 2-D, 3-D and 4-D, with and without affine
//! parameters, against PyTorch (scripts/golden/functional.py holds each case's
//! snippet): outputs, the in-place running-statistics update, and the gradients of
//! x, weight and bias. Also gradcheck in f64 and bad input.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Result, Tensor};

const CPU: Device = Device::Cpu;
const TOL: (f64, f64) = (1e-13, 1e-11);

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

/// Runs one golden case on `dev`: output, updated running statistics and every
/// gradient.
fn check_case(case: &str, dev: &Device, training: bool, has_weight: bool, has_bias: bool) {
    let golden = Golden::load("functional");
    let key = |name: &str| format!("{case}.{name}");
    let x = golden.on(&key("x"), dev).requires_grad();
    // Fresh copies: the update must land in these tensors' storage.
    let running_mean = golden.on(&key("running_mean"), dev).contiguous().unwrap();
    let running_var = golden.on(&key("running_var"), dev).contiguous().unwrap();
    let weight = has_weight.then(|| golden.on(&key("weight"), dev).requires_grad());
    let bias = has_bias.then(|| golden.on(&key("bias"), dev).requires_grad());
    let momentum = golden.get(&key("momentum")).item::<f64>().unwrap();
    let eps = golden.get(&key("eps")).item::<f64>().unwrap();

    let y = F::batch_norm(
        &x,
        &running_mean,
        &running_var,
        weight.as_ref(),
        bias.as_ref(),
        training,
        momentum,
        eps,
    )
    .unwrap();
    let (atol, rtol) = TOL;
    assert_close(&y, &golden.get(&key("out")), dev, atol, rtol);
    assert_close(
        &running_mean,
        &golden.get(&key("new_running_mean")),
        dev,
        atol,
        rtol,
    );
    assert_close(
        &running_var,
        &golden.get(&key("new_running_var")),
        dev,
        atol,
        rtol,
    );

    y.mul(&golden.on(&key("gout"), dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        &x.grad().unwrap(),
        &golden.get(&key("grad_x")),
        dev,
        atol,
        rtol,
    );
    if let Some(w) = &weight {
        assert_close(
            &w.grad().unwrap(),
            &golden.get(&key("grad_weight")),
            dev,
            atol,
            rtol,
        );
    }
    if let Some(b) = &bias {
        assert_close(
            &b.grad().unwrap(),
            &golden.get(&key("grad_bias")),
            dev,
            atol,
            rtol,
        );
    }
}

device_test! {
    fn batch_norm_2d_training_matches_pytorch(dev) {
        check_case("bn2d_train", dev, true, true, true);
    }

    fn batch_norm_2d_eval_matches_pytorch(dev) {
        check_case("bn2d_eval", dev, false, true, true);
    }

    fn batch_norm_4d_training_matches_pytorch(dev) {
        check_case("bn4d_train", dev, true, true, true);
    }

    fn batch_norm_4d_eval_matches_pytorch(dev) {
        check_case("bn4d_eval", dev, false, true, true);
    }

    fn batch_norm_without_affine_parameters_matches_pytorch(dev) {
        check_case("bn4d_train_noaffine", dev, true, false, false);
        check_case("bn3d_train_weight_only", dev, true, true, false);
        check_case("bn4d_eval_bias_only", dev, false, false, true);
    }

    fn training_updates_running_stats_even_without_grad(dev) {
        let x = randn64(&[4, 2, 3, 3], 41).to_device(dev).unwrap();
        let rm = Tensor::zeros(&[2], DType::F64, dev).unwrap();
        let rv = Tensor::ones(&[2], DType::F64, dev).unwrap();
        {
            let _guard = kiln::no_grad();
            F::batch_norm(&x, &rm, &rv, None, None, true, 1.0, 1e-5).unwrap();
        }
        // momentum 1: the running stats become the batch stats (unbiased variance).
        let x3 = x.transpose(0, 1).unwrap().reshape(&[2, 36]).unwrap();
        let mean = x3.mean(1, false).unwrap();
        assert_close(&rm, &mean, dev, 1e-14, 1e-12);
        let centred = x3.sub(&mean.unsqueeze(1).unwrap()).unwrap();
        let unbiased = centred
            .mul(&centred)
            .unwrap()
            .sum(1, false)
            .unwrap()
            .div_scalar(35.0)
            .unwrap();
        assert_close(&rv, &unbiased, dev, 1e-14, 1e-12);
    }

    fn running_stats_views_are_updated_in_place(dev) {
        // The stats live in a (2, 3) buffer; the op gets row 1 as a view.
        let buffer = Tensor::zeros(&[2, 3], DType::F64, dev).unwrap();
        let rm = buffer.narrow(0, 1, 1).unwrap().squeeze(0).unwrap();
        let rv = Tensor::ones(&[3], DType::F64, dev).unwrap();
        let x = randn64(&[5, 3], 42).to_device(dev).unwrap();
        F::batch_norm(&x, &rm, &rv, None, None, true, 0.5, 1e-5).unwrap();
        let want = x.mean(0, false).unwrap().mul_scalar(0.5).unwrap();
        assert_close(
            &buffer.narrow(0, 1, 1).unwrap().squeeze(0).unwrap(),
            &want,
            dev,
            1e-14,
            1e-12,
        );
        assert_eq!(common::host(&buffer.narrow(0, 0, 1).unwrap()), vec![0.0; 3]);
    }

    fn eval_uses_running_stats_exactly(dev) {
        // By hand: (x - 1) / sqrt(4 + 0) * 3 + 0.5 for one channel.
        let x = Tensor::from_vec(vec![1.0f64, 3.0, -1.0, 5.0], &[4, 1], dev).unwrap();
        let rm = Tensor::full(&[1], 1.0, DType::F64, dev).unwrap();
        let rv = Tensor::full(&[1], 4.0, DType::F64, dev).unwrap();
        let w = Tensor::full(&[1], 3.0, DType::F64, dev).unwrap();
        let b = Tensor::full(&[1], 0.5, DType::F64, dev).unwrap();
        let y = F::batch_norm(&x, &rm, &rv, Some(&w), Some(&b), false, 0.1, 0.0).unwrap();
        assert_close(&y, &Tensor::from_vec(vec![0.5f64, 3.5, -2.5, 6.5], &[4, 1], dev).unwrap(), dev, 0.0, 0.0);
    }
}

/// Fresh running statistics for `c` channels: constants, not differentiated (each
/// call gets its own, since training updates them in place).
fn stats(c: usize) -> Result<(Tensor, Tensor)> {
    Ok((
        Tensor::full(&[c], 0.3, DType::F64, &CPU)?,
        Tensor::full(&[c], 1.7, DType::F64, &CPU)?,
    ))
}

#[test]
fn gradcheck_batch_norm_f64() {
    let opts = GradcheckOpts::default();
    let x4 = randn64(&[3, 2, 2, 3], 43);
    let x2 = randn64(&[5, 3], 44);
    let (w, b) = (randn64(&[2], 45), randn64(&[2], 46));
    for training in [true, false] {
        gradcheck(
            |t| {
                let (rm, rv) = stats(2)?;
                F::batch_norm(
                    &t[0],
                    &rm,
                    &rv,
                    Some(&t[1]),
                    Some(&t[2]),
                    training,
                    0.1,
                    1e-5,
                )
            },
            &[x4.clone(), w.clone(), b.clone()],
            opts,
        )
        .unwrap_or_else(|e| panic!("4-D, training {training}: {e}"));
        gradcheck(
            |t| {
                let (rm, rv) = stats(3)?;
                F::batch_norm(&t[0], &rm, &rv, None, None, training, 0.1, 1e-5)
            },
            std::slice::from_ref(&x2),
            opts,
        )
        .unwrap_or_else(|e| panic!("2-D, training {training}: {e}"));
        // A non-contiguous input.
        gradcheck(
            |t| {
                let (rm, rv) = stats(2)?;
                let x = t[0].transpose(2, 3)?;
                F::batch_norm(&x, &rm, &rv, Some(&t[1]), None, training, 0.1, 1e-5)
            },
            &[x4.clone(), w.clone()],
            opts,
        )
        .unwrap_or_else(|e| panic!("transposed, training {training}: {e}"));
    }
}

#[test]
fn bad_arguments_name_themselves_and_leave_stats_untouched() {
    let x = randn64(&[4, 3, 2, 2], 47);
    let rm = Tensor::zeros(&[3], DType::F64, &CPU).unwrap();
    let rv = Tensor::ones(&[3], DType::F64, &CPU).unwrap();
    let wrong = Tensor::ones(&[4], DType::F64, &CPU).unwrap();
    let bn = |x: &Tensor,
              rm: &Tensor,
              rv: &Tensor,
              w: Option<&Tensor>,
              b: Option<&Tensor>,
              training: bool,
              momentum: f64,
              eps: f64| F::batch_norm(x, rm, rv, w, b, training, momentum, eps);
    assert_invalid_arg(
        bn(&x, &wrong, &rv, None, None, true, 0.1, 1e-5),
        "running_mean",
    );
    assert_invalid_arg(
        bn(&x, &rm, &wrong, None, None, true, 0.1, 1e-5),
        "running_var",
    );
    assert_invalid_arg(
        bn(&x, &rm, &rv, Some(&wrong), None, true, 0.1, 1e-5),
        "weight",
    );
    assert_invalid_arg(
        bn(&x, &rm, &rv, None, Some(&wrong), false, 0.1, 1e-5),
        "bias",
    );
    for m in [-0.1, 1.5, f64::NAN] {
        assert_invalid_arg(bn(&x, &rm, &rv, None, None, true, m, 1e-5), "momentum");
    }
    for e in [-1e-5, f64::NAN, f64::INFINITY] {
        assert_invalid_arg(bn(&x, &rm, &rv, None, None, true, 0.1, e), "eps");
    }
    let one_per_channel = randn64(&[1, 3], 48);
    assert_invalid_arg(
        bn(&one_per_channel, &rm, &rv, None, None, true, 0.1, 1e-5),
        "input",
    );
    // ...which is fine in eval, where batch statistics are not needed.
    assert!(bn(&one_per_channel, &rm, &rv, None, None, false, 0.1, 1e-5).is_ok());
    let rank1 = randn64(&[3], 49);
    assert_invalid_arg(bn(&rank1, &rm, &rv, None, None, false, 0.1, 1e-5), "input");
    // dtype mismatches say which argument.
    let rm32 = rm.to_dtype(DType::F32).unwrap();
    match bn(&x, &rm32, &rv, None, None, true, 0.1, 1e-5) {
        Err(e @ Error::DTypeMismatch { .. }) => {
            assert!(e.to_string().contains("running_mean"), "{e}")
        }
        other => panic!("expected a dtype mismatch, got {other:?}"),
    }
    let ints = Tensor::zeros(&[4, 3], DType::I64, &CPU).unwrap();
    assert!(matches!(
        bn(&ints, &rm, &rv, None, None, true, 0.1, 1e-5),
        Err(Error::UnsupportedDType { .. })
    ));
    // None of the failed calls touched the running statistics.
    assert_eq!(rm.to_vec::<f64>().unwrap(), vec![0.0; 3]);
    assert_eq!(rv.to_vec::<f64>().unwrap(), vec![1.0; 3]);
}

// ---------------------------------------------------------------- layer_norm, rms_norm
// Golden values: scripts/golden/transformer_ops.py (each case's PyTorch snippet there).

/// A layer-norm (`rms` false) or RMS-norm golden case on `dev`: the output and the
/// gradients of x, weight and (layer norm) bias. `view` turns the stored input into
/// the one the op sees (the identity, or the permute of a non-contiguous case).
#[allow(clippy::too_many_arguments)]
fn check_row_norm(
    case: &str,
    dev: &Device,
    rms: bool,
    norm: &[usize],
    affine: bool,
    eps: Option<f64>,
    view: impl Fn(&Tensor) -> Tensor,
    tol: (f64, f64),
) {
    let golden = Golden::load("transformer_ops");
    let key = |name: &str| format!("{case}.{name}");
    let stored = if case.ends_with("noncontig") {
        "x_store"
    } else {
        "x"
    };
    let x_leaf = golden.on(&key(stored), dev).requires_grad();
    let x = view(&x_leaf);
    let w = affine.then(|| golden.on(&key("w"), dev).requires_grad());
    let b = (affine && !rms).then(|| golden.on(&key("b"), dev).requires_grad());
    let y = if rms {
        F::rms_norm(&x, norm, w.as_ref(), eps).unwrap()
    } else {
        F::layer_norm(&x, norm, w.as_ref(), b.as_ref(), eps.unwrap()).unwrap()
    };
    let (atol, rtol) = tol;
    assert_close(&y, &golden.get(&key("out")), dev, atol, rtol);
    y.mul(&golden.on(&key("gout"), dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grad_x = view(&x_leaf.grad().unwrap());
    assert_close(&grad_x, &golden.get(&key("grad_x")), dev, atol, rtol);
    if let Some(w) = &w {
        assert_close(
            &w.grad().unwrap(),
            &golden.get(&key("grad_w")),
            dev,
            atol,
            rtol,
        );
    }
    if let Some(b) = &b {
        assert_close(
            &b.grad().unwrap(),
            &golden.get(&key("grad_b")),
            dev,
            atol,
            rtol,
        );
    }
}

fn same(x: &Tensor) -> Tensor {
    x.clone()
}

/// PyTorch's `x_store.permute(1, 2, 0)` of the non-contiguous cases (also maps the
/// stored input's gradient to the view's, which the golden file holds).
fn permuted(x: &Tensor) -> Tensor {
    x.permute(&[1, 2, 0]).unwrap()
}

const F64_TOL: (f64, f64) = (1e-12, 1e-10);
const F32_TOL: (f64, f64) = (2e-5, 1e-4);

device_test! {
    fn layer_norm_matches_pytorch(dev) {
        check_row_norm("ln_3d", dev, false, &[8], true, Some(1e-5), same, F64_TOL);
        check_row_norm("ln_two_dims", dev, false, &[4, 5], true, Some(1e-3), same, F64_TOL);
        check_row_norm("ln_no_affine", dev, false, &[6], false, Some(1e-5), same, F64_TOL);
        check_row_norm("ln_wide", dev, false, &[300], true, Some(1e-5), same, F64_TOL);
        check_row_norm("ln_f32", dev, false, &[16], true, Some(1e-5), same, F32_TOL);
    }

    fn layer_norm_of_empty_and_non_contiguous_inputs_matches_pytorch(dev) {
        // No rows: an empty output and zero weight/bias gradients.
        check_row_norm("ln_empty", dev, false, &[8], true, Some(1e-5), same, F64_TOL);
        check_row_norm("ln_noncontig", dev, false, &[8], true, Some(1e-5), permuted, F64_TOL);
    }

    fn rms_norm_matches_pytorch(dev) {
        check_row_norm("rms_3d", dev, true, &[8], true, None, same, F64_TOL);
        check_row_norm("rms_eps", dev, true, &[4, 5], true, Some(1e-3), same, F64_TOL);
        check_row_norm("rms_no_affine", dev, true, &[6], false, Some(1e-6), same, F64_TOL);
        check_row_norm("rms_wide", dev, true, &[300], true, None, same, F64_TOL);
        check_row_norm("rms_f32", dev, true, &[16], true, None, same, F32_TOL);
    }

    fn rms_norm_of_empty_and_non_contiguous_inputs_matches_pytorch(dev) {
        check_row_norm("rms_empty", dev, true, &[8], true, None, same, F64_TOL);
        check_row_norm("rms_noncontig", dev, true, &[8], true, Some(1e-5), permuted, F64_TOL);
    }

    fn layer_norm_and_rms_norm_in_half_precision_follow_f32(dev) {
        // f16/bf16 compute in f32 and round once: compare with the f32 result.
        kiln::manual_seed(61);
        let x = Tensor::randn(&[6, 40], DType::F32, dev).unwrap();
        let w = Tensor::randn(&[40], DType::F32, dev).unwrap();
        let b = Tensor::randn(&[40], DType::F32, dev).unwrap();
        let ln = F::layer_norm(&x, &[40], Some(&w), Some(&b), 1e-5).unwrap();
        let rms = F::rms_norm(&x, &[40], Some(&w), None).unwrap();
        for (dtype, tol) in [(DType::F16, 2e-2), (DType::BF16, 1e-1)] {
            let h = |t: &Tensor| t.to_dtype(dtype).unwrap();
            let got = F::layer_norm(&h(&x), &[40], Some(&h(&w)), Some(&h(&b)), 1e-5).unwrap();
            assert_eq!(got.dtype(), dtype);
            common::assert_values("layer_norm half", &got, &ln, tol, tol);
            let got = F::rms_norm(&h(&x), &[40], Some(&h(&w)), None).unwrap();
            common::assert_values("rms_norm half", &got, &rms, tol, tol);
        }
    }

    fn layer_norm_modules_have_pytorchs_parameters_and_call_the_functional_ops(dev) {
        use kiln::nn::{Forward, Module};
        kiln::manual_seed(62);
        let x = Tensor::randn(&[2, 3, 8], DType::F32, dev).unwrap();
        let ln = kiln::nn::LayerNorm::new(8, dev).unwrap();
        let names: Vec<String> = ln.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(ln.eps(), 1e-5);
        let want = F::layer_norm(&x, &[8], None, None, 1e-5).unwrap();
        assert_close(&ln.forward(&x).unwrap(), &want, dev, 1e-6, 1e-6);
        let rms = kiln::nn::RMSNorm::new(8, dev).unwrap();
        let names: Vec<String> = rms.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight"]);
        let want = F::rms_norm(&x, &[8], None, None).unwrap();
        assert_close(&rms.forward(&x).unwrap(), &want, dev, 1e-6, 1e-6);
        let plain = kiln::nn::LayerNorm::with_options(&[3, 8], 1e-3, false, true, dev).unwrap();
        assert!(plain.parameters().is_empty());
        let want = F::layer_norm(&x, &[3, 8], None, None, 1e-3).unwrap();
        assert_close(&plain.forward(&x).unwrap(), &want, dev, 0.0, 0.0);
    }

    fn layer_norm_backward_is_deterministic(dev) {
        // Enough rows for several partial-sum blocks on CUDA: two runs agree bit for bit.
        kiln::manual_seed(63);
        let x = Tensor::randn(&[600, 48], DType::F32, dev).unwrap();
        let run = || {
            let w = Tensor::ones(&[48], DType::F32, dev).unwrap().requires_grad();
            let b = Tensor::zeros(&[48], DType::F32, dev).unwrap().requires_grad();
            let y = F::layer_norm(&x, &[48], Some(&w), Some(&b), 1e-5).unwrap();
            y.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
            (common::host(&w.grad().unwrap()), common::host(&b.grad().unwrap()))
        };
        assert_eq!(run(), run());
    }
}

#[test]
fn gradcheck_layer_norm_and_rms_norm_f64() {
    let opts = GradcheckOpts::default();
    let x = randn64(&[3, 2, 5], 64);
    let (w, b) = (randn64(&[2, 5], 65), randn64(&[2, 5], 66));
    gradcheck(
        |t| F::layer_norm(&t[0], &[2, 5], Some(&t[1]), Some(&t[2]), 1e-5),
        &[x.clone(), w.clone(), b],
        opts,
    )
    .unwrap();
    gradcheck(
        |t| F::rms_norm(&t[0], &[2, 5], Some(&t[1]), Some(1e-5)),
        &[x.clone(), w],
        opts,
    )
    .unwrap();
    // Non-contiguous input, no affine parameters.
    gradcheck(
        |t| F::layer_norm(&t[0].transpose(0, 2)?, &[3], None, None, 1e-5),
        std::slice::from_ref(&x),
        opts,
    )
    .unwrap();
    gradcheck(
        |t| F::rms_norm(&t[0].transpose(0, 2)?, &[3], None, None),
        &[x],
        opts,
    )
    .unwrap();
}

#[test]
fn layer_norm_bad_arguments_name_the_argument() {
    let x = randn64(&[2, 3, 4], 67);
    let w = randn64(&[4], 68);
    assert_invalid_arg(
        F::layer_norm(&x, &[3], None, None, 1e-5),
        "normalized_shape",
    );
    assert_invalid_arg(F::layer_norm(&x, &[], None, None, 1e-5), "normalized_shape");
    assert_invalid_arg(
        F::layer_norm(&x, &[1, 2, 3, 4], None, None, 1e-5),
        "normalized_shape",
    );
    assert_invalid_arg(
        F::layer_norm(&x, &[4], Some(&randn64(&[3], 1)), None, 1e-5),
        "weight",
    );
    assert_invalid_arg(
        F::layer_norm(&x, &[4], Some(&w), Some(&randn64(&[2, 2], 1)), 1e-5),
        "bias",
    );
    assert_invalid_arg(F::layer_norm(&x, &[4], None, None, -1.0), "eps");
    assert_invalid_arg(F::layer_norm(&x, &[4], None, None, f64::NAN), "eps");
    assert_invalid_arg(F::rms_norm(&x, &[2], None, None), "normalized_shape");
    assert_invalid_arg(
        F::rms_norm(&x, &[4], Some(&randn64(&[2], 1)), None),
        "weight",
    );
    assert_invalid_arg(F::rms_norm(&x, &[4], None, Some(f64::INFINITY)), "eps");
    // A weight of another dtype, and an integer input.
    let w32 = w.to_dtype(DType::F32).unwrap();
    assert!(F::layer_norm(&x, &[4], Some(&w32), None, 1e-5).is_err());
    let ints = Tensor::from_vec(vec![1i64, 2, 3, 4], &[1, 4], &CPU).unwrap();
    assert!(F::rms_norm(&ints, &[4], None, None).is_err());
    let dev = Device::Cpu;
    assert_invalid_arg(
        kiln::nn::LayerNorm::with_options(&[], 1e-5, true, true, &dev),
        "normalized_shape",
    );
    assert_invalid_arg(kiln::nn::LayerNorm::new(0, &dev), "normalized_shape");
    assert_invalid_arg(
        kiln::nn::LayerNorm::with_options(&[4], -1.0, true, true, &dev),
        "eps",
    );
    assert_invalid_arg(
        kiln::nn::RMSNorm::with_options(&[4], Some(f64::NAN), true, &dev),
        "eps",
    );
}
