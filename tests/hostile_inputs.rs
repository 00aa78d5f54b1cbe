//! Hardening, round 2: hostile inputs to the APIs added since the first round
//! (schedulers, the DataLoader, checkpoints, GradScaler, collation, pooling), one
//! section per class of defect. Each is an `Err` naming the argument or PyTorch's
//! answer, never a panic, an abort or a silently wrong value.

mod common;

use kiln::amp::{GradScaler, GradScalerState};
use kiln::data::{DataLoader, Dataset};
use kiln::nn::functional as F;
use kiln::optim::lr_scheduler::{
    CosineAnnealingLr, LinearLr, LrScheduler, MultiStepLr, OneCycleLr, SequentialLr, StepLr,
};
use kiln::optim::{Optimizer, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};

const CPU: Device = Device::Cpu;

/// The argument an `InvalidArgument` error names.
fn arg_name<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    match r {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

fn sgd(lr: f64) -> (Tensor, Sgd) {
    let w = Tensor::zeros(&[2], DType::F32, &CPU)
        .unwrap()
        .requires_grad();
    let opt = Sgd::new([w.clone()], lr).unwrap();
    (w, opt)
}

// ---- 1. integer conversions that wrap ------------------------------------------------

/// Sizes beyond `i64::MAX` (the type schedules count steps in, as PyTorch's
/// `last_epoch`) are refused by name instead of wrapping negative.
#[test]
fn scheduler_sizes_beyond_i64_are_errors() {
    let (_, opt) = sgd(0.1);
    assert_eq!(arg_name(StepLr::new(&opt, usize::MAX, 0.1)), "step_size");
    assert_eq!(arg_name(CosineAnnealingLr::new(&opt, 1 << 63)), "T_max");
    assert_eq!(
        arg_name(LinearLr::new(&opt, 0.5, 1.0, usize::MAX)),
        "total_iters"
    );
    assert_eq!(
        arg_name(OneCycleLr::new(&opt, 1.0, usize::MAX)),
        "total_steps"
    );
    assert_eq!(
        arg_name(MultiStepLr::new(&opt, &[3, usize::MAX], 0.1)),
        "milestones"
    );
    let warm = Box::new(LinearLr::new(&opt, 0.5, 1.0, 2).unwrap());
    let cos = Box::new(CosineAnnealingLr::new(&opt, 5).unwrap());
    assert_eq!(
        arg_name(SequentialLr::new(&opt, vec![warm, cos], &[usize::MAX])),
        "milestones"
    );
}

/// The largest sizes that fit step as PyTorch's would: a step size of `i64::MAX`
/// never decays (the wrapped −1 decayed every step), and a `T_max` of 2^62 does not
/// overflow `2 · T_max` (a remainder by zero, or a panic, before).
#[test]
fn the_largest_scheduler_sizes_step_correctly() {
    let (_, mut opt) = sgd(0.1);
    let mut step = StepLr::new(&opt, i64::MAX as usize, 0.5).unwrap();
    for _ in 0..3 {
        step.step(&mut opt).unwrap();
    }
    assert_eq!(step.last_lr(), [0.1]);
    let (_, mut opt) = sgd(0.1);
    let mut cos = CosineAnnealingLr::new(&opt, 1 << 62).unwrap();
    for _ in 0..3 {
        cos.step(&mut opt).unwrap();
    }
    let lr = cos.last_lr()[0];
    assert!(lr > 0.0999 && lr <= 0.1, "{lr}");
}

/// A state at `last_epoch = i64::MAX` loads, but the next step is an `Err` naming
/// `last_epoch` that changes nothing (it stepped into `i64::MIN`, whose state could
/// not be loaded again).
#[test]
fn a_schedule_at_the_last_count_refuses_to_step() {
    let (_, mut opt) = sgd(0.1);
    let mut sched = StepLr::new(&opt, 2, 0.5).unwrap();
    let mut state = sched.state_dict();
    for (key, t) in &mut state {
        if key == "last_epoch" || key == "_step_count" {
            *t = Tensor::scalar(i64::MAX, &CPU).unwrap();
        }
    }
    sched.load_state_dict(&state).unwrap();
    let lrs = sched.last_lr();
    assert_eq!(arg_name(sched.step(&mut opt)), "last_epoch");
    assert_eq!(sched.last_epoch(), i64::MAX);
    assert_eq!(sched.last_lr(), lrs);
    sched.load_state_dict(&sched.state_dict()).unwrap();
}

// ---- 2. allocations sized by an unchecked number ---------------------------------------

/// A dataset that claims `len` samples; sample `i` is `[i]` (I64).
#[derive(Clone)]
struct Huge {
    len: usize,
}

impl Dataset for Huge {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>> {
        let i = i64::try_from(i).map_err(|_| Error::InvalidArgument {
            name: "index",
            msg: "beyond i64".into(),
        })?;
        Ok(vec![Tensor::from_vec(vec![i], &[1], &CPU)?])
    }
}

/// An epoch in order lists nothing, so a dataset of 2^40 samples starts at once (it
/// aborted, collecting 8 TiB of indices); shuffling one needs the list, and a list
/// larger than memory is `HostOutOfMemory`, as is a batch larger than memory.
#[test]
fn a_loader_over_a_huge_dataset_neither_aborts_nor_lists_it() {
    let data = Huge { len: 1 << 40 };
    let loader = DataLoader::new(&data, 4).prefetch(0);
    assert_eq!(loader.len(), 1 << 38);
    let first = loader.iter().unwrap().next().unwrap().unwrap();
    assert_eq!(first[0].to_vec::<i64>().unwrap(), [0, 1, 2, 3]);
    let shuffled = DataLoader::new(&data, 4).shuffle(true).seed(0);
    assert!(matches!(
        shuffled.iter(),
        Err(Error::HostOutOfMemory { .. })
    ));
    let whole = DataLoader::new(&data, usize::MAX).prefetch(0);
    let batch = whole.iter().unwrap().next().unwrap();
    assert!(
        matches!(batch, Err(Error::HostOutOfMemory { .. })),
        "{batch:?}"
    );
}

// ---- 6. GradScaler bookkeeping -------------------------------------------------------

/// A parameter `[1, 2]` whose loss `sum(p · [3, 4])` was scaled by `scaler`.
fn scaled_step(scaler: &GradScaler) -> (Tensor, Sgd) {
    let p = Tensor::from_vec(vec![1.0f32, 2.0], &[2], &CPU)
        .unwrap()
        .requires_grad();
    let g = Tensor::from_vec(vec![3.0f32, 4.0], &[2], &CPU).unwrap();
    let loss = p.mul(&g).unwrap().sum_all().unwrap();
    scaler.scale(&loss).unwrap().backward().unwrap();
    let opt = Sgd::new([p.clone()], 0.5).unwrap();
    (p, opt)
}

/// The scaler knows an optimizer by the table it keeps wherever it moves, not by its
/// address: `unscale_` then a move into a `Box` then `step` unscales once (it
/// unscaled twice, stepping by gradients 65536 times too small).
#[test]
fn grad_scaler_state_survives_moving_the_optimizer() {
    let mut scaler = GradScaler::new();
    let (p, mut opt) = scaled_step(&scaler);
    scaler.unscale_(&mut opt).unwrap();
    let mut moved: Box<dyn Optimizer> = Box::new(opt);
    assert!(scaler.step(&mut *moved).unwrap());
    assert_eq!(
        p.to_vec::<f32>().unwrap(),
        [1.0 - 0.5 * 3.0, 2.0 - 0.5 * 4.0]
    );
    assert_eq!(
        arg_name(scaler.unscale_(&mut *moved)),
        "optimizer",
        "after step"
    );
}

/// `step` or `unscale_` without a `scale` since the last `update` is an `Err` (it
/// divided unscaled gradients by 65536), as is a `step` that found no gradient.
#[test]
fn grad_scaler_refuses_gradients_it_did_not_scale() {
    let mut scaler = GradScaler::new();
    let p = Tensor::from_vec(vec![1.0f32], &[1], &CPU)
        .unwrap()
        .requires_grad();
    p.sum_all().unwrap().backward().unwrap();
    let mut opt = Sgd::new([p.clone()], 0.5).unwrap();
    assert_eq!(arg_name(scaler.step(&mut opt)), "optimizer");
    assert_eq!(arg_name(scaler.unscale_(&mut opt)), "optimizer");
    assert_eq!(p.to_vec::<f32>().unwrap(), [1.0], "nothing stepped");
    let (_, mut opt) = scaled_step(&scaler);
    assert!(scaler.step(&mut opt).unwrap());
    scaler.update();
    let (_, mut next) = scaled_step(&GradScaler::new());
    assert_eq!(
        arg_name(scaler.step(&mut next)),
        "optimizer",
        "scale() was before update()"
    );
    let q = Tensor::zeros(&[1], DType::F32, &CPU)
        .unwrap()
        .requires_grad();
    let mut no_grads = Sgd::new([q], 0.5).unwrap();
    scaler
        .scale(&Tensor::ones(&[], DType::F32, &CPU).unwrap())
        .unwrap();
    assert_eq!(arg_name(scaler.step(&mut no_grads)), "optimizer");
}

/// The scale is kept in f32: an `init_scale` that is 0, subnormal or infinite there
/// is refused (1e-50 became 0); a loaded growth count must be below the interval.
#[test]
fn grad_scaler_values_are_checked_where_they_enter() {
    for bad in [1e-50, 1e-40, 1e39, -1.0, 0.0, f64::NAN] {
        assert_eq!(
            arg_name(GradScaler::new().init_scale(bad)),
            "init_scale",
            "{bad}"
        );
    }
    let s = GradScaler::new().init_scale(2e-38).unwrap();
    assert!(s.get_scale() > 0.0);
    let mut scaler = GradScaler::new();
    let state = GradScalerState {
        growth_tracker: 2000,
        ..scaler.state_dict()
    };
    assert_eq!(arg_name(scaler.load_state_dict(&state)), "growth_tracker");
    assert_eq!(scaler.state_dict().growth_tracker, 0);
}

// ---- 7. collation ----------------------------------------------------------------------

/// Sample `i` has `1 + (i % 2)` fields, or `2 - (i % 2)` with `first_longer`.
#[derive(Clone)]
struct Ragged {
    first_longer: bool,
}

impl Dataset for Ragged {
    fn len(&self) -> usize {
        4
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>> {
        let fields = if self.first_longer {
            2 - i % 2
        } else {
            1 + i % 2
        };
        (0..fields)
            .map(|_| Tensor::zeros(&[3], DType::F32, &CPU))
            .collect()
    }
}

/// Samples with more fields than the first are an error naming `dataset`, as are
/// fewer (the extra field was silently dropped).
#[test]
fn collation_refuses_samples_unlike_the_first() {
    for first_longer in [false, true] {
        let data = Ragged { first_longer };
        let batch = DataLoader::new(&data, 2)
            .prefetch(0)
            .iter()
            .unwrap()
            .next()
            .unwrap();
        let msg = format!("{:?}", batch.as_ref().map(|b| b.len()));
        assert_eq!(arg_name(batch), "dataset", "{msg}");
    }
}

// ---- 8. leftovers ----------------------------------------------------------------------

/// Pooling an empty plane or no channels is an error naming `input`, as in PyTorch
/// (a window of padding alone gave `Ok`); only the batch may be empty.
#[test]
fn pooling_needs_non_empty_planes() {
    for shape in [[1, 1, 0, 0], [1, 1, 0, 4], [1, 0, 4, 4]] {
        let x = Tensor::zeros(&shape, DType::F32, &CPU).unwrap();
        assert_eq!(arg_name(F::max_pool2d(&x, 2, 2, 1)), "input", "{shape:?}");
        assert_eq!(arg_name(F::avg_pool2d(&x, 2, 2, 1)), "input", "{shape:?}");
    }
    let x = Tensor::zeros(&[0, 4, 4], DType::F32, &CPU).unwrap();
    assert_eq!(
        arg_name(F::max_pool2d(&x, 2, 2, 0)),
        "input",
        "unbatched, no channels"
    );
    let x = Tensor::zeros(&[0, 1, 4, 4], DType::F32, &CPU).unwrap();
    assert_eq!(F::max_pool2d(&x, 2, 2, 0).unwrap().shape(), &[0, 1, 2, 2]);
    assert_eq!(F::avg_pool2d(&x, 2, 2, 0).unwrap().shape(), &[0, 1, 2, 2]);
}
