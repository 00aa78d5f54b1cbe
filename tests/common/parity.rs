//! The CUDA parity sweeps' helpers: each op family's test file ends in a `cuda_parity`
//! module that runs the family's kernels on every dtype, odd sizes and non-contiguous
//! views against the CPU backend (the reference), and checks that those tests launch
//! every kernel of the family ([`assert_every_kernel_launched`]). What an op computes
//! is checked against PyTorch by the golden tests; the sweeps make sure that every
//! kernel variant runs. (The module's name holds `cuda`, so scripts/gpu-check.sh's
//! filter `cuda` runs the sweeps on a GPU with the golden tests' `::cuda` variants.)

use super::rng::{unit, Xorshift};
use kiln::{DType, Device, Tensor};
use std::sync::{Mutex, MutexGuard};

/// The float dtypes, which every float kernel has a variant of.
pub const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];

/// Every dtype.
pub const ALL: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

/// GPU tests of one test binary run one at a time: tests/cuda.rs checks allocator
/// statistics and transfer counts, which are per device, and a sweep's large inputs
/// are best not multiplied by the test threads.
static GPU: Mutex<()> = Mutex::new(());

/// The GPU and its lock, or `None` (after printing why) when the test must skip
/// ([`crate::common::cuda_or_skip`]).
pub fn gpu(test: &str) -> Option<(Device, MutexGuard<'static, ()>)> {
    let dev = crate::common::cuda_or_skip(test)?;
    Some((dev, GPU.lock().unwrap_or_else(|e| e.into_inner())))
}

/// `let (dev, _gpu) = gpu_or_skip!(name);` or return from the test ([`gpu`]).
macro_rules! gpu_or_skip {
    ($name:expr) => {
        match $crate::common::parity::gpu($name) {
            Some(found) => found,
            None => return,
        }
    };
}
pub(crate) use gpu_or_skip;

/// `(atol, rtol)` for results that went through transcendental math or reordered
/// sums: the device tolerances every golden test uses.
pub fn tol(dtype: DType) -> (f64, f64) {
    crate::common::device_tol(dtype, &Device::Cuda(0))
}

/// A CUDA result against the CPU's: same dtype, devices as named, and the values of
/// [`crate::common::assert_values`].
#[track_caller]
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert!(
        got.device().is_cuda() && want.device().is_cpu(),
        "{what}: devices"
    );
    crate::common::assert_values(what, got, want, atol, rtol);
}

/// [`assert_close`] with no tolerance: bit-identical (NaN meeting NaN).
#[track_caller]
pub fn assert_exact(what: &str, got: &Tensor, want: &Tensor) {
    assert_close(what, got, want, 0.0, 0.0);
}

/// Deterministic values in [-4, 4) with a few special ones, as `dtype` on the CPU.
pub fn values(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut rng = Xorshift::new(seed);
    let v: Vec<f64> = (0..n)
        .map(|i| {
            let x = unit(rng.next_bits()) * 8.0 - 4.0;
            match (i % 17, dtype) {
                (3, _) => 0.0,
                (5, _) => 1.0,
                (11, _) => -2.5,
                (_, DType::U8) => (x.abs() * 60.0).floor(),
                (_, DType::I64) => (x * 1000.0).floor(),
                _ => x,
            }
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .and_then(|t| t.to_dtype(dtype))
        .expect("cpu tensor")
}

/// A non-contiguous (transposed) view of fresh values, on the CPU and on the GPU.
pub fn pair_t(shape: &[usize], dtype: DType, seed: u64, dev: &Device) -> (Tensor, Tensor) {
    let mut rev = shape.to_vec();
    rev.reverse();
    let base = values(&rev, dtype, seed);
    let perm: Vec<usize> = (0..shape.len()).rev().collect();
    let cpu = base.permute(&perm).expect("permute");
    let gpu = base
        .to_device(dev)
        .and_then(|t| t.permute(&perm))
        .expect("to gpu");
    (cpu, gpu)
}

/// The kernels of `family` — those of `kernels/<family>.cu` and `kernels/<family>_*.cu`
/// — with their launches so far, on the emulated device; `None` elsewhere.
fn family_launches(family: &str) -> Option<Vec<(&'static str, u64)>> {
    #[cfg(feature = "cuda-emulator")]
    if kiln::cuda::is_emulated() {
        let prefix = format!("{family}_");
        let of_family = |kernel: &str| {
            let module = kiln::cuda::kernel_module(kernel).expect("a registered kernel");
            module == family || module.starts_with(&prefix)
        };
        let counts = kiln::cuda::emulated_launch_counts();
        return Some(counts.into_iter().filter(|(k, _)| of_family(k)).collect());
    }
    let _ = family;
    None
}

/// A family's kernel-coverage test (`every_<family>_kernel_is_launched`, one per family;
/// tests/architecture.rs checks that each kernel source has one): on the emulated
/// device, runs `suite` — the parity tests of the calling file — one after another and
/// asserts that together they launched every kernel of `family` (the kernels of
/// `kernels/<family>.cu` and `kernels/<family>_*.cu`) but those in `elsewhere`, whose
/// launches the caller's comment accounts for (each must be a kernel of the family).
/// Elsewhere it prints why it skips.
pub fn assert_every_kernel_launched(family: &str, suite: &[fn()], elsewhere: &[&str]) {
    let Some(before) = family_launches(family) else {
        eprintln!("skipped: launch counts exist only on the emulated device");
        return;
    };
    assert!(!before.is_empty(), "no kernels of family {family}");
    for name in elsewhere {
        assert!(
            before.iter().any(|(k, _)| k == name),
            "{name}, excepted, is no kernel of {family}"
        );
    }
    for test in suite {
        test();
    }
    let after = family_launches(family).expect("still emulated");
    let missed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|((k, n0), (_, n1))| n1 == n0 && !elsewhere.contains(k))
        .map(|((k, _), _)| *k)
        .collect();
    assert!(
        missed.is_empty(),
        "kernels of {family} that its parity tests never launched: {missed:?}"
    );
}
