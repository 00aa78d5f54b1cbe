//! The activations beyond functional_activation.rs's (hardswish, hardsigmoid, relu6,
//! hardtanh, elu, selu, celu, mish, log_sigmoid, softsign, glu, prelu) and their
//! modules against PyTorch on every device, f64 gradchecks, errors naming the argument,
//! PyTorch's module reprs, and the CUDA kernels against the CPU backend in every
//! float dtype.
//!
//! The fixture is written by `scripts/golden/activation.py`; the PyTorch expression of
//! each case is the comment above it here and above its `case(...)` line there. `a`,
//! `b` are the case's inputs `in0`, `in1`; views are taken inside the op.

mod common;

use common::rng::{unit, Xorshift};
use common::{assert_close, golden_case_names, golden_cases, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("activation"))
}

golden_cases! {
    // F.hardswish(a (4,6) with the kinks)
    hardswish(1) => |x| F::hardswish(&x[0]);
    // F.hardswish(a (3,5) float32)
    hardswish_f32(1) => |x| F::hardswish(&x[0]);
    // F.hardsigmoid(a (4,6) with the kinks)
    hardsigmoid(1) => |x| F::hardsigmoid(&x[0]);
    // F.hardsigmoid(a (5,3).t())
    hardsigmoid_transposed(1) => |x| F::hardsigmoid(&x[0].transpose(0, 1)?);
    // F.relu6(a (4,6) with the kinks)
    relu6(1) => |x| F::relu6(&x[0]);
    // F.hardtanh(a, -0.5, 2.0)
    hardtanh(1) => |x| F::hardtanh(&x[0], -0.5, 2.0);
    // F.hardtanh(a (3,5) float32)
    hardtanh_default_f32(1) => |x| F::hardtanh(&x[0], -1.0, 1.0);
    // F.elu(a (4,6))
    elu(1) => |x| F::elu(&x[0], 1.0);
    // F.elu(a, 0.7)
    elu_alpha(1) => |x| F::elu(&x[0], 0.7);
    // F.elu(a (5,3) float32 .t(), 1.3)
    elu_f32_transposed(1) => |x| F::elu(&x[0].transpose(0, 1)?, 1.3);
    // F.selu(a (4,6))
    selu(1) => |x| F::selu(&x[0]);
    // F.selu(a (3,5) float32)
    selu_f32(1) => |x| F::selu(&x[0]);
    // F.celu(a (4,6), 1.3)
    celu(1) => |x| F::celu(&x[0], 1.3);
    // F.celu(a (4,6))
    celu_default(1) => |x| F::celu(&x[0], 1.0);
    // F.mish(a (4,6) in N(0, 3) plus +-30)
    mish(1) => |x| F::mish(&x[0]);
    // F.mish(a (3,5) float32)
    mish_f32(1) => |x| F::mish(&x[0]);
    // F.logsigmoid(a (4,6) in N(0, 3) plus +-800)
    log_sigmoid(1) => |x| F::log_sigmoid(&x[0]);
    // F.logsigmoid(a (3,5) float32)
    log_sigmoid_f32(1) => |x| F::log_sigmoid(&x[0]);
    // F.softsign(a (4,6))
    softsign(1) => |x| F::softsign(&x[0]);
    // F.softsign(a (0,3))
    softsign_empty(1) => |x| F::softsign(&x[0]);
    // F.glu(a (3,8), -1)
    glu_last(1) => |x| F::glu(&x[0], 1);
    // F.glu(a (5,4).t(), 0)
    glu_d0_transposed(1) => |x| F::glu(&x[0].transpose(0, 1)?, 0);
    // F.glu(a (2,6,3) float32, 1)
    glu_f32(1) => |x| F::glu(&x[0], 1);
    // F.prelu(a (2,3,4) with zeros, b (3,))
    prelu_channels(2) => |x| F::prelu(&x[0], &x[1]);
    // F.prelu(a (3,5), b (1,))
    prelu_single(2) => |x| F::prelu(&x[0], &x[1]);
    // F.prelu(a (7,), b (1,))
    prelu_1d(2) => |x| F::prelu(&x[0], &x[1]);
    // F.prelu(a (2,3,2,2) float32, b (3,) float32)
    prelu_f32_4d(2) => |x| F::prelu(&x[0], &x[1]);
    // F.hardsigmoid(a (3,5) float32)
    hardsigmoid_f32(1) => |x| F::hardsigmoid(&x[0]);
    // F.relu6(a (3,5) float32)
    relu6_f32(1) => |x| F::relu6(&x[0]);
    // F.celu(a (3,5) float32, 0.6)
    celu_f32(1) => |x| F::celu(&x[0], 0.6);
    // F.softsign(a (3,5) float32)
    softsign_f32(1) => |x| F::softsign(&x[0]);
    // The edge cases: ±0, the kinks, ±6, ±30, ±800 and ±inf; op(EDGES.t()) in f64 and
    // op(EDGES) in float32. (NaN: see nan_passes_through.)
    // F.hardswish
    hardswish_edges(1) => |x| F::hardswish(&x[0].transpose(0, 1)?);
    hardswish_edges_f32(1) => |x| F::hardswish(&x[0]);
    // F.hardsigmoid
    hardsigmoid_edges(1) => |x| F::hardsigmoid(&x[0].transpose(0, 1)?);
    hardsigmoid_edges_f32(1) => |x| F::hardsigmoid(&x[0]);
    // F.relu6
    relu6_edges(1) => |x| F::relu6(&x[0].transpose(0, 1)?);
    relu6_edges_f32(1) => |x| F::relu6(&x[0]);
    // F.hardtanh(a, -0.5, 2.0)
    hardtanh_edges(1) => |x| F::hardtanh(&x[0].transpose(0, 1)?, -0.5, 2.0);
    hardtanh_edges_f32(1) => |x| F::hardtanh(&x[0], -0.5, 2.0);
    // F.elu(a, 0.7)
    elu_edges(1) => |x| F::elu(&x[0].transpose(0, 1)?, 0.7);
    elu_edges_f32(1) => |x| F::elu(&x[0], 0.7);
    // F.selu
    selu_edges(1) => |x| F::selu(&x[0].transpose(0, 1)?);
    selu_edges_f32(1) => |x| F::selu(&x[0]);
    // F.celu(a, 1.3)
    celu_edges(1) => |x| F::celu(&x[0].transpose(0, 1)?, 1.3);
    celu_edges_f32(1) => |x| F::celu(&x[0], 1.3);
    // F.mish
    mish_edges(1) => |x| F::mish(&x[0].transpose(0, 1)?);
    mish_edges_f32(1) => |x| F::mish(&x[0]);
    // F.logsigmoid
    log_sigmoid_edges(1) => |x| F::log_sigmoid(&x[0].transpose(0, 1)?);
    log_sigmoid_edges_f32(1) => |x| F::log_sigmoid(&x[0]);
    // F.softsign
    softsign_edges(1) => |x| F::softsign(&x[0].transpose(0, 1)?);
    softsign_edges_f32(1) => |x| F::softsign(&x[0]);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("activation"), tested);
}

/// The pointwise activations by name, with the arguments of the sweeps below.
type Act = fn(&Tensor) -> Result<Tensor>;
const POINTWISE: [(&str, Act); 11] = [
    ("hardswish", F::hardswish),
    ("hardsigmoid", F::hardsigmoid),
    ("relu6", F::relu6),
    ("hardtanh", |x| F::hardtanh(x, -0.5, 2.0)),
    ("elu", |x| F::elu(x, 0.7)),
    ("selu", F::selu),
    ("celu", |x| F::celu(x, 1.3)),
    ("mish", F::mish),
    ("log_sigmoid", F::log_sigmoid),
    ("softsign", F::softsign),
    ("prelu", |x| {
        F::prelu(x, &Tensor::full(&[1], 0.2, x.dtype(), &x.device())?)
    }),
];

/// Deterministic values in ±[0.05, 4.5) at least 0.05 from every kink of the hard
/// activations (-3, -0.5, 0, 2, 3, 6 are all whole or half numbers), so that finite
/// differences never straddle one.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Xorshift::new(seed);
    (0..n)
        .map(|_| {
            let s = rng.next_bits();
            let u = unit(s);
            let v = ((s >> 1) % 9) as f64 * 0.5 + 0.05 + 0.4 * u;
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

#[track_caller]
fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

common::device_test! {
    /// Finite differences agree with every gradient, on a strided view; glu along
    /// both dims, prelu in its input and its per-channel weight.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let x = f64s(&[6, 4], 1, dev).transpose(0, 1).unwrap().requires_grad();
        for (name, op) in POINTWISE {
            gradcheck(|t| op(&t[0]), std::slice::from_ref(&x), opts())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        gradcheck(|t| F::glu(&t[0], 0), std::slice::from_ref(&x), opts()).unwrap();
        gradcheck(|t| F::glu(&t[0], 1), std::slice::from_ref(&x), opts()).unwrap();
        let x3 = f64s(&[2, 3, 4], 2, dev).requires_grad();
        let w = Tensor::from_vec(vec![0.25, -0.5, 1.5], &[3], dev).unwrap().requires_grad();
        gradcheck(|t| F::prelu(&t[0], &t[1]), &[x3, w], opts()).unwrap();
    }

    /// Integers, bad bounds and alphas, an odd glu dim and a prelu weight of the wrong
    /// size are errors naming what is wrong.
    fn errors_name_the_argument(dev) {
        let ints = Tensor::from_vec(vec![-2i64, 0, 3], &[3], dev).unwrap();
        for (name, op) in POINTWISE {
            let r = op(&ints);
            let refused = matches!(r, Err(Error::UnsupportedDType { .. }));
            assert!(refused || (name == "prelu" && r.is_err()), "{name}: {r:?}");
        }
        let x = f64s(&[2, 3], 3, dev);
        assert_invalid_arg(F::hardtanh(&x, 1.0, -1.0), "max_val");
        assert_invalid_arg(F::hardtanh(&x, f64::NAN, 1.0), "min_val");
        assert_invalid_arg(F::elu(&x, f64::INFINITY), "alpha");
        assert_invalid_arg(F::celu(&x, 0.0), "alpha");
        assert_invalid_arg(F::glu(&x, 1), "dim");
        assert!(matches!(F::glu(&x, 2), Err(Error::DimOutOfRange { .. })));
        let w = Tensor::from_vec(vec![0.1, 0.2], &[2], dev).unwrap();
        assert_invalid_arg(F::prelu(&x, &w), "weight");
        let w2 = Tensor::from_vec(vec![0.1, 0.2, 0.3], &[1, 3], dev).unwrap();
        assert_invalid_arg(F::prelu(&x, &w2), "weight");
        let w32 = Tensor::from_vec(vec![0.1f32], &[1], dev).unwrap();
        assert!(F::prelu(&x, &w32).is_err(), "dtype mismatch");
        assert_invalid_arg(F::hardtanh(&x, 0.0, f64::NAN), "max_val");
        assert!(F::hardtanh(&x, 0.5, 0.5).is_ok(), "F.hardtanh takes equal bounds");
        assert_invalid_arg(F::celu(&x, f64::NAN), "alpha");
        assert!(F::elu(&x, -0.5).is_ok(), "PyTorch takes a negative alpha");
        assert!(F::celu(&x, -0.5).is_ok(), "PyTorch takes a negative alpha");
        assert_invalid_arg(nn::Hardtanh::new(2.0, 1.0), "max_val");
        // nn.Hardtanh asserts max_val > min_val.
        assert_invalid_arg(nn::Hardtanh::new(1.0, 1.0), "max_val");
        assert_invalid_arg(nn::ELU::new(f64::NAN), "alpha");
        assert_invalid_arg(nn::CELU::new(0.0), "alpha");
        assert_invalid_arg(nn::PReLU::new(0, 0.25, dev), "num_parameters");
        assert_invalid_arg(nn::Unflatten::new(1, &[]), "unflattened_size");
        let u = nn::Unflatten::new(1, &[2, 2]).unwrap();
        assert_invalid_arg(u.forward(&x), "sizes");
    }

    /// NaN passes through every forward, as in PyTorch. Its gradient at NaN is the
    /// branch of the formula that a NaN takes (`x > 0` false), PyTorch's scalar loop's
    /// answer; PyTorch's vectorized loops give NaN (elu, hardswish) or 0 (hardtanh)
    /// there instead, so no golden case pins it (scripts/golden/activation.py).
    fn nan_passes_through(dev) {
        let x = Tensor::from_vec(vec![f64::NAN, 1.0], &[2], dev).unwrap();
        for (name, op) in POINTWISE {
            let y = common::host(&op(&x).unwrap());
            assert!(y[0].is_nan(), "{name}: {y:?}");
        }
    }

    /// An empty input gives an empty output and an empty gradient.
    fn empty_inputs(dev) {
        let x = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap().requires_grad();
        for (name, op) in POINTWISE {
            let y = op(&x).unwrap();
            assert_eq!(y.shape(), &[0, 3], "{name}");
            y.sum_all().unwrap().backward().unwrap();
            assert_eq!(x.grad().unwrap().shape(), &[0, 3], "{name}");
        }
    }

    /// Each module is its functional op with PyTorch's defaults, prints as PyTorch's
    /// module does, and PReLU learns its `weight`.
    fn modules_match_pytorch(dev) {
        let x = f64s(&[2, 4, 3], 4, dev).to_dtype(DType::F32).unwrap();
        let same = |m: &dyn Forward, want: Tensor| {
            assert_close(&m.forward(&x).unwrap(), &want, dev, 0.0, 0.0);
        };
        same(&nn::Hardswish, F::hardswish(&x).unwrap());
        same(&nn::Hardsigmoid, F::hardsigmoid(&x).unwrap());
        same(&nn::ReLU6, F::relu6(&x).unwrap());
        same(&nn::SELU, F::selu(&x).unwrap());
        same(&nn::Mish, F::mish(&x).unwrap());
        same(&nn::LogSigmoid, F::log_sigmoid(&x).unwrap());
        same(&nn::Softsign, F::softsign(&x).unwrap());
        same(&nn::Sigmoid, F::sigmoid(&x).unwrap());
        same(&nn::Hardtanh::default(), F::hardtanh(&x, -1.0, 1.0).unwrap());
        same(&nn::Hardtanh::new(-0.5, 2.0).unwrap(), F::hardtanh(&x, -0.5, 2.0).unwrap());
        same(&nn::ELU::default(), F::elu(&x, 1.0).unwrap());
        same(&nn::CELU::new(1.3).unwrap(), F::celu(&x, 1.3).unwrap());
        same(&nn::GLU::new(1), F::glu(&x, 1).unwrap());
        same(&nn::Softmax(1), F::softmax(&x, 1).unwrap());
        same(&nn::LogSoftmax(2), F::log_softmax(&x, 2).unwrap());
        same(&nn::Identity, x.clone());
        let even = x.narrow(2, 0, 2).unwrap();
        let glu = nn::GLU::default().forward(&even).unwrap();
        assert_close(&glu, &F::glu(&even, 2).unwrap(), dev, 0.0, 0.0);
        let u = nn::Unflatten::new(1, &[2, 2]).unwrap().forward(&x).unwrap();
        assert_eq!(u.shape(), &[2, 2, 2, 3]);
        assert_close(&u.reshape(&[2, 4, 3]).unwrap(), &x, dev, 0.0, 0.0);
        let reprs = [
            (nn::repr(&nn::Hardswish), "Hardswish()"),
            (nn::repr(&nn::Hardtanh::default()), "Hardtanh(min_val=-1.0, max_val=1.0)"),
            (nn::repr(&nn::ELU::default()), "ELU(alpha=1.0)"),
            (nn::repr(&nn::CELU::new(0.5).unwrap()), "CELU(alpha=0.5)"),
            (nn::repr(&nn::GLU::default()), "GLU(dim=-1)"),
            (nn::repr(&nn::Softmax(1)), "Softmax(dim=1)"),
            (nn::repr(&nn::Identity), "Identity()"),
            (nn::repr(&nn::Unflatten::new(1, &[2, 2]).unwrap()), "Unflatten(dim=1, unflattened_size=(2, 2))"),
            (nn::repr(&nn::PReLU::default_on(dev).unwrap()), "PReLU(num_parameters=1)"),
        ];
        for (got, want) in reprs {
            assert_eq!(got, want);
        }
        let p = nn::PReLU::new(4, 0.25, dev).unwrap();
        let names: Vec<String> = p.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["weight"]);
        p.forward(&x).unwrap().sum_all().unwrap().backward().unwrap();
        // d/dw_c of Σ prelu = Σ over channel c of min(x, 0).
        let want = x.minimum(&x.zeros_like().unwrap()).unwrap();
        let want = want.sum(2, false).unwrap().sum(0, false).unwrap();
        assert_close(&p.weight.grad().unwrap(), &want, dev, 1e-6, 1e-6);
    }
}

/// The CUDA kernels against the CPU backend in every float dtype: every pointwise
/// activation forward and backward on an odd-sized strided view holding the kinks.
#[test]
fn cuda_activations_match_the_cpu_in_every_float_dtype() {
    let Some(gpu) = common::cuda_or_skip("cuda_activations_match_the_cpu_in_every_float_dtype")
    else {
        return;
    };
    let mut v = values(7 * 13, 5);
    let inf = f64::INFINITY;
    v[..11].copy_from_slice(&[
        -3.0,
        -0.5,
        0.0,
        2.0,
        3.0,
        6.0,
        30.0,
        -30.0,
        inf,
        -inf,
        f64::NAN,
    ]);
    let base = Tensor::from_vec(v, &[7, 13], &Device::Cpu).unwrap();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let x = base.to_dtype(dtype).unwrap().transpose(0, 1).unwrap();
        let x_gpu = x.to_device(&gpu).unwrap();
        let (atol, rtol) = common::device_tol(dtype, &gpu);
        for (name, op) in POINTWISE {
            let run = |t: &Tensor| {
                let leaf = t.detach().requires_grad();
                let y = op(&leaf).unwrap();
                y.sum_all().unwrap().backward().unwrap();
                (y, leaf.grad().unwrap())
            };
            let ((y, g), (y_gpu, g_gpu)) = (run(&x), run(&x_gpu));
            assert_eq!(y_gpu.device(), gpu, "{name} {dtype:?}");
            common::assert_values(name, &y_gpu, &y, atol, rtol);
            common::assert_values(name, &g_gpu, &g, atol, rtol);
        }
    }
}

/// On the emulated device, the sweep above launches the unary kernel of every float
/// dtype (each activation and each derivative is one of its cases).
#[test]
fn every_activation_kernel_is_launched() {
    if common::launches("unary_f32").is_none() {
        eprintln!("skipped: launch counts exist only on the emulated device");
        return;
    }
    cuda_activations_match_the_cpu_in_every_float_dtype();
    for kernel in ["unary_f32", "unary_f64", "unary_f16", "unary_bf16"] {
        assert!(common::launches(kernel).unwrap() > 0, "{kernel} never ran");
    }
}
