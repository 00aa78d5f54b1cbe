//! What only CUDA has: device errors and the fallback to the CPU, transfers, `time_ms`,
//! mixing devices, the caching allocator on the device (a steady
//! state, out of memory, a 10,000-step soak), and training steps that follow the CPU's
//! and move only their batch and their loss between host and device.
//!
//! Each op family's kernels are checked elsewhere: against PyTorch by the family's
//! golden tests, which run on CUDA too (`common::device_test!`), and against the CPU
//! backend, on every dtype, by the `cuda_parity` sweep in the family's test file
//! (tests/common/parity.rs), whose `every_<family>_kernel_is_launched` checks on the
//! emulated device that the sweep launches every kernel of the family.
//!
//! Without a usable GPU each test prints why it skipped and passes;
//! `KILN_REQUIRE_CUDA_TESTS=1` turns a skip into a failure (set on GPU machines).
//! CI runs this suite on the emulated device (`--features cuda-emulator` with
//! `KILN_CUDA_EMULATE=1`: the same kernels compiled for the CPU).

mod common;

#[path = "../examples/train_digits/model.rs"]
#[allow(dead_code)] // the training loop is used here, not every helper of the example
mod model;

use common::parity::{self, assert_exact, gpu_or_skip, pair_t, values, ALL};
use common::{host, own_generator};
use kiln::nn::functional as F;
use kiln::nn::{Forward, Module};
use kiln::optim::{AdamW, Optimizer};
use kiln::{DType, Device, Error, Result, Tensor};

#[test]
fn device_errors_are_distinct_and_the_fallback_never_fails() {
    let dev = Device::cuda_if_available(0);
    assert_eq!(dev.is_cuda(), Device::cuda(0).is_ok());
    match Device::cuda(1 << 20) {
        Err(Error::CudaDriverNotFound { .. })
        | Err(Error::NoCudaDevice { .. })
        | Err(Error::KernelsNotBuilt)
        | Err(Error::CudaUnavailable { .. }) => {
            assert!(!kiln::cuda::is_available() || dev.is_cpu())
        }
        Err(Error::CudaOrdinalOutOfRange { ordinal, count }) => {
            assert_eq!(ordinal, 1 << 20);
            assert_eq!(count, kiln::cuda::device_count());
        }
        other => panic!("unexpected result for a huge ordinal: {other:?}"),
    }
    if dev.is_cpu() {
        let err = Device::cuda(0).unwrap_err();
        eprintln!("no GPU here; Device::cuda(0) says: {err}");
        assert!(kiln::cuda::memory_stats(0).is_err());
        assert!(kiln::cuda::empty_cache(0).is_err());
    }
    drop(parity::gpu(
        "device_errors_are_distinct_and_the_fallback_never_fails",
    ));
}

#[test]
fn transfers_round_trip_every_dtype() {
    let (dev, _gpu) = gpu_or_skip!("transfers_round_trip_every_dtype");
    for dtype in ALL {
        let (cpu, gpu) = pair_t(&[3, 37, 5], dtype, 1, &dev);
        assert_exact(&format!("round trip {dtype:?}"), &gpu, &cpu);
        let back = gpu.to_device(&Device::Cpu).unwrap();
        assert_eq!(host(&back), host(&cpu));
        let empty = Tensor::zeros(&[0, 4], dtype, &dev).unwrap();
        assert!(host(&empty).is_empty());
    }
}

/// `cuda::time_ms` (the benchmarks' timer) returns the time of the work it ran, from
/// events on the device (the wall clock on the emulated device), and passes the
/// work's error on.
#[test]
fn time_ms_times_queued_work_and_passes_errors_on() {
    let (dev, _gpu) = gpu_or_skip!("time_ms_times_queued_work_and_passes_errors_on");
    let x = Tensor::ones(&[1 << 16], DType::F32, &dev).unwrap();
    let ms = kiln::cuda::time_ms(0, || x.exp().map(drop)).unwrap();
    assert!(ms.is_finite() && ms >= 0.0, "{ms} ms");
    let err = kiln::cuda::time_ms(0, || x.reshape(&[3]).map(drop)).unwrap_err();
    assert_eq!(err.to_string(), x.reshape(&[3]).unwrap_err().to_string());
}

#[test]
fn mixing_devices_is_an_error() {
    let (dev, _gpu) = gpu_or_skip!("mixing_devices_is_an_error");
    let a = Tensor::ones(&[3], DType::F32, &dev).unwrap();
    let b = Tensor::ones(&[3], DType::F32, &Device::Cpu).unwrap();
    assert!(matches!(a.add(&b), Err(Error::DeviceMismatch { .. })));
    assert!(matches!(
        b.matmul(&a.reshape(&[3, 1]).unwrap()),
        Err(Error::DeviceMismatch { .. })
    ));
    assert!(Tensor::cat(&[&a, &b], 0).is_err());
}

/// The allocator on the real device: a repeated training step reaches a steady state
/// with no `cuMemAlloc`, freed tensors return their bytes, `empty_cache` releases.
#[test]
fn device_allocator_reaches_a_steady_state() {
    let (dev, _gpu) = gpu_or_skip!("device_allocator_reaches_a_steady_state");
    let step = || -> Result<()> {
        let x = Tensor::randn(&[64, 300], DType::F32, &dev)?.requires_grad();
        let w = Tensor::randn(&[300, 129], DType::F32, &dev)?.requires_grad();
        let y = x.matmul(&w)?.relu()?;
        let loss = F::log_softmax(&y, 1)?.mean_all()?;
        loss.backward()?;
        let _ = loss.item::<f32>()?;
        Ok(())
    };
    for _ in 0..3 {
        step().unwrap();
    }
    kiln::cuda::synchronize(0).unwrap();
    let before = kiln::cuda::memory_stats(0).unwrap();
    for _ in 0..10 {
        step().unwrap();
    }
    let after = kiln::cuda::memory_stats(0).unwrap();
    if std::env::var("KILN_CUDA_NO_CACHE").is_ok_and(|v| v == "1") {
        eprintln!("KILN_CUDA_NO_CACHE=1: every allocation goes to the driver");
        assert!(after.num_device_alloc > before.num_device_alloc);
        return;
    }
    assert_eq!(
        after.num_device_alloc, before.num_device_alloc,
        "steady state: no cuMemAlloc"
    );
    assert!(
        after.allocation.allocated > before.allocation.allocated,
        "tensors were allocated"
    );
    // Other tests run in parallel on the same device, so only relative facts hold.
    kiln::cuda::reset_peak_memory_stats(0).unwrap();
    let s = kiln::cuda::memory_stats(0).unwrap();
    assert_eq!(s.allocated_bytes.peak, s.allocated_bytes.current);
    kiln::cuda::empty_cache(0).unwrap();
    let s = kiln::cuda::memory_stats(0).unwrap();
    assert!(s.reserved_bytes.current >= s.allocated_bytes.current);
    println!("{}", kiln::cuda::device_name(0).unwrap());
}

/// The whole of a training step on the device: the digits CNN (conv, batch norm, ReLU,
/// pooling, dropout, linear, cross-entropy, AdamW) follows, step by step, the same
/// training on the CPU from the same seed. (Evaluation is not compared: the gradient of
/// a conv bias feeding batch norm is rounding noise, which AdamW turns into full steps,
/// so the biases and running means drift apart harmlessly; train-mode losses cancel it.)
#[test]
fn training_steps_on_the_device_follow_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("training_steps_on_the_device_follow_the_cpu");
    let digits = kiln::data::load_digits(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/digits/digits.csv.gz"
    ))
    .unwrap();
    let (train, _) = digits.split_every(5).unwrap();
    let run = |d: &Device| {
        let _own = own_generator();
        kiln::manual_seed(3);
        let net = model::DigitsNet::new(d).unwrap();
        let mut opt = AdamW::new(net.parameters(), 2e-3).unwrap();
        let batches = train.batches(32, Some(0), d).unwrap();
        let mut losses = Vec::new();
        model::train_epoch(&net, &mut opt, &batches[..12], |l| losses.push(l)).unwrap();
        losses
    };
    let (cpu, gpu) = (run(&Device::Cpu), run(&dev));
    assert!(cpu[11] < cpu[0], "the CPU run learns: {cpu:?}");
    for (step, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        assert!(
            (g - c).abs() <= 1e-4 * (1.0 + c.abs()),
            "step {step}: device loss {g} vs cpu {c}"
        );
    }
}

/// What a training step reads back beyond its loss: `F::cross_entropy` returns an
/// `Err` for a target outside the classes, so it reads the one 8-byte word in which its
/// kernel records the first bad row.
const CROSS_ENTROPY_TARGET_READS: (u64, u64) = (1, 8);

/// Training steps of `net` on `dev` (cross-entropy, `opt`, the loss read with `item`)
/// over host batches, each checked to move between host and device exactly its batch
/// up (x and y, one copy each) and its loss down (plus [`CROSS_ENTROPY_TARGET_READS`]):
/// everything else — parameters, gradients, optimizer state, dropout masks, random
/// numbers, constants — stays on the device. Used for the MLP and the digits CNN.
fn assert_training_steps_move_only_the_batch_and_the_loss(
    net: &dyn Forward,
    opt: &mut dyn Optimizer,
    batches: &[(Tensor, Tensor)],
    dev: &Device,
) {
    let Device::Cuda(ordinal) = *dev else {
        panic!("a CUDA device is needed, got {dev:?}")
    };
    let bytes = |t: &Tensor| (t.numel() * t.dtype().size_in_bytes()) as u64;
    for (step, (x, y)) in batches.iter().enumerate() {
        assert!(x.device().is_cpu() && y.device().is_cpu(), "host batches");
        kiln::cuda::reset_peak_memory_stats(ordinal).unwrap();
        let (xd, yd) = (x.to_device(dev).unwrap(), y.to_device(dev).unwrap());
        opt.zero_grad();
        let loss = F::cross_entropy(&net.forward(&xd).unwrap(), &yd).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        let l = loss.item::<f32>().unwrap();
        assert!(l.is_finite(), "step {step}: loss {l}");
        let s = kiln::cuda::memory_stats(ordinal).unwrap();
        let up = (s.num_host_to_device, s.bytes_host_to_device);
        assert_eq!(
            up,
            (2, bytes(x) + bytes(y)),
            "step {step}: host to device (copies, bytes)"
        );
        let (reads, read_bytes) = CROSS_ENTROPY_TARGET_READS;
        let down = (s.num_device_to_host, s.bytes_device_to_host);
        assert_eq!(
            down,
            (1 + reads, 4 + read_bytes),
            "step {step}: device to host (copies, bytes)"
        );
    }
}

/// An MLP (Linear, ReLU, Dropout, Linear; cross-entropy; AdamW) trains on the device
/// with no host round trip: each step moves its batch up and its loss down, nothing
/// else. Also checks the counters themselves: a known upload and download.
#[test]
fn training_steps_on_the_device_move_only_the_batch_and_the_loss() {
    let (dev, _gpu) = gpu_or_skip!("training_steps_on_the_device_move_only_the_batch_and_the_loss");
    kiln::cuda::reset_peak_memory_stats(0).unwrap();
    let t = Tensor::from_vec(vec![1.0f32; 10], &[10], &dev).unwrap();
    let _ = t.to_vec::<f32>().unwrap();
    let s = kiln::cuda::memory_stats(0).unwrap();
    assert_eq!(
        (
            s.num_host_to_device,
            s.bytes_host_to_device,
            s.num_device_to_host,
            s.bytes_device_to_host
        ),
        (1, 40, 1, 40)
    );
    kiln::manual_seed(5);
    let net = kiln::nn::Sequential::new()
        .add(kiln::nn::Linear::new(20, 32, &dev).unwrap())
        .add(kiln::nn::ReLU)
        .add(kiln::nn::Dropout::new(0.25).unwrap())
        .add(kiln::nn::Linear::new(32, 10, &dev).unwrap());
    net.train();
    let mut opt = AdamW::new(net.parameters(), 1e-3).unwrap();
    let batches: Vec<(Tensor, Tensor)> = (0..3u64)
        .map(|k| {
            let x = values(&[16, 20], DType::F32, 100 + k);
            let y = Tensor::from_vec(
                (0..16).map(|i| (i * 7 + k as i64) % 10).collect(),
                &[16],
                &Device::Cpu,
            );
            (x, y.unwrap())
        })
        .collect();
    assert_training_steps_move_only_the_batch_and_the_loss(&net, &mut opt, &batches, &dev);
}

/// The digits CNN (conv, batch norm, ReLU, max pool, adaptive pool, dropout, linear;
/// cross-entropy; AdamW) trains on the device with no host round trip: each step moves
/// its batch up and its loss (and the cross-entropy check word) down, nothing else.
#[test]
fn cnn_training_steps_on_the_device_move_only_the_batch_and_the_loss() {
    let (dev, _gpu) =
        gpu_or_skip!("cnn_training_steps_on_the_device_move_only_the_batch_and_the_loss");
    kiln::manual_seed(6);
    let net = model::DigitsNet::new(&dev).unwrap();
    net.train();
    let mut opt = AdamW::new(net.parameters(), 1e-3).unwrap();
    let batches: Vec<(Tensor, Tensor)> = (0..2u64)
        .map(|k| {
            let x = values(&[8, 1, 8, 8], DType::F32, 110 + k);
            let y = Tensor::from_vec(
                (0..8).map(|i| (i * 3 + k as i64) % 10).collect(),
                &[8],
                &Device::Cpu,
            );
            (x, y.unwrap())
        })
        .collect();
    assert_training_steps_move_only_the_batch_and_the_loss(&net, &mut opt, &batches, &dev);
}

/// On a real GPU: allocating 1 GiB tensors until the device is full ends in an
/// `Err(CudaOutOfMemory)` naming the request — after the allocator freed its cache and
/// retried — never an abort, and the device works normally afterwards. (Skipped on the
/// emulated device, whose memory is this machine's.)
#[test]
fn running_out_of_device_memory_is_an_error_and_the_device_recovers() {
    let (dev, _gpu) =
        gpu_or_skip!("running_out_of_device_memory_is_an_error_and_the_device_recovers");
    if kiln::cuda::is_emulated() {
        eprintln!("skipped: the emulated device's memory is the host's");
        return;
    }
    const GIB_OF_F32: usize = 1 << 28;
    let before = kiln::cuda::memory_stats(0).unwrap();
    let mut held = Vec::new();
    let err = loop {
        match Tensor::zeros(&[GIB_OF_F32], DType::F32, &dev) {
            Ok(t) => held.push(t),
            Err(e) => break e,
        }
        assert!(held.len() < 4096, "4 TiB allocated without running out");
    };
    assert!(matches!(err, Error::CudaOutOfMemory { .. }), "{err}");
    assert!(err.to_string().contains("1024.00 MiB"), "{err}");
    let after = kiln::cuda::memory_stats(0).unwrap();
    assert!(after.num_ooms > before.num_ooms, "the OOM is counted");
    drop(held);
    kiln::cuda::empty_cache(0).unwrap();
    let ones = Tensor::ones(&[GIB_OF_F32], DType::F32, &dev).unwrap();
    let total = ones.sum_all().unwrap().item::<f32>().unwrap();
    assert_eq!(total, GIB_OF_F32 as f32);
    println!("ran out after {} GiB", after.allocated_bytes.peak >> 30);
}

/// On a real GPU (scripts/gpu-check.sh runs it): 10,000 training steps of the digits
/// CNN at batch 128 after a warm-up, with the allocator's reserved bytes and driver
/// allocations flat — nothing leaks and the cache reaches a steady state.
#[test]
#[ignore = "10,000 training steps: run on a real GPU by scripts/gpu-check.sh (--ignored soak)"]
fn soak_ten_thousand_training_steps_keep_device_memory_flat() {
    let (dev, _gpu) = gpu_or_skip!("soak_ten_thousand_training_steps_keep_device_memory_flat");
    kiln::manual_seed(7);
    let net = model::DigitsNet::new(&dev).unwrap();
    let mut opt = AdamW::new(net.parameters(), 1e-3).unwrap();
    let x = Tensor::randn(&[128, 1, 8, 8], DType::F32, &dev).unwrap();
    let labels: Vec<i64> = (0..128).map(|i| i % 10).collect();
    let y = Tensor::from_vec(labels, &[128], &dev).unwrap();
    let mut step = || {
        opt.zero_grad();
        let loss = F::cross_entropy(&net.forward(&x).unwrap(), &y).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        loss
    };
    for _ in 0..200 {
        step();
    }
    kiln::cuda::synchronize(0).unwrap();
    let before = kiln::cuda::memory_stats(0).unwrap();
    let started = std::time::Instant::now();
    let mut last = None;
    for _ in 0..10_000 {
        last = Some(step());
    }
    let loss = last.unwrap().item::<f32>().unwrap();
    let after = kiln::cuda::memory_stats(0).unwrap();
    println!(
        "soak: 10,000 steps in {:.1} s, final loss {loss:.4}, reserved {} -> {} bytes, \
         driver allocations {} -> {}",
        started.elapsed().as_secs_f64(),
        before.reserved_bytes.current,
        after.reserved_bytes.current,
        before.num_device_alloc,
        after.num_device_alloc
    );
    assert!(loss.is_finite());
    assert_eq!(after.reserved_bytes.current, before.reserved_bytes.current);
    assert_eq!(after.num_device_alloc, before.num_device_alloc);
}
