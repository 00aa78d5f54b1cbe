//! cross_entropy (with and without label smoothing, and with every option of
//! cross_entropy_opts), nll_loss and mse_loss against PyTorch
//! (scripts/golden/functional.py and scripts/golden/transformer_ops.py hold each
//! case's snippet), against finite differences in f64, and on bad input.

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
    // -100 is the default ignore_index (ignored, not an error); -101 is out of range.
    for bad in [vec![0, 4, 1], vec![-1, 0, 1], vec![2, 3, -101]] {
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

// ---------------------------------------------------------------- cross_entropy_opts
// Golden values: scripts/golden/transformer_ops.py.

/// One `cross_entropy_opts` golden case on `dev`: the loss (NaN where PyTorch's is)
/// and the logits' gradient of `(loss * gout).sum()`. `stored` is the logits' key,
/// `view` what the op sees of them (and maps their gradient alike).
#[allow(clippy::too_many_arguments)]
fn check_ce_opts(
    case: &str,
    dev: &Device,
    stored: &str,
    view: impl Fn(&Tensor) -> Tensor,
    weighted: bool,
    ignore_index: i64,
    smoothing: f64,
    reduction: F::Reduction,
    tol: (f64, f64),
) {
    let golden = Golden::load("transformer_ops");
    let key = |name: &str| format!("{case}.{name}");
    let leaf = golden.on(&key(stored), dev).requires_grad();
    let target = golden.on(&key("target"), dev);
    let w = weighted.then(|| golden.on(&key("w"), dev));
    let mut opts = F::CrossEntropyOpts::new()
        .ignore_index(ignore_index)
        .label_smoothing(smoothing)
        .reduction(reduction);
    if let Some(w) = &w {
        opts = opts.weight(w);
    }
    let loss = F::cross_entropy_opts(&view(&leaf), &target, opts).unwrap();
    let want = golden.get(&key("out"));
    assert_eq!(loss.shape(), want.shape());
    let (atol, rtol) = tol;
    if want.shape().is_empty() && common::host(&want)[0].is_nan() {
        assert!(
            common::host(&loss)[0].is_nan(),
            "{case}: PyTorch's loss is NaN"
        );
    } else {
        assert_close(&loss, &want, dev, atol, rtol);
    }
    loss.mul(&golden.on(&key("gout"), dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grad = view(&leaf.grad().unwrap());
    assert_close(&grad, &golden.get(&key("grad_logits")), dev, atol, rtol);
}

fn same(x: &Tensor) -> Tensor {
    x.clone()
}

const F64_TOL: (f64, f64) = (1e-13, 1e-11);

device_test! {
    fn cross_entropy_opts_weight_ignore_smoothing_and_each_reduction_match_pytorch(dev) {
        use F::Reduction::{Mean, None, Sum};
        check_ce_opts("ce_w_sum", dev, "logits", same, true, -100, 0.1, Sum, F64_TOL);
        // ignore_index inside the classes: those targets are skipped.
        check_ce_opts("ce_w_mean_ii", dev, "logits", same, true, 2, 0.2, Mean, F64_TOL);
        check_ce_opts("ce_w_none", dev, "logits", same, true, -100, 0.0, None, F64_TOL);
        check_ce_opts("ce_mean_ignore", dev, "logits", same, false, -100, 0.0, Mean, F64_TOL);
        check_ce_opts("ce_smooth_none", dev, "logits", same, false, -1, 0.3, None, F64_TOL);
        check_ce_opts("ce_w_smooth_f32", dev, "logits", same, true, -100, 0.1, Mean, (1e-6, 1e-5));
    }

    fn cross_entropy_opts_of_spatial_logits_match_pytorch(dev) {
        use F::Reduction::{Mean, None};
        check_ce_opts("ce_3d_w_smooth", dev, "logits", same, true, -100, 0.1, Mean, F64_TOL);
        check_ce_opts("ce_3d_none", dev, "logits", same, false, -100, 0.0, None, F64_TOL);
    }

    fn cross_entropy_opts_of_non_contiguous_logits_match_pytorch(dev) {
        // PyTorch: logits_store.t() of a (5, 6) store.
        let t = |x: &Tensor| x.transpose(0, 1).unwrap();
        check_ce_opts("ce_noncontig", dev, "logits_store", t, true, -100, 0.1, F::Reduction::Mean, F64_TOL);
    }

    fn cross_entropy_opts_with_every_target_ignored_is_nan_with_zero_gradient(dev) {
        check_ce_opts("ce_all_ignored", dev, "logits", same, true, -100, 0.1, F::Reduction::Mean, F64_TOL);
    }

    fn cross_entropy_and_its_wrappers_agree_with_opts(dev) {
        kiln::manual_seed(81);
        let logits = Tensor::randn(&[5, 4], DType::F32, dev).unwrap();
        let target = labels(vec![0, 3, -100, 2, 1], &[5]).to_device(dev).unwrap();
        let opts = F::CrossEntropyOpts::new();
        let a = F::cross_entropy(&logits, &target).unwrap();
        assert_close(&a, &F::cross_entropy_opts(&logits, &target, opts).unwrap(), dev, 0.0, 0.0);
        let b = F::cross_entropy_with(&logits, &target, 0.2).unwrap();
        let want = F::cross_entropy_opts(&logits, &target, opts.label_smoothing(0.2)).unwrap();
        assert_close(&b, &want, dev, 0.0, 0.0);
        // Sum is Mean times the number of non-ignored targets (4).
        let sum = F::cross_entropy_opts(&logits, &target, opts.reduction(F::Reduction::Sum)).unwrap();
        assert_close(&sum, &a.mul_scalar(4.0).unwrap(), dev, 1e-5, 1e-5);
    }

    fn cross_entropy_opts_in_half_precision_follow_f32(dev) {
        kiln::manual_seed(82);
        let logits = Tensor::randn(&[6, 5], DType::F32, dev).unwrap();
        let w = Tensor::rand(&[5], DType::F32, dev).unwrap().add_scalar(0.5).unwrap();
        let target = labels(vec![0, 3, -100, 2, 1, 4], &[6]).to_device(dev).unwrap();
        let run = |dtype: DType| {
            let x = logits.to_dtype(dtype).unwrap().requires_grad();
            let w = w.to_dtype(dtype).unwrap();
            let opts = F::CrossEntropyOpts::new().weight(&w).label_smoothing(0.1);
            let loss = F::cross_entropy_opts(&x, &target, opts).unwrap();
            assert_eq!(loss.dtype(), dtype);
            loss.backward().unwrap();
            (loss, x.grad().unwrap())
        };
        let (want, want_grad) = run(DType::F32);
        for (dtype, tol) in [(DType::F16, 1e-2), (DType::BF16, 5e-2)] {
            let (loss, grad) = run(dtype);
            common::assert_values("loss", &loss, &want, tol, tol);
            common::assert_values("grad", &grad, &want_grad, tol, tol);
        }
    }

    fn cross_entropy_opts_bad_targets_and_weights_are_errors_on_every_device(dev) {
        let logits = randn64(&[3, 4], 83).to_device(dev).unwrap();
        let opts = F::CrossEntropyOpts::new().ignore_index(1);
        // -100 is not ignored when ignore_index is 1.
        let target = labels(vec![0, -100, 1], &[3]).to_device(dev).unwrap();
        assert_invalid_arg(F::cross_entropy_opts(&logits, &target, opts), "target");
        let target = labels(vec![0, 1, 1], &[3]).to_device(dev).unwrap();
        let w = randn64(&[3], 84).to_device(dev).unwrap();
        assert_invalid_arg(F::cross_entropy_opts(&logits, &target, opts.weight(&w)), "weight");
        let w32 = randn64(&[4], 84).to_dtype(DType::F32).unwrap().to_device(dev).unwrap();
        assert!(F::cross_entropy_opts(&logits, &target, opts.weight(&w32)).is_err());
        assert_invalid_arg(
            F::cross_entropy_opts(&logits, &target, opts.label_smoothing(1.5)),
            "label_smoothing",
        );
    }
}

#[test]
fn gradcheck_cross_entropy_opts_f64() {
    let opts = GradcheckOpts::default();
    let w = randn64(&[4], 85).abs().unwrap().add_scalar(0.5).unwrap();
    let target = labels(vec![0, 3, -100, 2, 1, 3], &[6]);
    let spatial_target = labels(vec![0, 3, -100, 2, 1, 3], &[2, 3]);
    for reduction in [F::Reduction::None, F::Reduction::Mean, F::Reduction::Sum] {
        for smoothing in [0.0, 0.25] {
            let ce = F::CrossEntropyOpts::new()
                .weight(&w)
                .label_smoothing(smoothing)
                .reduction(reduction);
            gradcheck(
                |t| F::cross_entropy_opts(&t[0], &target, ce),
                &[randn64(&[6, 4], 86)],
                opts,
            )
            .unwrap();
            // (N, C, d) logits with the class dimension 1, non-contiguous.
            gradcheck(
                |t| F::cross_entropy_opts(&t[0].transpose(1, 2)?, &spatial_target, ce),
                &[randn64(&[2, 3, 4], 87)],
                opts,
            )
            .unwrap();
        }
    }
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The loss kernels on every float dtype and option against the CPU backend
/// (tests/common/parity.rs), and the check that these tests launch every kernel of
/// kernels/loss.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{DType, Device, Result, Tensor};

    /// Cross entropy (with and without label smoothing) and nll in every float dtype:
    /// many rows with C = 37 (not a multiple of 32), a (N, C, d1, d2) input with the class
    /// dim read in place through a transposed view, and a (C) input; loss and gradient.
    /// An out-of-range target in the last row is an error naming it.
    #[test]
    fn cross_entropy_and_nll_match_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("cross_entropy_and_nll_match_the_cpu_in_every_float_dtype");
        let labels = |shape: &[usize], classes: usize, d: &Device| -> Result<Tensor> {
            let n: usize = shape.iter().product();
            Tensor::from_vec(
                (0..n).map(|i| ((i * 7 + 3) % classes) as i64).collect(),
                shape,
                d,
            )
        };
        /// (leaf shape, transposed dims (a no-op when equal), target shape, classes)
        type Case = (&'static [usize], (usize, usize), &'static [usize], usize);
        let cases: [Case; 3] = [
            (&[300, 37], (0, 0), &[300], 37),
            (&[2, 5, 7, 3], (2, 3), &[2, 3, 7], 5),
            (&[45], (0, 0), &[], 45),
        ];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (case, &(shape, (d0, d1), target_shape, classes)) in cases.iter().enumerate() {
                for (smoothing, nll) in [(0.0, false), (0.1, false), (0.0, true)] {
                    let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                        let leaf = values(shape, dtype, 96 + case as u64)
                            .to_device(d)?
                            .requires_grad();
                        let x = leaf.transpose(d0, d1)?;
                        let target = labels(target_shape, classes, d)?;
                        let loss = if nll {
                            F::nll_loss(&F::log_softmax(&x, usize::from(x.rank() > 1))?, &target)?
                        } else {
                            F::cross_entropy_with(&x, &target, smoothing)?
                        };
                        loss.mul_scalar(3.0)?.backward()?;
                        Ok((loss, leaf.grad().expect("grad")))
                    };
                    let ((lg, gg), (lc, gc)) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                    let what = format!("case {case} {dtype:?} smoothing {smoothing} nll {nll}");
                    assert_close(&format!("loss {what}"), &lg, &lc, atol * 4.0, rtol * 4.0);
                    assert_close(&format!("grad {what}"), &gg, &gc, atol, rtol);
                }
            }
        }
        let logits = values(&[4, 37], DType::F32, 99).to_device(&dev).unwrap();
        let target = Tensor::from_vec(vec![0i64, 36, 1, 40], &[4], &dev).unwrap();
        let msg = F::cross_entropy(&logits, &target).unwrap_err().to_string();
        assert!(msg.contains("40") && msg.contains("37 classes"), "{msg}");
    }

    /// cross_entropy_opts with class weights, ignored targets, label smoothing and each
    /// reduction, on (N, C) and transposed (N, C, d1, d2) logits, in every float dtype.
    #[test]
    fn cross_entropy_opts_match_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("cross_entropy_opts_match_the_cpu_in_every_float_dtype");
        // Every fifth target is ignored (-100).
        let labels = |shape: &[usize], classes: usize, d: &Device| -> Result<Tensor> {
            let n: usize = shape.iter().product();
            let v = (0..n).map(|i| {
                if i % 5 == 2 {
                    -100
                } else {
                    ((i * 7 + 3) % classes) as i64
                }
            });
            Tensor::from_vec(v.collect(), shape, d)
        };
        type Case = (&'static [usize], (usize, usize), &'static [usize], usize);
        let cases: [Case; 2] = [
            (&[300, 37], (0, 0), &[300], 37),
            (&[2, 5, 7, 3], (2, 3), &[2, 3, 7], 5),
        ];
        let reductions = [F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (case, &(shape, (d0, d1), target_shape, classes)) in cases.iter().enumerate() {
                for (reduction, smoothing) in reductions.iter().flat_map(|&r| [(r, 0.0), (r, 0.15)])
                {
                    let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                        let leaf = values(shape, dtype, 61 + case as u64)
                            .to_device(d)?
                            .requires_grad();
                        let x = leaf.transpose(d0, d1)?;
                        let target = labels(target_shape, classes, d)?;
                        let w = values(&[classes], dtype, 62)
                            .abs()?
                            .add_scalar(0.5)?
                            .to_device(d)?;
                        let opts = F::CrossEntropyOpts::new()
                            .weight(&w)
                            .label_smoothing(smoothing)
                            .reduction(reduction);
                        let loss = F::cross_entropy_opts(&x, &target, opts)?;
                        let gout = values(loss.shape(), dtype, 63).to_device(d)?;
                        loss.mul(&gout)?.sum_all()?.backward()?;
                        Ok((loss, leaf.grad().expect("grad")))
                    };
                    let ((lg, gg), (lc, gc)) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                    let what = format!("case {case} {dtype:?} {reduction:?} smoothing {smoothing}");
                    assert_close(&format!("loss {what}"), &lg, &lc, atol * 4.0, rtol * 4.0);
                    assert_close(&format!("grad {what}"), &gg, &gc, atol, rtol);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/loss.cu.
    #[test]
    fn every_loss_kernel_is_launched() {
        let suite: [fn(); 2] = [
            cross_entropy_and_nll_match_the_cpu_in_every_float_dtype,
            cross_entropy_opts_match_the_cpu_in_every_float_dtype,
        ];
        assert_every_kernel_launched("loss", &suite, &[]);
    }
}
