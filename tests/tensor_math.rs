//! The elementwise math functions (`floor`, `ceil`, `round`, `trunc`, `sign`, `erf`,
//! `log1p`, `expm1`, `reciprocal`, `square`, `exp2`, `log2`, `atan2`) against PyTorch
//! on every device, f64 gradchecks, errors, and the CUDA kernels against the CPU
//! backend in every dtype.
//!
//! The fixture is written by `scripts/golden/tensor_math.py`; the PyTorch expression of
//! each case is the comment above it here and above its `case(...)` line there. `a`,
//! `b` are the case's inputs `in0`, `in1`; views are taken inside the op.

mod common;

use common::rng::{unit, Xorshift};
use common::{golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{DType, Device, Error, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("tensor_math"))
}

golden_cases! {
    // a (14 edge values).floor()
    floor_edges(1) => |x| x[0].floor();
    // a.ceil()
    ceil_edges(1) => |x| x[0].ceil();
    // a.round()   (halves to even)
    round_edges(1) => |x| x[0].round();
    // a.trunc()
    trunc_edges(1) => |x| x[0].trunc();
    // a.sign()   (0 for +-0 and NaN)
    sign_edges(1) => |x| x[0].sign();
    // a (float32 edge values).round()
    round_f32(1) => |x| x[0].round();
    // a (5,3).t().floor()
    floor_transposed(1) => |x| x[0].transpose(0, 1)?.floor();
    // a (0,3).ceil()
    ceil_empty(1) => |x| x[0].ceil();
    // a (7,) int64 .floor()
    floor_i64(1) => |x| x[0].floor();
    // a (5,) uint8 .round()
    round_u8(1) => |x| x[0].round();
    // a (7,) int64 .sign()
    sign_i64(1) => |x| x[0].sign();
    // a (4,) uint8 .sign()
    sign_u8(1) => |x| x[0].sign();
    // a (3,7) in N(0, 2) plus edges: a.erf()
    erf(1) => |x| x[0].erf();
    // a (4,5) float32 .erf()
    erf_f32(1) => |x| x[0].erf();
    // a (tiny, moderate, -1, below -1, inf).log1p()
    log1p(1) => |x| x[0].log1p();
    // a (3,4) float32 in [0.1, 1.6) .log1p()
    log1p_f32(1) => |x| x[0].log1p();
    // a (tiny, moderate, large, +-inf).expm1()
    expm1(1) => |x| x[0].expm1();
    // a (4,3) float32 .t().expm1()
    expm1_f32_transposed(1) => |x| x[0].transpose(0, 1)?.expm1();
    // a (normal values, +-0, +-inf).reciprocal()
    reciprocal(1) => |x| x[0].reciprocal();
    // a (2,5) float32 in [0.5, 2) .reciprocal()
    reciprocal_f32(1) => |x| x[0].reciprocal();
    // a (3,5).square()
    square(1) => |x| x[0].square();
    // a (6,) int64 .square()   (wraps past 2^63)
    square_i64(1) => |x| x[0].square();
    // a (4,) uint8 .square()   (wraps modulo 256)
    square_u8(1) => |x| x[0].square();
    // a (7,) plus edges .exp2()
    exp2(1) => |x| x[0].exp2();
    // a (3,3) float32 .exp2()
    exp2_f32(1) => |x| x[0].exp2();
    // a positive plus edges .log2()
    log2(1) => |x| x[0].log2();
    // a (2,0).log2()
    log2_empty(1) => |x| x[0].log2();
    // torch.atan2(a (3,1), b (1,4))
    atan2_bcast(2) => |x| x[0].atan2(&x[1]);
    // torch.atan2(a, b) on the signed zeros, the origin and infinities
    atan2_edges(2) => |x| x[0].atan2(&x[1]);
    // torch.atan2(a (3,5) float32 .t(), b (5,3) float32)
    atan2_f32_transposed(2) => |x| x[0].transpose(0, 1)?.atan2(&x[1]);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("tensor_math"), tested);
}

/// The unary functions by name, for the gradchecks and the parity sweep.
type Unary = fn(&Tensor) -> kiln::Result<Tensor>;
const UNARY: [(&str, Unary); 12] = [
    ("floor", Tensor::floor),
    ("ceil", Tensor::ceil),
    ("round", Tensor::round),
    ("trunc", Tensor::trunc),
    ("sign", Tensor::sign),
    ("erf", Tensor::erf),
    ("log1p", Tensor::log1p),
    ("expm1", Tensor::expm1),
    ("reciprocal", Tensor::reciprocal),
    ("square", Tensor::square),
    ("exp2", Tensor::exp2),
    ("log2", Tensor::log2),
];

/// The functions integers take (the rest are float-only, an `Err` on integers).
const INTEGER_OK: [&str; 6] = ["floor", "ceil", "round", "trunc", "sign", "square"];

/// Deterministic f64 values in ±[0.1, 2) whose fractional parts lie in [0.1, 0.4) or
/// [0.6, 0.9), so that finite differences never cross a step of floor, ceil, round or
/// trunc.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xorshift::new(seed);
    (0..n)
        .map(|_| {
            let s = rng.next_bits();
            let u = unit(s);
            let (whole, half) = ((s >> 1) & 1, (s >> 2) & 1);
            let v = whole as f64 + 0.1 + 0.3 * u + 0.5 * half as f64;
            if s & 1 == 0 {
                v
            } else {
                -v
            }
        })
        .collect()
}

fn f64s(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    Tensor::from_vec(values(shape.iter().product(), seed), shape, dev).unwrap()
}

common::device_test! {
    /// Finite differences agree with every gradient, on a strided view; log1p and
    /// log2 on inputs inside their domains, atan2 broadcasting both ways.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let x = f64s(&[5, 3], 1, dev).transpose(0, 1).unwrap().requires_grad();
        let positive = x.abs().unwrap().detach().requires_grad();
        for (name, op) in UNARY {
            let input = if name.starts_with("log") { &positive } else { &x };
            gradcheck(|t| op(&t[0]), std::slice::from_ref(input), opts())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let a = f64s(&[3, 1], 2, dev).requires_grad();
        let b = f64s(&[1, 4], 3, dev).requires_grad();
        gradcheck(|t| t[0].atan2(&t[1]), &[a, b], opts()).unwrap();
    }

    /// Float-only functions refuse integers with an `Err` naming the op; atan2 names
    /// itself on shapes that do not broadcast; empty inputs give empty results.
    fn errors_and_edges(dev) {
        let ints = Tensor::from_vec(vec![-2i64, 0, 3], &[3], dev).unwrap();
        for (name, op) in UNARY {
            let r = op(&ints);
            if INTEGER_OK.contains(&name) {
                assert_eq!(r.unwrap().dtype(), DType::I64, "{name}");
            } else {
                let ok = matches!(&r, Err(Error::UnsupportedDType { op, dtype: DType::I64 }) if *op == name);
                assert!(ok, "{name}: {r:?}");
            }
        }
        let r = ints.atan2(&ints);
        assert!(matches!(&r, Err(Error::UnsupportedDType { op: "atan2", .. })), "{r:?}");
        let (a, b) = (f64s(&[2, 3], 4, dev), f64s(&[4], 5, dev));
        let r = a.atan2(&b);
        assert!(r.as_ref().is_err_and(|e| e.to_string().contains("atan2")), "{r:?}");
        let e = f64s(&[0, 4], 6, dev).requires_grad();
        let y = e.atan2(&f64s(&[1, 4], 7, dev)).unwrap().expm1().unwrap();
        assert_eq!(y.shape(), &[0, 4]);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(e.grad().unwrap().shape(), &[0, 4]);
    }

    /// Under autocast, PyTorch's fp32 list (log1p, expm1, reciprocal, log2) computes
    /// in f32, atan2 promotes to its widest input, the rest keep their dtype.
    fn autocast_follows_pytorch_op_lists(dev) {
        let x = f64s(&[2, 3], 8, dev).abs().unwrap().to_dtype(DType::BF16).unwrap();
        let c = f64s(&[2, 3], 9, dev).to_dtype(DType::F32).unwrap();
        let _ac = kiln::autocast(DType::BF16).unwrap();
        for (name, op) in UNARY {
            let fp32 = ["log1p", "expm1", "reciprocal", "log2"].contains(&name);
            let want = if fp32 { DType::F32 } else { DType::BF16 };
            assert_eq!(op(&x).unwrap().dtype(), want, "{name}");
        }
        let y = x.atan2(&c).unwrap();
        assert_eq!(y.dtype(), DType::F32, "bf16 atan2 f32 promotes");
        let want = {
            let _off = kiln::autocast_off();
            x.to_dtype(DType::F32).unwrap().atan2(&c).unwrap()
        };
        common::assert_close(&y, &want, dev, 0.0, 0.0);
    }
}

/// Whether `got` (CUDA) agrees with `want` (CPU backend) for `dtype`: integers exactly,
/// floats within a few ulps of libm's differences (halves: a rounding of their own).
fn agree(got: &Tensor, want: &Tensor, dtype: DType) -> bool {
    let tol = match dtype {
        DType::F64 => 1e-14,
        DType::F32 => 1e-6,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        DType::I64 | DType::U8 => 0.0,
    };
    let same = |a: f64, b: f64| {
        a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * (1.0 + b.abs())
    };
    got.dtype() == want.dtype()
        && got.shape() == want.shape()
        && host(got)
            .into_iter()
            .zip(host(want))
            .all(|(a, b)| same(a, b))
}

/// The CUDA kernels against the CPU backend in every dtype: every function, forward
/// and backward, on an odd-sized strided view holding halves, zeros and values whose
/// logarithms are NaN; atan2 broadcasting; float-only functions refuse integers on
/// both devices alike.
#[test]
fn cuda_math_matches_the_cpu_in_every_dtype() {
    let Some(gpu) = common::cuda_or_skip("cuda_math_matches_the_cpu_in_every_dtype") else {
        return;
    };
    let mut v = values(7 * 13, 8);
    v[..6].copy_from_slice(&[0.0, -0.0, 0.5, -1.5, 2.5, -1.0]);
    let base = Tensor::from_vec(v, &[7, 13], &Device::Cpu).unwrap();
    let dtypes = [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::U8,
    ];
    for dtype in dtypes {
        // U8 holds the magnitudes, I64 the signed values scaled to whole numbers.
        let x = match dtype {
            DType::U8 => base
                .abs()
                .unwrap()
                .mul_scalar(40.0)
                .unwrap()
                .to_dtype(dtype),
            DType::I64 => base.mul_scalar(40.0).unwrap().to_dtype(dtype),
            _ => base.to_dtype(dtype),
        };
        let x = x.unwrap().transpose(0, 1).unwrap();
        let x_gpu = x.to_device(&gpu).unwrap();
        for (name, op) in UNARY {
            let (want, got) = (op(&x), op(&x_gpu));
            if !dtype.is_float() && !INTEGER_OK.contains(&name) {
                assert!(want.is_err() && got.is_err(), "{name} {dtype:?}");
                continue;
            }
            let (want, got) = (want.unwrap(), got.unwrap());
            assert_eq!(got.device(), gpu, "{name} {dtype:?}");
            assert!(agree(&got, &want, dtype), "{name} {dtype:?}");
            if dtype.is_float() {
                let grads = [&x, &x_gpu].map(|t| {
                    let leaf = t.detach().requires_grad();
                    op(&leaf).unwrap().sum_all().unwrap().backward().unwrap();
                    leaf.grad().unwrap()
                });
                assert!(agree(&grads[1], &grads[0], dtype), "{name} {dtype:?} grad");
            }
        }
        let y = x.narrow(0, 0, 1).unwrap();
        let (want, got) = (x.atan2(&y), x_gpu.atan2(&y.to_device(&gpu).unwrap()));
        if dtype.is_float() {
            assert!(
                agree(&got.unwrap(), &want.unwrap(), dtype),
                "atan2 {dtype:?}"
            );
        } else {
            assert!(want.is_err() && got.is_err(), "atan2 {dtype:?}");
        }
    }
}

/// On the emulated device, the sweep above launches the unary kernel of every dtype
/// and the binary kernel (atan2) of every float dtype.
#[test]
fn every_math_kernel_is_launched() {
    if common::launches("unary_f32").is_none() {
        eprintln!("skipped: launch counts exist only on the emulated device");
        return;
    }
    cuda_math_matches_the_cpu_in_every_dtype();
    let unary = ["f32", "f64", "f16", "bf16", "i64", "u8"].map(|d| format!("unary_{d}"));
    let binary = ["f32", "f64", "f16", "bf16"].map(|d| format!("binary_{d}"));
    for kernel in unary.iter().chain(&binary) {
        assert!(common::launches(kernel).unwrap() > 0, "{kernel} never ran");
    }
}
