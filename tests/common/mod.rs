//! Helpers shared by the integration tests: golden fixtures, closeness checks with
//! tolerances per dtype and device, [`device_test!`], which runs a test on the CPU
//! and on CUDA, [`assert_err!`], and (in [`parity`]) the CUDA-against-CPU sweeps'
//! helpers and their kernel-coverage check.
//!
//! Golden fixtures are safetensors files under `tests/data/`, written by the
//! committed scripts under `scripts/golden/` (PyTorch CPU). A key is
//! `<case>.<tensor>`, e.g. `conv_stride2.x`, `conv_stride2.out`, `conv_stride2.grad_x`.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod parity;
pub mod ranks;
pub mod rng;

use kiln::{DType, Device, Tensor};
use std::collections::HashMap;

/// The tensors of one fixture file, by key.
pub struct Golden {
    tensors: HashMap<String, Tensor>,
    file: String,
}

impl Golden {
    /// Loads `tests/data/<area>.safetensors`.
    pub fn load(area: &str) -> Golden {
        let file = format!(
            "{}/tests/data/{area}.safetensors",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&file)
            .unwrap_or_else(|e| panic!("{file}: {e}; run scripts/golden/{area}.py"));
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
        let tensors = st
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, to_tensor(&view)))
            .collect();
        Golden { tensors, file }
    }

    /// The tensor stored under `key` (on the CPU).
    pub fn get(&self, key: &str) -> Tensor {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("{}: no key {key}", self.file))
            .clone()
    }

    /// The tensor stored under `key`, on `device`.
    pub fn on(&self, key: &str, device: &Device) -> Tensor {
        self.get(key).to_device(device).expect("to_device")
    }
}

fn to_tensor(view: &safetensors::tensor::TensorView<'_>) -> Tensor {
    let data = view.data();
    let shape = view.shape();
    let dev = Device::Cpu;
    match view.dtype() {
        safetensors::Dtype::F32 => Tensor::from_vec(decode(data, f32::from_le_bytes), shape, &dev),
        safetensors::Dtype::F64 => Tensor::from_vec(decode(data, f64::from_le_bytes), shape, &dev),
        safetensors::Dtype::I64 => Tensor::from_vec(decode(data, i64::from_le_bytes), shape, &dev),
        safetensors::Dtype::U8 => Tensor::from_vec(data.to_vec(), shape, &dev),
        other => panic!("fixture dtype {other:?} not supported"),
    }
    .expect("fixture tensor")
}

fn decode<T, const N: usize>(data: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk size")))
        .collect()
}

/// The CUDA device a test runs on, or `None` after printing why the test skips.
///
/// CUDA is usable with a GPU, its driver and the kernels built, or on the emulated
/// device (`--features cuda-emulator`, `KILN_CUDA_EMULATE=1`). With
/// `KILN_REQUIRE_CUDA_TESTS=1` (CI's emulated run, GPU machines) a skip is a failure
/// instead, so a broken device cannot pass as a missing one.
///
/// It also switches f32 convolutions' TF32 off (`kiln::cuda::set_conv_allow_tf32`,
/// on by default like PyTorch's): golden values are exact f32 results, which TF32's
/// 11-bit inputs would miss by ~1e-3. The switch is process-wide, so test binaries
/// that use this helper run no TF32 convolution unless they switch it back on:
/// tests/conv_tf32.rs does, under a lock, and bounds the TF32 error instead.
pub fn cuda_or_skip(test: &str) -> Option<Device> {
    kiln::cuda::set_conv_allow_tf32(false);
    match Device::cuda(0) {
        Ok(dev) => Some(dev),
        Err(e) => {
            if std::env::var("KILN_REQUIRE_CUDA_TESTS").is_ok_and(|v| v == "1") {
                panic!("{test}: KILN_REQUIRE_CUDA_TESTS=1 but CUDA is not usable: {e}");
            }
            eprintln!("skipped {test}: CUDA is not usable: {e}");
            None
        }
    }
}

/// Launches of `kernel` on the emulated device so far in this process (a test reads it
/// before and after a call to learn which kernel served it); `None` where CUDA is not
/// emulated, e.g. on a real GPU, which counts none. Panics on a name no kernel has, so
/// a misspelt kernel cannot pass as one that did not run.
pub fn launches(kernel: &str) -> Option<u64> {
    #[cfg(feature = "cuda-emulator")]
    if kiln::cuda::is_emulated() {
        let count = kiln::cuda::emulated_launch_counts()
            .into_iter()
            .find_map(|(name, n)| (name == kernel).then_some(n));
        return Some(count.unwrap_or_else(|| panic!("no kernel {kernel}")));
    }
    let _ = kernel;
    None
}

/// kiln's generator is global (like PyTorch's) and a test binary runs its tests on
/// several threads, so another test's draw could land between a seed and the draws
/// that depend on it. A test whose result depends on the numbers a seed gives holds
/// this guard from the seed to its last draw: until it drops, the test's thread draws
/// from a generator of its own (`kiln::manual_seed` seeds that one), which no other
/// thread moves, whatever the scheduling. Tests that only need *some* random input
/// need no guard.
pub fn own_generator() -> kiln::internals::ThreadGenerator {
    kiln::internals::thread_generator(0)
}

/// `f`'s result right after `kiln::manual_seed(seed)`, on a generator of the
/// calling thread's own ([`own_generator`]).
pub fn seeded<R>(seed: u64, f: impl FnOnce() -> R) -> R {
    let _own = kiln::internals::thread_generator(seed);
    f()
}

/// Runs each test body on every device: `device_test! { fn name(dev) { .. } }` becomes
/// `mod name` with `#[test] fn cpu()` (`dev` is `&Device::Cpu`) and `#[test] fn cuda()`
/// (`dev` is `&Device::cuda(0)`, or a skip by [`cuda_or_skip`]). Filter with
/// `cargo test cpu` / `cargo test cuda`. Golden tests need no lock on the device:
/// only tests that read allocator statistics (tests/cuda.rs) serialize.
///
/// Doc comments go before `fn`; `#[cuda_ignore = "why"]` after them marks only the
/// CUDA variant `#[ignore]` (a known device bug, named in the reason).
macro_rules! device_test {
    ($(
        $(#[doc = $doc:literal])*
        $(#[cuda_ignore = $why:literal])?
        fn $name:ident($dev:ident) $body:block
    )*) => {$(
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            fn body($dev: &::kiln::Device) $body

            #[test]
            fn cpu() {
                body(&::kiln::Device::Cpu);
            }

            #[test]
            $(#[ignore = $why])?
            fn cuda() {
                if let Some(dev) = $crate::common::cuda_or_skip(module_path!()) {
                    body(&dev);
                }
            }
        }
    )*};
}
pub(crate) use device_test;

/// Asserts that `result` is an `Err` matching `pattern`, showing what it got.
macro_rules! assert_err {
    ($result:expr, $pattern:pat) => {
        match $result {
            Err($pattern) => {}
            Err(other) => panic!("{}: wrong error variant: {other:?}", stringify!($result)),
            Ok(v) => panic!("{}: expected an error, got {v:?}", stringify!($result)),
        }
    };
}
pub(crate) use assert_err;

/// How much further than on the CPU a result on `dev` may stray, as `(atol, rtol)`
/// for results of `dtype`; zero on the CPU, whose tolerances each test states.
///
/// On CUDA the kernels sum in another order than the CPU backend (block and warp
/// trees, tiled GEMMs) and take transcendental functions from CUDA's libdevice (on a
/// GPU) or the host's libm (on the emulator), which differ from the CPU backend's in
/// the last ulps. Both are a few ulps of the result for the golden cases' sizes
/// (tens to hundreds of terms): ~1e-12 relative in f64 (2^-52 ≈ 2.2e-16, with room
/// for cancellation in gradients), ~1e-5 in f32 (2^-23 ≈ 1.2e-7, ditto). Halves
/// compute in f32 and round once, so they may differ by a rounding of their own
/// format: 2^-9 ≈ 2e-3 for f16, 2^-6 ≈ 1.6e-2 for bf16. Integers are exact.
pub fn device_tol(dtype: DType, dev: &Device) -> (f64, f64) {
    if dev.is_cpu() {
        return (0.0, 0.0);
    }
    match dtype {
        DType::F64 => (1e-12, 1e-12),
        DType::F32 => (1e-5, 1e-5),
        DType::F16 => (2e-3, 2e-3),
        DType::BF16 => (1.6e-2, 1.6e-2),
        DType::I64 | DType::U8 => (0.0, 0.0),
    }
}

/// Values as f64 on the host (exact for every dtype but i64 beyond 2^53).
pub fn host(t: &Tensor) -> Vec<f64> {
    t.to_device(&Device::Cpu)
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_vec::<f64>())
        .expect("readable tensor")
}

/// Asserts that `got` lives on `dev` (a silent fallback to the CPU is a failure), has
/// `want`'s shape and agrees with it within `atol + rtol·|want|`, widened on a device
/// by [`device_tol`] for `got`'s dtype. `atol`/`rtol` are the CPU's tolerances. NaN
/// must meet NaN, an infinity the same infinity. `want` may be on any device.
#[track_caller]
pub fn assert_close(got: &Tensor, want: &Tensor, dev: &Device, atol: f64, rtol: f64) {
    assert_eq!(got.device(), *dev, "result on the wrong device");
    let (datol, drtol) = device_tol(got.dtype(), dev);
    assert_values("result", got, want, atol.max(datol), rtol.max(drtol));
}

/// Asserts that `got` and `want` (on any devices) have one shape and agree within
/// exactly `atol + rtol·|want|`; NaN must meet NaN, an infinity the same infinity.
/// `what` (may be empty) begins the failure message.
#[track_caller]
pub fn assert_values(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.shape(), want.shape(), "{what}: shapes differ");
    let (g, w) = (host(got), host(want));
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let ok = a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= atol + rtol * b.abs();
        assert!(
            ok,
            "{what}: element {i}: got {a}, want {b} (atol {atol}, rtol {rtol})"
        );
    }
}

/// Runs an op of an input, a weight and an optional bias (conv2d, linear) on golden
/// case `name` of fixture `area` on `dev`, inputs converted to `dtype`: returns the
/// output and the gradients of `x`, `w` and (with `has_bias`) `b` under PyTorch's
/// upstream gradient `gy`, in that order (the fixture's `out`, `grad_x`, `grad_w`,
/// `grad_b`).
pub fn run_weighted_case(
    area: &str,
    name: &str,
    has_bias: bool,
    dtype: DType,
    dev: &Device,
    op: impl Fn(&Tensor, &Tensor, Option<&Tensor>) -> kiln::Result<Tensor>,
) -> Vec<Tensor> {
    let g = Golden::load(area);
    let get = |k: &str| g.on(&format!("{name}.{k}"), dev).to_dtype(dtype).unwrap();
    let x = get("x").requires_grad();
    let w = get("w").requires_grad();
    let b = has_bias.then(|| get("b").requires_grad());
    let y = op(&x, &w, b.as_ref()).unwrap();
    y.mul(&get("gy"))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let mut out = vec![y, x.grad().unwrap(), w.grad().unwrap()];
    out.extend(b.map(|b| b.grad().unwrap()));
    out
}

/// Checks an op of an input, a weight and an optional bias (conv2d, linear) against
/// golden case `name` of fixture `area` on `dev`: the output, then the gradients of
/// `x`, `w` and `b` under PyTorch's upstream gradient `gy` ([`run_weighted_case`]).
/// Inputs are converted to `dtype`; `tol` is both the absolute and the relative
/// tolerance (on the CPU).
pub fn check_weighted_case(
    area: &str,
    name: &str,
    has_bias: bool,
    dtype: DType,
    tol: f64,
    dev: &Device,
    op: impl Fn(&Tensor, &Tensor, Option<&Tensor>) -> kiln::Result<Tensor>,
) {
    let got = run_weighted_case(area, name, has_bias, dtype, dev, op);
    let g = Golden::load(area);
    for (t, key) in got.iter().zip(["out", "grad_x", "grad_w", "grad_b"]) {
        assert_eq!(t.dtype(), dtype, "{name}.{key}");
        assert_close(t, &g.get(&format!("{name}.{key}")), dev, tol, tol);
    }
}

/// CPU tolerances `(atol, rtol)` of the single-op golden suites (tensor_golden.rs,
/// tensor_index.rs) for results of `dtype`: f64 differs from PyTorch only by the order
/// of floating-point operations, f32 by a few ulps; integers are exact. Other devices
/// add [`device_tol`].
pub fn golden_tolerance(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F64 => (1e-12, 1e-10),
        DType::F32 => (1e-5, 1e-5),
        _ => (0.0, 0.0),
    }
}

/// Runs `op` on golden case `case`'s inputs `in0..in<n_inputs>` of `g` on `dev` and
/// checks its output against `<case>.out`; for a float output, also the gradient of
/// every float input (`<case>.grad<i>`) under PyTorch's upstream gradient
/// `<case>.gout` (`sum(out * gout)` has exactly the gradients of
/// `out.backward(gout)`). Integer inputs (indices, masks) take no gradient.
pub fn check_golden_case(
    g: &Golden,
    case: &str,
    n_inputs: usize,
    dev: &Device,
    op: impl Fn(&[Tensor]) -> kiln::Result<Tensor>,
) {
    let key = |k: &str| format!("{case}.{k}");
    // requires_grad leaves integer tensors as they are.
    let inputs: Vec<Tensor> = (0..n_inputs)
        .map(|i| g.on(&key(&format!("in{i}")), dev).requires_grad())
        .collect();
    let out = op(&inputs).unwrap_or_else(|e| panic!("{case}: forward failed: {e}"));
    let want = g.get(&key("out"));
    assert_eq!(out.dtype(), want.dtype(), "{case}: output dtype");
    let (atol, rtol) = golden_tolerance(want.dtype());
    assert_close(&out, &want, dev, atol, rtol);
    if !out.dtype().is_float() {
        return; // argmax, argmin: nothing to differentiate
    }
    let gout = g.on(&key("gout"), dev);
    out.mul(&gout)
        .and_then(|t| t.sum_all())
        .and_then(|loss| loss.backward())
        .unwrap_or_else(|e| panic!("{case}: backward failed: {e}"));
    for (i, input) in inputs.iter().enumerate() {
        if !input.dtype().is_float() {
            continue;
        }
        let want = g.get(&key(&format!("grad{i}")));
        let got = input
            .grad()
            .unwrap_or_else(|| panic!("{case}: input {i} received no gradient"));
        assert_eq!(got.dtype(), input.dtype(), "{case}: grad{i} dtype");
        assert_close(&got, &want, dev, atol, rtol);
    }
}

/// One [`device_test!`] per golden case, each running [`check_golden_case`] on the
/// fixture that the calling file's `golden()` returns, plus `CASES`, their names, for
/// the file's check that the fixture and the tests list the same cases
/// ([`golden_case_names`]).
macro_rules! golden_cases {
    ($($name:ident($n:expr) => |$x:ident| $body:expr;)*) => {
        $crate::common::device_test! {
            $(
                fn $name(dev) {
                    $crate::common::check_golden_case(
                        golden(), stringify!($name), $n, dev, |$x: &[Tensor]| $body,
                    );
                }
            )*
        }
        const CASES: &[&str] = &[$(stringify!($name)),*];
    };
}
pub(crate) use golden_cases;

/// The names of the cases in `tests/data/<area>.safetensors` (the keys that end in
/// `.out`, without it), sorted.
pub fn golden_case_names(area: &str) -> Vec<String> {
    let file = format!(
        "{}/tests/data/{area}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("fixture header");
    let mut names: Vec<String> = meta
        .tensors()
        .keys()
        .filter_map(|k| k.strip_suffix(".out").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// The values of `x` as a non-contiguous view: its last two dimensions' strides
/// swapped (a transposed copy, transposed back). `x` has at least two dimensions.
pub fn strided(x: &Tensor) -> Tensor {
    let r = x.rank();
    let view = x
        .transpose(r - 2, r - 1)
        .and_then(|t| t.contiguous())
        .and_then(|t| t.transpose(r - 2, r - 1))
        .expect("a transposed view");
    assert!(!view.is_contiguous() || x.shape()[r - 2..].contains(&1));
    view
}
