//! Optimizers against PyTorch's trajectories (scripts/golden/optim.py), and the seed's
//! pitfall checks.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::optim::{Adam, AdamW, Optimizer, Sgd};
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
