//! Learning-rate schedulers against PyTorch's trajectories (scripts/golden/lr_scheduler.py):
//! three parameter groups with different lrs, a few hundred steps, every step compared.

mod common;

use common::{assert_values, device_test, Golden};
use kiln::optim::lr_scheduler::{
    CosineAnnealingLr, ExponentialLr, LambdaLr, LinearLr, LrScheduler, MultiStepLr, OneCycleLr,
    SequentialLr, StepLr,
};
use kiln::optim::{Adam, Optimizer, ParamGroup, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};

const LRS: [f64; 3] = [0.1, 0.05, 0.3];

fn param(dev: &Device) -> Tensor {
    Tensor::zeros(&[2], DType::F32, dev)
        .unwrap()
        .requires_grad()
}

/// The script's SGD: one group per lr, momentum 0.9, 0 and 0.5.
fn sgd(dev: &Device) -> Box<dyn Optimizer> {
    let mut opt = Sgd::new([param(dev)], LRS[0]).unwrap().momentum(0.9);
    for (lr, m) in [(LRS[1], 0.0), (LRS[2], 0.5)] {
        opt.add_param_group(ParamGroup::new([param(dev)]).lr(lr).momentum(m))
            .unwrap();
    }
    Box::new(opt)
}

fn adam(dev: &Device) -> Box<dyn Optimizer> {
    let mut opt = Adam::new([param(dev)], LRS[0]).unwrap();
    for lr in &LRS[1..] {
        opt.add_param_group(ParamGroup::new([param(dev)]).lr(*lr))
            .unwrap();
    }
    Box::new(opt)
}

fn momenta(opt: &dyn Optimizer) -> Vec<f64> {
    (0..opt.num_groups())
        .map(|g| opt.group_momentum(g).unwrap())
        .collect()
}

/// Steps `sched` `steps` times and compares every group's lr (and, for the one-cycle
/// cases, momentum) after construction and after every step with PyTorch's.
fn check(
    case: &str,
    steps: usize,
    mut opt: Box<dyn Optimizer>,
    make: impl FnOnce(&dyn Optimizer) -> Result<Box<dyn LrScheduler>>,
) {
    let g = Golden::load("lr_scheduler");
    let mut sched = make(&*opt).unwrap();
    let mut lrs = vec![sched.last_lr()];
    let mut moms = vec![momenta(&*opt)];
    assert_eq!(
        lrs[0],
        (0..3).map(|i| opt.group_lr(i).unwrap()).collect::<Vec<_>>()
    );
    for _ in 0..steps {
        sched.step(&mut *opt).unwrap();
        lrs.push(sched.last_lr());
        moms.push(momenta(&*opt));
    }
    let as_tensor = |rows: Vec<Vec<f64>>| {
        let n = rows.len();
        Tensor::from_vec(rows.concat(), &[n, 3], &Device::Cpu).unwrap()
    };
    let want = g.get(&format!("{case}.lr"));
    assert_values(case, &as_tensor(lrs), &want, 1e-15, 1e-12);
    if case.starts_with("onecycle") {
        let want = g.get(&format!("{case}.momentum"));
        assert_values(case, &as_tensor(moms), &want, 1e-15, 1e-12);
    }
}

device_test! {
    fn step_lr_matches_pytorch(dev) {
        check("step", 300, sgd(dev), |o| Ok(Box::new(StepLr::new(o, 30, 0.5)?)));
    }

    fn multi_step_lr_matches_pytorch(dev) {
        check("multistep", 300, sgd(dev), |o| {
            Ok(Box::new(MultiStepLr::new(o, &[30, 80, 80, 200], 0.1)?))
        });
    }

    fn exponential_lr_matches_pytorch(dev) {
        check("exponential", 300, sgd(dev), |o| Ok(Box::new(ExponentialLr::new(o, 0.99)?)));
    }

    fn cosine_annealing_lr_matches_pytorch(dev) {
        check("cosine", 300, sgd(dev), |o| {
            Ok(Box::new(CosineAnnealingLr::new(o, 100)?.eta_min(1e-3)))
        });
    }

    fn linear_lr_matches_pytorch(dev) {
        check("linear", 300, sgd(dev), |o| Ok(Box::new(LinearLr::new(o, 0.25, 1.0, 40)?)));
        check("linear_decay", 300, sgd(dev), |o| {
            Ok(Box::new(LinearLr::new(o, 1.0, 0.1, 120)?))
        });
    }

    fn lambda_lr_matches_pytorch(dev) {
        check("lambda", 300, sgd(dev), |o| {
            Ok(Box::new(LambdaLr::new(o, |s| 1.0 / (1.0 + 0.1 * s as f64))?))
        });
    }

    fn one_cycle_lr_matches_pytorch_and_cycles_momentum(dev) {
        check("onecycle_sgd", 300, sgd(dev), |o| Ok(Box::new(OneCycleLr::new(o, 0.5, 300)?)));
        check("onecycle_adam", 100, adam(dev), |o| Ok(Box::new(OneCycleLr::new(o, 0.01, 100)?)));
    }

    fn sequential_lr_matches_pytorch(dev) {
        check("sequential", 300, sgd(dev), |o| {
            let warm = LinearLr::new(o, 0.1, 1.0, 20)?;
            let cos = CosineAnnealingLr::new(o, 280)?.eta_min(1e-4);
            Ok(Box::new(SequentialLr::new(o, vec![Box::new(warm), Box::new(cos)], &[20])?))
        });
        check("sequential3", 300, sgd(dev), |o| {
            let warm = LinearLr::new(o, 0.5, 1.0, 10)?;
            let step = StepLr::new(o, 25, 0.5)?;
            let exp = ExponentialLr::new(o, 0.98)?;
            Ok(Box::new(SequentialLr::new(
                o,
                vec![Box::new(warm), Box::new(step), Box::new(exp)],
                &[10, 100],
            )?))
        });
    }
}

/// The lrs a scheduler sets are the ones the optimizer's step uses.
#[test]
fn the_optimizer_steps_with_the_scheduled_lr() {
    let w = Tensor::ones(&[2], DType::F64, &Device::Cpu)
        .unwrap()
        .requires_grad();
    let mut opt = Sgd::new([w.clone()], 1.0).unwrap();
    let mut sched = StepLr::new(&opt, 1, 0.5).unwrap();
    let mut expected = 1.0;
    for lr in [1.0, 0.5, 0.25] {
        w.sum_all().unwrap().backward().unwrap();
        opt.step().unwrap();
        opt.zero_grad();
        expected -= lr;
        assert_eq!(w.to_vec::<f64>().unwrap(), vec![expected; 2]);
        sched.step(&mut opt).unwrap();
    }
}

fn name_of(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn bad_arguments_are_errors_that_name_them() {
    let opt = sgd(&Device::Cpu);
    let o = &*opt;
    assert_eq!(name_of(StepLr::new(o, 0, 0.1).unwrap_err()), "step_size");
    assert_eq!(name_of(StepLr::new(o, 3, -0.1).unwrap_err()), "gamma");
    assert_eq!(
        name_of(MultiStepLr::new(o, &[3], f64::NAN).unwrap_err()),
        "gamma"
    );
    assert_eq!(name_of(ExponentialLr::new(o, -1.0).unwrap_err()), "gamma");
    assert_eq!(name_of(CosineAnnealingLr::new(o, 0).unwrap_err()), "T_max");
    assert_eq!(
        name_of(LinearLr::new(o, 0.0, 1.0, 5).unwrap_err()),
        "start_factor"
    );
    assert_eq!(
        name_of(LinearLr::new(o, 0.5, 1.5, 5).unwrap_err()),
        "end_factor"
    );
    assert_eq!(
        name_of(LinearLr::new(o, 0.5, 1.0, 0).unwrap_err()),
        "total_iters"
    );
    assert_eq!(name_of(OneCycleLr::new(o, 0.0, 10).unwrap_err()), "max_lr");
    assert_eq!(
        name_of(OneCycleLr::new(o, 0.1, 0).unwrap_err()),
        "total_steps"
    );
    let a = Box::new(StepLr::new(o, 3, 0.1).unwrap());
    let b = Box::new(StepLr::new(o, 3, 0.1).unwrap());
    assert_eq!(
        name_of(SequentialLr::new(o, vec![a, b], &[]).unwrap_err()),
        "milestones"
    );
    assert_eq!(
        name_of(SequentialLr::new(o, vec![], &[]).unwrap_err()),
        "schedulers"
    );
    let other = sgd(&Device::Cpu);
    let foreign = Box::new(StepLr::new(&*other, 3, 0.1).unwrap());
    assert_eq!(
        name_of(SequentialLr::new(o, vec![foreign], &[]).unwrap_err()),
        "schedulers"
    );
}

#[test]
fn stepping_another_optimizer_or_past_the_cycle_is_an_error() {
    let mut opt = sgd(&Device::Cpu);
    let mut other = sgd(&Device::Cpu);
    let mut sched = OneCycleLr::new(&*opt, 0.5, 2).unwrap();
    assert_eq!(name_of(sched.step(&mut *other).unwrap_err()), "opt");
    sched.step(&mut *opt).unwrap();
    sched.step(&mut *opt).unwrap();
    let before = sched.last_lr();
    assert_eq!(name_of(sched.step(&mut *opt).unwrap_err()), "total_steps");
    assert_eq!(
        opt.group_lr(0).unwrap(),
        before[0],
        "a failed step changes no lr"
    );
}
