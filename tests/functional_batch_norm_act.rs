//! `F::batch_norm_act` (batch norm, optional residual add and ReLU as one op) against
//! PyTorch's `F.relu(F.batch_norm(..) + residual)` (scripts/golden/batch_norm_act.py
//! holds each case's snippet): outputs, the in-place running-statistics update and the
//! gradients of x, weight, bias and residual; the running statistics equal the unfused
//! op's bit for bit; empty and non-contiguous inputs against the unfused ops; f64
//! gradcheck; bad input; and `nn::BatchNorm2d`'s `forward_relu` / `forward_add_relu`,
//! fused and not. The CUDA parity sweep in every float dtype is in
//! tests/functional_norm_parity.rs.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};

const CPU: Device = Device::Cpu;
const TOL: (f64, f64) = (1e-13, 1e-11);

fn randn64(shape: &[usize], seed: u64) -> Tensor {
    common::seeded(seed, || Tensor::randn(shape, DType::F64, &CPU).unwrap())
}

/// Runs golden case `case` (with weight and bias when `affine`, with a residual when
/// `residual`) on `dev`: output, running statistics, every gradient.
fn check_case(case: &str, dev: &Device, affine: bool, residual: bool) {
    let golden = Golden::load("batch_norm_act");
    let key = |name: &str| format!("{case}.{name}");
    let has = |name: &str| if name == "residual" { residual } else { affine };
    let x = golden.on(&key("x"), dev).requires_grad();
    // Fresh copies: the update must land in these tensors' storage.
    let rm = golden.on(&key("running_mean"), dev).contiguous().unwrap();
    let rv = golden.on(&key("running_var"), dev).contiguous().unwrap();
    let param = |name: &str| has(name).then(|| golden.on(&key(name), dev).requires_grad());
    let (w, b, r) = (param("weight"), param("bias"), param("residual"));
    let momentum = golden.get(&key("momentum")).item::<f64>().unwrap();
    let eps = golden.get(&key("eps")).item::<f64>().unwrap();
    let training = case.starts_with("train");

    let y = F::batch_norm_act(
        &x,
        &rm,
        &rv,
        w.as_ref(),
        b.as_ref(),
        r.as_ref(),
        training,
        momentum,
        eps,
    )
    .unwrap();
    let (atol, rtol) = TOL;
    let check =
        |got: &Tensor, name: &str| assert_close(got, &golden.get(&key(name)), dev, atol, rtol);
    check(&y, "out");
    check(&rm, "new_running_mean");
    check(&rv, "new_running_var");
    y.mul(&golden.on(&key("gout"), dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    check(&x.grad().unwrap(), "grad_x");
    for (t, name) in [
        (&w, "grad_weight"),
        (&b, "grad_bias"),
        (&r, "grad_residual"),
    ] {
        if let Some(t) = t {
            check(&t.grad().unwrap(), name);
        }
    }
}

/// The unfused ops: `relu(batch_norm(..) + residual)`.
#[allow(clippy::too_many_arguments)] // batch_norm_act's arguments
fn unfused(
    x: &Tensor,
    rm: &Tensor,
    rv: &Tensor,
    w: Option<&Tensor>,
    b: Option<&Tensor>,
    r: Option<&Tensor>,
    training: bool,
) -> Result<Tensor> {
    let y = F::batch_norm(x, rm, rv, w, b, training, 0.1, 1e-5)?;
    F::relu(&match r {
        Some(r) => y.add(r)?,
        None => y,
    })
}

/// The output and the gradients of x, weight, bias and residual of `f` (fused or
/// not) on `x` and `r` at `dev`, with the running statistics after the call.
fn run_both(
    fused: bool,
    x: &Tensor,
    r: &Tensor,
    training: bool,
    dev: &Device,
) -> Result<Vec<Tensor>> {
    let c = x.shape()[1];
    let x = x.to_device(dev)?.requires_grad();
    let r = r.to_device(dev)?.requires_grad();
    let w = randn64(&[c], 7).to_device(dev)?.requires_grad();
    let b = randn64(&[c], 8).to_device(dev)?.requires_grad();
    let rm = Tensor::full(&[c], 0.2, DType::F64, dev)?;
    let rv = Tensor::full(&[c], 1.5, DType::F64, dev)?;
    let y = if fused {
        F::batch_norm_act(
            &x,
            &rm,
            &rv,
            Some(&w),
            Some(&b),
            Some(&r),
            training,
            0.1,
            1e-5,
        )?
    } else {
        unfused(&x, &rm, &rv, Some(&w), Some(&b), Some(&r), training)?
    };
    let gout = randn64(y.shape(), 9).to_device(dev)?;
    y.mul(&gout)?.sum_all()?.backward()?;
    let mut out = vec![y, rm, rv];
    for t in [&x, &w, &b, &r] {
        out.push(
            t.grad()
                .unwrap_or(Tensor::zeros(t.shape(), DType::F64, dev)?),
        );
    }
    Ok(out)
}

device_test! {
    fn training_with_residual_matches_pytorch(dev) {
        check_case("train4d_residual", dev, true, true);
    }

    fn eval_with_residual_matches_pytorch(dev) {
        check_case("eval4d_residual", dev, true, true);
    }

    fn without_residual_matches_pytorch(dev) {
        check_case("train4d", dev, true, false);
        check_case("eval2d", dev, true, false);
    }

    fn without_affine_parameters_matches_pytorch(dev) {
        check_case("train3d_noaffine_residual", dev, false, true);
    }

    /// The running statistics are the unfused op's, bit for bit: the same statistics
    /// kernel and update.
    fn running_stats_equal_the_unfused_ops(dev) {
        let x = randn64(&[5, 3, 4, 2], 11).to_device(dev).unwrap();
        let r = randn64(&[5, 3, 4, 2], 12).to_device(dev).unwrap();
        let stats = || {
            (
                Tensor::full(&[3], 0.25, DType::F64, dev).unwrap(),
                Tensor::full(&[3], 2.0, DType::F64, dev).unwrap(),
            )
        };
        let ((rm, rv), (rm_ref, rv_ref)) = (stats(), stats());
        F::batch_norm_act(&x, &rm, &rv, None, None, Some(&r), true, 0.3, 1e-5).unwrap();
        F::batch_norm(&x, &rm_ref, &rv_ref, None, None, true, 0.3, 1e-5).unwrap();
        assert_eq!(common::host(&rm), common::host(&rm_ref));
        assert_eq!(common::host(&rv), common::host(&rv_ref));
    }

    /// Non-contiguous x and residual, and odd sizes, give the unfused ops' values and
    /// gradients; an empty batch (eval) gives an empty output and gradients.
    fn non_contiguous_and_empty_inputs_match_the_unfused_ops(dev) {
        let x = common::strided(&randn64(&[3, 5, 7, 3], 13));
        let r = randn64(&[3, 5, 3, 7], 14).transpose(2, 3).unwrap();
        assert!(!x.is_contiguous() && !r.is_contiguous());
        for training in [true, false] {
            let fused = run_both(true, &x, &r, training, dev).unwrap();
            let plain = run_both(false, &x, &r, training, dev).unwrap();
            for (i, (f, p)) in fused.iter().zip(&plain).enumerate() {
                let p = p.to_device(&CPU).unwrap();
                assert_close(f, &p, dev, 1e-12, 1e-10);
                assert!(i > 0 || f.is_contiguous(), "the output is contiguous");
            }
        }
        let empty = Tensor::zeros(&[0, 3, 2, 2], DType::F64, &CPU).unwrap();
        let got = run_both(true, &empty, &empty, false, dev).unwrap();
        assert_eq!(got[0].shape(), &[0, 3, 2, 2]);
        assert_eq!(got[3].shape(), &[0, 3, 2, 2]);
        assert_eq!(common::host(&got[4]), vec![0.0; 3], "grad_weight of no values");
    }

    /// `nn::BatchNorm2d::forward_relu` and `forward_add_relu` equal `relu(bn(x))` and
    /// `relu(bn(x) + r)`, fused (the default) or not, and count the batch.
    fn module_forward_relu_and_add_relu_match_the_unfused_layer(dev) {
        let x = randn64(&[2, 3, 4, 4], 15).to_device(dev).unwrap();
        let r = randn64(&[2, 3, 4, 4], 16).to_device(dev).unwrap();
        let fused = nn::BatchNorm2d::new_with(3, nn::BatchNormOpts::new().dtype(DType::F64), dev)
            .unwrap();
        assert!(fused.is_fused());
        let plain = nn::BatchNorm2d::new_with(3, nn::BatchNormOpts::new().dtype(DType::F64), dev)
            .unwrap()
            .fused(false);
        let reference = nn::BatchNorm2d::new_with(3, nn::BatchNormOpts::new().dtype(DType::F64), dev)
            .unwrap();
        let want = F::relu(&reference.forward(&x).unwrap()).unwrap();
        for bn in [&fused, &plain] {
            assert_close(&bn.forward_relu(&x).unwrap(), &want.to_device(&CPU).unwrap(), dev, 1e-13, 1e-11);
        }
        let want = F::relu(&reference.forward(&x).unwrap().add(&r).unwrap()).unwrap();
        for bn in [&fused, &plain] {
            let got = bn.forward_add_relu(&x, &r).unwrap();
            assert_close(&got, &want.to_device(&CPU).unwrap(), dev, 1e-13, 1e-11);
            assert_close(&bn.running_mean, &reference.running_mean.to_device(&CPU).unwrap(), dev, 1e-15, 1e-13);
            assert_eq!(bn.num_batches_tracked.item::<i64>().unwrap(), 2);
        }
        // Eval: the running statistics, unchanged.
        for bn in [&fused, &plain] {
            bn.eval();
            let before = common::host(&bn.running_var);
            let want = F::relu(&F::batch_norm(&x, &bn.running_mean, &bn.running_var, Some(&bn.weight), Some(&bn.bias), false, 0.1, 1e-5).unwrap().add(&r).unwrap()).unwrap();
            assert_close(&bn.forward_add_relu(&x, &r).unwrap(), &want.to_device(&CPU).unwrap(), dev, 1e-13, 1e-11);
            assert_eq!(common::host(&bn.running_var), before);
        }
        let wrong = randn64(&[2, 3, 4, 1], 17).to_device(dev).unwrap();
        for bn in [&fused, &plain] {
            match bn.forward_add_relu(&x, &wrong) {
                Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "residual"),
                other => panic!("expected an invalid residual, got {other:?}"),
            }
        }
    }
}

#[test]
fn gradcheck_batch_norm_act_f64() {
    let opts = GradcheckOpts::default();
    let x = randn64(&[3, 2, 2, 3], 21);
    let r = randn64(&[3, 2, 2, 3], 22);
    let (w, b) = (randn64(&[2], 23), randn64(&[2], 24));
    for training in [true, false] {
        gradcheck(
            |t| {
                let rm = Tensor::full(&[2], 0.3, DType::F64, &CPU)?;
                let rv = Tensor::full(&[2], 1.7, DType::F64, &CPU)?;
                F::batch_norm_act(
                    &t[0],
                    &rm,
                    &rv,
                    Some(&t[1]),
                    Some(&t[2]),
                    Some(&t[3]),
                    training,
                    0.1,
                    1e-5,
                )
            },
            &[x.clone(), w.clone(), b.clone(), r.clone()],
            opts,
        )
        .unwrap_or_else(|e| panic!("with residual, training {training}: {e}"));
        gradcheck(
            |t| {
                let rm = Tensor::full(&[2], 0.3, DType::F64, &CPU)?;
                let rv = Tensor::full(&[2], 1.7, DType::F64, &CPU)?;
                let x = t[0].transpose(2, 3)?;
                F::batch_norm_act(&x, &rm, &rv, None, Some(&t[1]), None, training, 0.1, 1e-5)
            },
            &[x.clone(), b.clone()],
            opts,
        )
        .unwrap_or_else(|e| panic!("transposed, no residual, training {training}: {e}"));
    }
}

#[test]
fn bad_arguments_name_themselves() {
    let x = randn64(&[4, 3, 2, 2], 31);
    let rm = Tensor::zeros(&[3], DType::F64, &CPU).unwrap();
    let rv = Tensor::ones(&[3], DType::F64, &CPU).unwrap();
    let name = |r: Result<Tensor>| match r {
        Err(Error::InvalidArgument { name, .. }) => name.to_owned(),
        Err(e @ Error::DTypeMismatch { .. }) => format!("dtype: {e}"),
        other => panic!("expected an invalid argument, got {other:?}"),
    };
    let act = |r: Option<&Tensor>, w: Option<&Tensor>, m: f64| {
        F::batch_norm_act(&x, &rm, &rv, w, None, r, true, m, 1e-5)
    };
    let small = randn64(&[4, 3, 2, 1], 32);
    assert_eq!(name(act(Some(&small), None, 0.1)), "residual");
    let r32 = x.to_dtype(DType::F32).unwrap();
    let e = name(act(Some(&r32), None, 0.1));
    assert!(
        e.starts_with("dtype") && e.contains("batch_norm_act: residual"),
        "{e}"
    );
    assert_eq!(
        name(act(None, Some(&rm.narrow(0, 0, 2).unwrap()), 0.1)),
        "weight"
    );
    assert_eq!(name(act(None, None, 1.5)), "momentum");
    assert_eq!(
        name(F::batch_norm_act(
            &randn64(&[1, 3], 33),
            &rm,
            &rv,
            None,
            None,
            None,
            true,
            0.1,
            1e-5
        )),
        "input"
    );
    // None of the failed calls touched the running statistics.
    assert_eq!(rm.to_vec::<f64>().unwrap(), vec![0.0; 3]);
    assert_eq!(rv.to_vec::<f64>().unwrap(), vec![1.0; 3]);
}
