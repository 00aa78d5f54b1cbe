//! What only CUDA has: transfers, device errors, the caching allocator, Philox on the
//! device, a training run following the CPU's, and every kernel's dtype variants
//! (each op family on every dtype, odd sizes, non-contiguous views) against the CPU
//! reference. What an op computes is checked against PyTorch by the golden tests
//! (`tests/functional_*.rs`, `tensor_golden.rs`, ...), which run on CUDA too
//! (`common::device_test!`); the sweeps here make sure every kernel variant runs.
//!
//! Without a usable GPU each test prints why it skipped and passes;
//! `KILN_REQUIRE_CUDA_TESTS=1` turns a skip into a failure (set on GPU machines).
//! CI runs this suite on the emulated device (`--features cuda-emulator` with
//! `KILN_CUDA_EMULATE=1`: the same kernels compiled for the CPU), where
//! `the_parity_tests_launch_every_kernel` also checks that every kernel ran.

mod common;

#[path = "../examples/train_digits/model.rs"]
#[allow(dead_code)] // the training loop is used here, not every helper of the example
mod model;

use kiln::nn::functional as F;
use kiln::nn::{Forward, Module};
use kiln::optim::{Adam, AdamW, Optimizer, Sgd};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::{Mutex, MutexGuard};

/// GPU tests run one at a time: the allocator statistics they check are per device.
static GPU: Mutex<()> = Mutex::new(());

/// The GPU and its lock, or `None` (after printing why) when the test must skip.
fn gpu(test: &str) -> Option<(Device, MutexGuard<'static, ()>)> {
    let dev = common::cuda_or_skip(test)?;
    Some((dev, GPU.lock().unwrap_or_else(|e| e.into_inner())))
}

/// `let (dev, _guard) = gpu_or_skip!(name);` or return from the test.
macro_rules! gpu_or_skip {
    ($name:expr) => {
        match gpu($name) {
            Some(found) => found,
            None => return,
        }
    };
}

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];
const ALL: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

/// `(atol, rtol)` for results that went through transcendental math or reordered
/// sums: the device tolerances every golden test uses.
fn tol(dtype: DType) -> (f64, f64) {
    common::device_tol(dtype, &Device::Cuda(0))
}

use common::{host, launches};

/// A CUDA result against the CPU's: same dtype, devices as named, and the values of
/// [`common::assert_values`].
#[track_caller]
fn assert_close(what: &str, got: &Tensor, want: &Tensor, atol: f64, rtol: f64) {
    assert_eq!(got.dtype(), want.dtype(), "{what}: dtype");
    assert!(
        got.device().is_cuda() && want.device().is_cpu(),
        "{what}: devices"
    );
    common::assert_values(what, got, want, atol, rtol);
}

fn assert_exact(what: &str, got: &Tensor, want: &Tensor) {
    assert_close(what, got, want, 0.0, 0.0);
}

/// Deterministic values in [-4, 4) with a few special ones, as `dtype` on the CPU.
fn values(shape: &[usize], dtype: DType, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f64> = (0..n)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let x = (s >> 11) as f64 / (1u64 << 53) as f64 * 8.0 - 4.0;
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
fn pair_t(shape: &[usize], dtype: DType, seed: u64, dev: &Device) -> (Tensor, Tensor) {
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
    drop(gpu(
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

#[test]
fn unary_ops_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("unary_ops_match_the_cpu");
    type Op = (&'static str, fn(&Tensor) -> Result<Tensor>);
    let float_ops: [Op; 16] = [
        ("neg", |t| t.neg()),
        ("exp", |t| t.exp()),
        ("log", |t| t.log()),
        ("sqrt", |t| t.sqrt()),
        ("relu", |t| t.relu()),
        ("sigmoid", |t| t.sigmoid()),
        ("tanh", |t| t.tanh()),
        ("abs", |t| t.abs()),
        ("add_scalar", |t| t.add_scalar(1.25)),
        ("mul_scalar", |t| t.mul_scalar(-3.0)),
        ("div_scalar", |t| t.div_scalar(7.0)),
        ("powf", |t| t.powf(2.5)),
        ("powf_int", |t| t.powf(3.0)),
        ("gelu", F::gelu),
        ("gelu_tanh", F::gelu_tanh),
        ("sub_scalar", |t| t.sub_scalar(0.5)),
    ];
    for dtype in FLOATS {
        let (cpu, gpu) = pair_t(&[33, 7, 3], dtype, 2, &dev);
        let (atol, rtol) = tol(dtype);
        for (name, op) in float_ops {
            assert_close(
                &format!("{name} {dtype:?}"),
                &op(&gpu).unwrap(),
                &op(&cpu).unwrap(),
                atol,
                rtol,
            );
        }
    }
    let int_ops: [Op; 5] = [
        ("neg", |t| t.neg()),
        ("relu", |t| t.relu()),
        ("abs", |t| t.abs()),
        ("add_scalar", |t| t.add_scalar(300.0)),
        ("mul_scalar", |t| t.mul_scalar(3.0)),
    ];
    for dtype in [DType::I64, DType::U8] {
        let (cpu, gpu) = pair_t(&[5, 67], dtype, 3, &dev);
        for (name, op) in int_ops {
            assert_exact(
                &format!("{name} {dtype:?}"),
                &op(&gpu).unwrap(),
                &op(&cpu).unwrap(),
            );
        }
        assert!(gpu.exp().is_err(), "exp of integers is refused on CUDA too");
    }
}

#[test]
fn binary_ops_and_comparisons_broadcast_like_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("binary_ops_and_comparisons_broadcast_like_the_cpu");
    type Op = (&'static str, fn(&Tensor, &Tensor) -> Result<Tensor>);
    let ops: [Op; 12] = [
        ("add", |a, b| a.add(b)),
        ("sub", |a, b| a.sub(b)),
        ("mul", |a, b| a.mul(b)),
        ("div", |a, b| a.div(b)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
        ("eq", |a, b| a.eq(b)),
        ("ne", |a, b| a.ne(b)),
        ("lt", |a, b| a.lt(b)),
        ("le", |a, b| a.le(b)),
        ("gt", |a, b| a.gt(b)),
        ("ge", |a, b| a.ge(b)),
    ];
    for dtype in ALL {
        // (9, 1, 13) transposed view against (5, 1) broadcast and a scalar-like (1,).
        let (a_cpu, a_gpu) = pair_t(&[9, 1, 13], dtype, 4, &dev);
        let (b_cpu, b_gpu) = pair_t(&[5, 1], dtype, 5, &dev);
        let c_cpu = values(&[1], dtype, 6);
        let c_gpu = c_cpu.to_device(&dev).unwrap();
        for (name, op) in ops {
            if name == "div" && !dtype.is_float() {
                assert!(op(&a_gpu, &b_gpu).is_err(), "integer division is refused");
                continue;
            }
            let what = format!("{name} {dtype:?}");
            // One IEEE operation (in f32 for halves) then one rounding: bit-identical.
            assert_exact(
                &what,
                &op(&a_gpu, &b_gpu).unwrap(),
                &op(&a_cpu, &b_cpu).unwrap(),
            );
            assert_exact(
                &what,
                &op(&c_gpu, &a_gpu).unwrap(),
                &op(&c_cpu, &a_cpu).unwrap(),
            );
        }
    }
    let nan = Tensor::from_vec(vec![f32::NAN, 1.0, 2.0], &[3], &Device::Cpu).unwrap();
    let one = Tensor::from_vec(vec![1.0f32, f32::NAN, 3.0], &[3], &Device::Cpu).unwrap();
    let (ng, og) = (nan.to_device(&dev).unwrap(), one.to_device(&dev).unwrap());
    assert_exact(
        "maximum NaN",
        &ng.maximum(&og).unwrap(),
        &nan.maximum(&one).unwrap(),
    );
    assert_exact(
        "minimum NaN",
        &ng.minimum(&og).unwrap(),
        &nan.minimum(&one).unwrap(),
    );
    assert_exact("eq NaN", &ng.eq(&og).unwrap(), &nan.eq(&one).unwrap());
}

#[test]
fn reductions_over_every_dim_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("reductions_over_every_dim_match_the_cpu");
    type Op = (&'static str, fn(&Tensor, usize) -> Result<Tensor>);
    let ops: [Op; 6] = [
        ("sum", |t, d| t.sum(d, false)),
        ("mean", |t, d| t.mean(d, true)),
        ("max", |t, d| t.max(d, false)),
        ("min", |t, d| t.min(d, false)),
        ("argmax", |t, d| t.argmax(d, false)),
        ("argmin", |t, d| t.argmin(d, true)),
    ];
    for dtype in ALL {
        for (shape, transposed) in [
            (vec![37, 129, 5], false),
            (vec![6, 300, 3], true),
            (vec![1, 1000], false),
        ] {
            let (cpu, gpu) = if transposed {
                pair_t(&shape, dtype, 7, &dev)
            } else {
                let c = values(&shape, dtype, 7);
                let g = c.to_device(&dev).unwrap();
                (c, g)
            };
            let (atol, rtol) = tol(dtype);
            for (name, op) in ops {
                if name == "mean" && !dtype.is_float() {
                    continue;
                }
                for d in 0..shape.len() {
                    let what =
                        format!("{name} dim {d} of {shape:?} {dtype:?} (transposed {transposed})");
                    let (g, c) = (op(&gpu, d).unwrap(), op(&cpu, d).unwrap());
                    match name {
                        "sum" | "mean" => assert_close(&what, &g, &c, atol * 10.0, rtol * 10.0),
                        _ => assert_exact(&what, &g, &c),
                    }
                }
            }
        }
    }
}

#[test]
fn large_and_strided_reductions_split_into_chunks() {
    let (dev, _gpu) = gpu_or_skip!("large_and_strided_reductions_split_into_chunks");
    // One output over 3M elements (block strategy with a second pass), many outputs
    // over a strided dim (thread strategy with a second pass), and argmax ties.
    let big = values(&[3_000_001], DType::F32, 8);
    let g = big.to_device(&dev).unwrap();
    assert_close(
        "sum_all 3M",
        &g.sum_all().unwrap(),
        &big.sum_all().unwrap(),
        1e-2,
        1e-4,
    );
    assert_exact(
        "max 3M",
        &g.max(0, false).unwrap(),
        &big.max(0, false).unwrap(),
    );
    assert_exact(
        "argmin 3M",
        &g.argmin(0, false).unwrap(),
        &big.argmin(0, false).unwrap(),
    );
    let tall = values(&[20_000, 33], DType::F64, 9);
    let tg = tall.to_device(&dev).unwrap();
    assert_close(
        "sum dim 0 tall",
        &tg.sum(0, false).unwrap(),
        &tall.sum(0, false).unwrap(),
        1e-9,
        1e-12,
    );
    assert_exact(
        "argmax dim 0 tall",
        &tg.argmax(0, false).unwrap(),
        &tall.argmax(0, false).unwrap(),
    );
    let ties = Tensor::from_vec(vec![1u8, 7, 7, 3, 7, 0], &[6], &Device::Cpu).unwrap();
    let tg = ties.to_device(&dev).unwrap();
    assert_eq!(
        tg.argmax(0, false).unwrap().item::<i64>().unwrap(),
        1,
        "first maximum"
    );
    assert_eq!(tg.sum_all().unwrap().dtype(), DType::I64);
    let mut v = vec![1.0f32; 5000];
    v[1234] = f32::NAN;
    v[4321] = f32::NAN;
    let nan = Tensor::from_vec(v, &[5000], &Device::Cpu).unwrap();
    let ng = nan.to_device(&dev).unwrap();
    assert_eq!(
        ng.argmax(0, false).unwrap().item::<i64>().unwrap(),
        1234,
        "first NaN wins"
    );
    assert!(ng.max(0, false).unwrap().item::<f32>().unwrap().is_nan());
    assert!(ng.sum_all().unwrap().item::<f32>().unwrap().is_nan());
}

#[test]
fn matmul_matches_the_cpu_for_odd_batched_and_transposed_operands() {
    let (dev, _gpu) =
        gpu_or_skip!("matmul_matches_the_cpu_for_odd_batched_and_transposed_operands");
    for dtype in FLOATS {
        let (atol, rtol) = match dtype {
            DType::F64 => (1e-10, 1e-10),
            DType::F32 => (1e-4, 1e-4),
            DType::F16 => (5e-2, 1e-2),
            _ => (2e-1, 2e-2),
        };
        // (70, 600)·(600, 90): one 128x128 tile and a long k, split-K for f32.
        let cases: [(&[usize], &[usize]); 7] = [
            (&[65, 33], &[33, 70]),
            (&[70, 600], &[600, 90]),
            (&[2, 300, 257], &[257, 140]),
            (&[3, 1, 17, 129], &[5, 129, 9]),
            (&[2, 64, 64], &[64, 64]),
            (&[1, 7], &[7, 1]),
            (&[130], &[130, 3]),
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let (a_cpu, a_gpu) = pair_t(sa, dtype, 10 + i as u64, &dev);
            let (b_cpu, b_gpu) = pair_t(sb, dtype, 20 + i as u64, &dev);
            let what = format!("matmul {sa:?}x{sb:?} {dtype:?}");
            assert_close(
                &what,
                &a_gpu.matmul(&b_gpu).unwrap(),
                &a_cpu.matmul(&b_cpu).unwrap(),
                atol,
                rtol,
            );
        }
    }
    let a = Tensor::zeros(&[4, 0], DType::F32, &dev).unwrap();
    let b = Tensor::zeros(&[0, 3], DType::F32, &dev).unwrap();
    assert_eq!(
        host(&a.matmul(&b).unwrap()),
        vec![0.0; 12],
        "k = 0 gives zeros"
    );
    let big_a = values(&[256, 512], DType::F32, 30);
    let big_b = values(&[512, 384], DType::F32, 31);
    let got = big_a
        .to_device(&dev)
        .unwrap()
        .matmul(&big_b.to_device(&dev).unwrap())
        .unwrap();
    assert_close(
        "matmul 256x512x384",
        &got,
        &big_a.matmul(&big_b).unwrap(),
        1e-3,
        1e-4,
    );
    // Enough 128x128 tiles (150) for the large f32 kernel on any current GPU; k = 77 is
    // not a multiple of its k-slice. Contiguous and transposed operands.
    let (a_cpu, a_gpu) = pair_t(&[1200, 77], DType::F32, 32, &dev);
    let (b_cpu, b_gpu) = pair_t(&[77, 1900], DType::F32, 33, &dev);
    let want = a_cpu.matmul(&b_cpu).unwrap();
    assert_close(
        "big matmul, transposed",
        &a_gpu.matmul(&b_gpu).unwrap(),
        &want,
        1e-4,
        1e-4,
    );
    let (a_c, b_c) = (a_gpu.contiguous().unwrap(), b_gpu.contiguous().unwrap());
    assert_close(
        "big matmul, contiguous",
        &a_c.matmul(&b_c).unwrap(),
        &want,
        1e-4,
        1e-4,
    );
    let ints = Tensor::zeros(&[2, 2], DType::I64, &dev).unwrap();
    assert!(ints.matmul(&ints).is_err());
}

/// Checks a half-precision product from the tensor-core GEMM against the exact (f64)
/// product of its inputs, element by element: f32 accumulation may lose
/// (k + 2)·2^-23·Σ|a b|, and rounding to the output type half an ulp, 2^-p·|c| (plus
/// f16's smallest subnormal step). `a` is (batch, m, k), `b` (batch or 1, k, n).
fn assert_half_gemm(what: &str, got: &Tensor, a: &Tensor, b: &Tensor) {
    let (sa, sb) = (a.shape(), b.shape());
    let (batch, m, k, n) = (sa[0], sa[1], sa[2], sb[2]);
    let (ha, hb, hc) = (host(a), host(b), host(got));
    assert_eq!(got.shape(), &[batch, m, n][..], "{what}: shape");
    let (p, tiny) = match got.dtype() {
        DType::F16 => (11, 2f64.powi(-24)),
        _ => (8, 0.0),
    };
    for z in 0..batch {
        let zb = if sb[0] == 1 { 0 } else { z };
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut size) = (0.0, 0.0);
                for kk in 0..k {
                    let prod = ha[(z * m + i) * k + kk] * hb[(zb * k + kk) * n + j];
                    exact += prod;
                    size += prod.abs();
                }
                let tol =
                    2f64.powi(-p) * exact.abs() + (k + 2) as f64 * 2f64.powi(-23) * size + tiny;
                let g = hc[(z * m + i) * n + j];
                assert!(
                    (g - exact).abs() <= tol,
                    "{what}: element ({z}, {i}, {j}) is {g}, the exact product {exact} (tolerance {tol:e})"
                );
            }
        }
    }
}

/// The f16/bf16 GEMM (mma.sync on tensor cores) against the exact product: sizes that are
/// and are not multiples of the 128x128x32 tile, of its 16-byte chunks (8 halves) and
/// of the mma shape; contiguous operands (cp.async, with zero-filled edges), transposed
/// ones and rows that are not 16-byte aligned (loaded element by element), batches with
/// and without a broadcast B.
#[test]
fn tensor_core_matmul_is_exact_up_to_f32_accumulation() {
    let (dev, _gpu) = gpu_or_skip!("tensor_core_matmul_is_exact_up_to_f32_accumulation");
    type View = fn(&Tensor) -> Tensor;
    let same: View = |x| x.clone();
    let transposed: View = |x| x.transpose(1, 2).unwrap();
    // The views are taken on the device: a copy to the device is contiguous.
    let check = |what: &str, a: &Tensor, view_a: View, b: &Tensor, view_b: View| {
        let on_dev = |x: &Tensor, view: View| view(&x.to_device(&dev).unwrap());
        let got = on_dev(a, view_a).matmul(&on_dev(b, view_b)).unwrap();
        assert_half_gemm(what, &got, &view_a(a), &view_b(b));
    };
    for dtype in [DType::F16, DType::BF16] {
        // (batch, m, k, n, b's batch)
        let shapes = [
            (1, 1, 1, 1, 1),
            (1, 17, 17, 17, 1),
            (1, 129, 129, 129, 1),
            (2, 129, 200, 136, 2),
            (3, 40, 64, 256, 1),
            (1, 200, 264, 72, 1),
        ];
        for (i, &(batch, m, k, n, bb)) in shapes.iter().enumerate() {
            let seed = 40 + 4 * i as u64;
            let a = values(&[batch, m, k], dtype, seed);
            let b = values(&[bb, k, n], dtype, seed + 1);
            let a_t = values(&[batch, k, m], dtype, seed + 2);
            let b_t = values(&[bb, n, k], dtype, seed + 3);
            let what =
                |layout: &str| format!("{dtype:?} ({batch}, {m}x{k}) · ({bb}, {k}x{n}), {layout}");
            check(&what("contiguous"), &a, same, &b, same);
            check(&what("A transposed"), &a_t, transposed, &b, same);
            check(&what("B transposed"), &a, same, &b_t, transposed);
        }
        // Rows of 20 halves inside rows of 24: the last 16-byte chunk of each row
        // straddles the end of k; rows starting one element in: not 16-byte aligned.
        let wide_a = values(&[2, 70, 24], dtype, 60);
        let wide_b = values(&[2, 21, 136], dtype, 61);
        let k20: [View; 2] = [
            |x| x.narrow(2, 0, 20).unwrap(),
            |x| x.narrow(1, 0, 20).unwrap(),
        ];
        let shifted: [View; 2] = [
            |x| x.narrow(2, 1, 20).unwrap(),
            |x| x.narrow(1, 1, 20).unwrap().narrow(2, 1, 130).unwrap(),
        ];
        for (what, [va, vb]) in [
            ("k = 20 in rows of 24", k20),
            ("rows not 16-byte aligned", shifted),
        ] {
            check(&format!("{dtype:?} {what}"), &wide_a, va, &wide_b, vb);
        }
    }
}

#[test]
fn conversions_between_all_dtypes_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("conversions_between_all_dtypes_match_the_cpu");
    let special = Tensor::from_vec(
        vec![
            300.7f64,
            -5.5,
            f64::NAN,
            1e20,
            -1e20,
            255.9,
            0.49,
            -0.0,
            65504.0,
            1e-8,
            3.0e38,
            -7.0,
        ],
        &[3, 4],
        &Device::Cpu,
    )
    .unwrap();
    for src in ALL {
        let (cpu, gpu) = pair_t(&[7, 11, 3], src, 40, &dev);
        let s_cpu = special.to_dtype(src).unwrap().transpose(0, 1).unwrap();
        let s_gpu = special
            .to_device(&dev)
            .unwrap()
            .to_dtype(src)
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        for dst in ALL {
            let what = format!("{src:?} -> {dst:?}");
            assert_exact(
                &what,
                &gpu.to_dtype(dst).unwrap(),
                &cpu.to_dtype(dst).unwrap(),
            );
            assert_exact(
                &what,
                &s_gpu.to_dtype(dst).unwrap(),
                &s_cpu.to_dtype(dst).unwrap(),
            );
        }
    }
}

#[test]
fn views_contiguous_cat_and_in_place_copies() {
    let (dev, _gpu) = gpu_or_skip!("views_contiguous_cat_and_in_place_copies");
    for dtype in ALL {
        let (cpu, gpu) = pair_t(&[4, 9, 6], dtype, 50, &dev);
        let what = format!("{dtype:?}");
        assert_exact(
            &what,
            &gpu.contiguous().unwrap(),
            &cpu.contiguous().unwrap(),
        );
        let n = |t: &Tensor| t.narrow(1, 2, 5).unwrap().transpose(0, 2).unwrap();
        assert_exact(
            &what,
            &n(&gpu).contiguous().unwrap(),
            &n(&cpu).contiguous().unwrap(),
        );
        let cat = |a: &Tensor| {
            Tensor::cat(
                &[
                    &a.narrow(1, 0, 3).unwrap(),
                    a,
                    &n(a).transpose(0, 2).unwrap(),
                ],
                1,
            )
        };
        assert_exact(&what, &cat(&gpu).unwrap(), &cat(&cpu).unwrap());
        let z_cpu = Tensor::zeros(&[6, 9, 4], dtype, &Device::Cpu).unwrap();
        let z_gpu = Tensor::zeros(&[6, 9, 4], dtype, &dev).unwrap();
        let src_c = cpu.transpose(0, 2).unwrap().narrow(1, 1, 4).unwrap();
        let src_g = gpu.transpose(0, 2).unwrap().narrow(1, 1, 4).unwrap();
        z_cpu
            .narrow(1, 3, 4)
            .unwrap()
            .copy_(&src_c.to_dtype(DType::F64).unwrap())
            .unwrap();
        z_gpu
            .narrow(1, 3, 4)
            .unwrap()
            .copy_(&src_g.to_dtype(DType::F64).unwrap())
            .unwrap();
        assert_exact(&what, &z_gpu, &z_cpu);
    }
}

#[test]
fn softmax_and_log_softmax_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("softmax_and_log_softmax_match_the_cpu");
    for dtype in FLOATS {
        let (cpu, gpu) = pair_t(&[7, 130, 3], dtype, 60, &dev);
        let (atol, rtol) = tol(dtype);
        for d in 0..3 {
            let what = format!("softmax dim {d} {dtype:?}");
            assert_close(
                &what,
                &F::softmax(&gpu, d).unwrap(),
                &F::softmax(&cpu, d).unwrap(),
                atol,
                rtol,
            );
            assert_close(
                &what,
                &F::log_softmax(&gpu, d).unwrap(),
                &F::log_softmax(&cpu, d).unwrap(),
                atol * 4.0,
                rtol * 4.0,
            );
        }
    }
    let edge = Tensor::from_vec(
        vec![
            1000.0f32,
            1001.0,
            f32::NEG_INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1.0,
            0.0,
            0.0,
        ],
        &[4, 2],
        &Device::Cpu,
    )
    .unwrap();
    let eg = edge.to_device(&dev).unwrap();
    assert_close(
        "softmax edges",
        &F::softmax(&eg, 1).unwrap(),
        &F::softmax(&edge, 1).unwrap(),
        1e-6,
        1e-6,
    );
    assert_close(
        "log_softmax edges",
        &F::log_softmax(&eg, 1).unwrap(),
        &F::log_softmax(&edge, 1).unwrap(),
        1e-5,
        1e-6,
    );
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

/// One view of `dropout_matches_the_cpu_in_every_float_dtype`: its name, the leaf's
/// shape and the view of the leaf that dropout runs on.
type DropoutView = (
    &'static str,
    &'static [usize],
    fn(&Tensor) -> Result<Tensor>,
);

/// Dropout masks are bit-identical on both devices for the same seed (the Philox
/// mapping in docs/ARCHITECTURE.md) in every float dtype, on both kernels: contiguous
/// inputs (`dropout_contig_*`: vector accesses, a partial last block, views starting
/// off a pack boundary) and a permuted view (`dropout_*`, the strided kernel). The
/// gradients are contiguous, so the backward passes take the contiguous kernel.
#[test]
fn dropout_matches_the_cpu_in_every_float_dtype() {
    let (dev, _gpu) = gpu_or_skip!("dropout_matches_the_cpu_in_every_float_dtype");
    let views: [DropoutView; 5] = [
        ("contiguous, 4k elements", &[8, 64], |t| Ok(t.clone())),
        ("contiguous, 4k+3 elements", &[4099], |t| Ok(t.clone())),
        // Offset 1: no dtype's pack is aligned; offset 4: f32's and f16's are.
        ("narrow at 1", &[4103], |t| t.narrow(0, 1, 4098)),
        ("narrow at 4", &[4103], |t| t.narrow(0, 4, 4097)),
        ("permuted", &[3, 37, 5, 2], |t| t.permute(&[1, 0, 3, 2])),
    ];
    for dtype in FLOATS {
        for (i, (what, shape, view)) in views.into_iter().enumerate() {
            let cpu = values(shape, dtype, 80 + i as u64);
            let gpu = cpu.to_device(&dev).unwrap();
            let drop = |t: &Tensor| -> Result<(Tensor, Tensor)> {
                kiln::manual_seed(1234);
                let leaf = t.clone().requires_grad();
                let y = F::dropout(&view(&leaf)?, 0.3, true)?;
                y.mul(&y.detach())?.sum_all()?.backward()?;
                Ok((y, leaf.grad().expect("grad")))
            };
            let ((yc, gc), (yg, gg)) = (drop(&cpu).unwrap(), drop(&gpu).unwrap());
            assert_exact(&format!("dropout {what} {dtype:?}"), &yg, &yc);
            let (atol, rtol) = tol(dtype);
            assert_close(
                &format!("dropout grad {what} {dtype:?}"),
                &gg,
                &gc,
                atol,
                rtol,
            );
        }
    }
}

/// One pooling of `pools_match_the_cpu`: its name, whether the CUDA result must equal
/// the CPU's exactly (max only selects), and the op.
type PoolCase = (&'static str, bool, fn(&Tensor) -> Result<Tensor>);

/// One input of `pools_match_the_cpu`: its name, values, shape and the dtypes to try.
type PoolInput<'a> = (&'a str, &'a [f64], [usize; 4], &'a [DType]);

/// Every pooling primitive, forward and backward, for every float dtype against the
/// CPU: odd sizes, overlapping windows (kernel 3, stride 2), padding, unequal strides,
/// adaptive windows that do not divide the input (or outnumber its rows); max pooling
/// on ties and NaNs too, where the gradient shows which element each window took; and
/// a plane larger than one grid, so the grid-stride loops wrap.
#[test]
fn pools_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("pools_match_the_cpu");
    let pools: [PoolCase; 10] = [
        ("max k2 s2", true, |x| F::max_pool2d(x, 2, 2, 0)),
        ("max k3 s2 p1", true, |x| F::max_pool2d(x, 3, 2, 1)),
        ("max k(3,2) s(1,2) p(1,1)", true, |x| {
            F::max_pool2d(x, (3, 2), (1, 2), (1, 1))
        }),
        ("avg k2 s2", false, |x| F::avg_pool2d(x, 2, 2, 0)),
        ("avg k3 s2 p1", false, |x| F::avg_pool2d(x, 3, 2, 1)),
        ("avg k(3,2) s(1,2) p(1,1)", false, |x| {
            F::avg_pool2d(x, (3, 2), (1, 2), (1, 1))
        }),
        ("adaptive (3,4)", false, |x| {
            F::adaptive_avg_pool2d(x, (3, 4))
        }),
        ("adaptive (1,1)", false, |x| F::adaptive_avg_pool2d(x, 1)),
        ("adaptive (10,5)", false, |x| {
            F::adaptive_avg_pool2d(x, (10, 5))
        }),
        ("adaptive (7,9)", false, |x| {
            F::adaptive_avg_pool2d(x, (7, 9))
        }),
    ];
    let smooth = host(&values(&[2, 3, 7, 9], DType::F64, 90));
    // Whole numbers in [-4, 4): most windows hold ties; and a NaN every 13 elements.
    let ties: Vec<f64> = smooth
        .iter()
        .enumerate()
        .map(|(i, v)| if i % 13 == 4 { f64::NAN } else { v.floor() })
        .collect();
    let run = |data: &[f64],
               shape: &[usize],
               dtype: DType,
               pool: fn(&Tensor) -> Result<Tensor>,
               d: &Device|
     -> Result<(Tensor, Tensor)> {
        let x = Tensor::from_vec(data.to_vec(), shape, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(d)?
            .requires_grad();
        let y = pool(&x)?;
        let upstream = values(y.shape(), dtype, 91).to_device(d)?;
        y.mul(&upstream)?.sum_all()?.backward()?;
        Ok((y, x.grad().expect("grad")))
    };
    let big = host(&values(&[1, 2, 50, 91], DType::F64, 92));
    let inputs: [PoolInput; 3] = [
        ("smooth", &smooth, [2, 3, 7, 9], &FLOATS),
        ("ties and NaN", &ties, [2, 3, 7, 9], &FLOATS),
        ("larger than a grid", &big, [1, 2, 50, 91], &[DType::F32]),
    ];
    for (input, data, shape, dtypes) in inputs {
        for &dtype in dtypes {
            for (name, exact, pool) in pools {
                let what = format!("{name} {input} {dtype:?}");
                let (yg, gg) = run(data, &shape, dtype, pool, &dev).unwrap();
                let (yc, gc) = run(data, &shape, dtype, pool, &Device::Cpu).unwrap();
                let (atol, rtol) = if exact { (0.0, 0.0) } else { tol(dtype) };
                assert_close(&format!("{what} value"), &yg, &yc, atol, rtol);
                assert_close(&format!("{what} grad"), &gg, &gc, atol, rtol);
            }
        }
    }
}

/// Padding in every float dtype and mode, forward and gradient, against the CPU:
/// exact (the forward copies; the gradient sums the same copies in the same order).
/// A larger case crosses the grid-stride loop.
#[test]
fn pad_matches_the_cpu_in_every_float_dtype() {
    use kiln::nn::functional::PadMode;
    let (dev, _gpu) = gpu_or_skip!("pad_matches_the_cpu_in_every_float_dtype");
    let modes = [
        PadMode::Constant(-1.5),
        PadMode::Reflect,
        PadMode::Replicate,
        PadMode::Circular,
    ];
    // (input shape, (left, right, top, bottom))
    type PadCase = (&'static [usize], (usize, usize, usize, usize));
    let cases: [PadCase; 3] = [
        (&[2, 3, 5, 6], (2, 3, 4, 1)),
        (&[3, 4, 2], (1, 1, 0, 3)),
        (&[1, 2, 60, 97], (5, 4, 3, 2)),
    ];
    for dtype in FLOATS {
        for (case, &(shape, pad)) in cases.iter().enumerate() {
            for mode in modes {
                let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                    let x = values(shape, dtype, 95 + case as u64)
                        .to_device(d)?
                        .requires_grad();
                    let y = F::pad(&x, pad, mode)?;
                    let upstream = values(y.shape(), dtype, 96).to_device(d)?;
                    y.mul(&upstream)?.sum_all()?.backward()?;
                    Ok((y, x.grad().expect("grad")))
                };
                let what = format!("pad {mode:?} {shape:?} {dtype:?}");
                let (yg, gg) = run(&dev).unwrap();
                let (yc, gc) = run(&Device::Cpu).unwrap();
                assert_close(&format!("{what} value"), &yg, &yc, 0.0, 0.0);
                assert_close(&format!("{what} grad"), &gg, &gc, 0.0, 0.0);
            }
        }
    }
}

/// Batch norm in every float dtype, training and eval, with and without affine
/// parameters: S = 1 with many rows ((37, 5)), and a large S through a permuted view
/// ((3, 7, 40, 13): 520 values per sample and channel). Output, the running
/// statistics updated in place, and the gradients of x, weight and bias.
#[test]
fn batch_norm_matches_the_cpu_in_every_float_dtype() {
    let (dev, _gpu) = gpu_or_skip!("batch_norm_matches_the_cpu_in_every_float_dtype");
    // (leaf shape, permutation giving the (N, C, *) input)
    let cases: [(&[usize], &[usize]); 2] = [(&[37, 5], &[0, 1]), (&[13, 40, 7, 3], &[3, 2, 1, 0])];
    for dtype in FLOATS {
        let (atol, rtol) = tol(dtype);
        for (case, &(shape, perm)) in cases.iter().enumerate() {
            for (training, affine) in [(true, true), (true, false), (false, true), (false, false)] {
                let run = |d: &Device| -> Result<Vec<Tensor>> {
                    let leaf = values(shape, dtype, 90 + case as u64)
                        .to_device(d)?
                        .requires_grad();
                    let x = leaf.permute(perm)?;
                    let c = x.shape()[1];
                    let rm = values(&[c], dtype, 91).to_device(d)?;
                    let rv = values(&[c], dtype, 92)
                        .abs()?
                        .add_scalar(0.5)?
                        .to_device(d)?;
                    let param = |seed| {
                        values(&[c], dtype, seed)
                            .to_device(d)
                            .map(Tensor::requires_grad)
                    };
                    let (w, b) = if affine {
                        (Some(param(93)?), Some(param(94)?))
                    } else {
                        (None, None)
                    };
                    let y =
                        F::batch_norm(&x, &rm, &rv, w.as_ref(), b.as_ref(), training, 0.1, 1e-5)?;
                    let gout = values(y.shape(), dtype, 95).to_device(d)?;
                    y.mul(&gout)?.sum_all()?.backward()?;
                    let mut out = vec![y, rm, rv, leaf.grad().expect("x grad")];
                    out.extend(w.iter().chain(&b).map(|p| p.grad().expect("param grad")));
                    Ok(out)
                };
                let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                    let what = format!("batch_norm case {case} {dtype:?} training {training} affine {affine}: output {i}");
                    assert_close(&what, g, c, atol, rtol);
                }
            }
        }
    }
}

/// One conv case: input (n, c_in, h, w), weight (c_out, c_in/groups, kh, kw), options.
struct ConvCase {
    /// Input shape.
    x: [usize; 4],
    /// Weight shape.
    w: [usize; 4],
    /// Stride, padding, dilation, each (h, w).
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    groups: usize,
    bias: bool,
}

/// conv2d's value and its input, weight and bias gradients (through a random upstream
/// gradient) on both devices, for every float dtype and every option of the kernels:
/// stride 2, padding, dilation 2, groups 2, depthwise, non-square kernels, odd channel
/// counts, batch 1 and 3, with and without bias, tiles cut at their edges, several
/// batch chunks in the weight gradient, channels-last (16 input channels per group;
/// 8 output channels per group).
#[test]
fn conv2d_and_its_gradients_match_the_cpu_for_every_option() {
    let (dev, _gpu) = gpu_or_skip!("conv2d_and_its_gradients_match_the_cpu_for_every_option");
    use kiln::nn::Conv2dOpts;
    let case = |x, w, stride, padding, dilation, groups, bias| ConvCase {
        x,
        w,
        stride,
        padding,
        dilation,
        groups,
        bias,
    };
    let cases = [
        // Odd channels, batch 3, bias.
        case([3, 3, 7, 9], [5, 3, 3, 3], (1, 1), (1, 1), (1, 1), 1, true),
        // Stride 2, non-square kernel, groups 2, batch 1, no bias.
        case([1, 4, 9, 8], [6, 2, 3, 2], (2, 2), (1, 0), (1, 1), 2, false),
        // Dilation 2 with padding, mixed strides.
        case([3, 3, 8, 7], [5, 3, 2, 3], (2, 1), (2, 1), (2, 2), 1, true),
        // Depthwise: stride 2, padding, bias; then dilation, non-square, batch 1.
        case([3, 5, 7, 6], [5, 1, 3, 3], (2, 2), (1, 1), (1, 1), 5, true),
        case([1, 3, 8, 9], [3, 1, 2, 3], (1, 2), (2, 0), (2, 1), 3, false),
        // More than one 64-row / 64-column tile and several 16-deep K slices.
        case([3, 9, 6, 7], [70, 9, 3, 3], (1, 1), (1, 1), (1, 1), 1, true),
        // Pointwise 1x1.
        case([3, 3, 5, 4], [5, 3, 1, 1], (1, 1), (0, 0), (1, 1), 1, false),
        // 16 channels per group (two 16-byte chunks of halves): the channels-last
        // tensor-core forward, with groups 2, stride, padding and dilation.
        case(
            [2, 32, 6, 5],
            [6, 16, 3, 3],
            (2, 1),
            (1, 1),
            (1, 2),
            2,
            true,
        ),
        // 8 output channels per group (one 16-byte chunk of halves): the channels-last
        // tensor-core input gradient, with groups 2, stride 2 phases and dilation.
        case(
            [2, 6, 7, 6],
            [16, 3, 3, 3],
            (2, 2),
            (1, 1),
            (1, 2),
            2,
            false,
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        for dtype in FLOATS {
            let run = |d: &Device| -> Result<Vec<Tensor>> {
                let x = values(&c.x, dtype, 90 + i as u64)
                    .to_device(d)?
                    .requires_grad();
                let w = values(&c.w, dtype, 91 + i as u64)
                    .mul_scalar(0.25)?
                    .to_device(d)?
                    .requires_grad();
                let b = values(&[c.w[0]], dtype, 92).to_device(d)?.requires_grad();
                let opts = Conv2dOpts::new()
                    .stride(c.stride)
                    .padding(c.padding)
                    .dilation(c.dilation)
                    .groups(c.groups);
                let y = F::conv2d(&x, &w, c.bias.then_some(&b), opts)?;
                let up = values(y.shape(), dtype, 93).to_device(d)?;
                y.mul(&up)?.sum_all()?.backward()?;
                let mut out = vec![y, x.grad().expect("x grad"), w.grad().expect("w grad")];
                out.extend(b.grad());
                Ok(out)
            };
            let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
            assert_eq!(on_gpu.len(), on_cpu.len());
            // The weight gradient sums a few hundred products of values up to 4 in
            // another order than the CPU (worst seen: 1.3x the plain f32 tolerance).
            let (atol, rtol) = tol(dtype);
            for (j, (g, cpu)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                let what = format!("conv case {i} {dtype:?}: value/grad x/w/b {j}");
                assert_close(&what, g, cpu, atol * 4.0, rtol * 4.0);
            }
        }
    }
}

/// Cross entropy (with and without label smoothing) and nll in every float dtype:
/// many rows with C = 37 (not a multiple of 32), a (N, C, d1, d2) input with the class
/// dim read in place through a transposed view, and a (C) input; loss and gradient.
/// An out-of-range target in the last row is an error naming it.
#[test]
fn cross_entropy_and_nll_match_the_cpu_in_every_float_dtype() {
    let (dev, _gpu) = gpu_or_skip!("cross_entropy_and_nll_match_the_cpu_in_every_float_dtype");
    let labels = |shape: &[usize], classes: usize, d: &Device| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        Tensor::from_vec(
            (0..n).map(|i| ((i * 7 + 3) % classes) as i64).collect(),
            shape,
            d,
        )
    };
    /// (leaf shape, transposed dims (a no-op when equal), target shape, classes)
    type Case = (&'static [usize], (usize, usize), &'static [usize], usize);
    let cases: [Case; 3] = [
        (&[300, 37], (0, 0), &[300], 37),
        (&[2, 5, 7, 3], (2, 3), &[2, 3, 7], 5),
        (&[45], (0, 0), &[], 45),
    ];
    for dtype in FLOATS {
        let (atol, rtol) = tol(dtype);
        for (case, &(shape, (d0, d1), target_shape, classes)) in cases.iter().enumerate() {
            for (smoothing, nll) in [(0.0, false), (0.1, false), (0.0, true)] {
                let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                    let leaf = values(shape, dtype, 96 + case as u64)
                        .to_device(d)?
                        .requires_grad();
                    let x = leaf.transpose(d0, d1)?;
                    let target = labels(target_shape, classes, d)?;
                    let loss = if nll {
                        F::nll_loss(&F::log_softmax(&x, usize::from(x.rank() > 1))?, &target)?
                    } else {
                        F::cross_entropy_with(&x, &target, smoothing)?
                    };
                    loss.mul_scalar(3.0)?.backward()?;
                    Ok((loss, leaf.grad().expect("grad")))
                };
                let ((lg, gg), (lc, gc)) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                let what = format!("case {case} {dtype:?} smoothing {smoothing} nll {nll}");
                assert_close(&format!("loss {what}"), &lg, &lc, atol * 4.0, rtol * 4.0);
                assert_close(&format!("grad {what}"), &gg, &gc, atol, rtol);
            }
        }
    }
    let logits = values(&[4, 37], DType::F32, 99).to_device(&dev).unwrap();
    let target = Tensor::from_vec(vec![0i64, 36, 1, 40], &[4], &dev).unwrap();
    let msg = F::cross_entropy(&logits, &target).unwrap_err().to_string();
    assert!(msg.contains("40") && msg.contains("37 classes"), "{msg}");
}

/// SiLU and softplus (both sides of the threshold, β = 1 and β ≠ 1) and their
/// gradients, on a transposed view, in every float dtype.
#[test]
fn silu_and_softplus_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("silu_and_softplus_match_the_cpu");
    type Op = (&'static str, fn(&Tensor) -> Result<Tensor>);
    let ops: [Op; 3] = [
        ("silu", F::silu),
        ("softplus", |t| F::softplus(t, 1.0, 1.5)),
        ("softplus_beta", |t| F::softplus(t, 2.0, 20.0)),
    ];
    for dtype in FLOATS {
        let (atol, rtol) = tol(dtype);
        for (name, op) in ops {
            let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                let leaf = values(&[7, 33, 3], dtype, 41).to_device(d)?.requires_grad();
                let y = op(&leaf.transpose(0, 2)?)?;
                let gout = values(y.shape(), dtype, 42).to_device(d)?;
                y.mul(&gout)?.sum_all()?.backward()?;
                Ok((y, leaf.grad().expect("grad")))
            };
            let ((yg, gg), (yc, gc)) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
            assert_close(&format!("{name} {dtype:?}"), &yg, &yc, atol, rtol);
            assert_close(&format!("{name} grad {dtype:?}"), &gg, &gc, atol, rtol);
        }
    }
}

/// layer_norm and rms_norm, forward and the gradients of x, weight and bias, with and
/// without affine parameters, on contiguous and transposed inputs (rows wider and
/// narrower than a block, and more rows than the backward's partial-sum blocks), in
/// every float dtype.
#[test]
fn layer_norm_and_rms_norm_match_the_cpu_in_every_float_dtype() {
    let (dev, _gpu) = gpu_or_skip!("layer_norm_and_rms_norm_match_the_cpu_in_every_float_dtype");
    // (leaf shape, transposed dims, normalized_shape)
    type Case = (&'static [usize], (usize, usize), &'static [usize]);
    let cases: [Case; 3] = [
        (&[300, 37], (0, 0), &[37]),
        (&[5, 3, 7], (0, 1), &[5, 7]),
        (&[2, 700], (0, 0), &[700]),
    ];
    for dtype in FLOATS {
        let (atol, rtol) = tol(dtype);
        for (case, &(shape, (d0, d1), norm)) in cases.iter().enumerate() {
            for (rms, affine) in [(false, true), (false, false), (true, true), (true, false)] {
                let run = |d: &Device| -> Result<Vec<Tensor>> {
                    let leaf = values(shape, dtype, 51 + case as u64)
                        .to_device(d)?
                        .requires_grad();
                    let x = leaf.transpose(d0, d1)?;
                    let param = |seed| {
                        values(norm, dtype, seed)
                            .to_device(d)
                            .map(Tensor::requires_grad)
                    };
                    let (w, b) = if affine {
                        (Some(param(52)?), Some(param(53)?))
                    } else {
                        (None, None)
                    };
                    let y = if rms {
                        F::rms_norm(&x, norm, w.as_ref(), None)?
                    } else {
                        F::layer_norm(&x, norm, w.as_ref(), b.as_ref(), 1e-5)?
                    };
                    let gout = values(y.shape(), dtype, 54).to_device(d)?;
                    y.mul(&gout)?.sum_all()?.backward()?;
                    let mut out = vec![y, leaf.grad().expect("x grad")];
                    let params = if rms {
                        w.iter().collect::<Vec<_>>()
                    } else {
                        w.iter().chain(&b).collect()
                    };
                    out.extend(params.into_iter().map(|p| p.grad().expect("param grad")));
                    Ok(out)
                };
                let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                assert_eq!(on_gpu.len(), on_cpu.len());
                for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                    let what =
                        format!("norm case {case} {dtype:?} rms {rms} affine {affine}: output {i}");
                    // Weight/bias gradients sum hundreds of rows: allow their rounding.
                    let k = if i >= 2 { 8.0 } else { 1.0 };
                    assert_close(&what, g, c, atol * k, rtol * k);
                }
            }
        }
    }
}

/// cross_entropy_opts with class weights, ignored targets, label smoothing and each
/// reduction, on (N, C) and transposed (N, C, d1, d2) logits, in every float dtype.
#[test]
fn cross_entropy_opts_match_the_cpu_in_every_float_dtype() {
    let (dev, _gpu) = gpu_or_skip!("cross_entropy_opts_match_the_cpu_in_every_float_dtype");
    // Every fifth target is ignored (-100).
    let labels = |shape: &[usize], classes: usize, d: &Device| -> Result<Tensor> {
        let n: usize = shape.iter().product();
        let v = (0..n).map(|i| {
            if i % 5 == 2 {
                -100
            } else {
                ((i * 7 + 3) % classes) as i64
            }
        });
        Tensor::from_vec(v.collect(), shape, d)
    };
    type Case = (&'static [usize], (usize, usize), &'static [usize], usize);
    let cases: [Case; 2] = [
        (&[300, 37], (0, 0), &[300], 37),
        (&[2, 5, 7, 3], (2, 3), &[2, 3, 7], 5),
    ];
    let reductions = [F::Reduction::Mean, F::Reduction::Sum, F::Reduction::None];
    for dtype in FLOATS {
        let (atol, rtol) = tol(dtype);
        for (case, &(shape, (d0, d1), target_shape, classes)) in cases.iter().enumerate() {
            for (reduction, smoothing) in reductions.iter().flat_map(|&r| [(r, 0.0), (r, 0.15)]) {
                let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                    let leaf = values(shape, dtype, 61 + case as u64)
                        .to_device(d)?
                        .requires_grad();
                    let x = leaf.transpose(d0, d1)?;
                    let target = labels(target_shape, classes, d)?;
                    let w = values(&[classes], dtype, 62)
                        .abs()?
                        .add_scalar(0.5)?
                        .to_device(d)?;
                    let opts = F::CrossEntropyOpts::new()
                        .weight(&w)
                        .label_smoothing(smoothing)
                        .reduction(reduction);
                    let loss = F::cross_entropy_opts(&x, &target, opts)?;
                    let gout = values(loss.shape(), dtype, 63).to_device(d)?;
                    loss.mul(&gout)?.sum_all()?.backward()?;
                    Ok((loss, leaf.grad().expect("grad")))
                };
                let ((lg, gg), (lc, gc)) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                let what = format!("case {case} {dtype:?} {reduction:?} smoothing {smoothing}");
                assert_close(&format!("loss {what}"), &lg, &lc, atol * 4.0, rtol * 4.0);
                assert_close(&format!("grad {what}"), &gg, &gc, atol, rtol);
            }
        }
    }
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

#[test]
fn philox_on_the_device_matches_the_cpu_bit_for_bit() {
    let (_dev, _gpu) = gpu_or_skip!("philox_on_the_device_matches_the_cpu_bit_for_bit");
    for (seed, offset, n) in [
        (0u64, 0u64, 13usize),
        (42, 7, 4099),
        (u64::MAX, u64::MAX - 1, 1000),
    ] {
        let stream = kiln::internals::PhiloxStream { seed, offset };
        assert_eq!(
            kiln::cuda::philox_words(0, stream, n).unwrap(),
            stream.words(n)
        );
    }
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

/// One optimizer configuration of [`fused_optimizer_steps_match_the_cpu`].
type MakeOptimizer = fn(Vec<Tensor>) -> Result<Box<dyn Optimizer>>;

/// The fused SGD and Adam/AdamW kernels follow the CPU reference for three steps, in
/// every float dtype, for each option (momentum, dampening, Nesterov, weight decay,
/// AMSGrad, decoupled decay), on a contiguous and a transposed parameter.
#[test]
fn fused_optimizer_steps_match_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("fused_optimizer_steps_match_the_cpu");
    let configs: [(&str, MakeOptimizer); 8] = [
        ("sgd", |p| Ok(Box::new(Sgd::new(p, 0.1)?))),
        ("sgd momentum", |p| {
            Ok(Box::new(Sgd::new(p, 0.1)?.momentum(0.9)))
        }),
        ("sgd dampening wd", |p| {
            Ok(Box::new(
                Sgd::new(p, 0.1)?
                    .momentum(0.9)
                    .dampening(0.1)
                    .weight_decay(0.01),
            ))
        }),
        ("sgd nesterov", |p| {
            Ok(Box::new(
                Sgd::new(p, 0.05)?
                    .momentum(0.9)
                    .nesterov(true)
                    .weight_decay(5e-4),
            ))
        }),
        ("adam", |p| Ok(Box::new(Adam::new(p, 1e-2)?))),
        ("adam wd amsgrad", |p| {
            Ok(Box::new(
                Adam::new(p, 1e-2)?.weight_decay(0.1).amsgrad(true),
            ))
        }),
        ("adamw", |p| Ok(Box::new(AdamW::new(p, 1e-2)?))),
        ("adamw amsgrad", |p| {
            Ok(Box::new(
                AdamW::new(p, 3e-3)?
                    .betas(0.8, 0.99)
                    .eps(1e-6)
                    .weight_decay(0.05)
                    .amsgrad(true),
            ))
        }),
    ];
    let run = |make: MakeOptimizer, dtype: DType, d: &Device| -> Result<Vec<Tensor>> {
        // A contiguous parameter of odd size and a transposed (strided) one.
        let a = values(&[7, 37], dtype, 1).to_device(d)?.requires_grad();
        let b = values(&[5, 3], dtype, 2)
            .to_device(d)?
            .transpose(0, 1)?
            .requires_grad();
        let (ca, cb) = (
            values(&[7, 37], dtype, 3).to_device(d)?,
            values(&[3, 5], dtype, 4).to_device(d)?,
        );
        let mut opt = make(vec![a.clone(), b.clone()])?;
        for _ in 0..3 {
            opt.zero_grad();
            // Gradients 2·p·c: they change with the parameter, step by step.
            let loss = a
                .mul(&a)?
                .mul(&ca)?
                .sum_all()?
                .add(&b.mul(&b)?.mul(&cb)?.sum_all()?)?;
            loss.backward()?;
            opt.step()?;
        }
        Ok(vec![a, b])
    };
    for (name, make) in configs {
        for dtype in FLOATS {
            let cpu = run(make, dtype, &Device::Cpu).unwrap();
            let gpu = run(make, dtype, &dev).unwrap();
            let (atol, rtol) = tol(dtype);
            for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                let what = format!("{name} {dtype:?} parameter {i}");
                assert_close(&what, g, c, 4.0 * atol, 4.0 * rtol);
            }
        }
    }
}

/// `full`, `zeros`, `ones` and `arange` are made on the device with the CPU's values
/// for every dtype; `rand` and `randn` draw the same Philox numbers as the CPU for the
/// same seed (`rand` bit for bit, `randn` through the same Box–Muller mapping) and
/// advance the generator as much.
#[test]
fn creation_on_the_device_matches_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("creation_on_the_device_matches_the_cpu");
    for dtype in ALL {
        for (value, shape) in [
            (2.5, vec![3, 5]),
            (-0.0, vec![4099]),
            (300.7, vec![1]),
            (7.0, vec![0, 2]),
        ] {
            let c = Tensor::full(&shape, value, dtype, &Device::Cpu).unwrap();
            let g = Tensor::full(&shape, value, dtype, &dev).unwrap();
            assert_exact(&format!("full({value}) {dtype:?}"), &g, &c);
        }
        let pairs = [
            (
                Tensor::zeros(&[9], dtype, &dev),
                Tensor::zeros(&[9], dtype, &Device::Cpu),
            ),
            (
                Tensor::ones(&[9], dtype, &dev),
                Tensor::ones(&[9], dtype, &Device::Cpu),
            ),
            (
                Tensor::arange(1001, dtype, &dev),
                Tensor::arange(1001, dtype, &Device::Cpu),
            ),
        ];
        for (k, (g, c)) in pairs.into_iter().enumerate() {
            assert_exact(
                &format!("zeros/ones/arange #{k} {dtype:?}"),
                &g.unwrap(),
                &c.unwrap(),
            );
        }
        if !dtype.is_float() {
            assert!(Tensor::rand(&[3], dtype, &dev).is_err());
            continue;
        }
        let draw = |d: &Device| -> Vec<Tensor> {
            kiln::manual_seed(11);
            let shapes: [&[usize]; 3] = [&[4099], &[3, 3], &[1]];
            let mut out = Vec::new();
            for shape in shapes {
                out.push(Tensor::rand(shape, dtype, d).unwrap());
                out.push(Tensor::randn(shape, dtype, d).unwrap());
            }
            out
        };
        let (cpu, gpu) = (draw(&Device::Cpu), draw(&dev));
        let (atol, rtol) = tol(dtype);
        for (k, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            let what = format!("random draw {k} {dtype:?}");
            if k % 2 == 0 {
                assert_exact(&what, g, c);
            } else {
                assert_close(&what, g, c, atol, rtol);
            }
        }
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

/// The image transforms' crop-and-flip gather in every dtype, for contiguous and
/// transposed batches and offsets partly outside the padded image (zeros there).
#[test]
fn crop_flip_matches_the_cpu_in_every_dtype() {
    use kiln::data::transforms::functional::crop_flip;
    let (dev, _gpu) = gpu_or_skip!("crop_flip_matches_the_cpu_in_every_dtype");
    let rows = vec![0i64, 0, 0, 3, 1, 1, -2, 6, 1, 5, -1, 0];
    let params = Tensor::from_vec(rows, &[4, 3], &Device::Cpu).unwrap();
    for dtype in ALL {
        let x = values(&[4, 3, 5, 7], dtype, 41);
        let xt = values(&[4, 3, 7, 5], dtype, 42).transpose(2, 3).unwrap();
        for (what, x) in [("contiguous", x), ("transposed", xt)] {
            let want = crop_flip(&x, &params, (4, 6), 2).unwrap();
            let got = crop_flip(
                &x.to_device(&dev).unwrap(),
                &params.to_device(&dev).unwrap(),
                (4, 6),
                2,
            )
            .unwrap();
            assert_exact(&format!("crop_flip {dtype:?} {what}"), &got, &want);
        }
    }
}

#[test]
fn attention_matches_the_cpu_in_every_float_dtype() {
    let (dev, _gpu) = gpu_or_skip!("attention_matches_the_cpu_in_every_float_dtype");
    use F::{SdpaBackend, SdpaOpts};
    // (q leaf shape, permutation to (N, H, L, E), S, EV, mask shape and kind, causal):
    // odd sizes that leave partial tiles, a head-split view, boolean and additive masks
    // broadcast over some dims, L != S.
    type Case = (
        &'static [usize],
        &'static [usize],
        usize,
        usize,
        Option<(&'static [usize], bool)>,
        bool,
    );
    let cases: [Case; 4] = [
        (&[2, 19, 3, 13], &[0, 2, 1, 3], 37, 9, None, true),
        (
            &[1, 2, 33, 40],
            &[0, 1, 2, 3],
            21,
            40,
            Some((&[33, 21], true)),
            false,
        ),
        (
            &[2, 1, 17, 24],
            &[0, 1, 2, 3],
            17,
            5,
            Some((&[2, 1, 17, 17], false)),
            true,
        ),
        (
            &[1, 1, 5, 128],
            &[0, 1, 2, 3],
            70,
            128,
            Some((&[1, 70], true)),
            false,
        ),
    ];
    for dtype in FLOATS {
        let (atol, rtol) = tol(dtype);
        for (i, &(qs, perm, s, ev, mask, causal)) in cases.iter().enumerate() {
            let run = |d: &Device| -> Result<Vec<Tensor>> {
                let scale = |t: Tensor| t.mul_scalar(0.5);
                let ql = scale(values(qs, dtype, 60 + i as u64))?
                    .to_device(d)?
                    .requires_grad();
                let q = ql.permute(perm)?;
                let (n, h, e) = (q.shape()[0], q.shape()[1], q.shape()[3]);
                let k = scale(values(&[n, h, s, e], dtype, 61))?
                    .to_device(d)?
                    .requires_grad();
                let v = values(&[n, h, s, ev], dtype, 62)
                    .to_device(d)?
                    .requires_grad();
                let m = mask.map(|(shape, boolean)| {
                    let m = values(shape, dtype, 63);
                    let m = if boolean {
                        m.gt_scalar(-2.0)
                    } else {
                        m.mul_scalar(0.3)
                    };
                    m.and_then(|m| m.to_device(d))
                });
                let m = m.transpose()?;
                let mut opts = SdpaOpts::new().causal(causal).backend(SdpaBackend::Fused);
                if let Some(m) = &m {
                    opts = opts.mask(m);
                }
                let y = F::scaled_dot_product_attention(&q, &k, &v, opts)?;
                let gout = values(y.shape(), dtype, 64).to_device(d)?;
                y.mul(&gout)?.sum_all()?.backward()?;
                Ok(vec![
                    y,
                    ql.grad().expect("dq"),
                    k.grad().expect("dk"),
                    v.grad().expect("dv"),
                ])
            };
            let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
            for (j, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                // Sums over up to 70 keys and 128 features: a few more roundings.
                let what = format!("attention case {i} {dtype:?}: result {j}");
                assert_close(&what, g, c, atol * 4.0, rtol * 4.0);
            }
        }
    }
}

/// GradScaler's fused non-finite check and unscale (`kernels/amp.cu`) against the CPU
/// in every dtype it takes, on a contiguous and a transposed (strided) gradient of
/// odd size, with and without an inf/NaN among them.
#[test]
fn grad_scaler_unscale_matches_the_cpu() {
    let (dev, _gpu) = gpu_or_skip!("grad_scaler_unscale_matches_the_cpu");
    // The gradient of `sum(p^T · g)` is `g^T`, a strided view.
    let run = |dtype: DType, bad: f32, d: &Device| -> Result<(bool, Vec<Tensor>)> {
        let mut gv: Vec<f32> = (0..35).map(|i| (i as f32 - 17.0) * 37.5).collect();
        gv[20] = bad;
        let g = Tensor::from_vec(gv, &[5, 7], d)?.to_dtype(dtype)?;
        let flat = Tensor::ones(&[35], dtype, d)?.requires_grad();
        let square = Tensor::ones(&[7, 5], dtype, d)?.requires_grad();
        let loss = flat.mul(&g.reshape(&[35])?)?.sum_all()?;
        loss.add(&square.transpose(0, 1)?.mul(&g)?.sum_all()?)?
            .backward()?;
        let mut opt = Sgd::new([flat.clone(), square.clone()], 0.0)?;
        let mut scaler = kiln::amp::GradScaler::new().init_scale(48.0)?;
        let stepped = scaler.step(&mut opt)?;
        Ok((stepped, vec![flat.grad().unwrap(), square.grad().unwrap()]))
    };
    for dtype in [DType::F32, DType::F64, DType::BF16] {
        for bad in [1.0, f32::INFINITY, f32::NAN] {
            let (cpu_stepped, cpu) = run(dtype, bad, &Device::Cpu).unwrap();
            let (stepped, got) = run(dtype, bad, &dev).unwrap();
            assert_eq!(stepped, cpu_stepped, "{dtype:?} {bad}: the skip decision");
            assert_eq!(stepped, bad.is_finite());
            for (g, c) in got.iter().zip(&cpu) {
                assert_close(&format!("{dtype:?} {bad} unscaled"), g, c, 0.0, 0.0);
            }
        }
    }
}

/// On the emulated device: the parity tests above, run one after another, launch every
/// kernel in `kernels/`. (The tiled f16/bf16 GEMMs serve only PTX built for compute
/// capability < 8.0; an emulator unit test in src/backend/cuda/matmul.rs runs them.)
#[cfg(feature = "cuda-emulator")]
#[test]
fn the_parity_tests_launch_every_kernel() {
    if !kiln::cuda::is_emulated() {
        eprintln!("skipped: launch counts exist only on the emulated device");
        return;
    }
    let suite: &[fn()] = &[
        transfers_round_trip_every_dtype,
        unary_ops_match_the_cpu,
        binary_ops_and_comparisons_broadcast_like_the_cpu,
        reductions_over_every_dim_match_the_cpu,
        large_and_strided_reductions_split_into_chunks,
        matmul_matches_the_cpu_for_odd_batched_and_transposed_operands,
        tensor_core_matmul_is_exact_up_to_f32_accumulation,
        conversions_between_all_dtypes_match_the_cpu,
        views_contiguous_cat_and_in_place_copies,
        softmax_and_log_softmax_match_the_cpu,
        dropout_matches_the_cpu_in_every_float_dtype,
        pools_match_the_cpu,
        pad_matches_the_cpu_in_every_float_dtype,
        conv2d_and_its_gradients_match_the_cpu_for_every_option,
        batch_norm_matches_the_cpu_in_every_float_dtype,
        cross_entropy_and_nll_match_the_cpu_in_every_float_dtype,
        silu_and_softplus_match_the_cpu,
        layer_norm_and_rms_norm_match_the_cpu_in_every_float_dtype,
        cross_entropy_opts_match_the_cpu_in_every_float_dtype,
        philox_on_the_device_matches_the_cpu_bit_for_bit,
        device_allocator_reaches_a_steady_state,
        training_steps_on_the_device_follow_the_cpu,
        fused_optimizer_steps_match_the_cpu,
        grad_scaler_unscale_matches_the_cpu,
        creation_on_the_device_matches_the_cpu,
        training_steps_on_the_device_move_only_the_batch_and_the_loss,
        crop_flip_matches_the_cpu_in_every_dtype,
        attention_matches_the_cpu_in_every_float_dtype,
        index_ops_match_the_cpu_in_every_dtype,
        row_scatter_add_matches_the_cpu_bit_for_bit,
    ];
    for test in suite {
        test();
    }
    // Launched elsewhere: the tiled half GEMM and SIMT half convolution kernels serve
    // only GPUs below compute capability 8.0 (the lib's unit tests,
    // src/backend/cuda/matmul*.rs and conv_tests.rs), and the TF32 kernels run only
    // under the process-wide `kiln::cuda::set_matmul_allow_tf32(true)` /
    // `set_conv_allow_tf32(true)`, which would race with this file's exact f32 tests
    // (`common::cuda_or_skip` switches conv TF32 off): tests/vendor_gemm.rs and
    // tests/conv_tf32.rs turn them on, serialised, and check that the rounding happens.
    let unit_tested = [
        "gemm_f16",
        "gemm_bf16",
        "gemm_tc_tf32",
        "conv2d_fwd_f16",
        "conv2d_fwd_bf16",
        "conv2d_bwd_input_f16",
        "conv2d_bwd_input_bf16",
        "conv2d_bwd_weight_f16",
        "conv2d_bwd_weight_bf16",
        "conv2d_tc_fwd_tf32",
        "conv2d_tc_fwd_nhwc_tf32",
        "conv2d_tc_bwd_input_tf32",
        "conv2d_tc_bwd_input_nhwc_tf32",
        "conv2d_tc_bwd_weight_tf32",
    ];
    // Families whose test file runs its own launch-coverage test (tests/tensor_scan.rs:
    // `every_scan_kernel_is_launched`).
    let own_coverage = ["scan_", "cumprod_backward_"];
    let missed: Vec<&str> = kiln::cuda::emulated_launch_counts()
        .into_iter()
        .filter(|&(name, n)| {
            n == 0
                && !name.starts_with("selftest_")
                && !unit_tested.contains(&name)
                && !own_coverage.iter().any(|prefix| name.starts_with(prefix))
        })
        .map(|(name, _)| name)
        .collect();
    assert!(missed.is_empty(), "kernels no test launched: {missed:?}");
}

/// Runs `f`; on the emulated device, asserts that it launched the scatter_add
/// kernel `family` of `dtype` and not the one of `other` (which path served it).
fn assert_serves(family: &str, other: &str, dtype: DType, f: impl FnOnce() -> Tensor) -> Tensor {
    let suffix = format!("{dtype:?}").to_lowercase();
    let (kernel, other) = (format!("{family}_{suffix}"), format!("{other}_{suffix}"));
    let before = (launches(&kernel), launches(&other));
    let out = f();
    if let (Some(k), Some(o)) = before {
        assert_eq!(launches(&kernel), Some(k + 1), "{kernel} ran once");
        assert_eq!(launches(&other), Some(o), "{other} did not run");
    }
    out
}

/// The backward of index_select of rows (an embedding's gradient: scatter_add along
/// dim 0 of a 2-D output, one id per src row) runs scatter_add_rows and equals the
/// CPU bit for bit: one id repeated 200 times, ids never used, more ids than a block
/// has threads (several chunks), more columns than one pass of the kernel covers
/// and not a multiple of its threads, strided base and src; F::embedding's weight
/// gradient; no ids at all. Scatters along dim 1 still run the general scatter_add (as does
/// an index that is not broadcast, `index_ops_match_the_cpu_in_every_dtype`).
#[test]
fn row_scatter_add_matches_the_cpu_bit_for_bit() {
    let (dev, _gpu) = gpu_or_skip!("row_scatter_add_matches_the_cpu_bit_for_bit");
    let (rows, cols, n) = (23, 1030, 600);
    // Id 5 at every third position, the others in [0, 16): ids 16..23 never occur.
    let ids: Vec<i64> = (0..n)
        .map(|t| if t % 3 == 0 { 5 } else { (t * 7 % 16) as i64 })
        .collect();
    let ids_cpu = Tensor::from_vec(ids, &[n], &Device::Cpu).unwrap();
    let ids_gpu = ids_cpu.to_device(&dev).unwrap();
    let along = |ids: &Tensor, dim: usize, shape: &[usize]| {
        let mut one = [1, 1];
        one[dim] = n;
        ids.reshape(&one).unwrap().broadcast_as(shape).unwrap()
    };
    for dtype in FLOATS {
        let (base_cpu, base_gpu) = pair_t(&[rows, cols], dtype, 15, &dev);
        let (src_cpu, src_gpu) = pair_t(&[n, cols], dtype, 16, &dev);
        let rows_of = |ids: &Tensor, base: &Tensor, src: &Tensor| {
            base.scatter_add(0, &along(ids, 0, &[n, cols]), src)
                .unwrap()
        };
        let got = assert_serves("scatter_add_rows", "scatter_add", dtype, || {
            rows_of(&ids_gpu, &base_gpu, &src_gpu)
        });
        let want = rows_of(&ids_cpu, &base_cpu, &src_cpu);
        assert_exact(&format!("row scatter_add {dtype:?}"), &got, &want);
        // The same sums along dim 1 of the transposed operands: the general kernel.
        let cols_of = |ids: &Tensor, base: &Tensor, src: &Tensor| {
            let (base, src) = (base.transpose(0, 1).unwrap(), src.transpose(0, 1).unwrap());
            base.scatter_add(1, &along(ids, 1, &[cols, n]), &src)
                .unwrap()
        };
        let got = assert_serves("scatter_add", "scatter_add_rows", dtype, || {
            cols_of(&ids_gpu, &base_gpu, &src_gpu)
        });
        let want = want.transpose(0, 1).unwrap();
        assert_exact(&format!("scatter_add dim 1 {dtype:?}"), &got, &want);
        let embedding_grad = |ids: &Tensor, weight: &Tensor, up: &Tensor| {
            let w = weight.detach().requires_grad();
            let y = F::embedding(&ids.reshape(&[20, 30]).unwrap(), &w).unwrap();
            let up = up.reshape(&[20, 30, cols]).unwrap();
            y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
            w.grad().unwrap()
        };
        let got = assert_serves("scatter_add_rows", "scatter_add", dtype, || {
            embedding_grad(&ids_gpu, &base_gpu, &src_gpu)
        });
        let want = embedding_grad(&ids_cpu, &base_cpu, &src_cpu);
        assert_exact(&format!("embedding grad {dtype:?}"), &got, &want);
    }
    // No ids: the row kernel passes the base through.
    let none = Tensor::from_vec(Vec::<i64>::new(), &[0, 1], &dev).unwrap();
    let none = none.broadcast_as(&[0, cols]).unwrap();
    let nothing = Tensor::zeros(&[0, cols], DType::F32, &dev).unwrap();
    let (base_cpu, base_gpu) = pair_t(&[rows, cols], DType::F32, 17, &dev);
    let got = assert_serves("scatter_add_rows", "scatter_add", DType::F32, || {
        base_gpu.scatter_add(0, &none, &nothing).unwrap()
    });
    assert_exact("row scatter_add of no ids", &got, &base_cpu);
}

/// The index kernels against the CPU on strided operands: gather and where_cond in
/// every dtype (bit for bit), scatter_add in every float dtype (bit for bit: both
/// backends sum in one order), index_bounds through every checked op, and the sin
/// and cos cases of the unary kernels.
#[test]
fn index_ops_match_the_cpu_in_every_dtype() {
    let (dev, _gpu) = gpu_or_skip!("index_ops_match_the_cpu_in_every_dtype");
    let ids: Vec<i64> = (0..9 * 6).map(|i| (i * 5 % 7) as i64).collect();
    let base = Tensor::from_vec(ids, &[9, 6], &Device::Cpu).unwrap();
    // (6, 9) transposed views of indices in [0, 7), on both devices.
    let idx_cpu = base.transpose(0, 1).unwrap();
    let idx_gpu = base.to_device(&dev).unwrap().transpose(0, 1).unwrap();
    let (cond_cpu, cond_gpu) = pair_t(&[6, 7], DType::U8, 9, &dev);
    for dtype in ALL {
        let (cpu, gpu) = pair_t(&[6, 7], dtype, 10, &dev);
        let what = format!("gather {dtype:?}");
        let got = gpu.gather(1, &idx_gpu).unwrap();
        assert_exact(&what, &got, &cpu.gather(1, &idx_cpu).unwrap());
        let (b_cpu, b_gpu) = pair_t(&[7], dtype, 11, &dev);
        let what = format!("where_cond {dtype:?}");
        let got = cond_gpu.where_cond(&gpu, &b_gpu).unwrap();
        assert_exact(&what, &got, &cond_cpu.where_cond(&cpu, &b_cpu).unwrap());
    }
    for dtype in FLOATS {
        let (base_cpu, base_gpu) = pair_t(&[7, 9], dtype, 12, &dev);
        let (src_cpu, src_gpu) = pair_t(&[6, 9], dtype, 13, &dev);
        let what = format!("scatter_add {dtype:?}");
        let got = base_gpu.scatter_add(0, &idx_gpu, &src_gpu).unwrap();
        let want = base_cpu.scatter_add(0, &idx_cpu, &src_cpu).unwrap();
        assert_exact(&what, &got, &want);
        let (cpu, gpu) = pair_t(&[5, 3], dtype, 14, &dev);
        let (atol, rtol) = tol(dtype);
        assert_close(
            &format!("sin {dtype:?}"),
            &gpu.sin().unwrap(),
            &cpu.sin().unwrap(),
            atol,
            rtol,
        );
        assert_close(
            &format!("cos {dtype:?}"),
            &gpu.cos().unwrap(),
            &cpu.cos().unwrap(),
            atol,
            rtol,
        );
    }
    let bad = Tensor::from_vec(vec![0i64, 9], &[1, 2], &dev).unwrap();
    assert!(idx_gpu
        .to_dtype(DType::F32)
        .unwrap()
        .gather(1, &bad)
        .is_err());
}
