//! `F::bias_dropout_add` (`residual + dropout(x + bias)` as one op): against PyTorch
//! where nothing is dropped (eval, p = 0; scripts/golden/bias_dropout_add.py), and in
//! training against kiln's own `residual + F::dropout(x + bias)` from the same generator
//! state — the same mask, values and gradients bit for bit in f32 and f64 — on every
//! device; the drop rate; p = 1; empty and non-contiguous inputs; f64 gradcheck; bad
//! input. The CUDA parity sweep in every float dtype is in tests/functional_dropout.rs.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Result, Tensor};

const CPU: Device = Device::Cpu;

/// Output and the gradients of x, bias and residual of the fused op (or, with
/// `fused == false`, of the separate ops) after `kiln::manual_seed(seed)`, for
/// `(y * y.detach()).sum()`.
fn run(fused: bool, x: &Tensor, b: &Tensor, r: &Tensor, p: f64, seed: u64) -> Result<Vec<Tensor>> {
    let (x, b, r) = (
        x.clone().requires_grad(),
        b.clone().requires_grad(),
        r.clone().requires_grad(),
    );
    let y = common::seeded(seed, || {
        if fused {
            F::bias_dropout_add(&x, &b, &r, p, true)
        } else {
            r.add(&F::dropout(&x.add(&b)?, p, true)?)
        }
    })?;
    y.mul(&y.detach())?.sum_all()?.backward()?;
    Ok(vec![
        y,
        x.grad().unwrap(),
        b.grad().unwrap(),
        r.grad().unwrap(),
    ])
}

fn check_golden(case: &str, p: f64, training: bool, dev: &Device) {
    let g = Golden::load("bias_dropout_add");
    let key = |n: &str| format!("{case}.{n}");
    let (x, b, r) = (
        g.on(&key("x"), dev).requires_grad(),
        g.on(&key("bias"), dev).requires_grad(),
        g.on(&key("residual"), dev).requires_grad(),
    );
    let y = F::bias_dropout_add(&x, &b, &r, p, training).unwrap();
    assert_close(&y, &g.get(&key("out")), dev, 1e-14, 1e-12);
    y.mul(&g.on(&key("gout"), dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (t, name) in [(&x, "grad_x"), (&b, "grad_bias"), (&r, "grad_residual")] {
        assert_close(&t.grad().unwrap(), &g.get(&key(name)), dev, 1e-14, 1e-12);
    }
}

device_test! {
    fn eval_and_p0_match_pytorch(dev) {
        check_golden("eval", 0.3, false, dev);
        check_golden("p0", 0.0, true, dev);
    }

    /// Training: the mask is F::dropout's for the same generator state, so values and
    /// gradients equal the separate ops' bit for bit in f32 and f64, contiguous or not.
    fn training_equals_dropout_from_the_same_generator_state(dev) {
        for dtype in [DType::F32, DType::F64] {
            let make = |shape: &[usize], seed| {
                common::seeded(seed, || Tensor::randn(shape, dtype, dev)).unwrap()
            };
            let (x, b) = (make(&[5, 7, 13], 1), make(&[13], 2));
            let r = make(&[13, 7, 5], 3).permute(&[2, 1, 0]).unwrap();
            for x in [x.clone(), common::strided(&x)] {
                let fused = run(true, &x, &b, &r, 0.4, 42).unwrap();
                let plain = run(false, &x, &b, &r, 0.4, 42).unwrap();
                for (i, (f, p)) in fused.iter().zip(&plain).enumerate() {
                    let (f, p) = (common::host(f), common::host(p));
                    if i == 2 {
                        // grad_bias: the same column sums, maybe summed in another order.
                        for (a, b) in f.iter().zip(&p) {
                            assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
                        }
                    } else {
                        assert_eq!(f, p, "{dtype:?} output {i}");
                    }
                }
            }
        }
    }

    /// About p of the elements are dropped; p = 1 leaves the residual and draws nothing.
    fn drop_rate_and_p1(dev) {
        let x = Tensor::ones(&[64, 100], DType::F32, dev).unwrap();
        let b = Tensor::zeros(&[100], DType::F32, dev).unwrap();
        let r = Tensor::zeros(&[64, 100], DType::F32, dev).unwrap();
        let y = common::seeded(5, || F::bias_dropout_add(&x, &b, &r, 0.25, true)).unwrap();
        let v = common::host(&y);
        let dropped = v.iter().filter(|&&v| v == 0.0).count() as f64 / v.len() as f64;
        assert!((dropped - 0.25).abs() < 0.03, "dropped {dropped}");
        assert!(v.iter().all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
        let (y, next) = common::seeded(6, || {
            let y = F::bias_dropout_add(&x, &b, &r.add_scalar(2.0).unwrap(), 1.0, true);
            (y, Tensor::rand(&[4], DType::F32, dev))
        });
        assert!(common::host(&y.unwrap()).iter().all(|&v| v == 2.0));
        let fresh = common::seeded(6, || Tensor::rand(&[4], DType::F32, dev)).unwrap();
        assert_eq!(common::host(&next.unwrap()), common::host(&fresh), "p = 1 drew no words");
    }

    fn empty_inputs_give_empty_outputs(dev) {
        let x = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap().requires_grad();
        let b = Tensor::ones(&[3], DType::F32, dev).unwrap().requires_grad();
        let y = F::bias_dropout_add(&x, &b, &x.detach(), 0.5, true).unwrap();
        assert_eq!(y.shape(), &[0, 3]);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(common::host(&b.grad().unwrap()), vec![0.0; 3]);
    }
}

#[test]
fn gradcheck_bias_dropout_add_f64() {
    let make = |shape: &[usize], seed| {
        common::seeded(seed, || Tensor::randn(shape, DType::F64, &CPU)).unwrap()
    };
    let inputs = [make(&[4, 3, 5], 11), make(&[5], 12), make(&[4, 3, 5], 13)];
    for (p, training) in [(0.3, true), (0.3, false)] {
        // The same mask on every evaluation: each call starts from the same seed.
        gradcheck(
            |t| common::seeded(7, || F::bias_dropout_add(&t[0], &t[1], &t[2], p, training)),
            &inputs,
            GradcheckOpts::default(),
        )
        .unwrap_or_else(|e| panic!("training {training}: {e}"));
    }
}

#[test]
fn bad_arguments_name_themselves() {
    let x = Tensor::zeros(&[2, 3], DType::F32, &CPU).unwrap();
    let b = Tensor::zeros(&[3], DType::F32, &CPU).unwrap();
    let name = |r: Result<Tensor>| match r {
        Err(Error::InvalidArgument { name, .. }) => name.to_owned(),
        Err(e @ Error::DTypeMismatch { .. }) => format!("dtype: {e}"),
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    assert_eq!(name(F::bias_dropout_add(&x, &x, &x, 0.1, true)), "bias");
    assert_eq!(name(F::bias_dropout_add(&x, &b, &b, 0.1, true)), "residual");
    assert_eq!(name(F::bias_dropout_add(&x, &b, &x, 1.5, true)), "p");
    assert_eq!(
        name(F::bias_dropout_add(
            &b.sum_all().unwrap(),
            &b,
            &x,
            0.1,
            true
        )),
        "bias"
    );
    let e = name(F::bias_dropout_add(
        &x,
        &b.to_dtype(DType::F64).unwrap(),
        &x,
        0.1,
        true,
    ));
    assert!(e.contains("bias_dropout_add: bias"), "{e}");
}
