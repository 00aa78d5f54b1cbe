//! Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_
//! (scripts/golden/clip_grad.py), on every device, in f64 and f32.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::nn::utils::{clip_grad_norm, clip_grad_norm_opts, clip_grad_value, ClipGradNormOpts};
use kiln::{DType, Device, Error, Result, Tensor};

/// Three parameters on `dev` whose gradients are the fixture's `g0`, `g1` (or
/// `g1_<g1>`), `g2` in `dtype`, and a fourth without a gradient.
fn params(g: &Golden, g1: &str, dtype: DType, dev: &Device) -> Vec<Tensor> {
    let mut out = Vec::new();
    for key in ["g0", g1, "g2"] {
        let grad = g.on(key, dev).to_dtype(dtype).unwrap();
        let p = grad.zeros_like().unwrap().requires_grad();
        // d(sum(p * grad))/dp = grad
        p.mul(&grad).unwrap().sum_all().unwrap().backward().unwrap();
        out.push(p);
    }
    out.push(Tensor::zeros(&[5], dtype, dev).unwrap().requires_grad());
    out
}

/// Runs `clip` on the case's parameters and compares the total (if any) and the grads.
fn check(case: &str, g1: &str, dev: &Device, clip: impl Fn(&[Tensor]) -> Result<Option<Tensor>>) {
    let g = Golden::load("clip_grad");
    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-6)] {
        let ps = params(&g, g1, dtype, dev);
        if let Some(total) = clip(&ps).unwrap() {
            assert_eq!(total.shape(), &[] as &[usize], "the total is 0-d");
            assert_eq!(total.dtype(), dtype);
            assert_close(&total, &g.get(&format!("{case}.total")), dev, tol, tol);
        }
        for (i, p) in ps[..3].iter().enumerate() {
            let want = g.get(&format!("{case}.g{i}"));
            assert_close(&p.grad().unwrap(), &want, dev, tol, tol);
        }
        assert!(
            ps[3].grad().is_none(),
            "a parameter without grad is skipped"
        );
    }
}

device_test! {
    fn clip_grad_norm_matches_pytorch(dev) {
        check("norm2", "g1", dev, |p| clip_grad_norm(p, 1.0).map(Some));
        check("norm2_loose", "g1", dev, |p| clip_grad_norm(p, 100.0).map(Some));
    }

    fn clip_grad_norm_of_other_orders_matches_pytorch(dev) {
        check("norm_inf", "g1", dev, |p| {
            clip_grad_norm_opts(p, 0.5, ClipGradNormOpts::new().norm_type(f64::INFINITY)).map(Some)
        });
        check("norm_p3", "g1", dev, |p| {
            clip_grad_norm_opts(p, 0.7, ClipGradNormOpts::new().norm_type(3.0)).map(Some)
        });
    }

    fn non_finite_totals_scale_like_pytorch(dev) {
        check("nan", "g1_nan", dev, |p| clip_grad_norm(p, 1.0).map(Some));
        check("inf", "g1_inf", dev, |p| clip_grad_norm(p, 1.0).map(Some));
    }

    fn non_finite_totals_can_be_errors(dev) {
        let g = Golden::load("clip_grad");
        let ps = params(&g, "g1_nan", DType::F64, dev);
        let before: Vec<Tensor> = ps[..3].iter().map(|p| p.grad().unwrap()).collect();
        let err = clip_grad_norm_opts(&ps, 1.0, ClipGradNormOpts::new().error_if_nonfinite(true))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { name: "parameters", .. }), "{err}");
        for (p, b) in ps.iter().zip(&before) {
            assert_close(&p.grad().unwrap(), b, dev, 0.0, 0.0);
        }
        // A finite total passes the check and clips as usual.
        let ps = params(&g, "g1", DType::F64, dev);
        let total =
            clip_grad_norm_opts(&ps, 1.0, ClipGradNormOpts::new().error_if_nonfinite(true)).unwrap();
        assert_close(&total, &g.get("norm2.total"), dev, 1e-12, 1e-12);
    }

    fn clip_grad_value_matches_pytorch(dev) {
        check("value", "g1", dev, |p| clip_grad_value(p, 0.3).map(|()| None));
    }
}

#[test]
fn bad_arguments_are_errors_that_name_them() {
    let p = Tensor::ones(&[2], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad();
    p.sum_all().unwrap().backward().unwrap();
    let ps = [p.clone()];
    let name = |e: Error| match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(name(clip_grad_norm(&ps, -1.0).unwrap_err()), "max_norm");
    assert_eq!(name(clip_grad_norm(&ps, f64::NAN).unwrap_err()), "max_norm");
    let opts = ClipGradNormOpts::new().norm_type(0.0);
    assert_eq!(
        name(clip_grad_norm_opts(&ps, 1.0, opts).unwrap_err()),
        "norm_type"
    );
    assert_eq!(name(clip_grad_value(&ps, -0.5).unwrap_err()), "clip_value");
    assert_eq!(p.grad().unwrap().to_vec::<f32>().unwrap(), vec![1.0, 1.0]);
}

#[test]
fn parameters_of_modules_work_and_no_grads_give_zero() {
    use kiln::nn::{Linear, Module};
    let fc = Linear::new(3, 2, &Device::Cpu).unwrap();
    let total = clip_grad_norm(&fc.parameters(), 1.0).unwrap();
    assert_eq!(total.item::<f32>().unwrap(), 0.0);
}
