//! `cumsum` and `cumprod` (the scan family) against PyTorch on every device, f64
//! gradchecks (lines with zeros included), errors, and the CUDA kernels against the
//! CPU backend in every dtype.
//!
//! The fixture is written by `scripts/golden/scan.py`; the PyTorch expression of each
//! case is the comment above it here and above its `case(...)` line there. `a` is the
//! case's input `in0`; views are taken inside the op.

mod common;

use common::rng::signed_away_from_zero;
use common::{golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{Device, Error, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("scan"))
}

golden_cases! {
    // a (4,5).cumsum(0)
    cumsum_d0(1) => |x| x[0].cumsum(0);
    // a (2,6,3).cumsum(1)
    cumsum_d1_3d(1) => |x| x[0].cumsum(1);
    // a (5,4).t().cumsum(1)
    cumsum_last_transposed(1) => |x| x[0].transpose(0, 1)?.cumsum(1);
    // a (3,7).cumsum(1), float32
    cumsum_f32(1) => |x| x[0].cumsum(1);
    // a (0,3).cumsum(0)
    cumsum_empty(1) => |x| x[0].cumsum(0);
    // a ().cumsum(0)
    cumsum_scalar(1) => |x| x[0].cumsum(0);
    // a (3,4) int64 .cumsum(1)
    cumsum_i64(1) => |x| x[0].cumsum(1);
    // a (2,5) uint8 .cumsum(1): int64
    cumsum_u8(1) => |x| x[0].cumsum(1);
    // a (3,5).cumprod(1)
    cumprod_d1(1) => |x| x[0].cumprod(1);
    // a (2,5) with zeros (lines with one and two).cumprod(1)
    cumprod_zeros(1) => |x| x[0].cumprod(1);
    // a (5,2) with zeros: a.t().cumprod(1)
    cumprod_zeros_d0(1) => |x| x[0].transpose(0, 1)?.cumprod(1);
    // a (1,4) starting with a zero .cumprod(1)
    cumprod_leading_zero(1) => |x| x[0].cumprod(1);
    // a (4,3).cumprod(0), float32
    cumprod_f32(1) => |x| x[0].cumprod(0);
    // a (2,6) int64 .cumprod(1)
    cumprod_i64(1) => |x| x[0].cumprod(1);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("scan"), tested);
}

/// Deterministic f64 values in (-2, 2) with |v| >= 0.1, every `zero_every`-th one 0.
fn f64s(shape: &[usize], seed: u64, zero_every: usize, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(signed_away_from_zero(n, seed, zero_every), shape, dev).unwrap()
}

common::device_test! {
    /// Finite differences agree with both gradients, through strided views, and for
    /// cumprod also on lines holding one or several zeros.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let x = f64s(&[3, 4, 5], 1, usize::MAX, dev).requires_grad();
        for dim in 0..3 {
            gradcheck(|t| t[0].cumsum(dim), std::slice::from_ref(&x), opts()).unwrap();
            gradcheck(|t| t[0].cumprod(dim), std::slice::from_ref(&x), opts()).unwrap();
        }
        let xt = f64s(&[6, 4], 2, usize::MAX, dev).transpose(0, 1).unwrap().requires_grad();
        gradcheck(|t| t[0].cumsum(1), std::slice::from_ref(&xt), opts()).unwrap();
        gradcheck(|t| t[0].cumprod(1), &[xt], opts()).unwrap();
        // Every third value 0: lines of 7 hold two zeros.
        let z = f64s(&[4, 7], 3, 3, dev).requires_grad();
        gradcheck(|t| t[0].cumprod(1), &[z], opts()).unwrap();
    }

    /// A dim past the rank is an `Err` naming the op; integer scans have no
    /// gradient to ask for, and an empty dim scans to an empty result.
    fn errors_and_edges(dev) {
        let x = f64s(&[2, 3], 4, usize::MAX, dev);
        for r in [x.cumsum(2), x.cumprod(5)] {
            assert!(matches!(r, Err(Error::DimOutOfRange { dim: _, rank: 2, .. })), "{r:?}");
        }
        let s = Tensor::from_vec(vec![2.5f64], &[], dev).unwrap();
        assert!(s.cumsum(1).is_err());
        assert_eq!(host(&s.cumprod(0).unwrap()), [2.5]);
        let e = f64s(&[3, 0, 2], 5, usize::MAX, dev).requires_grad();
        let y = e.cumprod(1).unwrap();
        assert_eq!(y.shape(), &[3, 0, 2]);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(e.grad().unwrap().shape(), &[3, 0, 2]);
    }
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The scan kernels against the CPU backend (tests/common/parity.rs), and the check
/// that these tests launch every kernel of kernels/scan.cu.
mod cuda_parity {
    use super::f64s;
    use crate::common::parity::{assert_every_kernel_launched, ALL};
    use crate::common::{cuda_or_skip, host};
    use kiln::{DType, Device, Tensor};

    /// One input of the parity sweep: its shape and whether the scanned view is a
    /// transpose (strided).
    const SWEEP: [(&[usize], usize, bool); 4] = [
        (&[3, 37, 5], 1, false),
        (&[2, 300], 1, false),
        (&[7, 11], 0, true),
        (&[1, 5, 1], 2, false),
    ];

    /// The CUDA kernels against the CPU backend in every dtype, bit for bit for the scans
    /// (same order, same accumulator), within f64 rounding for cumprod's gradient (which
    /// a GPU may contract into FMAs): odd sizes, long lines, a strided view, lines with
    /// zeros, and U8 promoted to I64.
    #[test]
    fn cuda_scans_match_the_cpu_in_every_dtype() {
        let Some(gpu) = cuda_or_skip("cuda_scans_match_the_cpu_in_every_dtype") else {
            return;
        };
        for (shape, dim, transposed) in SWEEP {
            for dtype in ALL {
                // |v| < 2 (integers: -1, 0, 1), every ninth 0.
                let x = f64s(shape, 6, 9, &Device::Cpu).to_dtype(dtype).unwrap();
                let x = if transposed {
                    x.transpose(0, 1).unwrap()
                } else {
                    x
                };
                let on_gpu = x.to_device(&gpu).unwrap();
                for (name, op) in [
                    ("cumsum", Tensor::cumsum as fn(&Tensor, usize) -> _),
                    ("cumprod", Tensor::cumprod),
                ] {
                    let want = op(&x, dim).unwrap();
                    let got = op(&on_gpu, dim).unwrap();
                    let what = format!("{name} {dtype:?} {shape:?} dim {dim}");
                    assert_eq!(got.dtype(), want.dtype(), "{what}");
                    let same = |a: &f64, b: &f64| a == b || (a.is_nan() && b.is_nan());
                    let (got, want) = (host(&got), host(&want));
                    assert!(got.iter().zip(&want).all(|(a, b)| same(a, b)), "{what}");
                }
                if !dtype.is_float() {
                    continue;
                }
                let grads = [&x, &on_gpu].map(|t| {
                    let leaf = t.detach().requires_grad();
                    let y = leaf.cumprod(dim).unwrap();
                    let gout = f64s(y.shape(), 7, usize::MAX, &Device::Cpu);
                    let gout = gout
                        .to_dtype(dtype)
                        .unwrap()
                        .to_device(&t.device())
                        .unwrap();
                    y.mul(&gout).unwrap().sum_all().unwrap().backward().unwrap();
                    host(&leaf.grad().unwrap())
                });
                let tol = match dtype {
                    DType::F64 => 1e-12,
                    DType::F32 => 1e-6,
                    _ => 1e-2,
                };
                for (g, c) in grads[1].iter().zip(&grads[0]) {
                    let close = (g - c).abs() <= tol * (1.0 + c.abs()) || g == c;
                    assert!(close, "{dtype:?} {shape:?}: {g} vs {c}");
                }
            }
        }
    }

    /// On the emulated device, the sweep above launches every kernel of kernels/scan.cu.
    #[test]
    fn every_scan_kernel_is_launched() {
        let suite: [fn(); 1] = [cuda_scans_match_the_cpu_in_every_dtype];
        assert_every_kernel_launched("scan", &suite, &[]);
    }
}
