//! `F::linear` against PyTorch (tests/data/linear.safetensors, written by
//! scripts/golden/linear.py), finite differences, and its argument errors.

mod common;

use common::{assert_close, device_test};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Tensor};

/// Every case is `F.linear(x, w, b)`; see the script for the shapes.
fn check_case(name: &str, has_bias: bool, dtype: DType, tol: f64, dev: &Device) {
    common::check_weighted_case("linear", name, has_bias, dtype, tol, dev, |x, w, b| {
        F::linear(x, w, b)
    });
}

device_test! {
    fn golden_2d(dev) {
        // F.linear(x[5,7], w[3,7], b[3])
        check_case("linear_2d", true, DType::F64, 1e-12, dev);
        check_case("linear_2d", true, DType::F32, 1e-5, dev);
    }

    fn golden_3d(dev) {
        // F.linear(x[2,3,7], w[4,7], b[4])
        check_case("linear_3d", true, DType::F64, 1e-12, dev);
        check_case("linear_3d", true, DType::F32, 1e-5, dev);
    }

    fn golden_1d(dev) {
        // F.linear(x[7], w[3,7], b[3])
        check_case("linear_1d", true, DType::F64, 1e-12, dev);
    }

    fn golden_no_bias(dev) {
        // F.linear(x[4,6], w[5,6])
        check_case("linear_nobias", false, DType::F64, 1e-12, dev);
    }
}

fn randn(shape: &[usize]) -> Tensor {
    randn_on(shape, &Device::Cpu)
}

fn randn_on(shape: &[usize], dev: &Device) -> Tensor {
    Tensor::randn(shape, DType::F64, dev).unwrap()
}

#[test]
fn gradcheck_ranks_1_to_3() {
    kiln::manual_seed(5);
    for x_shape in [&[4][..], &[3, 4], &[2, 3, 4]] {
        let inputs = [randn(x_shape), randn(&[5, 4]), randn(&[5])];
        gradcheck(
            |t| F::linear(&t[0], &t[1], Some(&t[2])),
            &inputs,
            GradcheckOpts::default(),
        )
        .unwrap();
        gradcheck(
            |t| F::linear(&t[0], &t[1], None),
            &inputs[..2],
            GradcheckOpts::default(),
        )
        .unwrap();
    }
}

device_test! {
    fn non_contiguous_input(dev) {
        kiln::manual_seed(6);
        let x = randn_on(&[4, 3], dev).requires_grad();
        let w = randn_on(&[2, 4], dev);
        let y = F::linear(&x.transpose(0, 1).unwrap(), &w, None).unwrap();
        let want = x
            .transpose(0, 1)
            .unwrap()
            .matmul(&w.transpose(0, 1).unwrap())
            .unwrap();
        assert_close(&y, &want, dev, 1e-12, 1e-12);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().shape(), &[4, 3]);
    }

    fn zero_in_features_give_the_bias(dev) {
        // PyTorch: F.linear(torch.randn(5, 0), torch.randn(3, 0), b) == b.expand(5, 3)
        let x = Tensor::zeros(&[5, 0], DType::F64, dev).unwrap();
        let w = Tensor::zeros(&[3, 0], DType::F64, dev).unwrap();
        let b = Tensor::from_vec(vec![1.0f64, -2.0, 3.0], &[3], dev).unwrap();
        let y = F::linear(&x, &w, Some(&b)).unwrap();
        assert_close(&y, &b.broadcast_as(&[5, 3]).unwrap(), dev, 0.0, 0.0);
    }
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn argument_errors() {
    let w = randn(&[3, 4]);
    assert_eq!(
        arg_name(F::linear(&randn(&[2, 5]), &w, None).unwrap_err()),
        "input"
    );
    let scalar = Tensor::scalar(1.0f64, &Device::Cpu).unwrap();
    assert_eq!(arg_name(F::linear(&scalar, &w, None).unwrap_err()), "input");
    assert_eq!(
        arg_name(F::linear(&randn(&[2, 4]), &randn(&[3, 4, 1]), None).unwrap_err()),
        "weight"
    );
    assert_eq!(
        arg_name(F::linear(&randn(&[2, 4]), &w, Some(&randn(&[4]))).unwrap_err()),
        "bias"
    );
    let w32 = w.to_dtype(DType::F32).unwrap();
    let e = F::linear(&randn(&[2, 4]), &w32, None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "linear weight",
                ..
            }
        ),
        "{e:?}"
    );
    let b32 = randn(&[3]).to_dtype(DType::F32).unwrap();
    let e = F::linear(&randn(&[2, 4]), &w, Some(&b32)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "linear bias",
                ..
            }
        ),
        "{e:?}"
    );
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The matmul kernels on every float dtype, odd, batched and transposed operands
/// against the CPU backend, the tensor-core GEMM against the exact product
/// (tests/common/parity.rs), and the check that these tests launch every kernel of
/// kernels/matmul.cu.
mod cuda_parity {
    use crate::common::host;
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, pair_t, values, FLOATS,
    };
    use kiln::{DType, Tensor};

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
                let what = |layout: &str| {
                    format!("{dtype:?} ({batch}, {m}x{k}) · ({bb}, {k}x{n}), {layout}")
                };
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

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/matmul.cu.
    #[test]
    fn every_matmul_kernel_is_launched() {
        // Launched elsewhere: the tiled f16/bf16 GEMMs serve only GPUs below compute
        // capability 8.0 (a unit test in src/backend/cuda/ops/matmul.rs runs them), and the
        // TF32 GEMM only under the process-wide `kiln::cuda::set_matmul_allow_tf32(true)`,
        // which would race with this binary's exact f32 tests (src/backend/cuda/ops/
        // matmul_tf32_tests.rs and tests/vendor_gemm.rs, serialised, turn it on).
        let elsewhere = ["gemm_f16", "gemm_bf16", "gemm_tc_tf32"];
        let suite: [fn(); 2] = [
            matmul_matches_the_cpu_for_odd_batched_and_transposed_operands,
            tensor_core_matmul_is_exact_up_to_f32_accumulation,
        ];
        assert_every_kernel_launched("matmul", &suite, &elsewhere);
    }
}
