//! The GEMM backends (issue 13): the TF32 switches, the choice of GEMM
//! (`KILN_CUDA_GEMM`, `kiln::cuda::set_gemm_backend`, `gemm_backend`'s reason), matmul
//! over every operand layout on the device against the CPU, and `F::linear_act` (the
//! fused linear + bias + activation) against the unfused composition, forward and
//! backward, on every device.
//!
//! On the CPU and the emulated device the vendor path is absent, so these tests check
//! the fallback; on a GPU, `scripts/gpu-check.sh` runs them with `KILN_CUDA_GEMM=kiln`
//! and `=vendor`, and the layout and epilogue tests then check cuBLASLt's results.

mod common;

use common::{assert_close, assert_values, device_test};
use kiln::cuda::{GemmBackend, GemmChoice};
use kiln::nn::functional::{self as F, LinearAct};
use kiln::{DType, Device, Tensor};
use std::sync::{Mutex, MutexGuard};

/// The TF32 switch and the GEMM choice are process-wide: tests that set them, or whose
/// results depend on them, run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn tf32_switches_default_like_pytorch_and_round_trip() {
    let _s = serial();
    // The conv switch's default and round trip are tests/conv_tf32.rs's: here
    // `common::cuda_or_skip`, called by parallel tests, switches it off.
    assert!(
        !kiln::cuda::matmul_allow_tf32(),
        "matmul TF32 is off by default"
    );
    kiln::cuda::set_matmul_allow_tf32(true);
    assert!(kiln::cuda::matmul_allow_tf32());
    kiln::cuda::set_matmul_allow_tf32(false);
    assert!(!kiln::cuda::matmul_allow_tf32());
}

#[test]
fn gemm_choices_parse_from_the_environment_spelling() {
    assert_eq!(GemmChoice::parse("kiln"), Some(GemmChoice::Kiln));
    assert_eq!(GemmChoice::parse(" Vendor "), Some(GemmChoice::Vendor));
    assert_eq!(GemmChoice::parse("cublaslt"), Some(GemmChoice::Vendor));
    assert_eq!(GemmChoice::parse("AUTO"), Some(GemmChoice::Auto));
    assert_eq!(GemmChoice::parse("cudnn"), None);
    assert_eq!(GemmChoice::default(), GemmChoice::Auto);
}

#[test]
fn gemm_backends_display_the_library_or_the_reason() {
    let lt = GemmBackend::CublasLt {
        major: 13,
        minor: 0,
    };
    assert_eq!(lt.to_string(), "cuBLASLt 13.0");
    assert!(lt.is_vendor());
    let own = GemmBackend::Kiln {
        reason: "libcublasLt not found".into(),
    };
    assert_eq!(own.to_string(), "kiln (libcublasLt not found)");
    assert!(!own.is_vendor());
}

#[test]
fn without_a_device_the_gemm_queries_are_errors_not_panics() {
    // An ordinal no machine has: an Err whatever the machine (no driver, no GPU, the
    // emulator's single device), never a panic.
    assert!(kiln::cuda::gemm_backend(1 << 20).is_err());
    assert!(kiln::cuda::set_gemm_backend(1 << 20, GemmChoice::Kiln).is_err());
}

/// The value of `KILN_CUDA_GEMM` this process runs with, if valid.
fn env_choice() -> Option<GemmChoice> {
    std::env::var("KILN_CUDA_GEMM")
        .ok()
        .and_then(|v| GemmChoice::parse(&v))
}

#[test]
fn gemm_backend_names_the_backend_and_why() {
    let _s = serial();
    let Some(_dev) = common::cuda_or_skip("gemm_backend_names_the_backend_and_why") else {
        return;
    };
    let g = kiln::cuda::gemm_backend(0).unwrap();
    println!("GEMM on device 0: {g}");
    if kiln::cuda::is_emulated() {
        let GemmBackend::Kiln { reason } = &g else {
            panic!("the emulated device took the vendor path: {g}")
        };
        assert!(reason.contains("emulated"), "{reason}");
    } else if env_choice() == Some(GemmChoice::Kiln) {
        assert_eq!(g.to_string(), "kiln (KILN_CUDA_GEMM=kiln)");
    } else if env_choice() == Some(GemmChoice::Vendor) {
        // gpu-check.sh puts cuBLASLt on the library path: the vendor pass must use it.
        assert!(g.is_vendor(), "KILN_CUDA_GEMM=vendor on a GPU, yet {g}");
    }
}

#[test]
fn choosing_the_gemm_from_code_round_trips_and_refuses_an_absent_vendor() {
    let _s = serial();
    let Some(_dev) = common::cuda_or_skip("choosing_the_gemm_from_code") else {
        return;
    };
    let before = kiln::cuda::gemm_backend(0).unwrap();
    kiln::cuda::set_gemm_backend(0, GemmChoice::Kiln).unwrap();
    assert_eq!(
        kiln::cuda::gemm_backend(0).unwrap().to_string(),
        "kiln (set_gemm_backend(Kiln))"
    );
    match kiln::cuda::set_gemm_backend(0, GemmChoice::Vendor) {
        Ok(()) => assert!(kiln::cuda::gemm_backend(0).unwrap().is_vendor()),
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("Vendor") && msg.contains("not usable"),
                "{msg}"
            );
            if kiln::cuda::is_emulated() {
                assert!(msg.contains("emulated"), "{msg}");
            }
            // A refused choice leaves the previous one in force.
            assert!(!kiln::cuda::gemm_backend(0).unwrap().is_vendor());
        }
    }
    // Back to what the environment asked for.
    kiln::cuda::set_gemm_backend(0, env_choice().unwrap_or_default()).unwrap();
    assert_eq!(
        kiln::cuda::gemm_backend(0).unwrap().is_vendor(),
        before.is_vendor()
    );
}

/// Runs this test binary's `environment_child` with `KILN_CUDA_GEMM=value`: the
/// variable is read when a device's GEMM state is first made, so it needs a fresh
/// process.
fn child_with_env(value: &str, expect: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "environment_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KILN_CUDA_GEMM", value)
        .env("KILN_GEMM_CHILD_EXPECT", expect)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child with KILN_CUDA_GEMM={value}: {text}"
    );
    assert!(text.contains("1 passed"), "the child ran: {text}");
}

#[test]
fn the_environment_switch_falls_back_with_its_reason() {
    if kiln::cuda::is_emulated() {
        child_with_env("vendor", "KILN_CUDA_GEMM=vendor, but the emulated device");
        child_with_env("kiln", "KILN_CUDA_GEMM=kiln");
        child_with_env(
            "bogus",
            "KILN_CUDA_GEMM=\"bogus\" is not kiln, vendor or auto",
        );
    } else if common::cuda_or_skip("the_environment_switch").is_some() {
        child_with_env("kiln", "KILN_CUDA_GEMM=kiln");
    }
}

/// The child of [`the_environment_switch_falls_back_with_its_reason`]: a no-op unless
/// that test started it.
#[test]
fn environment_child() {
    let Ok(expect) = std::env::var("KILN_GEMM_CHILD_EXPECT") else {
        return;
    };
    let g = kiln::cuda::gemm_backend(0).unwrap();
    assert!(
        !g.is_vendor() && g.to_string().contains(&expect),
        "{g} should say {expect:?}"
    );
    // And the fallback computes.
    let dev = Device::cuda(0).unwrap();
    let a = Tensor::from_vec(vec![1f32, 2., 3., 4.], &[2, 2], &dev).unwrap();
    let p = a.matmul(&a).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(p, vec![7., 10., 15., 22.]);
}

/// Operand views of a (batch, rows, cols) matrix stack: contiguous, a transposed view,
/// a slice of a wider matrix, a transposed slice, and (batch > 1) a broadcast batch.
fn views(base: &Tensor, rows: usize, cols: usize) -> Vec<(&'static str, Tensor)> {
    let b = base.shape()[0];
    let wide = Tensor::cat(&[base, base], 2).unwrap();
    let mut v = vec![
        ("contiguous", base.clone()),
        (
            "transposed",
            base.transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
                .transpose(1, 2)
                .unwrap(),
        ),
        ("slice", wide.narrow(2, 1, cols).unwrap()),
        (
            "transposed slice",
            Tensor::cat(&[base, base], 1)
                .unwrap()
                .transpose(1, 2)
                .unwrap()
                .contiguous()
                .unwrap()
                .narrow(2, 1, rows)
                .unwrap()
                .transpose(1, 2)
                .unwrap(),
        ),
    ];
    if b > 1 {
        let one = base.narrow(0, 0, 1).unwrap();
        v.push((
            "broadcast batch",
            one.broadcast_as(&[b, rows, cols]).unwrap(),
        ));
    }
    v
}

device_test! {
    /// Every operand layout × dtype: the device's product equals the CPU's. On a GPU
    /// this is where the vendor path's transpose flags, leading dimensions and batch
    /// strides are checked.
    fn matmul_every_layout_matches_the_cpu(dev) {
        let _s = serial();
        kiln::manual_seed(13);
        for (batch, m, n, k) in [(1, 9, 7, 5), (3, 17, 33, 12), (2, 1, 6, 4), (2, 5, 1, 3)] {
            let a = Tensor::randn(&[batch, m, k], DType::F64, &Device::Cpu).unwrap();
            let b = Tensor::randn(&[batch, k, n], DType::F64, &Device::Cpu).unwrap();
            for dtype in [DType::F64, DType::F32, DType::F16, DType::BF16] {
                let (ad, bd) = (
                    a.to_dtype(dtype).unwrap().to_device(dev).unwrap(),
                    b.to_dtype(dtype).unwrap().to_device(dev).unwrap(),
                );
                let tol: f64 = match dtype {
                    DType::F64 => 1e-12,
                    DType::F32 => 1e-5,
                    _ => 0.0,
                };
                for (an, av) in views(&ad, m, k) {
                    for (bn, bv) in views(&bd, k, n) {
                        let got = av.matmul(&bv).unwrap();
                        let want = av
                            .to_device(&Device::Cpu)
                            .unwrap()
                            .matmul(&bv.to_device(&Device::Cpu).unwrap())
                            .unwrap();
                        let what = format!("{dtype:?} {an} · {bn} ({batch}, {m}, {n}, {k})");
                        assert_eq!(got.device(), *dev, "{what}");
                        let (datol, drtol) = common::device_tol(dtype, dev);
                        assert_values(&what, &got, &want, tol.max(datol), tol.max(drtol));
                    }
                }
            }
        }
    }

    /// With TF32 allowed, f32 products stay within TF32's rounding (2^-11 relative per
    /// product term) of the exact ones; with it off (the default) they are exact f32.
    fn matmul_with_tf32_allowed_stays_close(dev) {
        let _s = serial();
        kiln::manual_seed(14);
        let a = Tensor::randn(&[64, 96], DType::F32, dev).unwrap();
        let b = Tensor::randn(&[96, 48], DType::F32, dev).unwrap();
        let exact = a.to_dtype(DType::F64).unwrap().matmul(&b.to_dtype(DType::F64).unwrap()).unwrap();
        kiln::cuda::set_matmul_allow_tf32(true);
        let fast = a.matmul(&b);
        kiln::cuda::set_matmul_allow_tf32(false);
        // |error| ≤ k · 2^-10 · max|a·b| ≈ 96 · 1e-3 · a few: 0.5 absolute is generous
        // for TF32 and far below the size of a wrong result.
        assert_values("tf32", &fast.unwrap(), &exact, 0.5, 2e-2);
        assert_close(&a.matmul(&b).unwrap(), &exact.to_dtype(DType::F32).unwrap(), dev, 1e-4, 1e-5);
    }

    /// The switch reaches the GEMM: with TF32 allowed, every f32 element is within
    /// TF32's bound of the exact product (inputs rounded to 10 mantissa bits, f32
    /// accumulation) and on a device some element is outside f32's, so the inputs
    /// really were rounded; the CPU ignores the switch, as PyTorch's CPU matmul does.
    fn tf32_switch_rounds_the_inputs_of_f32_products_on_the_device(dev) {
        let _s = serial();
        kiln::manual_seed(16);
        let (m, k, n) = (96, 160, 80);
        let a = Tensor::randn(&[m, k], DType::F32, dev).unwrap();
        let b = Tensor::randn(&[k, n], DType::F32, dev).unwrap();
        let exact_f32 = a.matmul(&b).unwrap().to_vec::<f32>().unwrap();
        kiln::cuda::set_matmul_allow_tf32(true);
        let fast = a.matmul(&b).and_then(|c| c.to_vec::<f32>());
        kiln::cuda::set_matmul_allow_tf32(false);
        let fast = fast.unwrap();
        if dev.is_cpu() {
            assert_eq!(fast, exact_f32, "the CPU ignores the TF32 switch");
            return;
        }
        let (ha, hb) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        let mut outside_f32 = 0;
        for i in 0..m {
            for j in 0..n {
                let (mut exact, mut size) = (0f64, 0f64);
                for kk in 0..k {
                    let p = ha[i * k + kk] as f64 * hb[kk * n + j] as f64;
                    exact += p;
                    size += p.abs();
                }
                let f32_bound = (k + 2) as f64 * 2f64.powi(-23) * size;
                let err = (fast[i * n + j] as f64 - exact).abs();
                assert!(
                    err <= f32_bound + 2f64.powi(-10) * size,
                    "element ({i}, {j}): error {err:e} beyond TF32's bound"
                );
                outside_f32 += usize::from(err > f32_bound);
            }
        }
        assert!(outside_f32 > 100, "only {outside_f32} elements show TF32 rounding: was the switch ignored?");
    }

    /// `linear_act` = the activation of `linear`, for each activation, with and without
    /// bias, 2-D and 3-D inputs, with no graph (the fully fused path on cuBLASLt).
    fn linear_act_forward_equals_the_unfused_ops(dev) {
        let _s = serial();
        kiln::manual_seed(15);
        for dtype in [DType::F64, DType::F32, DType::BF16] {
            let w = Tensor::randn(&[11, 13], dtype, dev).unwrap();
            let b = Tensor::randn(&[11], dtype, dev).unwrap();
            for x_shape in [&[7, 13][..], &[2, 5, 13]] {
                let x = Tensor::randn(x_shape, dtype, dev).unwrap();
                for act in [LinearAct::Relu, LinearAct::Gelu, LinearAct::GeluTanh] {
                    for bias in [Some(&b), None] {
                        let _g = kiln::no_grad();
                        let got = F::linear_act(&x, &w, bias, act).unwrap();
                        let y = F::linear(&x, &w, bias).unwrap();
                        let want = match act {
                            LinearAct::Relu => F::relu(&y),
                            LinearAct::Gelu => F::gelu(&y),
                            LinearAct::GeluTanh => F::gelu_tanh(&y),
                        }
                        .unwrap();
                        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-6 };
                        assert_close(&got, &want, dev, tol, tol);
                        if dev.is_cpu() {
                            assert_values("cpu composes exactly", &got, &want, 0.0, 0.0);
                        }
                    }
                }
            }
        }
    }

    /// f32 products large enough for kiln's 128x128 kernel, (40, 600)·(600, 90) split
    /// over k on any device: `linear` and `linear_act` — bias and activation in that
    /// kernel's epilogue on kiln's GEMM — equal the unfused ops bit for bit for the bias
    /// and ReLU (one f32 add, an exact max, the same partial sums) and within 1e-6 for
    /// tanh-GELU (the same formula, contracted to FMAs as the compiler sees fit), and
    /// stay close on cuBLASLt.
    fn linear_act_on_large_f32_products_equals_the_unfused_ops(dev) {
        let _s = serial();
        kiln::manual_seed(18);
        let exact = dev.is_cpu() || !kiln::cuda::gemm_backend(0).unwrap().is_vendor();
        for (rows, in_f, out_f) in [(300, 72, 260), (40, 600, 90)] {
            let x = Tensor::randn(&[rows, in_f], DType::F32, dev).unwrap();
            let w = Tensor::randn(&[out_f, in_f], DType::F32, dev).unwrap();
            let b = Tensor::randn(&[out_f], DType::F32, dev).unwrap();
            let _g = kiln::no_grad();
            let xw = x.matmul(&w.transpose(0, 1).unwrap()).unwrap();
            let y = xw.add(&b).unwrap();
            let relu = |t: &Tensor| F::relu(t).unwrap();
            let act = |bias, act| F::linear_act(&x, &w, bias, act).unwrap();
            let fused = [
                ("linear", F::linear(&x, &w, Some(&b)).unwrap(), y.clone()),
                ("relu", act(Some(&b), LinearAct::Relu), relu(&y)),
                ("relu, no bias", act(None, LinearAct::Relu), relu(&xw)),
                ("gelu_tanh", act(Some(&b), LinearAct::GeluTanh), F::gelu_tanh(&y).unwrap()),
            ];
            for (what, got, want) in fused {
                let what = format!("{what} ({rows}, {in_f}, {out_f})");
                let tol = match (exact, what.starts_with("gelu")) {
                    (true, false) => 0.0,
                    (true, true) => 1e-6,
                    (false, _) => 1e-5,
                };
                assert_values(&what, &got, &want, tol, tol);
            }
        }
    }

    /// Forward and backward of `linear_act` against the unfused ops: the output and the
    /// gradients of the input, the weight and the bias.
    fn linear_act_backward_equals_the_unfused_ops(dev) {
        let _s = serial();
        kiln::manual_seed(16);
        for act in [LinearAct::Relu, LinearAct::Gelu, LinearAct::GeluTanh] {
            let leaf = |shape: &[usize]| {
                Tensor::randn(shape, DType::F64, dev).unwrap().requires_grad()
            };
            let (x, w, b) = (leaf(&[3, 4, 9]), leaf(&[6, 9]), leaf(&[6]));
            let gy = Tensor::randn(&[3, 4, 6], DType::F64, dev).unwrap();
            let run = |fused: bool| {
                for t in [&x, &w, &b] {
                    t.zero_grad();
                }
                let y = if fused {
                    F::linear_act(&x, &w, Some(&b), act).unwrap()
                } else {
                    let y = F::linear(&x, &w, Some(&b)).unwrap();
                    match act {
                        LinearAct::Relu => F::relu(&y),
                        LinearAct::Gelu => F::gelu(&y),
                        LinearAct::GeluTanh => F::gelu_tanh(&y),
                    }
                    .unwrap()
                };
                y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
                let grads: Vec<Tensor> = [&x, &w, &b].iter().map(|t| t.grad().unwrap()).collect();
                (y.detach(), grads)
            };
            let (y1, g1) = run(true);
            let (y0, g0) = run(false);
            assert_close(&y1, &y0, dev, 1e-12, 1e-12);
            for (name, (a, e)) in ["x", "w", "b"].iter().zip(g1.iter().zip(&g0)) {
                assert_eq!(a.shape(), e.shape(), "grad {name}");
                assert_close(a, e, dev, 1e-12, 1e-12);
            }
            // The gradients are not trivially zero: the test could fail.
            assert!(common::host(&g1[1]).iter().any(|v| v.abs() > 1e-3));
        }
    }

    /// `linear`'s weight and bias gradients (one fused GEMM with cuBLASLt's BGRADB
    /// epilogue on a GPU) equal `gᵀ·x` by a plain matmul and `g` summed over the rows
    /// by a reduction, in each float dtype.
    fn linear_weight_and_bias_grads_equal_the_plain_ops(dev) {
        let _s = serial();
        kiln::manual_seed(17);
        for dtype in [DType::F64, DType::F32, DType::BF16] {
            let x = Tensor::randn(&[5, 3, 9], dtype, dev).unwrap();
            let w = Tensor::randn(&[6, 9], dtype, dev).unwrap().requires_grad();
            let b = Tensor::randn(&[6], dtype, dev).unwrap().requires_grad();
            let gy = Tensor::randn(&[5, 3, 6], dtype, dev).unwrap();
            let y = F::linear(&x, &w, Some(&b)).unwrap();
            y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
            let g2 = gy.reshape(&[15, 6]).unwrap();
            let want_w = g2
                .transpose(0, 1)
                .unwrap()
                .matmul(&x.reshape(&[15, 9]).unwrap())
                .unwrap();
            let want_b = g2.sum(0, false).unwrap();
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            assert_close(&w.grad().unwrap(), &want_w, dev, tol, tol);
            assert_close(&b.grad().unwrap(), &want_b, dev, tol, tol);
        }
    }

    /// `linear_act` rejects what `linear` rejects, with the same argument names, with
    /// and without a graph (the fused path validates before it runs).
    fn linear_act_bad_arguments_are_errors(dev) {
        let _s = serial();
        let x = Tensor::randn(&[4, 5], DType::F32, dev).unwrap();
        let w = Tensor::randn(&[3, 5], DType::F32, dev).unwrap();
        let bad_w = Tensor::randn(&[3, 6], DType::F32, dev).unwrap();
        let bad_b = Tensor::randn(&[4], DType::F32, dev).unwrap();
        let w64 = Tensor::randn(&[3, 5], DType::F64, dev).unwrap();
        for grad in [true, false] {
            let _g = (!grad).then(kiln::no_grad);
            for (what, r) in [
                ("in_features", F::linear_act(&x, &bad_w, None, LinearAct::Relu)),
                ("bias", F::linear_act(&x, &w, Some(&bad_b), LinearAct::GeluTanh)),
                ("dtype", F::linear_act(&x, &w64, None, LinearAct::Relu)),
            ] {
                let e = r.expect_err(what);
                let want = match what {
                    "in_features" => F::linear(&x, &bad_w, None).unwrap_err(),
                    "bias" => F::linear(&x, &w, Some(&bad_b)).unwrap_err(),
                    _ => F::linear(&x, &w64, None).unwrap_err(),
                };
                assert_eq!(e.to_string(), want.to_string());
            }
        }
    }

    /// A GEMM allocates nothing that outlives it: its workspace (cuBLASLt) comes from
    /// the caching allocator and goes back, so allocated bytes return to where they were.
    fn gemm_memory_is_the_allocators(dev) {
        let _s = serial();
        let a = Tensor::randn(&[256, 256], DType::F32, dev).unwrap();
        let before = dev.is_cuda().then(|| kiln::cuda::memory_stats(0).unwrap());
        {
            let p = a.matmul(&a).unwrap();
            let _ = F::linear_act(&a, &a, Some(&a.narrow(0, 0, 1).unwrap().reshape(&[256]).unwrap()), LinearAct::Relu).unwrap();
            assert_eq!(p.shape(), &[256, 256]);
        }
        if let Some(before) = before {
            kiln::cuda::synchronize(0).unwrap();
            let after = kiln::cuda::memory_stats(0).unwrap();
            assert_eq!(after.allocated_bytes.current, before.allocated_bytes.current);
        }
    }
}
