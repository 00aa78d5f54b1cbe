//! Resuming a schedule, PyTorch's recipe: fresh optimizer and scheduler built with the
//! same arguments, then `opt.load_state_dict`, `sched.load_state_dict` of states that
//! went through a safetensors file. Every scheduler kind, resumed at several steps,
//! continues bit for bit as the uninterrupted run; a bad state is an error that
//! changes nothing. Schedulers do no device work, so this runs on the CPU.

use kiln::optim::lr_scheduler::{
    CosineAnnealingLr, ExponentialLr, LambdaLr, LinearLr, LrScheduler, MultiStepLr, OneCycleLr,
    SequentialLr, StepLr,
};
use kiln::optim::{Adam, Optimizer, ParamGroup, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};

const LRS: [f64; 3] = [0.1, 0.05, 0.3];
const STEPS: usize = 60;
/// The steps after which a run is saved and resumed: the start, around the
/// milestones of the sequential cases (10, 20, 30), and late.
const RESUME_AT: [usize; 7] = [0, 1, 10, 19, 20, 21, 45];

type Make = fn(&dyn Optimizer) -> Result<Box<dyn LrScheduler>>;

#[derive(Clone, Copy)]
enum Kind {
    Sgd,
    Adam,
}

/// An optimizer of three groups (one parameter each, lrs `LRS`) and its parameters.
fn optimizer(kind: Kind) -> (Vec<Tensor>, Box<dyn Optimizer>) {
    let params: Vec<Tensor> = (0..3)
        .map(|_| {
            Tensor::zeros(&[2], DType::F32, &Device::Cpu)
                .unwrap()
                .requires_grad()
        })
        .collect();
    let mut opt: Box<dyn Optimizer> = match kind {
        Kind::Sgd => Box::new(Sgd::new([params[0].clone()], LRS[0]).unwrap().momentum(0.9)),
        Kind::Adam => Box::new(Adam::new([params[0].clone()], LRS[0]).unwrap()),
    };
    for (p, lr) in params[1..].iter().zip(&LRS[1..]) {
        opt.add_param_group(ParamGroup::new([p.clone()]).lr(*lr))
            .unwrap();
    }
    (params, opt)
}

fn train_step(params: &[Tensor], opt: &mut dyn Optimizer) {
    for p in params {
        p.sum_all().unwrap().backward().unwrap();
    }
    opt.step().unwrap();
    opt.zero_grad();
}

/// What must continue exactly: the scheduler's lrs and epoch, every group's lr and
/// (one-cycle) momentum in the optimizer, and the scheduler's whole state (which
/// holds what no lr shows yet, such as `_step_count`), as bits.
#[derive(Debug, PartialEq)]
struct Snap {
    last_lr: Vec<u64>,
    last_epoch: i64,
    group_lrs: Vec<u64>,
    momenta: Vec<u64>,
    state: Vec<(String, Vec<u64>)>,
}

fn snap(opt: &dyn Optimizer, sched: &dyn LrScheduler) -> Snap {
    let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect();
    let per_group =
        |f: &dyn Fn(usize) -> Result<f64>| bits((0..3).map(|g| f(g).unwrap()).collect());
    Snap {
        last_lr: bits(sched.last_lr()),
        last_epoch: sched.last_epoch(),
        group_lrs: per_group(&|g| opt.group_lr(g)),
        momenta: per_group(&|g| opt.group_momentum(g)),
        state: (sched.state_dict().into_iter())
            .map(|(k, t)| (k, bits(t.to_dtype(DType::F64).unwrap().to_vec().unwrap())))
            .collect(),
    }
}

/// Writes `state` to a fresh safetensors file and reads it back.
fn through_file(state: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "kiln-sched-resume-{}-{}.safetensors",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    kiln::save_tensors(&path, state).unwrap();
    let back = kiln::load_tensors(&path, &Device::Cpu).unwrap();
    std::fs::remove_file(&path).unwrap();
    back
}

/// `STEPS` steps from a fresh optimizer and scheduler; after `resume_at` steps (if
/// given) both are saved, rebuilt fresh and loaded. The state after every step.
fn run(kind: Kind, make: Make, resume_at: Option<usize>) -> Vec<Snap> {
    let (mut params, mut opt) = optimizer(kind);
    let mut sched = make(&*opt).unwrap();
    let mut snaps = vec![snap(&*opt, &*sched)];
    for step in 0..STEPS {
        if resume_at == Some(step) {
            let opt_state = through_file(&opt.state_dict());
            let sched_state = through_file(&sched.state_dict());
            (params, opt) = optimizer(kind);
            sched = make(&*opt).unwrap();
            opt.load_state_dict(&opt_state).unwrap();
            sched.load_state_dict(&sched_state).unwrap();
            assert_eq!(&snap(&*opt, &*sched), snaps.last().unwrap(), "just loaded");
        }
        train_step(&params, &mut *opt);
        sched.step(&mut *opt).unwrap();
        snaps.push(snap(&*opt, &*sched));
    }
    snaps
}

fn check_resume(kind: Kind, make: Make) {
    let whole = run(kind, make, None);
    for k in RESUME_AT {
        let resumed = run(kind, make, Some(k));
        for (step, (got, want)) in resumed.iter().zip(&whole).enumerate() {
            assert_eq!(got, want, "resumed after {k} steps, at step {step}");
        }
    }
}

#[test]
fn step_lr_resumes_exactly() {
    check_resume(Kind::Sgd, |o| Ok(Box::new(StepLr::new(o, 7, 0.5)?)));
}

#[test]
fn multi_step_lr_resumes_exactly() {
    check_resume(Kind::Sgd, |o| {
        Ok(Box::new(MultiStepLr::new(o, &[5, 20, 20, 40], 0.1)?))
    });
}

#[test]
fn exponential_lr_resumes_exactly() {
    check_resume(Kind::Sgd, |o| Ok(Box::new(ExponentialLr::new(o, 0.97)?)));
}

#[test]
fn cosine_annealing_lr_resumes_exactly() {
    // T_max 25: the run goes past T_max and back up, the cosine's recursive branches.
    check_resume(Kind::Sgd, |o| {
        Ok(Box::new(CosineAnnealingLr::new(o, 25)?.eta_min(1e-3)))
    });
}

#[test]
fn linear_lr_resumes_exactly() {
    check_resume(Kind::Sgd, |o| {
        Ok(Box::new(LinearLr::new(o, 0.25, 1.0, 30)?))
    });
}

#[test]
fn lambda_lr_resumes_exactly() {
    check_resume(Kind::Sgd, |o| {
        Ok(Box::new(LambdaLr::new(o, |s| {
            1.0 / (1.0 + 0.1 * s as f64)
        })?))
    });
}

#[test]
fn one_cycle_lr_resumes_exactly_with_its_momentum() {
    check_resume(Kind::Sgd, |o| Ok(Box::new(OneCycleLr::new(o, 0.5, STEPS)?)));
    check_resume(Kind::Adam, |o| {
        Ok(Box::new(OneCycleLr::new(o, 0.01, STEPS)?))
    });
}

fn warm_then_cosine(o: &dyn Optimizer) -> Result<Box<dyn LrScheduler>> {
    let warm = LinearLr::new(o, 0.1, 1.0, 20)?;
    let cos = CosineAnnealingLr::new(o, 40)?.eta_min(1e-4);
    Ok(Box::new(SequentialLr::new(
        o,
        vec![Box::new(warm), Box::new(cos)],
        &[20],
    )?))
}

#[test]
fn sequential_lr_resumes_exactly() {
    check_resume(Kind::Sgd, warm_then_cosine);
    check_resume(Kind::Adam, |o| {
        let warm = LinearLr::new(o, 0.5, 1.0, 10)?;
        let step = StepLr::new(o, 4, 0.5)?;
        let exp = ExponentialLr::new(o, 0.98)?;
        Ok(Box::new(SequentialLr::new(
            o,
            vec![Box::new(warm), Box::new(step), Box::new(exp)],
            &[10, 30],
        )?))
    });
}

fn cosine(o: &dyn Optimizer) -> Result<Box<dyn LrScheduler>> {
    Ok(Box::new(CosineAnnealingLr::new(o, 40)?))
}

/// An optimizer and `make`'s scheduler on it, stepped `steps` times.
fn stepped(make: Make, steps: usize) -> (Box<dyn Optimizer>, Box<dyn LrScheduler>) {
    let (params, mut opt) = optimizer(Kind::Sgd);
    let mut sched = make(&*opt).unwrap();
    for _ in 0..steps {
        train_step(&params, &mut *opt);
        sched.step(&mut *opt).unwrap();
    }
    (opt, sched)
}

/// Loads each bad state into a scheduler stepped 5 times: each is an `Err` naming
/// `state` whose message has the needle, and afterwards the scheduler (and its next
/// step) is the same as an untouched twin's.
fn check_rejected(make: Make, cases: Vec<(Vec<(String, Tensor)>, &str)>) {
    let (mut opt, mut sched) = stepped(make, 5);
    let (mut twin_opt, mut twin) = stepped(make, 5);
    for (state, needle) in cases {
        match sched.load_state_dict(&state) {
            Err(Error::InvalidArgument { name, msg }) => {
                assert_eq!(name, "state");
                assert!(msg.contains(needle), "`{msg}` should say `{needle}`");
            }
            other => panic!("expected an error saying `{needle}`, got {other:?}"),
        }
        assert_eq!(snap(&*opt, &*sched), snap(&*twin_opt, &*twin), "{needle}");
    }
    sched.step(&mut *opt).unwrap();
    twin.step(&mut *twin_opt).unwrap();
    assert_eq!(snap(&*opt, &*sched), snap(&*twin_opt, &*twin), "next step");
}

fn without(state: &[(String, Tensor)], key: &str) -> Vec<(String, Tensor)> {
    state.iter().filter(|(k, _)| k != key).cloned().collect()
}

fn with(state: &[(String, Tensor)], key: &str, value: Tensor) -> Vec<(String, Tensor)> {
    let mut out = without(state, key);
    out.push((key.to_owned(), value));
    out
}

fn cpu<T: kiln::WithDType>(values: Vec<T>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

#[test]
fn a_bad_state_is_an_error_that_changes_nothing() {
    let good = stepped(cosine, 12).1.state_dict();
    let mut twice = good.clone();
    twice.push(good[1].clone());
    let step_lr = stepped(|o| Ok(Box::new(StepLr::new(o, 7, 0.5)?)), 3).1;
    let cases = vec![
        (without(&good, "base_lrs"), "missing keys: `base_lrs`"),
        (
            with(&good, "milestones", cpu(vec![3i64], &[1])),
            "unexpected keys: `milestones`",
        ),
        (twice, "appears twice"),
        (
            with(&good, "base_lrs", cpu(vec![0.1f64, 0.05], &[2])),
            "`base_lrs` has shape [2], expected [3]",
        ),
        (
            with(&good, "last_epoch", cpu(vec![12.0f64], &[])),
            "`last_epoch` has dtype F64, expected I64",
        ),
        (
            with(&good, "_step_count", cpu(vec![-1i64], &[])),
            "`_step_count` must be at least 0, got -1",
        ),
        (
            with(&good, "_last_lr", cpu(vec![0.1f64, f64::NAN, 0.3], &[3])),
            "`_last_lr` holds NaN",
        ),
        (
            with(&good, "kind", cpu(vec![1.0f32], &[1])),
            "`kind` must be a vector of U8",
        ),
        (step_lr.state_dict(), "`kind` is StepLR"),
        (
            stepped(|o| Ok(Box::new(CosineAnnealingLr::new(o, 30)?)), 12)
                .1
                .state_dict(),
            "`T_max` is [30.0] in the state but [40.0] in this scheduler",
        ),
        (
            with(&good, "eta_min", cpu(vec![0i64], &[1])),
            "`eta_min` must be a vector of F64",
        ),
        (
            stepped(warm_then_cosine, 3).1.state_dict(),
            "`kind` is SequentialLR",
        ),
    ];
    check_rejected(cosine, cases);
    // And the good state loads.
    let (mut opt, mut sched) = stepped(cosine, 5);
    sched.load_state_dict(&good).unwrap();
    assert_eq!(sched.last_epoch(), 12);
    sched.step(&mut *opt).unwrap();
    assert_eq!(sched.last_epoch(), 13);
}

#[test]
fn a_sequential_state_is_checked_down_to_its_schedulers() {
    let good = stepped(warm_then_cosine, 25).1.state_dict();
    let warm_then_step: Make = |o| {
        let warm = LinearLr::new(o, 0.1, 1.0, 20)?;
        let step = StepLr::new(o, 7, 0.5)?;
        Ok(Box::new(SequentialLr::new(
            o,
            vec![Box::new(warm), Box::new(step)],
            &[20],
        )?))
    };
    let other = stepped(warm_then_step, 25).1.state_dict();
    let cases = vec![
        (
            without(&good, "schedulers.1.last_epoch"),
            "missing keys: `schedulers.1.last_epoch`",
        ),
        (
            with(&good, "schedulers.0.base_lrs", cpu(vec![0.1f64], &[1])),
            "`schedulers.0.base_lrs` has shape [1], expected [3]",
        ),
        (other, "`schedulers.1.kind` is StepLR"),
        (
            with(&good, "milestones", cpu(vec![25.0f64], &[1])),
            "`milestones` is [25.0] in the state but [20.0]",
        ),
        (
            with(&good, "schedulers.0.total_iters", cpu(vec![10.0f64], &[1])),
            "`schedulers.0.total_iters` is [10.0] in the state but [20.0]",
        ),
    ];
    check_rejected(warm_then_cosine, cases);
}

fn initial_lrs(state: &[(String, Tensor)]) -> Vec<Option<f64>> {
    (0..3)
        .map(|g| {
            let key = format!("param_groups.{g}.initial_lr");
            let t = state.iter().find(|(k, _)| *k == key)?;
            Some(t.1.to_vec::<f64>().unwrap()[0])
        })
        .collect()
}

/// PyTorch's `initial_lr` goes with the optimizer's state: a scheduler built after
/// loading starts from the saved run's, not from the fresh optimizer's lrs.
#[test]
fn the_optimizer_state_carries_initial_lr() {
    let (_, opt) = optimizer(Kind::Sgd);
    let _cycle = OneCycleLr::new(&*opt, 0.5, 10).unwrap();
    let state = through_file(&opt.state_dict());
    assert_eq!(initial_lrs(&state), vec![Some(0.5 / 25.0); 3]);

    let (_, mut fresh) = optimizer(Kind::Sgd);
    assert_eq!(initial_lrs(&fresh.state_dict()), vec![None; 3]);
    fresh.load_state_dict(&state).unwrap();
    assert_eq!(initial_lrs(&fresh.state_dict()), vec![Some(0.5 / 25.0); 3]);
    let later = CosineAnnealingLr::new(&*fresh, 10).unwrap();
    let base: Vec<f64> = (later.state_dict().into_iter())
        .find(|(k, _)| k == "base_lrs")
        .unwrap()
        .1
        .to_vec()
        .unwrap();
    assert_eq!(base, vec![0.5 / 25.0; 3]);

    // A state without it (saved before any scheduler existed) keeps the group's own.
    let (_, mut scheduled) = optimizer(Kind::Sgd);
    let _step = StepLr::new(&*scheduled, 7, 0.5).unwrap();
    let (_, plain) = optimizer(Kind::Sgd);
    scheduled.load_state_dict(&plain.state_dict()).unwrap();
    let own: Vec<Option<f64>> = LRS.iter().map(|&lr| Some(lr)).collect();
    assert_eq!(initial_lrs(&scheduled.state_dict()), own);

    // A bad one is rejected like any option.
    let bad = with(&state, "param_groups.1.initial_lr", cpu(vec![-1.0f64], &[]));
    let err = scheduled.load_state_dict(&bad).unwrap_err();
    assert!(
        err.to_string().contains("param_groups.1.initial_lr"),
        "{err}"
    );
    assert_eq!(initial_lrs(&scheduled.state_dict()), own, "nothing changed");
}
