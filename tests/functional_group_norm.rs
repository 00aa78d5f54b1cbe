//! group_norm / nn::GroupNorm, instance_norm / nn::InstanceNorm1d/2d/3d and
//! nn::BatchNorm3d against PyTorch on every device: values, every input's and
//! parameter's gradient, running statistics, f64 gradchecks, empty, strided and
//! odd-sized inputs, and each bad argument. The CUDA parity sweep of the group-norm
//! kernels is in tests/functional_norm_parity.rs (the norm family's).
//!
//! The fixture is written by `scripts/golden/group_norm.py`; the PyTorch expression of
//! each case is the comment above it here and above its line there. `a`, `w`, `b` are
//! the case's inputs `in0..`; views are taken inside the op.

mod common;

use common::{assert_close, golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("group_norm"))
}

golden_cases! {
    // F.group_norm(a (2,6,3,5), 3, w (6), b (6), 1e-5)
    gn_4d(3) => |x| F::group_norm(&x[0], 3, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.group_norm(a (3,4,7), 2)
    gn_no_affine(1) => |x| F::group_norm(&x[0], 2, None, None, 1e-5);
    // F.group_norm(a (2,4,5), 4, w (4))
    gn_weight_only(2) => |x| F::group_norm(&x[0], 4, Some(&x[1]), None, 1e-5);
    // F.group_norm(a (2,5,2,3), 1, w, b)
    gn_one_group(3) => |x| F::group_norm(&x[0], 1, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.group_norm(a (3,6), 3, w, b)
    gn_2d(3) => |x| F::group_norm(&x[0], 3, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.group_norm(a (2,4,2,3,2), 2, w, b, eps=0.1)
    gn_5d(3) => |x| F::group_norm(&x[0], 2, Some(&x[1]), Some(&x[2]), 0.1);
    // F.group_norm(a (2,5,3,4).transpose(1,3), 2, w, b)
    gn_transposed(3) => |x| F::group_norm(&x[0].transpose(1, 3)?, 2, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.group_norm(a (3,9,37), 3, w, b)
    gn_odd(3) => |x| F::group_norm(&x[0], 3, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.group_norm(a (2,8,4,4), 4, w, b), float32
    gn_f32(3) => |x| F::group_norm(&x[0], 4, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.group_norm(a (0,4,3), 2, w, b)
    gn_empty_batch(3) => |x| F::group_norm(&x[0], 2, Some(&x[1]), Some(&x[2]), 1e-5);
    // F.instance_norm(a (2,3,5))
    in_default(1) => |x| F::instance_norm(&x[0], None, None, None, None, true, 0.1, 1e-5);
    // F.instance_norm(a (2,3,4,4), weight=w, bias=b)
    in_affine(3) => |x| F::instance_norm(&x[0], None, None, Some(&x[1]), Some(&x[2]), true, 0.1, 1e-5);
    // F.instance_norm(a (2,2,3,2,4), eps=0.01)
    in_3d(1) => |x| F::instance_norm(&x[0], None, None, None, None, true, 0.1, 0.01);
    // F.instance_norm(a (2,7,3).transpose(1,2))
    in_transposed(1) => |x| F::instance_norm(&x[0].transpose(1, 2)?, None, None, None, None, true, 0.1, 1e-5);
}

/// The cases with running statistics, tested one by one below.
const STATS_CASES: [&str; 4] = ["bn3d_eval", "bn3d_train", "in_eval", "in_running"];

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES
        .iter()
        .chain(&STATS_CASES)
        .map(|s| s.to_string())
        .collect();
    tested.sort();
    assert_eq!(golden_case_names("group_norm"), tested);
}

/// Tolerances of the f64 cases with running statistics (on the CPU).
const TOL: f64 = 1e-12;

/// A stats case's tensor `key` on `dev`.
fn stat(case: &str, key: &str, dev: &Device) -> Tensor {
    golden().on(&format!("{case}.{key}"), dev)
}

/// Checks `y` (the output), the gradients of `x` and of `params` (weight, bias) under
/// the case's `gout`, and the running statistics `rm`, `rv` after the forward.
fn check_stats_case(
    case: &str,
    dev: &Device,
    y: &Tensor,
    x: &Tensor,
    params: [&Tensor; 2],
    stats: [&Tensor; 2],
) {
    let want = |k: &str| golden().get(&format!("{case}.{k}"));
    assert_close(y, &want("out"), dev, TOL, TOL);
    y.mul(&stat(case, "gout", dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&x.grad().unwrap(), &want("grad_x"), dev, TOL, TOL);
    for (p, k) in params.iter().zip(["grad_weight", "grad_bias"]) {
        assert_close(&p.grad().unwrap(), &want(k), dev, TOL, TOL);
    }
    for (s, k) in stats.iter().zip(["new_mean", "new_var"]) {
        assert_close(s, &want(k), dev, TOL, TOL);
    }
}

/// A module's state: weight, bias and running statistics from stats case `case`.
fn stats_state(case: &str, dev: &Device) -> Vec<(String, Tensor)> {
    let mut state: Vec<(String, Tensor)> = [
        ("weight", "weight"),
        ("bias", "bias"),
        ("running_mean", "running_mean"),
        ("running_var", "running_var"),
    ]
    .iter()
    .map(|(name, key)| (name.to_string(), stat(case, key, dev)))
    .collect();
    let zero = Tensor::zeros(&[], DType::I64, dev).unwrap();
    state.push(("num_batches_tracked".into(), zero));
    state
}

common::device_test! {
    /// F.instance_norm(x (3,2,6), rm, rv, w, b, use_input_stats=True, momentum=0.2),
    /// through nn::InstanceNorm1d(2, affine, track_running_stats, momentum 0.2) in
    /// training mode: output, gradients, and the running statistics updated in place.
    fn in_running(dev) {
        let opts = nn::InstanceNormOpts::new()
            .affine(true)
            .track_running_stats(true)
            .momentum(0.2)
            .dtype(DType::F64);
        let m = nn::InstanceNorm1d::new_with(2, opts, dev).unwrap();
        m.load_state_dict(&stats_state("in_running", dev)).unwrap();
        let x = stat("in_running", "x", dev).requires_grad();
        let y = m.forward(&x).unwrap();
        let (w, b) = (m.weight.as_ref().unwrap(), m.bias.as_ref().unwrap());
        let (rm, rv) = (m.running_mean.as_ref().unwrap(), m.running_var.as_ref().unwrap());
        check_stats_case("in_running", dev, &y, &x, [w, b], [rm, rv]);
    }

    /// F.instance_norm(x (2,3,4), rm, rv, w, b, use_input_stats=False): the running
    /// statistics normalise, and stay as they are; also nn::InstanceNorm1d in eval mode.
    fn in_eval(dev) {
        let (rm, rv) = (stat("in_eval", "running_mean", dev), stat("in_eval", "running_var", dev));
        let (w, b) = (stat("in_eval", "weight", dev).requires_grad(), stat("in_eval", "bias", dev).requires_grad());
        let x = stat("in_eval", "x", dev).requires_grad();
        let y = F::instance_norm(&x, Some(&rm), Some(&rv), Some(&w), Some(&b), false, 0.1, 1e-5).unwrap();
        check_stats_case("in_eval", dev, &y, &x, [&w, &b], [&rm, &rv]);
        let opts = nn::InstanceNormOpts::new().affine(true).track_running_stats(true).dtype(DType::F64);
        let m = nn::InstanceNorm1d::new_with(3, opts, dev).unwrap();
        m.load_state_dict(&stats_state("in_eval", dev)).unwrap();
        m.eval();
        assert_close(&m.forward(&x).unwrap(), &golden().get("in_eval.out"), dev, TOL, TOL);
    }

    /// nn.BatchNorm3d(3) in training mode on (2,3,2,3,4).
    fn bn3d_train(dev) {
        let bn = nn::BatchNorm3d::new_with(3, nn::BatchNormOpts::new().dtype(DType::F64), dev).unwrap();
        bn.load_state_dict(&stats_state("bn3d_train", dev)).unwrap();
        let x = stat("bn3d_train", "x", dev).requires_grad();
        let y = bn.forward(&x).unwrap();
        check_stats_case("bn3d_train", dev, &y, &x, [&bn.weight, &bn.bias], [&bn.running_mean, &bn.running_var]);
    }

    /// nn.BatchNorm3d(3).eval() on (2,3,2,2,3); a 4-D input is refused naming it.
    fn bn3d_eval(dev) {
        let bn = nn::BatchNorm3d::new_with(3, nn::BatchNormOpts::new().dtype(DType::F64), dev).unwrap();
        bn.load_state_dict(&stats_state("bn3d_eval", dev)).unwrap();
        bn.eval();
        let x = stat("bn3d_eval", "x", dev).requires_grad();
        let y = bn.forward(&x).unwrap();
        check_stats_case("bn3d_eval", dev, &y, &x, [&bn.weight, &bn.bias], [&bn.running_mean, &bn.running_var]);
        let four = Tensor::zeros(&[2, 3, 4, 4], DType::F64, dev).unwrap();
        assert_invalid(bn.forward(&four), "input");
    }

    /// nn.GroupNorm(4, 8) with case gn_f32's weight and bias: the functional op's
    /// values and gradients, to the module's parameters.
    fn group_norm_module(dev) {
        let gn = nn::GroupNorm::new(4, 8, dev).unwrap();
        assert_eq!(host(gn.weight.as_ref().unwrap()), [1.0; 8]);
        assert_eq!(host(gn.bias.as_ref().unwrap()), [0.0; 8]);
        let g = golden();
        let state = vec![
            ("weight".to_string(), g.on("gn_f32.in1", dev)),
            ("bias".to_string(), g.on("gn_f32.in2", dev)),
        ];
        gn.load_state_dict(&state).unwrap();
        let x = g.on("gn_f32.in0", dev).requires_grad();
        let y = gn.forward(&x).unwrap();
        let (atol, rtol) = common::golden_tolerance(DType::F32);
        assert_close(&y, &g.get("gn_f32.out"), dev, atol, rtol);
        y.mul(&g.on("gn_f32.gout", dev)).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&x.grad().unwrap(), &g.get("gn_f32.grad0"), dev, atol, rtol);
        assert_close(&gn.weight.as_ref().unwrap().grad().unwrap(), &g.get("gn_f32.grad1"), dev, atol, rtol);
        assert_close(&gn.bias.as_ref().unwrap().grad().unwrap(), &g.get("gn_f32.grad2"), dev, atol, rtol);
        let names: Vec<String> = gn.state_dict().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["weight", "bias"]);
    }

    /// nn.InstanceNorm1d(3) (no parameters, no statistics) is F.instance_norm; an
    /// unbatched (C, L) input is one sample.
    fn instance_norm_module(dev) {
        let m = nn::InstanceNorm1d::new(3, dev).unwrap();
        assert!(m.weight.is_none() && m.running_mean.is_none());
        assert!(m.state_dict().is_empty());
        let x = golden().on("in_default.in0", dev);
        let want = golden().get("in_default.out");
        let (atol, rtol) = common::golden_tolerance(DType::F64);
        m.eval(); // without running statistics eval mode uses the instance's own
        assert_close(&m.forward(&x).unwrap(), &want, dev, atol, rtol);
        let first = m.forward(&x.select(0, 0).unwrap()).unwrap();
        assert_close(&first, &want.select(0, 0).unwrap(), dev, atol, rtol);
    }

    /// Finite differences agree with the gradients of x, weight and bias: several
    /// channels per group, one per group (instance norm), one group, a strided input,
    /// and an input with no spatial dims.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let t = |shape: &[usize], seed: u64| {
            kiln::manual_seed(seed);
            Tensor::randn(shape, DType::F64, &Device::Cpu).unwrap().to_device(dev).unwrap().requires_grad()
        };
        let (w, b) = (t(&[6], 2).add_scalar(1.0).unwrap().detach().requires_grad(), t(&[6], 3));
        for (shape, groups) in [(&[2usize, 6, 5][..], 3), (&[3, 6][..], 2), (&[2, 6, 2, 3][..], 6), (&[1, 6, 4][..], 1)] {
            let x = t(shape, 1);
            let f = |v: &[Tensor]| F::group_norm(&v[0], groups, Some(&v[1]), Some(&v[2]), 1e-5);
            gradcheck(f, &[x, w.clone(), b.clone()], opts()).unwrap();
        }
        let xt = t(&[2, 5, 6], 4);
        let f = |v: &[Tensor]| F::group_norm(&v[0].transpose(1, 2)?, 2, Some(&v[1]), None, 1e-5);
        gradcheck(f, &[xt, w.clone()], opts()).unwrap();
        let xi = t(&[2, 6, 7], 5);
        let f = |v: &[Tensor]| F::instance_norm(&v[0], None, None, Some(&v[1]), Some(&v[2]), true, 0.1, 1e-5);
        gradcheck(f, &[xi, w, b], opts()).unwrap();
    }

    /// Channels without values (S = 0): an empty output, and zero weight and bias
    /// gradients (empty sums), as PyTorch.
    fn empty_spatial(dev) {
        let x = Tensor::zeros(&[2, 4, 0], DType::F32, dev).unwrap().requires_grad();
        let w = Tensor::ones(&[4], DType::F32, dev).unwrap().requires_grad();
        let b = Tensor::zeros(&[4], DType::F32, dev).unwrap().requires_grad();
        let y = F::group_norm(&x, 2, Some(&w), Some(&b), 1e-5).unwrap();
        assert_eq!(y.shape(), &[2, 4, 0]);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().shape(), &[2, 4, 0]);
        assert_eq!(host(&w.grad().unwrap()), [0.0; 4]);
        assert_eq!(host(&b.grad().unwrap()), [0.0; 4]);
    }

    /// Each bad argument PyTorch refuses is an `Err` naming it.
    fn errors(dev) {
        let x = Tensor::zeros(&[2, 6, 3], DType::F32, dev).unwrap();
        let c6 = Tensor::ones(&[6], DType::F32, dev).unwrap();
        let c4 = Tensor::ones(&[4], DType::F32, dev).unwrap();
        assert_invalid(F::group_norm(&x, 4, None, None, 1e-5), "num_groups");
        assert_invalid(F::group_norm(&x, 0, None, None, 1e-5), "num_groups");
        assert_invalid(F::group_norm(&x, 3, Some(&c4), None, 1e-5), "weight");
        assert_invalid(F::group_norm(&x, 3, Some(&c6), Some(&c4), 1e-5), "bias");
        assert_invalid(F::group_norm(&x, 3, None, None, -1.0), "eps");
        let x1 = Tensor::zeros(&[6], DType::F32, dev).unwrap();
        assert_invalid(F::group_norm(&x1, 3, None, None, 1e-5), "input");
        let c6_f64 = Tensor::ones(&[6], DType::F64, dev).unwrap();
        assert!(F::group_norm(&x, 3, Some(&c6_f64), None, 1e-5).is_err());
        let xi = Tensor::zeros(&[2, 6], DType::I64, dev).unwrap();
        assert!(F::group_norm(&xi, 3, None, None, 1e-5).is_err());
        assert_invalid(nn::GroupNorm::new(4, 6, dev), "num_groups");
        assert_invalid(nn::GroupNorm::new(3, 6, dev).unwrap().forward(&Tensor::zeros(&[2, 4, 3], DType::F32, dev).unwrap()), "input");

        let inorm = |x: &Tensor, rm: Option<&Tensor>, rv: Option<&Tensor>, stats: bool, momentum: f64| {
            F::instance_norm(x, rm, rv, None, None, stats, momentum, 1e-5)
        };
        let (rm, rv) = (Tensor::zeros(&[6], DType::F32, dev).unwrap(), Tensor::ones(&[6], DType::F32, dev).unwrap());
        assert_invalid(inorm(&Tensor::zeros(&[2, 6], DType::F32, dev).unwrap(), None, None, true, 0.1), "input");
        assert_invalid(inorm(&Tensor::zeros(&[2, 6, 1], DType::F32, dev).unwrap(), None, None, true, 0.1), "input");
        assert_invalid(inorm(&x, Some(&rm), None, true, 0.1), "running_var");
        assert_invalid(inorm(&x, None, Some(&rv), true, 0.1), "running_mean");
        assert_invalid(inorm(&x, None, None, false, 0.1), "running_mean");
        assert_invalid(inorm(&x, Some(&rm), Some(&rv), true, 1.5), "momentum");
        assert_invalid(inorm(&x, Some(&c4), Some(&rv), true, 0.1), "running_mean");
        let m = nn::InstanceNorm2d::new(6, dev).unwrap();
        assert_invalid(m.forward(&Tensor::zeros(&[6, 3], DType::F32, dev).unwrap()), "input");
        assert_invalid(nn::InstanceNorm2d::new(0, dev), "num_features");
        let affine = nn::InstanceNorm1d::new_with(4, nn::InstanceNormOpts::new().affine(true), dev).unwrap();
        assert_invalid(affine.forward(&x), "input");
        assert_invalid(nn::InstanceNorm1d::new_with(4, nn::InstanceNormOpts::new().momentum(-0.5), dev), "momentum");
    }
}

/// Asserts an `InvalidArgument` error naming `expected`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

/// PyTorch 2.15's reprs (printed by scripts/golden/group_norm.py).
#[test]
fn reprs_are_pytorchs() {
    let dev = Device::Cpu;
    assert_eq!(
        nn::repr(&nn::GroupNorm::new(2, 6, &dev).unwrap()),
        "GroupNorm(2, 6, eps=1e-05, affine=True, bias=True)"
    );
    assert_eq!(
        nn::repr(&nn::InstanceNorm2d::new(3, &dev).unwrap()),
        "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)"
    );
    let opts = nn::InstanceNormOpts::new()
        .affine(true)
        .track_running_stats(true);
    assert_eq!(
        nn::repr(&nn::InstanceNorm1d::new_with(4, opts, &dev).unwrap()),
        "InstanceNorm1d(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    );
    assert_eq!(
        nn::repr(&nn::BatchNorm3d::new(3, &dev).unwrap()),
        "BatchNorm3d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    );
    let names: Vec<String> = nn::InstanceNorm1d::new_with(4, opts, &dev)
        .unwrap()
        .state_dict()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        names,
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked"
        ]
    );
}
