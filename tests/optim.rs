//! Optimizers against PyTorch's trajectories (scripts/golden/optim.py), and the seed's
//! pitfall checks.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::optim::{Adam, AdamW, Optimizer, ParamGroup, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};

fn loss(x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.matmul(w)?.add(b)?.sub(y)?.powf(2.0)?.mean_all()
}

/// Runs 5 steps of `make(params)` on `dev` and compares every step with PyTorch.
fn check_trajectory(
    case: &str,
    dev: &Device,
    make: impl Fn(Vec<Tensor>) -> Result<Box<dyn Optimizer>>,
) {
    let g = Golden::load("optim");
    let (x, y) = (g.on("x", dev), g.on("y", dev));
    let w = g.on("w0", dev).requires_grad();
    let b = g.on("b0", dev).requires_grad();
    let mut opt = make(vec![w.clone(), b.clone()]).unwrap();
    for k in 1..=5 {
        opt.zero_grad();
        loss(&x, &y, &w, &b).unwrap().backward().unwrap();
        opt.step().unwrap();
        assert_close(&w, &g.get(&format!("{case}.w{k}")), dev, 1e-10, 1e-8);
        assert_close(&b, &g.get(&format!("{case}.b{k}")), dev, 1e-10, 1e-8);
    }
}

/// Golden case `case` (its group 0 at the lr `build` is given, 1e-2 or 0.1) resumed
/// after 3 of its 5 steps through a state dict holding `key`, into an optimizer built
/// with another lr for group 0 (the state dict restores it).
fn check_resume(
    case: &str,
    key: &str,
    dev: &Device,
    build: impl Fn(&Tensor, &Tensor, f64) -> Result<Box<dyn Optimizer>>,
) {
    let g = Golden::load("optim");
    let (x, y) = (g.on("x", dev), g.on("y", dev));
    let w = g.on("w0", dev).requires_grad();
    let b = g.on("b0", dev).requires_grad();
    let step = |opt: &mut Box<dyn Optimizer>| {
        opt.zero_grad();
        loss(&x, &y, &w, &b).unwrap().backward().unwrap();
        opt.step().unwrap();
    };
    let lr = if case.starts_with("sgd") { 0.1 } else { 1e-2 };
    let mut opt = build(&w, &b, lr).unwrap();
    for _ in 0..3 {
        step(&mut opt);
    }
    let state = opt.state_dict();
    assert!(state.iter().any(|(k, _)| k == key), "{case}: no {key}");
    let mut resumed = build(&w, &b, 0.5).unwrap();
    resumed.load_state_dict(&state).unwrap();
    assert_eq!(resumed.group_lr(0).unwrap(), lr);
    drop(opt);
    for _ in 0..2 {
        step(&mut resumed);
    }
    assert_close(&w, &g.get(&format!("{case}.w5")), dev, 1e-10, 1e-8);
    assert_close(&b, &g.get(&format!("{case}.b5")), dev, 1e-10, 1e-8);
}

device_test! {
    fn sgd_matches_pytorch(dev) {
        check_trajectory("sgd", dev, |p| Ok(Box::new(Sgd::new(p, 0.1)?)));
    }

    fn sgd_momentum_matches_pytorch(dev) {
        check_trajectory("sgd_momentum", dev, |p| {
            Ok(Box::new(Sgd::new(p, 0.1)?.momentum(0.9)))
        });
    }

    fn sgd_dampening_and_weight_decay_match_pytorch(dev) {
        check_trajectory("sgd_dampening", dev, |p| {
            Ok(Box::new(
                Sgd::new(p, 0.1)?
                    .momentum(0.9)
                    .dampening(0.1)
                    .weight_decay(0.01),
            ))
        });
    }

    fn sgd_nesterov_matches_pytorch(dev) {
        check_trajectory("sgd_nesterov", dev, |p| {
            Ok(Box::new(
                Sgd::new(p, 0.05)?
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(5e-4),
            ))
        });
    }

    fn adam_matches_pytorch(dev) {
        check_trajectory("adam", dev, |p| Ok(Box::new(Adam::new(p, 1e-2)?)));
    }

    fn adam_weight_decay_amsgrad_matches_pytorch(dev) {
        check_trajectory("adam_wd_amsgrad", dev, |p| {
            Ok(Box::new(
                Adam::new(p, 1e-2)?.weight_decay(0.1).amsgrad(true),
            ))
        });
    }

    fn adamw_matches_pytorch(dev) {
        check_trajectory("adamw", dev, |p| Ok(Box::new(AdamW::new(p, 1e-2)?)));
    }

    fn sgd_parameter_groups_match_pytorch(dev) {
        check_trajectory("sgd_groups", dev, |p| {
            let mut opt = Sgd::new([p[0].clone()], 0.1)?.momentum(0.9);
            opt.add_param_group(
                ParamGroup::new([p[1].clone()]).lr(0.05).momentum(0.5).weight_decay(0.1),
            )?;
            Ok(Box::new(opt))
        });
    }

    fn adamw_parameter_groups_match_pytorch(dev) {
        check_trajectory("adamw_groups", dev, |p| {
            let mut opt = AdamW::new([p[0].clone()], 1e-2)?.weight_decay(0.1);
            opt.add_param_group(
                ParamGroup::new([p[1].clone()])
                    .lr(3e-2)
                    .weight_decay(0.0)
                    .betas(0.8, 0.99)
                    .amsgrad(true),
            )?;
            assert_eq!(opt.num_groups(), 2);
            Ok(Box::new(opt))
        });
    }

    /// Three steps, the state through a state dict into a fresh optimizer, two more:
    /// the trajectory is PyTorch's uninterrupted one (moments, step counts and each
    /// group's options round-trip).
    fn state_dict_resumes_the_trajectory(dev) {
        check_resume("adamw_groups", "state.1.max_exp_avg_sq", dev, |w, b, lr_w| {
            let mut opt = AdamW::new([w.clone()], lr_w)?.weight_decay(0.1);
            opt.add_param_group(
                ParamGroup::new([b.clone()])
                    .lr(3e-2)
                    .weight_decay(0.0)
                    .betas(0.8, 0.99)
                    .amsgrad(true),
            )?;
            Ok(Box::new(opt))
        });
        check_resume("sgd_groups", "state.1.momentum_buffer", dev, |w, b, lr_w| {
            let mut opt = Sgd::new([w.clone()], lr_w)?.momentum(0.9);
            opt.add_param_group(
                ParamGroup::new([b.clone()]).lr(0.05).momentum(0.5).weight_decay(0.1),
            )?;
            Ok(Box::new(opt))
        });
    }

    fn adamw_custom_matches_pytorch(dev) {
        check_trajectory("adamw_custom", dev, |p| {
            Ok(Box::new(
                AdamW::new(p, 3e-2)?
                    .betas(0.8, 0.99)
                    .eps(1e-6)
                    .weight_decay(0.1)
                    .amsgrad(true),
            ))
        });
    }
}

#[test]
fn set_lr_changes_the_step() {
    let w = Tensor::ones(&[2], DType::F64, &Device::Cpu)
        .unwrap()
        .requires_grad();
    let mut opt = Sgd::new([w.clone()], 0.1).unwrap();
    opt.set_lr(0.5);
    assert_eq!(opt.lr(), 0.5);
    w.sum_all().unwrap().backward().unwrap();
    opt.step().unwrap();
    assert_eq!(w.to_vec::<f64>().unwrap(), vec![0.5, 0.5]);
}

#[test]
fn empty_parameter_list_is_an_error() {
    let none: Vec<Tensor> = Vec::new();
    assert!(matches!(
        Sgd::new(none.clone(), 0.1),
        Err(Error::InvalidArgument { name: "params", .. })
    ));
    assert!(matches!(
        Adam::new(none, 0.1),
        Err(Error::InvalidArgument { name: "params", .. })
    ));
}

#[test]
fn invalid_hyper_parameters_are_errors_and_change_nothing() {
    let w = Tensor::ones(&[2], DType::F64, &Device::Cpu)
        .unwrap()
        .requires_grad();
    assert!(matches!(
        Sgd::new([w.clone()], -1.0),
        Err(Error::InvalidArgument { name: "lr", .. })
    ));
    w.sum_all().unwrap().backward().unwrap();
    let mut nesterov = Sgd::new([w.clone()], 0.1).unwrap().nesterov(true);
    assert!(matches!(
        nesterov.step(),
        Err(Error::InvalidArgument {
            name: "nesterov",
            ..
        })
    ));
    let mut adam = Adam::new([w.clone()], 0.1).unwrap().betas(1.5, 0.9);
    assert!(matches!(
        adam.step(),
        Err(Error::InvalidArgument {
            name: "betas.0",
            ..
        })
    ));
    assert_eq!(w.to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
}

#[test]
fn unused_parameter_is_named_and_nothing_changes() {
    let dev = Device::Cpu;
    let used = Tensor::ones(&[2], DType::F64, &dev)
        .unwrap()
        .requires_grad();
    let unused = Tensor::ones(&[3], DType::F64, &dev)
        .unwrap()
        .requires_grad();
    let mut opt = Sgd::new(
        [
            ("used".to_string(), used.clone()),
            ("head.bias".to_string(), unused.clone()),
        ],
        0.1,
    )
    .unwrap();
    used.sum_all().unwrap().backward().unwrap();
    match opt.step() {
        Err(Error::UnusedParameters { names }) => assert_eq!(names, vec!["head.bias".to_string()]),
        other => panic!("expected UnusedParameters, got {other:?}"),
    }
    assert_eq!(used.to_vec::<f64>().unwrap(), vec![1.0, 1.0]);
    let mut opt = Sgd::new([used.clone(), unused], 0.1)
        .unwrap()
        .allow_unused(true);
    opt.step().unwrap();
    assert_eq!(used.to_vec::<f64>().unwrap(), vec![0.9, 0.9]);
}

#[test]
fn gradients_reaching_parameters_the_optimizer_does_not_hold_are_caught() {
    use kiln::nn::Parameter;
    let dev = Device::Cpu;
    let held = Parameter::new(Tensor::ones(&[2], DType::F64, &dev).unwrap()).unwrap();
    let mut opt = Sgd::new([("held".to_string(), held.clone())], 0.1).unwrap();
    // What a layer built inside `forward` does: a fresh parameter on every call.
    let fresh = Parameter::new(Tensor::ones(&[3, 2], DType::F64, &dev).unwrap()).unwrap();
    fresh
        .matmul(&held)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let err = opt.step().unwrap_err();
    assert!(
        matches!(&err, Error::UnregisteredParameters { shapes } if shapes == &vec![vec![3, 2]])
    );
    assert!(err.to_string().contains("inside `forward`"), "{err}");
    assert_eq!(
        held.to_vec::<f64>().unwrap(),
        vec![1.0, 1.0],
        "a failing step changes nothing"
    );
    let mut opt = Sgd::new(vec![held.clone()], 0.1)
        .unwrap()
        .allow_unregistered(true);
    opt.step().unwrap();
    assert_eq!(held.to_vec::<f64>().unwrap(), vec![0.7, 0.7]);
}

#[test]
fn another_threads_backward_does_not_count_as_this_threads() {
    use kiln::nn::Parameter;
    let dev = Device::Cpu;
    let held = Parameter::new(Tensor::ones(&[2], DType::F64, &dev).unwrap()).unwrap();
    let mut opt = Sgd::new([("held".to_string(), held.clone())], 0.1).unwrap();
    held.sum_all().unwrap().backward().unwrap();
    // Meanwhile another thread trains something else: its backward reaches a
    // parameter this optimizer does not hold. That is not this loop's mistake.
    std::thread::spawn(move || {
        let other = Parameter::new(Tensor::ones(&[3], DType::F64, &Device::Cpu).unwrap()).unwrap();
        other.sum_all().unwrap().backward().unwrap();
    })
    .join()
    .unwrap();
    opt.step().unwrap();
    assert_eq!(held.to_vec::<f64>().unwrap(), vec![0.9, 0.9]);
}

#[test]
fn a_parameter_listed_twice_is_an_error() {
    let w = Tensor::ones(&[2], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad();
    let err = Sgd::new([w.clone(), w.clone()], 0.1).unwrap_err();
    assert!(err.to_string().contains("same parameter"), "{err}");
    assert!(Adam::new([w.clone(), w.detach().requires_grad()], 0.1).is_err());
    // Disjoint views of one buffer are distinct parameters.
    let flat = Tensor::ones(&[4], DType::F32, &Device::Cpu).unwrap();
    let halves = [
        flat.narrow(0, 0, 2).unwrap().requires_grad(),
        flat.narrow(0, 2, 2).unwrap().requires_grad(),
    ];
    assert!(Sgd::new(halves, 0.1).is_ok());
}

#[test]
fn a_broadcast_view_cannot_be_given_to_an_optimizer() {
    let p = Tensor::ones(&[1], DType::F32, &Device::Cpu)
        .unwrap()
        .broadcast_as(&[3])
        .unwrap()
        .requires_grad();
    let ok = Tensor::ones(&[3], DType::F32, &Device::Cpu)
        .unwrap()
        .requires_grad();
    let err = AdamW::new([ok, p], 0.1).unwrap_err();
    assert!(err.to_string().contains("broadcast view"), "{err}");
}

fn param(n: usize) -> Tensor {
    Tensor::ones(&[n], DType::F64, &Device::Cpu)
        .unwrap()
        .requires_grad()
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn groups_have_their_own_lrs_and_set_lr_sets_all() {
    let (a, b) = (param(2), param(3));
    let mut opt = AdamW::new([a.clone()], 3e-4).unwrap().weight_decay(0.1);
    opt.add_param_group(ParamGroup::new([b.clone()]).weight_decay(0.0))
        .unwrap();
    assert_eq!(opt.num_groups(), 2);
    assert_eq!(
        opt.group_lr(1).unwrap(),
        3e-4,
        "the optimizer's lr by default"
    );
    opt.set_group_lr(1, 1e-4).unwrap();
    assert_eq!(
        (opt.group_lr(0).unwrap(), opt.group_lr(1).unwrap()),
        (3e-4, 1e-4)
    );
    opt.set_lr(1e-3);
    assert_eq!(
        (opt.group_lr(0).unwrap(), opt.group_lr(1).unwrap()),
        (1e-3, 1e-3)
    );
    assert_eq!(arg_name(opt.group_lr(2).unwrap_err()), "group");
    assert_eq!(arg_name(opt.set_group_lr(5, 0.1).unwrap_err()), "group");
    assert_eq!(arg_name(opt.set_group_lr(0, -0.1).unwrap_err()), "lr");
    // SGD with a zero-lr group: only the other group moves.
    let mut sgd = Sgd::new([a.clone()], 0.5).unwrap();
    sgd.add_param_group(ParamGroup::new([b.clone()]).lr(0.0))
        .unwrap();
    a.sum_all().unwrap().backward().unwrap();
    b.sum_all().unwrap().backward().unwrap();
    sgd.step().unwrap();
    assert_eq!(a.to_vec::<f64>().unwrap(), vec![0.5; 2]);
    assert_eq!(b.to_vec::<f64>().unwrap(), vec![1.0; 3]);
}

#[test]
fn bad_groups_are_errors_that_change_nothing() {
    let (a, b) = (param(2), param(3));
    let mut opt = Sgd::new([a.clone()], 0.1).unwrap();
    let err = opt
        .add_param_group(ParamGroup::new([b.clone(), a.clone()]))
        .unwrap_err();
    assert!(err.to_string().contains("same parameter"), "{err}");
    assert_eq!(arg_name(err), "params");
    let none: Vec<Tensor> = Vec::new();
    assert_eq!(
        arg_name(opt.add_param_group(ParamGroup::new(none)).unwrap_err()),
        "params"
    );
    let neg = ParamGroup::new([b.clone()]).lr(-1.0);
    assert_eq!(arg_name(opt.add_param_group(neg).unwrap_err()), "lr");
    let betas = ParamGroup::new([b.clone()]).betas(0.9, 0.99);
    assert_eq!(arg_name(opt.add_param_group(betas).unwrap_err()), "betas.0");
    let mut adam = Adam::new([a.clone()], 0.1).unwrap();
    let momentum = ParamGroup::new([b.clone()]).momentum(0.9);
    assert_eq!(
        arg_name(adam.add_param_group(momentum).unwrap_err()),
        "momentum"
    );
    let beta = ParamGroup::new([b.clone()]).betas(1.0, 0.99);
    assert_eq!(arg_name(adam.add_param_group(beta).unwrap_err()), "betas.0");
    assert_eq!((opt.num_groups(), adam.num_groups()), (1, 1));
    // b is in no group: a backward that reaches it is still caught.
    opt.add_param_group(ParamGroup::new([b.clone()])).unwrap();
    assert_eq!(opt.num_groups(), 2);
    a.sum_all().unwrap().backward().unwrap();
    assert!(matches!(
        opt.step(),
        Err(Error::UnusedParameters { names }) if names.len() == 1
    ));
}

#[test]
fn a_parameter_in_no_group_is_unregistered() {
    use kiln::nn::Parameter;
    let dev = Device::Cpu;
    let held = Parameter::new(Tensor::ones(&[2], DType::F64, &dev).unwrap()).unwrap();
    let other = Parameter::new(Tensor::ones(&[2], DType::F64, &dev).unwrap()).unwrap();
    let third = Parameter::new(Tensor::ones(&[4], DType::F64, &dev).unwrap()).unwrap();
    let mut opt = AdamW::new([held.clone()], 0.1).unwrap();
    opt.add_param_group(ParamGroup::new([other.clone()]).lr(0.2))
        .unwrap();
    held.add(&other)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    third.sum_all().unwrap().backward().unwrap();
    assert!(matches!(
        opt.step(),
        Err(Error::UnregisteredParameters { shapes }) if shapes == vec![vec![4]]
    ));
}

#[test]
fn load_state_dict_is_strict_and_atomic() {
    let (a, b) = (param(2), param(3));
    let mut opt = Adam::new([a.clone()], 0.1).unwrap();
    opt.add_param_group(ParamGroup::new([b.clone()]).lr(0.2))
        .unwrap();
    a.sum_all().unwrap().backward().unwrap();
    b.sum_all().unwrap().backward().unwrap();
    opt.step().unwrap();
    let good = opt.state_dict();
    let mut fresh = Adam::new([param(2)], 0.7).unwrap();
    fresh.add_param_group(ParamGroup::new([param(3)])).unwrap();
    let check = |fresh: &mut Adam, state: Vec<(String, Tensor)>, needle: &str| {
        let before = fresh.state_dict();
        let err = fresh.load_state_dict(&state).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
        let after = fresh.state_dict();
        assert_eq!(before.len(), after.len(), "nothing changed");
        assert_eq!(fresh.group_lr(0).unwrap(), 0.7, "nothing changed");
    };
    let without = |key: &str| -> Vec<(String, Tensor)> {
        good.iter().filter(|(k, _)| k != key).cloned().collect()
    };
    check(
        &mut fresh,
        without("state.1.exp_avg_sq"),
        "missing keys: `state.1.exp_avg_sq`",
    );
    check(
        &mut fresh,
        without("param_groups.0.lr"),
        "missing keys: `param_groups.0.lr`",
    );
    let mut extra = good.clone();
    extra.push(("state.7.exp_avg".into(), param(1)));
    check(&mut fresh, extra, "unexpected keys: `state.7.exp_avg`");
    let reshaped: Vec<(String, Tensor)> = good
        .iter()
        .map(|(k, t)| match k.as_str() {
            "state.0.exp_avg" => (k.clone(), param(5)),
            _ => (k.clone(), t.clone()),
        })
        .collect();
    check(
        &mut fresh,
        reshaped,
        "`state.0.exp_avg` has shape [5], expected [2]",
    );
    let negative: Vec<(String, Tensor)> = good
        .iter()
        .map(|(k, t)| match k.as_str() {
            "param_groups.1.lr" => (k.clone(), Tensor::scalar(-1.0f64, &Device::Cpu).unwrap()),
            _ => (k.clone(), t.clone()),
        })
        .collect();
    check(&mut fresh, negative, "param_groups.1.lr");
    // A single group does not take a two-group state.
    let mut one = Adam::new([param(2)], 0.7).unwrap();
    assert!(one.load_state_dict(&good).is_err());
    fresh.load_state_dict(&good).unwrap();
    assert_eq!(fresh.group_lr(1).unwrap(), 0.2);
    // The loaded moments are copies: stepping the original does not change them.
    let m = fresh
        .state_dict()
        .into_iter()
        .find(|(k, _)| k == "state.0.exp_avg")
        .unwrap()
        .1
        .to_vec::<f64>()
        .unwrap();
    opt.step().unwrap();
    let m2 = fresh
        .state_dict()
        .into_iter()
        .find(|(k, _)| k == "state.0.exp_avg")
        .unwrap()
        .1
        .to_vec::<f64>()
        .unwrap();
    assert_eq!(m, m2);
}
