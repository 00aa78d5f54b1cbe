//! Random sizes and counts — small, huge, and negative where the type allows — through
//! every public constructor that takes one: the schedulers (and their loaded
//! counts), the DataLoader, GradScaler, the creation ops and `load_tensors`'
//! headers. Each call is an `Err` or a correct result, never a panic or an abort.
//!
//! The cases run in a child process (this test binary again, filtered to this test)
//! under a 4 GiB address-space limit (`ulimit -v`): a request the limit cannot hold
//! fails at once, whatever the machine's overcommit policy, and a process abort (an
//! infallible allocation of a huge size) fails the test with the child's output
//! instead of killing the test binary. Set `PROPTEST_CASES` for a deeper run.

use kiln::amp::{GradScaler, GradScalerState};
use kiln::data::{DataLoader, Dataset};
use kiln::optim::lr_scheduler::{
    CosineAnnealingLr, LinearLr, LrScheduler, MultiStepLr, OneCycleLr, SequentialLr, StepLr,
};
use kiln::optim::Sgd;
use kiln::{DType, Device, Error, Result, Tensor};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const CPU: Device = Device::Cpu;
/// Set in the child process, which runs the cases.
const CHILD: &str = "KILN_FUZZ_SIZES_CHILD";

/// Runs the cases in a child under the memory limit; the child's output on failure.
#[test]
fn random_sizes_are_errors_or_correct_results() {
    if std::env::var_os(CHILD).is_some() {
        return run_cases();
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", r#"ulimit -v 4194304 && exec "$0" "$@""#])
        .arg(exe)
        .args([
            "--exact",
            "random_sizes_are_errors_or_correct_results",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the fuzz cases failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn run_cases() {
    let mut cases = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        cases.cases = 128;
    }
    cases.failure_persistence = None;
    let run = |name: &str, f: &dyn Fn(&mut TestRunner) -> std::result::Result<(), String>| {
        let mut runner = TestRunner::new(cases.clone());
        f(&mut runner).unwrap_or_else(|e| panic!("{name}: {e}"));
    };
    run("schedulers", &|r| map(r.run(&(size(), size()), schedulers)));
    run("loaded counts", &|r| {
        map(r.run(&(count(), count()), loaded_counts))
    });
    run("loader", &|r| {
        map(r.run(&(size(), size(), any::<[bool; 2]>()), loader))
    });
    run("scaler", &|r| {
        map(r.run(&(real(), any::<u32>(), any::<u32>()), scaler))
    });
    run("creation", &|r| {
        map(r.run(&(shape(), real(), dtype()), creation))
    });
    run("arange", &|r| map(r.run(&(real(), real(), real()), arange)));
    run("headers", &|r| {
        map(r.run(
            &(shape_i128(), i128_size(), i128_size(), 0usize..64),
            headers,
        ))
    });
}

fn map<E: std::fmt::Display>(r: std::result::Result<(), E>) -> std::result::Result<(), String> {
    r.map_err(|e| e.to_string())
}

/// A size: small, or one that breaks unchecked arithmetic.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 0usize..5,
        1 => Just(usize::MAX),
        1 => Just(usize::MAX / 2),
        1 => Just(1usize << 63),
        1 => Just((1usize << 63) - 1),
        1 => Just(1usize << 62),
        1 => Just(1usize << 40),
        1 => any::<usize>(),
    ]
}

/// A signed count: small, negative, or at the ends of i64.
fn count() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -3i64..5,
        1 => Just(i64::MAX),
        1 => Just(i64::MAX - 1),
        1 => Just(i64::MIN),
        1 => any::<i64>(),
    ]
}

/// A float: ordinary, huge, tiny, negative or not finite.
fn real() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -10.0f64..10.0,
        1 => Just(0.0),
        1 => Just(1e-50),
        1 => Just(1e-40),
        1 => Just(1e39),
        1 => Just(-1e300),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NAN),
        1 => any::<f64>(),
    ]
}

fn dtype() -> impl Strategy<Value = DType> {
    prop_oneof![
        Just(DType::F32),
        Just(DType::F64),
        Just(DType::F16),
        Just(DType::BF16),
        Just(DType::I64),
        Just(DType::U8),
    ]
}

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(size(), 0..4)
}

fn i128_size() -> impl Strategy<Value = i128> {
    prop_oneof![
        4 => 0i128..6,
        1 => Just(-1i128),
        1 => Just(i128::from(u64::MAX)),
        1 => Just(i128::from(u64::MAX) + 1),
        1 => Just(1i128 << 62),
        1 => Just(10_000_000_000_000),
    ]
}

fn shape_i128() -> impl Strategy<Value = Vec<i128>> {
    prop::collection::vec(i128_size(), 0..3)
}

/// Every scheduler built with a size from `a`, `b` and stepped; an Ok schedule gives
/// PyTorch's lrs where a closed form is simple (StepLR, MultiStepLR) and finite,
/// non-negative lrs elsewhere.
fn schedulers((a, b): (usize, usize)) -> std::result::Result<(), TestCaseError> {
    let w = Tensor::zeros(&[1], DType::F32, &CPU)
        .unwrap()
        .requires_grad();
    let opt = || Sgd::new([w.clone()], 1.0).unwrap();
    let fits = |v: usize| i64::try_from(v).is_ok();
    let steps = 3usize;
    let run = |mut s: Box<dyn LrScheduler>, mut o: Sgd| -> Vec<f64> {
        for _ in 0..steps {
            s.step(&mut o).unwrap();
        }
        s.last_lr()
    };
    let o = opt();
    match StepLr::new(&o, a, 0.5) {
        Ok(s) => {
            prop_assert!(a > 0 && fits(a));
            let want = 0.5f64.powi(i32::try_from(steps / a).unwrap());
            prop_assert_eq!(run(Box::new(s), o), vec![want]);
        }
        Err(e) => prop_assert!((a == 0 || !fits(a)) && is_arg(&e, "step_size")),
    }
    let o = opt();
    match MultiStepLr::new(&o, &[a, b], 0.5) {
        Ok(s) => {
            prop_assert!(fits(a) && fits(b));
            let k = [a, b].iter().filter(|&&m| m <= steps).count();
            let want = 0.5f64.powi(i32::try_from(k).unwrap());
            prop_assert_eq!(run(Box::new(s), o), vec![want]);
        }
        Err(e) => prop_assert!(!(fits(a) && fits(b)) && is_arg(&e, "milestones")),
    }
    // The others: finite, non-negative lrs, or an Err naming the size.
    let check = |name: &str, s: Result<Box<dyn LrScheduler>>, o: Sgd| match s {
        Ok(s) => {
            let lrs = run(s, o);
            prop_assert!(
                lrs.iter().all(|lr| lr.is_finite() && *lr >= 0.0),
                "{name}: {lrs:?}"
            );
            Ok(())
        }
        Err(e) => {
            prop_assert!(is_arg(&e, name), "{name}: {e}");
            Ok(())
        }
    };
    let boxed = |s: Box<dyn LrScheduler>| s;
    let o = opt();
    check(
        "T_max",
        CosineAnnealingLr::new(&o, a).map(|s| boxed(Box::new(s))),
        o,
    )?;
    let o = opt();
    check(
        "total_iters",
        LinearLr::new(&o, 0.5, 1.0, a).map(|s| boxed(Box::new(s))),
        o,
    )?;
    let o = opt();
    let one_cycle = OneCycleLr::new(&o, 1.0, a.max(steps));
    check("total_steps", one_cycle.map(|s| boxed(Box::new(s))), o)?;
    let o = opt();
    let parts: Vec<Box<dyn LrScheduler + Send>> = vec![
        Box::new(LinearLr::new(&o, 0.5, 1.0, 2).unwrap()),
        Box::new(CosineAnnealingLr::new(&o, 4).unwrap()),
    ];
    let seq = SequentialLr::new(&o, parts, &[b]);
    check("milestones", seq.map(|s| boxed(Box::new(s))), o)?;
    Ok(())
}

/// A saved schedule with any `last_epoch` and `_step_count`: loading is an `Err`
/// below PyTorch's minimum (-1 and 0), and stepping past `i64::MAX` is an `Err`
/// naming `last_epoch` that changes nothing.
fn loaded_counts((epoch, steps): (i64, i64)) -> std::result::Result<(), TestCaseError> {
    let w = Tensor::zeros(&[1], DType::F32, &CPU)
        .unwrap()
        .requires_grad();
    let mut o = Sgd::new([w], 1.0).unwrap();
    let mut s = CosineAnnealingLr::new(&o, 7).unwrap();
    let mut state = s.state_dict();
    for (k, t) in &mut state {
        match k.as_str() {
            "last_epoch" => *t = Tensor::scalar(epoch, &CPU).unwrap(),
            "_step_count" => *t = Tensor::scalar(steps, &CPU).unwrap(),
            _ => {}
        }
    }
    match s.load_state_dict(&state) {
        Ok(()) => prop_assert!(epoch >= -1 && steps >= 0),
        Err(e) => {
            prop_assert!((epoch < -1 || steps < 0) && is_arg(&e, "state"));
            return Ok(());
        }
    }
    for _ in 0..2 {
        let before = s.last_epoch();
        match s.step(&mut o) {
            Ok(()) => prop_assert_eq!(s.last_epoch(), before + 1),
            Err(e) => {
                prop_assert!(before == i64::MAX && is_arg(&e, "last_epoch"), "{e}");
                prop_assert_eq!(s.last_epoch(), before);
            }
        }
    }
    Ok(())
}

/// A dataset that claims `len` samples; sample `i` is `[i]`.
#[derive(Clone)]
struct Claims(usize);

impl Dataset for Claims {
    fn len(&self) -> usize {
        self.0
    }
    fn get(&self, i: usize) -> Result<Vec<Tensor>> {
        let i = i64::try_from(i).map_err(|_| Error::InvalidArgument {
            name: "index",
            msg: "beyond i64".into(),
        })?;
        Ok(vec![Tensor::from_vec(vec![i], &[1], &CPU)?])
    }
}

/// Any dataset length and batch size: `len()` is PyTorch's, and the first batch is
/// the first `min(batch, len)` samples (or as many distinct ones, shuffled), or
/// `HostOutOfMemory` when the order or the batch cannot be held.
fn loader(
    (len, batch, [shuffle, drop_last]): (usize, usize, [bool; 2]),
) -> std::result::Result<(), TestCaseError> {
    let l = DataLoader::new(&Claims(len), batch)
        .shuffle(shuffle)
        .drop_last(drop_last)
        .seed(1)
        .prefetch(0);
    let want_len = match (batch, drop_last) {
        (0, _) => 0,
        (_, true) => len / batch,
        (_, false) => len.div_ceil(batch),
    };
    prop_assert_eq!(l.len(), want_len);
    let mut it = match l.iter() {
        Ok(it) => it,
        Err(Error::HostOutOfMemory { .. }) => {
            prop_assert!(shuffle && len >= 1 << 40);
            return Ok(());
        }
        Err(e) => {
            prop_assert!(batch == 0 && is_arg(&e, "batch_size"), "{e}");
            return Ok(());
        }
    };
    prop_assert!(
        !shuffle || len < 1 << 40,
        "a shuffle of {len} samples was listed"
    );
    match it.next() {
        None => prop_assert_eq!(want_len, 0),
        Some(Err(Error::HostOutOfMemory { .. })) => prop_assert!(batch.min(len) >= 1 << 40),
        Some(Err(e)) => return Err(TestCaseError::fail(e.to_string())),
        Some(Ok(fields)) => {
            let n = batch.min(len);
            let mut got = fields[0].to_vec::<i64>().unwrap();
            prop_assert_eq!(got.len(), n);
            if shuffle {
                // n distinct samples of the (small: listed) dataset.
                got.sort_unstable();
                got.dedup();
                prop_assert_eq!(got.len(), n);
                prop_assert!(got
                    .iter()
                    .all(|&i| usize::try_from(i).is_ok_and(|i| i < len)));
            } else {
                let n = i64::try_from(n).unwrap();
                prop_assert_eq!(got, (0..n).collect::<Vec<_>>());
            }
        }
    }
    Ok(())
}

/// Any init_scale, growth_interval and loaded growth count: Ok only for values the
/// scaler can keep, and an iteration after them runs.
fn scaler((init, interval, tracker): (f64, u32, u32)) -> std::result::Result<(), TestCaseError> {
    let keeps = |v: f64| (v as f32).is_normal() && v > 0.0;
    let s = match GradScaler::new().init_scale(init) {
        Ok(s) => {
            prop_assert!(keeps(init));
            s
        }
        Err(e) => {
            prop_assert!(!keeps(init) && is_arg(&e, "init_scale"));
            GradScaler::new()
        }
    };
    let mut s = match s.growth_interval(interval) {
        Ok(s) => s,
        Err(e) => {
            prop_assert!(interval == 0 && is_arg(&e, "growth_interval"));
            return Ok(());
        }
    };
    let state = GradScalerState {
        growth_tracker: tracker,
        ..s.state_dict()
    };
    match s.load_state_dict(&state) {
        Ok(()) => prop_assert!(tracker < interval),
        Err(e) => prop_assert!(tracker >= interval && is_arg(&e, "growth_tracker")),
    }
    let p = Tensor::ones(&[1], DType::F32, &CPU)
        .unwrap()
        .requires_grad();
    s.scale(&p.sum_all().unwrap()).unwrap().backward().unwrap();
    let mut opt = Sgd::new([p], 0.1).unwrap();
    s.step(&mut opt).unwrap();
    s.update();
    prop_assert!(s.get_scale() > 0.0 && s.get_scale().is_finite());
    Ok(())
}

/// Creation ops with any shape and value: the requested shape, filled with the
/// converted value, or an `Err`.
fn creation(
    (shape, value, dtype): (Vec<usize>, f64, DType),
) -> std::result::Result<(), TestCaseError> {
    let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    let small = numel.is_some_and(|n| n <= 1 << 20);
    let made = [
        Tensor::zeros(&shape, dtype, &CPU),
        Tensor::ones(&shape, dtype, &CPU),
        Tensor::full(&shape, value, dtype, &CPU),
        Tensor::rand(&shape, dtype, &CPU),
        Tensor::randn(&shape, dtype, &CPU),
    ];
    for (i, t) in made.into_iter().enumerate() {
        match t {
            Ok(t) => {
                prop_assert!(small, "made {shape:?}");
                prop_assert_eq!(t.shape(), &shape[..]);
                prop_assert_eq!(t.dtype(), dtype);
            }
            Err(e) => prop_assert!(
                !small || (i == 2 && is_arg(&e, "value")) || (i >= 3 && !dtype.is_float()),
                "op {i} on {shape:?}: {e}"
            ),
        }
    }
    if let Some(&n) = shape.first() {
        match Tensor::arange(n, dtype, &CPU) {
            Ok(t) => prop_assert_eq!(t.shape(), &[n][..]),
            Err(_) => prop_assert!(n > 1 << 20),
        }
    }
    Ok(())
}

/// `arange_range` with any bounds: `ceil((end - start) / step)` elements, or an `Err`.
fn arange((start, end, step): (f64, f64, f64)) -> std::result::Result<(), TestCaseError> {
    if let Ok(t) = Tensor::arange_range(start, end, step, DType::F64, &CPU) {
        let len = ((end - start) / step).ceil();
        prop_assert!(len.is_finite() && len >= 0.0);
        prop_assert_eq!(t.shape()[0] as f64, len.max(0.0));
    }
    Ok(())
}

/// A file whose header claims an entry of `shape` at `[begin, end)`, with `data`
/// bytes of data: `load_tensors` reads exactly the claimed entry or errs.
fn headers(
    (shape, begin, end, data): (Vec<i128>, i128, i128, usize),
) -> std::result::Result<(), TestCaseError> {
    let dims: Vec<String> = shape.iter().map(i128::to_string).collect();
    let header = format!(
        r#"{{"t":{{"dtype":"U8","shape":[{}],"data_offsets":[{begin},{end}]}}}}"#,
        dims.join(",")
    );
    let path = std::env::temp_dir().join(format!(
        "kiln-fuzz-header-{}.safetensors",
        std::process::id()
    ));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend((0..data).map(|i| i as u8));
    std::fs::write(&path, &bytes).unwrap();
    let loaded = kiln::load_tensors(&path, &CPU);
    std::fs::remove_file(&path).ok();
    if let Ok(entries) = loaded {
        let want: Vec<usize> = shape.iter().map(|&d| usize::try_from(d).unwrap()).collect();
        prop_assert!(begin == 0 && usize::try_from(end) == Ok(data));
        prop_assert_eq!(entries[0].1.shape(), &want[..]);
        let values = entries[0].1.to_vec::<u8>().unwrap();
        prop_assert_eq!(values, (0..data).map(|i| i as u8).collect::<Vec<_>>());
    }
    Ok(())
}

fn is_arg(e: &Error, name: &str) -> bool {
    matches!(e, Error::InvalidArgument { name: n, .. } if *n == name)
}
