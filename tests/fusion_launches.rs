//! Kernel launches per training step on the emulated CUDA device, with and without
//! fusion (issue 27): a ResNet-18 step (batch 2, 32×32; width 8 keeps the emulator
//! quick — the launch count does not depend on the width) launches fewer kernels with
//! batch norm, residual add and ReLU fused (`F::batch_norm_act`) than with the separate
//! ops, and no `relu` of its own remains. Each step's count is printed (run with
//! `--nocapture`).
//!
//! The profiler records the whole process, so the tests hold [`SERIAL`]. They need a
//! CUDA device (the emulated one in CI; a real GPU counts launches the same way) and
//! skip without one.

mod common;

use kiln::models::{ResNet, ResNetConfig};
use kiln::nn::{functional as F, Forward, Module};
use kiln::optim::{Optimizer, Sgd};
use kiln::profiler::{Profiler, Report};
use kiln::{DType, Device, Result, Tensor};
use parking_lot::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

/// The profiler's report of one SGD step (momentum 0.9) of `net` on `(x, y)`, after a
/// warm-up step (which creates the optimizer's state).
fn profiled_step(
    net: &impl Module,
    forward: impl Fn(&Tensor) -> Result<Tensor>,
    x: &Tensor,
    y: &Tensor,
) -> Report {
    let mut opt = Sgd::new(net.parameters(), 0.1).unwrap().momentum(0.9);
    let mut step = || {
        let loss = F::cross_entropy(&forward(x)?, y)?;
        opt.zero_grad();
        loss.backward()?;
        opt.step()
    };
    step().unwrap();
    let prof = Profiler::start().unwrap();
    step().unwrap();
    prof.stop().unwrap()
}

/// One ResNet-18 training step's report, fused or not.
fn resnet_step(fused: bool, dev: &Device) -> Report {
    let net = common::seeded(3, || {
        ResNet::new(ResNetConfig::new(10).width(8).fused(fused), dev)
    })
    .unwrap();
    let x = common::seeded(4, || Tensor::randn(&[2, 3, 32, 32], DType::F32, dev)).unwrap();
    let y = Tensor::from_vec(vec![3i64, 8], &[2], dev).unwrap();
    profiled_step(&net, |x| net.forward(x), &x, &y)
}

fn calls(report: &Report, op: &str) -> u64 {
    report.op(op).map_or(0, |r| r.calls)
}

#[test]
fn fused_resnet18_step_launches_fewer_kernels() {
    let Some(dev) = common::cuda_or_skip("fused_resnet18_step_launches_fewer_kernels") else {
        return;
    };
    let _serial = SERIAL.lock();
    let (fused, plain) = (resnet_step(true, &dev), resnet_step(false, &dev));
    println!(
        "ResNet-18 (batch 2, 32x32) kernel launches per training step: unfused {}, fused {}",
        plain.kernel_launches(),
        fused.kernel_launches()
    );
    // The stem's and each block's bn -> relu (9), and each block's bn -> add -> relu (8).
    assert_eq!(calls(&fused, "batch_norm_act"), 17, "{}", fused.table(40));
    assert_eq!(calls(&fused, "batch_norm_act backward"), 17);
    assert_eq!(calls(&fused, "relu") + calls(&fused, "relu backward"), 0);
    assert_eq!(calls(&plain, "relu"), 17, "{}", plain.table(40));
    // The fused backward is one kernel per op (its statistics were saved forward).
    let backward = fused.op("batch_norm_act backward").unwrap();
    assert_eq!(backward.kernel_launches, 17, "{}", fused.table(40));
    assert!(
        fused.kernel_launches() < plain.kernel_launches(),
        "fused {} vs unfused {}",
        fused.kernel_launches(),
        plain.kernel_launches()
    );
}
