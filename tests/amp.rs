//! Mixed precision against PyTorch (scripts/golden/amp.py): autocast's forward and
//! backward of a small CNN in BF16 (`torch.autocast("cpu", dtype=torch.bfloat16)`),
//! GradScaler's skipped step, backoff and growth; and autocast's dtype policies,
//! nesting and argument errors. Every golden test runs on every device.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::amp::{GradScaler, GradScalerState};
use kiln::nn::functional as F;
use kiln::nn::Conv2dOpts;
use kiln::optim::{Optimizer, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};

/// BF16 keeps 8 significant bits: one rounding is 2^-8 ≈ 3.9e-3 of the value. kiln
/// and PyTorch round the same products but sum them in another order and round a
/// fused bias add once where kiln rounds twice, so a value may differ by a few
/// roundings: 2^-6 ≈ 1.6e-2 relative, with the same absolute floor for values near 0.
const BF16_TOL: f64 = 1.6e-2;

/// conv → relu → max_pool → flatten → linear, the golden CNN.
fn cnn(
    x: &Tensor,
    conv_w: &Tensor,
    conv_b: &Tensor,
    fc_w: &Tensor,
    fc_b: &Tensor,
) -> Result<Tensor> {
    let h = F::conv2d(x, conv_w, Some(conv_b), Conv2dOpts::new().padding(1))?;
    let h = F::max_pool2d(&F::relu(&h)?, 2, 2, 0)?;
    F::linear(&h.flatten(1, 3)?, fc_w, Some(fc_b))
}

/// `Err(InvalidArgument)` naming `name`.
#[track_caller]
fn assert_arg_err<T: std::fmt::Debug>(r: Result<T>, name: &str) {
    match r {
        Err(Error::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
        other => panic!("expected an InvalidArgument error naming {name}, got {other:?}"),
    }
}

/// Tells `scaler` that a loss was scaled in this iteration, for tests whose gradients
/// are made directly and stand for scaled ones (`unscale_` and `step` refuse
/// gradients without a `scale` since the last `update`).
fn as_if_scaled(scaler: &GradScaler, dev: &Device) {
    scaler
        .scale(&Tensor::zeros(&[], DType::F32, dev).unwrap())
        .unwrap();
}

/// A leaf of `values` (converted to `dtype`) whose gradient is `grad`: `backward` of
/// `sum(p · grad)`.
fn param_with_grad(values: &[f32], grad: &[f32], dtype: DType, dev: &Device) -> Tensor {
    let n = values.len();
    let p = Tensor::from_vec(values.to_vec(), &[n], dev)
        .and_then(|t| t.to_dtype(dtype))
        .unwrap()
        .requires_grad();
    let g = Tensor::from_vec(grad.to_vec(), &[n], dev)
        .and_then(|t| t.to_dtype(dtype))
        .unwrap();
    p.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
    p
}

device_test! {
    /// The CNN under `autocast(BF16)` from f32 master weights: BF16 logits, an f32
    /// loss, f32 gradients on the f32 weights, all within BF16's rounding of
    /// PyTorch's CPU autocast.
    fn autocast_cnn_forward_and_backward_match_pytorch(dev) {
        let g = Golden::load("amp");
        let x = g.on("cnn.x", dev);
        let labels = g.on("cnn.labels", dev);
        let params: Vec<Tensor> = ["conv_w", "conv_b", "fc_w", "fc_b"]
            .iter()
            .map(|k| g.on(&format!("cnn.{k}"), dev).requires_grad())
            .collect();
        let (logits, loss) = {
            let _ac = kiln::autocast(DType::BF16).unwrap();
            let logits = cnn(&x, &params[0], &params[1], &params[2], &params[3]).unwrap();
            let loss = F::cross_entropy(&logits, &labels).unwrap();
            (logits, loss)
        };
        assert_eq!(logits.dtype(), DType::BF16, "linear runs in the autocast dtype");
        assert_eq!(loss.dtype(), DType::F32, "cross_entropy runs in f32");
        assert_close(&logits, &g.get("cnn.logits"), dev, BF16_TOL, BF16_TOL);
        assert_close(&loss, &g.get("cnn.loss").reshape(&[]).unwrap(), dev, BF16_TOL, BF16_TOL);
        loss.backward().unwrap();
        for (p, k) in params.iter().zip(["conv_w", "conv_b", "fc_w", "fc_b"]) {
            let grad = p.grad().expect("the gradient reaches the master weight");
            assert_eq!(grad.dtype(), DType::F32, "{k}: gradient in the parameter's dtype");
            assert_close(&grad, &g.get(&format!("cnn.grad_{k}")), dev, BF16_TOL, BF16_TOL);
        }
    }

    /// GradScaler against torch.amp.GradScaler: six SGD iterations with
    /// growth_interval 2, the third with inf/NaN gradients (skipped: parameters and
    /// momentum unchanged, scale halved), the fourth unscaled explicitly.
    fn grad_scaler_matches_pytorch(dev) {
        let g = Golden::load("amp");
        let (x, y) = (g.on("scaler.x", dev), g.on("scaler.y", dev));
        let w = g.on("scaler.w0", dev).requires_grad();
        let b = g.on("scaler.b0", dev).requires_grad();
        let mut opt = Sgd::new([w.clone(), b.clone()], 0.1).unwrap().momentum(0.9);
        let mut scaler = GradScaler::new()
            .init_scale(1024.0)
            .and_then(|s| s.growth_interval(2))
            .unwrap();
        assert_eq!(scaler.get_scale(), 1024.0);
        for k in 1..=6 {
            opt.zero_grad();
            let mut loss = x.matmul(&w).unwrap().add(&b).unwrap().sub(&y).unwrap();
            loss = loss.powf(2.0).unwrap().mean_all().unwrap();
            if k == 3 {
                loss = loss.mul_scalar(f64::INFINITY).unwrap();
            }
            scaler.scale(&loss).unwrap().backward().unwrap();
            if k == 4 {
                scaler.unscale_(&mut opt).unwrap();
            }
            let stepped = scaler.step(&mut opt).unwrap();
            assert_eq!(stepped, k != 3, "iteration {k}: only the inf step is skipped");
            scaler.update();
            assert_close(&w, &g.get(&format!("scaler.w{k}")), dev, 1e-6, 1e-6);
            assert_close(&b, &g.get(&format!("scaler.b{k}")), dev, 1e-6, 1e-6);
            let want: f64 = g.get(&format!("scaler.scale{k}")).to_vec::<f64>().unwrap()[0];
            assert_eq!(scaler.get_scale(), want, "iteration {k}: scale");
        }
    }

    /// unscale_ divides every gradient by the scale (in f32, f64 and bf16) and flags
    /// inf and NaN on the device; F16 gradients are refused, as PyTorch does.
    fn grad_scaler_unscales_every_float_dtype_and_refuses_f16(dev) {
        for dtype in [DType::F32, DType::F64, DType::BF16] {
            let finite = param_with_grad(&[1.0, 2.0, 3.0], &[64.0, -128.0, 0.5], dtype, dev);
            let mut opt = Sgd::new([finite.clone()], 1.0).unwrap();
            let mut scaler = GradScaler::new().init_scale(64.0).unwrap();
            as_if_scaled(&scaler, dev);
            scaler.unscale_(&mut opt).unwrap();
            let grad = finite.grad().unwrap();
            assert_eq!(grad.dtype(), dtype);
            let want = Tensor::from_vec(vec![1.0f64, -2.0, 0.5 / 64.0], &[3], dev).unwrap();
            assert_close(&grad, &want, dev, 0.0, 0.0);
            assert!(scaler.step(&mut opt).unwrap(), "{dtype:?}: finite gradients step");
            assert_close(&finite, &Tensor::from_vec(vec![0.0f64, 4.0, 3.0 - 0.5 / 64.0], &[3], dev).unwrap(), dev, 1e-2, 0.0);

            for bad in [f32::INFINITY, f32::NAN] {
                let p = param_with_grad(&[1.0, 2.0], &[1.0, bad], dtype, dev);
                let q = param_with_grad(&[5.0], &[1.0], dtype, dev);
                let mut opt = Sgd::new([q.clone(), p.clone()], 1.0).unwrap();
                let mut scaler = GradScaler::new();
                as_if_scaled(&scaler, dev);
                assert!(!scaler.step(&mut opt).unwrap(), "{dtype:?}: {bad} skips the step");
                assert_eq!(common::host(&p), vec![1.0, 2.0]);
                assert_eq!(common::host(&q), vec![5.0]);
                scaler.update();
                assert_eq!(scaler.get_scale(), 32768.0);
            }
        }
        let p = param_with_grad(&[1.0], &[1.0], DType::F16, dev);
        let mut opt = Sgd::new([p.clone()], 1.0).unwrap();
        let mut scaler = GradScaler::new();
        as_if_scaled(&scaler, dev);
        let refused = scaler.unscale_(&mut opt);
        assert!(format!("{refused:?}").contains("F16"), "{refused:?}");
        assert_arg_err(refused, "optimizer");
        assert_eq!(common::host(&p.grad().unwrap()), vec![1.0], "nothing changed");
    }

    /// Under autocast: matmul lowers (but leaves F64 alone), softmax, reductions
    /// and exp run in f32, binary ops promote to the widest input, batch_norm
    /// computes in f32 and returns its input's dtype while updating the f32 running
    /// statistics in place; without a guard nothing changes.
    fn autocast_follows_pytorch_op_lists(dev) {
        let a = Tensor::randn(&[4, 5], DType::F32, dev).unwrap();
        let b = Tensor::randn(&[5, 3], DType::F32, dev).unwrap();
        let _ac = kiln::autocast(DType::BF16).unwrap();
        let ab = a.matmul(&b).unwrap();
        assert_eq!(ab.dtype(), DType::BF16);
        let a64 = a.to_dtype(DType::F64).unwrap();
        let b64 = b.to_dtype(DType::F64).unwrap();
        assert_eq!(a64.matmul(&b64).unwrap().dtype(), DType::F64, "F64 is never lowered");
        assert_eq!(F::softmax(&ab, 1).unwrap().dtype(), DType::F32);
        assert_eq!(F::log_softmax(&ab, 1).unwrap().dtype(), DType::F32);
        assert_eq!(ab.sum_all().unwrap().dtype(), DType::F32);
        assert_eq!(ab.mean(0, false).unwrap().dtype(), DType::F32);
        assert_eq!(ab.exp().unwrap().dtype(), DType::F32);
        assert_eq!(ab.relu().unwrap().dtype(), DType::BF16, "unlisted ops keep their dtype");
        let c = Tensor::randn(&[4, 3], DType::F32, dev).unwrap();
        let sum = ab.add(&c).unwrap();
        assert_eq!(sum.dtype(), DType::F32, "bf16 + f32 promotes to f32");
        let want = ab.to_dtype(DType::F32).unwrap();
        let want = {
            let _off = kiln::autocast_off();
            want.add(&c).unwrap()
        };
        assert_close(&sum, &want, dev, 0.0, 0.0);

        let x = Tensor::randn(&[4, 3, 2, 2], DType::F32, dev).unwrap().to_dtype(DType::BF16).unwrap();
        let rm = Tensor::zeros(&[3], DType::F32, dev).unwrap();
        let rv = Tensor::ones(&[3], DType::F32, dev).unwrap();
        let y = F::batch_norm(&x, &rm, &rv, None, None, true, 0.1, 1e-5).unwrap();
        assert_eq!(y.dtype(), DType::BF16, "batch_norm returns its input's dtype");
        assert_eq!(rm.dtype(), DType::F32);
        let batch_mean = x.to_dtype(DType::F32).unwrap().mean(0, false).unwrap();
        let batch_mean = batch_mean.mean(1, false).unwrap().mean(1, false).unwrap();
        assert_close(&rm, &batch_mean.mul_scalar(0.1).unwrap(), dev, 1e-6, 1e-5);
        drop(_ac);
        assert_eq!(a.matmul(&b).unwrap().dtype(), DType::F32, "no guard, no autocast");
        assert!(ab.add(&c).is_err(), "without autocast mixed dtypes are an error");
    }

    /// Guards nest and restore the state they found, autocast_off disables inside
    /// an autocast region, and the state is per thread.
    fn nested_autocast_guards_restore(dev) {
        let a = Tensor::randn(&[2, 2], DType::F32, dev).unwrap();
        let dtype = || a.matmul(&a).unwrap().dtype();
        assert!(!kiln::is_autocast_enabled());
        assert_eq!(dtype(), DType::F32);
        {
            let _bf = kiln::autocast(DType::BF16).unwrap();
            assert_eq!(dtype(), DType::BF16);
            {
                let _f16 = kiln::autocast(DType::F16).unwrap();
                assert_eq!(kiln::autocast_dtype(), Some(DType::F16));
                assert_eq!(dtype(), DType::F16);
                {
                    let _off = kiln::autocast_off();
                    assert!(!kiln::is_autocast_enabled());
                    assert_eq!(dtype(), DType::F32);
                }
                assert_eq!(dtype(), DType::F16);
                let other = std::thread::spawn(kiln::autocast_dtype).join().unwrap();
                assert_eq!(other, None, "autocast is per thread");
            }
            assert_eq!(kiln::autocast_dtype(), Some(DType::BF16));
            assert_eq!(dtype(), DType::BF16);
            assert!(kiln::autocast(DType::I64).is_err());
            assert_eq!(dtype(), DType::BF16, "a refused autocast changes nothing");
        }
        assert_eq!(kiln::autocast_dtype(), None);
        assert_eq!(dtype(), DType::F32);
    }
}

/// Bad arguments are errors that name them.
#[test]
fn bad_arguments_are_errors_naming_them() {
    for dtype in [DType::I64, DType::U8, DType::F32, DType::F64] {
        assert_arg_err(kiln::autocast(dtype), "dtype");
    }
    for v in [1.0, 0.5, -2.0, f64::NAN, f64::INFINITY] {
        assert_arg_err(GradScaler::new().growth_factor(v), "growth_factor");
    }
    for v in [0.0, 1.0, 1.5, -0.5, f64::NAN] {
        assert_arg_err(GradScaler::new().backoff_factor(v), "backoff_factor");
    }
    assert_arg_err(GradScaler::new().growth_interval(0), "growth_interval");
    for v in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300] {
        assert_arg_err(GradScaler::new().init_scale(v), "init_scale");
    }
    let labels = Tensor::from_vec(vec![1i64], &[1], &Device::Cpu).unwrap();
    assert_arg_err(GradScaler::new().scale(&labels), "outputs");
    let mut s = GradScaler::new();
    let bad = GradScalerState {
        backoff_factor: 2.0,
        ..s.state_dict()
    };
    assert_arg_err(s.load_state_dict(&bad), "backoff_factor");
    assert_eq!(
        s.state_dict(),
        GradScaler::new().state_dict(),
        "a refused load changes nothing"
    );
}

/// A second unscale_ or step before update is an error, as in PyTorch; update
/// starts a new iteration. The state round-trips.
#[test]
fn grad_scaler_refuses_repeated_calls_and_round_trips_its_state() {
    let dev = Device::Cpu;
    let p = param_with_grad(&[1.0], &[2.0], DType::F32, &dev);
    let mut opt = Sgd::new([p.clone()], 0.1).unwrap();
    let mut scaler = GradScaler::new().growth_interval(3).unwrap();
    as_if_scaled(&scaler, &dev);
    scaler.unscale_(&mut opt).unwrap();
    assert_arg_err(scaler.unscale_(&mut opt), "optimizer");
    assert!(scaler.step(&mut opt).unwrap());
    assert_arg_err(scaler.step(&mut opt), "optimizer");
    assert_arg_err(scaler.unscale_(&mut opt), "optimizer");
    scaler.update();
    let st = scaler.state_dict();
    assert_eq!(
        (st.scale, st.growth_tracker, st.growth_interval),
        (65536.0, 1, 3)
    );
    let mut fresh = GradScaler::new();
    fresh.load_state_dict(&st).unwrap();
    assert_eq!(fresh.state_dict(), st);
    opt.zero_grad();
    p.mul_scalar(2.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_arg_err(scaler.step(&mut opt), "optimizer"); // nothing scaled since update
    as_if_scaled(&scaler, &dev);
    assert!(
        scaler.step(&mut opt).unwrap(),
        "a new iteration after update"
    );

    let mut off = GradScaler::new().enabled(false);
    assert_eq!(off.get_scale(), 1.0);
    let loss = p.sum_all().unwrap();
    assert_eq!(
        off.scale(&loss).unwrap().id(),
        loss.id(),
        "disabled: the loss itself"
    );
    assert!(off.step(&mut opt).unwrap());
    assert!(off.step(&mut opt).unwrap(), "disabled: no bookkeeping");
    let _: &dyn Optimizer = &opt;
}

// ------------------------------------------------------------------ CUDA against the CPU

/// GradScaler's unscale kernels against the CPU backend (tests/common/parity.rs), and
/// the check that these tests launch every kernel of kernels/amp.cu.
mod cuda_parity {
    use crate::common::parity::{assert_close, assert_every_kernel_launched, gpu_or_skip};
    use kiln::optim::Sgd;
    use kiln::{DType, Device, Result, Tensor};

    /// GradScaler's fused non-finite check and unscale (`kernels/amp.cu`) against the CPU
    /// in every dtype it takes, on a contiguous and a transposed (strided) gradient of
    /// odd size, with and without an inf/NaN among them.
    #[test]
    fn grad_scaler_unscale_matches_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("grad_scaler_unscale_matches_the_cpu");
        // The gradient of `sum(p^T · g)` is `g^T`, a strided view.
        let run = |dtype: DType, bad: f32, d: &Device| -> Result<(bool, Vec<Tensor>)> {
            let mut gv: Vec<f32> = (0..35).map(|i| (i as f32 - 17.0) * 37.5).collect();
            gv[20] = bad;
            let g = Tensor::from_vec(gv, &[5, 7], d)?.to_dtype(dtype)?;
            let flat = Tensor::ones(&[35], dtype, d)?.requires_grad();
            let square = Tensor::ones(&[7, 5], dtype, d)?.requires_grad();
            let loss = flat.mul(&g.reshape(&[35])?)?.sum_all()?;
            let loss = loss.add(&square.transpose(0, 1)?.mul(&g)?.sum_all()?)?;
            let mut scaler = kiln::amp::GradScaler::new().init_scale(48.0)?;
            scaler.scale(&loss)?.backward()?;
            let mut opt = Sgd::new([flat.clone(), square.clone()], 0.0)?;
            let stepped = scaler.step(&mut opt)?;
            Ok((stepped, vec![flat.grad().unwrap(), square.grad().unwrap()]))
        };
        for dtype in [DType::F32, DType::F64, DType::BF16] {
            for bad in [1.0, f32::INFINITY, f32::NAN] {
                let (cpu_stepped, cpu) = run(dtype, bad, &Device::Cpu).unwrap();
                let (stepped, got) = run(dtype, bad, &dev).unwrap();
                assert_eq!(stepped, cpu_stepped, "{dtype:?} {bad}: the skip decision");
                assert_eq!(stepped, bad.is_finite());
                for (g, c) in got.iter().zip(&cpu) {
                    assert_close(&format!("{dtype:?} {bad} unscaled"), g, c, 0.0, 0.0);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/amp.cu.
    #[test]
    fn every_amp_kernel_is_launched() {
        let suite: [fn(); 1] = [grad_scaler_unscale_matches_the_cpu];
        assert_every_kernel_launched("amp", &suite, &[]);
    }
}
