//! `kiln::profiler`: the ops of a training step with the model's counts, forward and
//! backward; nothing recorded while off; one session at a time; the Chrome trace;
//! ops on several threads and nested ops.
//!
//! The profiler records the whole process, so every test here holds [`SERIAL`]: no
//! other test's ops run while one profiles.

mod common;

use kiln::nn::{self, Forward, Linear, Module};
use kiln::optim::{Optimizer, Sgd};
use kiln::profiler::{Profiler, Report};
use kiln::{DType, Device, Tensor};
use parking_lot::Mutex;
use std::path::PathBuf;

static SERIAL: Mutex<()> = Mutex::new(());

/// Three `Linear` layers with ReLUs between them.
fn mlp(dev: &Device) -> nn::Sequential {
    nn::Sequential::new()
        .add(Linear::new(6, 8, dev).unwrap())
        .add(nn::ReLU)
        .add(Linear::new(8, 8, dev).unwrap())
        .add(nn::ReLU)
        .add(Linear::new(8, 3, dev).unwrap())
}

/// `steps` SGD steps of [`mlp`] on a batch of 5 under a profiler.
fn profiled_steps(dev: &Device, steps: usize) -> Report {
    let net = mlp(dev);
    let mut opt = Sgd::new(net.parameters(), 0.1).unwrap();
    let x = Tensor::randn(&[5, 6], DType::F32, dev).unwrap();
    let y = Tensor::from_vec(vec![0i64, 2, 1, 1, 0], &[5], dev).unwrap();
    let prof = Profiler::start().unwrap();
    for _ in 0..steps {
        let loss = nn::functional::cross_entropy(&net.forward(&x).unwrap(), &y).unwrap();
        opt.zero_grad();
        loss.backward().unwrap();
        opt.step().unwrap();
    }
    prof.stop().unwrap()
}

fn calls(report: &Report, name: &str) -> u64 {
    report.op(name).map_or(0, |r| r.calls)
}

common::device_test! {
    /// The rows of an MLP's training steps count what the model runs: 3 `linear` and
    /// 2 `relu` per forward, as many gradients per backward, one loss each.
    fn counts_match_the_model(dev) {
        let _serial = SERIAL.lock();
        let report = profiled_steps(dev, 2);
        for (name, per_step) in [
            ("linear", 3),
            ("linear backward", 3),
            ("relu", 2),
            ("relu backward", 2),
            ("cross_entropy", 1),
            ("cross_entropy backward", 1),
        ] {
            assert_eq!(calls(&report, name), 2 * per_step, "{name}\n{}", report.table(50));
        }
        let ops = report.ops();
        assert!(ops.windows(2).all(|w| w[0].cpu_total >= w[1].cpu_total), "sorted by CPU total");
        for r in &ops {
            assert!(r.self_cpu <= r.cpu_total, "{}: self {:?} > total {:?}", r.name, r.self_cpu, r.cpu_total);
        }
        let memory = report.memory();
        assert!(memory.allocs > 0 && memory.bytes_allocated > 0, "{memory:?}");
        let attributed: u64 = ops.iter().map(|r| r.bytes_allocated).sum();
        assert!(attributed > 0 && attributed <= memory.bytes_allocated, "{attributed} of {memory:?}");
        let launches: u64 = ops.iter().map(|r| r.kernel_launches).sum();
        if dev.is_cpu() {
            assert_eq!(report.kernel_launches(), 0);
        } else {
            // Each linear, forward and backward, runs at least one kernel of its own or
            // of an op nested in it; the optimizer's launches belong to no op.
            assert!(launches >= 12 && launches <= report.kernel_launches(), "{launches} of {}", report.kernel_launches());
        }
    }

    /// `table(n)`: a header, the `n` largest rows by CPU total, then the totals.
    fn table_lists_the_largest_rows(dev) {
        let _serial = SERIAL.lock();
        let report = profiled_steps(dev, 1);
        let full = report.table(100);
        let rows = report.ops();
        for r in &rows {
            assert!(full.lines().any(|l| l.starts_with(&format!("{} ", r.name))), "{}\n{full}", r.name);
        }
        let top2 = report.table(2);
        assert!(top2.lines().nth(1).unwrap().starts_with("Name"), "{top2}");
        let listed: Vec<&str> = top2.lines().skip(3).take(2).collect();
        for (line, row) in listed.iter().zip(&rows) {
            assert!(line.starts_with(&format!("{} ", row.name)), "{line:?} vs {}", row.name);
        }
        assert!(top2.lines().nth(5).unwrap().starts_with("---"), "two rows only:\n{top2}");
        assert!(top2.contains("Self CPU time total"), "{top2}");
        assert_eq!(full.contains("Kernels"), report.kernel_launches() > 0, "{full}");
        assert_eq!(report.kernel_launches() > 0, !dev.is_cpu());
    }

    /// The trace is a JSON object whose `traceEvents` are complete events, one per op
    /// call, with the rows' names, times in µs and the inputs' shapes.
    fn chrome_trace_is_json_with_complete_events(dev) {
        let _serial = SERIAL.lock();
        let report = profiled_steps(dev, 1);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("profiler-trace-{}.json", if dev.is_cpu() { "cpu" } else { "cuda" }));
        report.export_chrome_trace(&path).unwrap();
        let trace: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let events = trace["traceEvents"].as_array().expect("a traceEvents array");
        let total_calls: u64 = report.ops().iter().map(|r| r.calls).sum();
        assert_eq!(events.len() as u64, total_calls);
        for e in events {
            assert_eq!(e["ph"], "X", "{e}");
            assert!(e["ts"].as_f64().unwrap() >= 0.0 && e["dur"].as_f64().unwrap() >= 0.0, "{e}");
            assert!(e["pid"].is_u64() && e["tid"].is_u64(), "{e}");
        }
        let linear: Vec<_> = events.iter().filter(|e| e["name"] == "linear").collect();
        assert_eq!(linear.len(), 3);
        assert_eq!(linear[0]["args"]["shapes"], serde_json::json!([[5, 6], [8, 6]]));
        assert_eq!(linear[0]["args"]["dtype"], "F32");
        assert_eq!(linear[0]["args"]["device"], dev.to_string());
        assert_eq!(events.iter().filter(|e| e["name"] == "linear backward").count(), 3);
        let _ = std::fs::remove_file(&path);
    }

    /// Ops on several threads at once are all counted, each under its own thread;
    /// a nested op's time is inside its parent's.
    fn threads_and_nesting_keep_the_report_whole(dev) {
        let _serial = SERIAL.lock();
        let a = Tensor::randn(&[4, 4], DType::F32, dev).unwrap();
        let prof = Profiler::start().unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..25 {
                        a.add(&a).unwrap().relu().unwrap();
                    }
                });
            }
        });
        // `std` times the `var` ops and the `sqrt` it calls inside its own scope.
        let _ = a.std(1, true, false).unwrap();
        let report = prof.stop().unwrap();
        assert_eq!(calls(&report, "add"), 100);
        assert_eq!(calls(&report, "relu"), 100);
        let std_row = report.op("std").unwrap();
        let sqrt_row = report.op("sqrt").unwrap();
        assert!(std_row.cpu_total >= sqrt_row.cpu_total);
        assert!(std_row.self_cpu < std_row.cpu_total);
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("profiler-threads-{}.json", if dev.is_cpu() { "cpu" } else { "cuda" }));
        report.export_chrome_trace(&path).unwrap();
        let trace: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut adders: Vec<u64> = trace["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "add")
            .map(|e| e["tid"].as_u64().unwrap())
            .collect();
        adders.sort_unstable();
        adders.dedup();
        assert_eq!(adders.len(), 4, "one tid per thread");
        let _ = std::fs::remove_file(&path);
    }

    /// Nothing is recorded while no profiler runs: not ops before `start`, after
    /// `stop`, or after a dropped profiler.
    fn off_records_nothing(dev) {
        let _serial = SERIAL.lock();
        let a = Tensor::randn(&[3], DType::F32, dev).unwrap();
        a.add(&a).unwrap();
        drop(Profiler::start().unwrap());
        a.add(&a).unwrap();
        let first = Profiler::start().unwrap().stop().unwrap();
        a.mul(&a).unwrap();
        let second = Profiler::start().unwrap().stop().unwrap();
        for report in [first, second] {
            assert!(report.ops().is_empty(), "{}", report.table(10));
            assert_eq!(report.memory(), kiln::profiler::MemoryTraffic::default());
            assert_eq!(report.kernel_launches(), 0);
        }
    }
}

/// One profiler at a time: a second `start` is an error until the first stops.
#[test]
fn start_twice_is_an_error() {
    let _serial = SERIAL.lock();
    let prof = Profiler::start().unwrap();
    let err = Profiler::start().unwrap_err();
    assert!(err.to_string().contains("already running"), "{err}");
    prof.stop().unwrap();
    Profiler::start().unwrap().stop().unwrap();
}

/// Every source file that records an op for autograd also opens a profiler scope, so a
/// new op cannot be left out of the profiler's rows unnoticed.
#[test]
fn every_recording_file_opens_a_profiler_scope() {
    fn walk(dir: &std::path::Path, missing: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, missing);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let records = text.contains("Ok(record(")
                || text.contains("= record(")
                || text.contains("autograd::attach(");
            if records && !path.ends_with("autograd/mod.rs") && !text.contains("profiler::op(") {
                missing.push(path.display().to_string());
            }
        }
    }
    let mut missing = Vec::new();
    walk(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut missing,
    );
    assert!(
        missing.is_empty(),
        "files calling `record` with no `crate::profiler::op` scope: {missing:?}"
    );
}
