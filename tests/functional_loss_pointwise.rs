//! The pointwise losses (binary_cross_entropy, binary_cross_entropy_with_logits, l1,
//! smooth_l1, huber, mse with a reduction, kl_div), cosine_similarity and normalize
//! against PyTorch on every device — values and the gradients of input and target —
//! plus f64 gradchecks, empty and strided inputs, each bad argument, the loss modules,
//! and the CUDA kernels of the new elementwise ops against the CPU backend.
//!
//! The fixture is written by `scripts/golden/loss_pointwise.py`; the PyTorch
//! expression of each case is the comment above it here and above its line there.
//! `a`/`p`/`z` and `b`/`t` are the case's inputs `in0`, `in1`; weights are the case's
//! constants `<case>.weight` / `<case>.pos_weight`.

mod common;

use common::{assert_close, golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::{self, functional as F, functional::Reduction};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("loss_pointwise"))
}

/// The constant `key` of `case`, on `x`'s device.
fn constant(case: &str, key: &str, x: &Tensor) -> Tensor {
    golden().on(&format!("{case}.{key}"), &x.device())
}

golden_cases! {
    // F.binary_cross_entropy(p (3,5), t (3,5))
    bce(2) => |x| F::binary_cross_entropy(&x[0], &x[1], F::LossOpts::new());
    // F.binary_cross_entropy(p (4,3), t, weight=w (3), reduction="sum")
    bce_weight_sum(2) => |x| {
        let w = constant("bce_weight_sum", "weight", &x[0]);
        F::binary_cross_entropy(&x[0], &x[1], F::LossOpts::new().weight(&w).reduction(Reduction::Sum))
    };
    // F.binary_cross_entropy(p, t, reduction="none"), p holding 0 and 1
    bce_edges(2) => |x| F::binary_cross_entropy(&x[0], &x[1], F::LossOpts::new().reduction(Reduction::None));
    // F.binary_cross_entropy(p (2,7), t), float32
    bce_f32(2) => |x| F::binary_cross_entropy(&x[0], &x[1], F::LossOpts::new());
    // F.binary_cross_entropy_with_logits(z (4,3) * 3, t)
    bce_logits(2) => |x| F::binary_cross_entropy_with_logits(&x[0], &x[1], F::BceOpts::new());
    // F.binary_cross_entropy_with_logits(z (4,3), t, weight=w (4,1), pos_weight=pw (3), reduction="sum")
    bce_logits_pos_weight(2) => |x| {
        let w = constant("bce_logits_pos_weight", "weight", &x[0]);
        let pw = constant("bce_logits_pos_weight", "pos_weight", &x[0]);
        let opts = F::BceOpts::new().weight(&w).pos_weight(&pw).reduction(Reduction::Sum);
        F::binary_cross_entropy_with_logits(&x[0], &x[1], opts)
    };
    // F.binary_cross_entropy_with_logits(z (3,4), t, reduction="none"), float32
    bce_logits_none_f32(2) => |x| F::binary_cross_entropy_with_logits(&x[0], &x[1], F::BceOpts::new().reduction(Reduction::None));
    // F.l1_loss(a (3,4), b), two equal pairs
    l1(2) => |x| F::l1_loss(&x[0], &x[1], Reduction::Mean);
    // F.l1_loss(a (5,3), b, reduction="sum"), float32
    l1_sum_f32(2) => |x| F::l1_loss(&x[0], &x[1], Reduction::Sum);
    // F.smooth_l1_loss(a (4,5) * 2, b)
    smooth_l1(2) => |x| F::smooth_l1_loss(&x[0], &x[1], 1.0, Reduction::Mean);
    // F.smooth_l1_loss(a (3,7), b, reduction="none", beta=0.5)
    smooth_l1_beta(2) => |x| F::smooth_l1_loss(&x[0], &x[1], 0.5, Reduction::None);
    // F.smooth_l1_loss(a (2,3), b, beta=0.0)
    smooth_l1_beta0(2) => |x| F::smooth_l1_loss(&x[0], &x[1], 0.0, Reduction::Mean);
    // F.huber_loss(a (4,5) * 2, b)
    huber(2) => |x| F::huber_loss(&x[0], &x[1], 1.0, Reduction::Mean);
    // F.huber_loss(a (3,7) * 3, b, reduction="sum", delta=2.0)
    huber_delta(2) => |x| F::huber_loss(&x[0], &x[1], 2.0, Reduction::Sum);
    // F.mse_loss(a (3,4), b, reduction="none")
    mse_none(2) => |x| F::mse_loss_with(&x[0], &x[1], Reduction::None);
    // F.mse_loss(a (2,5), b, reduction="sum")
    mse_sum(2) => |x| F::mse_loss_with(&x[0], &x[1], Reduction::Sum);
    // F.kl_div(a (4,5), t, reduction="batchmean")
    kl_batchmean(2) => |x| F::kl_div(&x[0], &x[1], Reduction::BatchMean, false);
    // F.kl_div(a (3,6), t, reduction="sum", log_target=True)
    kl_log_target(2) => |x| F::kl_div(&x[0], &x[1], Reduction::Sum, true);
    // F.kl_div(a (2,4), t), t holding zeros
    kl_mean_zeros(2) => |x| F::kl_div(&x[0], &x[1], Reduction::Mean, false);
    // F.kl_div(a (2,3), t, reduction="none")
    kl_none(2) => |x| F::kl_div(&x[0], &x[1], Reduction::None, false);
    // F.cosine_similarity(a (4,6), b (4,6))
    cos(2) => |x| F::cosine_similarity(&x[0], &x[1], 1, 1e-8);
    // F.cosine_similarity(a (3,1,5), b (4,5), dim=2)
    cos_broadcast(2) => |x| F::cosine_similarity(&x[0], &x[1], 2, 1e-8);
    // F.cosine_similarity(a (2,3), b, dim=1, eps=1e-6), a's first row zero
    cos_zero(2) => |x| F::cosine_similarity(&x[0], &x[1], 1, 1e-6);
    // F.normalize(a (3,5))
    normalize(1) => |x| F::normalize(&x[0], 2.0, 1, 1e-12);
    // F.normalize(a (4,3), p=1.0, dim=0)
    normalize_p1_dim0(1) => |x| F::normalize(&x[0], 1.0, 0, 1e-12);
    // F.normalize(a (2,6), p=3.0, dim=1, eps=0.5)
    normalize_p3(1) => |x| F::normalize(&x[0], 3.0, 1, 0.5);
    // F.normalize(a (3,4), p=inf, dim=1)
    normalize_inf(1) => |x| F::normalize(&x[0], f64::INFINITY, 1, 1e-12);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("loss_pointwise"), tested);
}

/// f64 values in [lo, hi) from a seed, on `dev`, requiring a gradient.
fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64, dev: &Device) -> Tensor {
    kiln::manual_seed(seed);
    Tensor::rand(shape, DType::F64, &Device::Cpu)
        .and_then(|t| t.mul_scalar(hi - lo))
        .and_then(|t| t.add_scalar(lo))
        .and_then(|t| t.to_device(dev))
        .unwrap()
        .requires_grad()
}

/// Asserts an `InvalidArgument` error naming `expected`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

common::device_test! {
    /// Finite differences agree with the gradients of input and target (away from the
    /// kinks), through strided views.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let p = uniform(&[3, 4], 0.1, 0.9, 1, dev);
        let t = uniform(&[3, 4], 0.0, 1.0, 2, dev);
        let z = uniform(&[3, 4], -3.0, 3.0, 3, dev);
        let bce = |v: &[Tensor]| F::binary_cross_entropy(&v[0], &v[1], F::LossOpts::new());
        gradcheck(bce, &[p.clone(), t.clone()], opts()).unwrap();
        let pw = uniform(&[4], 0.5, 2.0, 5, dev).detach();
        let logits = |v: &[Tensor]| F::binary_cross_entropy_with_logits(&v[0], &v[1], F::BceOpts::new().pos_weight(&pw));
        gradcheck(logits, &[z.clone(), t.clone()], opts()).unwrap();
        // Differences kept away from the kinks at 0 and ±beta/±delta.
        let a = uniform(&[4, 3], -3.0, 3.0, 6, dev);
        let b = a.detach().add_scalar(0.37).unwrap().requires_grad();
        let strided = |v: &Tensor| v.transpose(0, 1);
        gradcheck(|v| F::l1_loss(&strided(&v[0])?, &strided(&v[1])?, Reduction::Sum), &[a.clone(), b.clone()], opts()).unwrap();
        gradcheck(|v| F::smooth_l1_loss(&v[0], &v[1], 0.5, Reduction::Mean), &[a.clone(), b.clone()], opts()).unwrap();
        gradcheck(|v| F::smooth_l1_loss(&v[0], &v[1], 0.2, Reduction::None), &[a.clone(), b.clone()], opts()).unwrap();
        gradcheck(|v| F::huber_loss(&v[0], &v[1], 0.2, Reduction::Mean), &[a.clone(), b.clone()], opts()).unwrap();
        gradcheck(|v| F::huber_loss(&v[0], &v[1], 1.0, Reduction::Sum), &[a.clone(), b.clone()], opts()).unwrap();
        gradcheck(|v| F::mse_loss_with(&v[0], &v[1], Reduction::None), &[a.clone(), b.clone()], opts()).unwrap();
        let q = uniform(&[3, 4], 0.1, 1.0, 7, dev);
        gradcheck(|v| F::kl_div(&v[0], &v[1], Reduction::BatchMean, false), &[z.clone(), q.clone()], opts()).unwrap();
        gradcheck(|v| F::kl_div(&v[0], &v[1], Reduction::Mean, true), &[z.clone(), a.transpose(0, 1).unwrap().contiguous().unwrap().detach().requires_grad()], opts()).unwrap();
        gradcheck(|v| F::cosine_similarity(&v[0], &v[1], 1, 1e-8), &[z.clone(), q.clone()], opts()).unwrap();
        gradcheck(|v| F::normalize(&v[0], 2.0, 0, 1e-12), std::slice::from_ref(&z), opts()).unwrap();
        gradcheck(|v| F::normalize(&v[0], 3.0, 1, 1e-12), std::slice::from_ref(&z), opts()).unwrap();
    }

    /// Empty inputs: `None` gives an empty loss, `Sum` 0 and `Mean` NaN (0/0), as
    /// PyTorch; backward runs.
    fn empty_inputs(dev) {
        let e = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap().requires_grad();
        let t = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap();
        type Loss = fn(&Tensor, &Tensor, Reduction) -> Result<Tensor>;
        let losses: [Loss; 3] = [
            |a, b, r| F::l1_loss(a, b, r),
            |a, b, r| F::huber_loss(a, b, 1.0, r),
            |a, b, r| F::binary_cross_entropy_with_logits(a, b, F::BceOpts::new().reduction(r)),
        ];
        for loss in losses {
            assert_eq!(loss(&e, &t, Reduction::None).unwrap().shape(), &[0, 3]);
            assert_eq!(host(&loss(&e, &t, Reduction::Sum).unwrap()), [0.0]);
            let mean = loss(&e, &t, Reduction::Mean).unwrap();
            assert!(host(&mean)[0].is_nan());
            loss(&e, &t, Reduction::Sum).unwrap().backward().unwrap();
            assert_eq!(e.grad().unwrap().shape(), &[0, 3]);
        }
        let bce = F::binary_cross_entropy(&e, &t, F::LossOpts::new().reduction(Reduction::Sum)).unwrap();
        assert_eq!(host(&bce), [0.0]);
    }

    /// Each bad argument PyTorch refuses is an `Err` naming it.
    fn errors(dev) {
        let a = Tensor::zeros(&[2, 3], DType::F32, dev).unwrap();
        let b = Tensor::zeros(&[3, 2], DType::F32, dev).unwrap();
        assert_invalid(F::l1_loss(&a, &b, Reduction::Mean), "target");
        assert_invalid(F::binary_cross_entropy(&a, &b, F::LossOpts::new()), "target");
        assert_invalid(F::smooth_l1_loss(&a, &a, -1.0, Reduction::Mean), "beta");
        assert_invalid(F::huber_loss(&a, &a, 0.0, Reduction::Mean), "delta");
        assert_invalid(F::l1_loss(&a, &a, Reduction::BatchMean), "reduction");
        assert_invalid(F::mse_loss_with(&a, &a, Reduction::BatchMean), "reduction");
        let w = Tensor::ones(&[4], DType::F32, dev).unwrap();
        assert_invalid(F::binary_cross_entropy(&a, &a, F::LossOpts::new().weight(&w)), "weight");
        assert_invalid(F::binary_cross_entropy_with_logits(&a, &a, F::BceOpts::new().pos_weight(&w)), "pos_weight");
        let wg = Tensor::ones(&[3], DType::F32, dev).unwrap().requires_grad();
        assert_invalid(F::binary_cross_entropy(&a, &a, F::LossOpts::new().weight(&wg)), "weight");
        assert!(F::l1_loss(&a, &a.to_dtype(DType::F64).unwrap(), Reduction::Mean).is_err());
        let i = Tensor::zeros(&[2, 3], DType::I64, dev).unwrap();
        assert!(F::l1_loss(&i, &i, Reduction::Mean).is_err());
        assert_invalid(F::normalize(&a, 0.0, 1, 1e-12), "p");
        assert_invalid(F::normalize(&a, 2.0, 1, -1.0), "eps");
        assert!(F::normalize(&a, 2.0, 2, 1e-12).is_err());
        assert!(F::cosine_similarity(&a, &b, 1, 1e-8).is_err());
        assert!(F::cosine_similarity(&a, &a, 2, 1e-8).is_err());
        let logits = Tensor::zeros(&[2, 3], DType::F32, dev).unwrap();
        let classes = Tensor::zeros(&[2], DType::I64, dev).unwrap();
        let opts = F::CrossEntropyOpts::new().reduction(Reduction::BatchMean);
        assert_invalid(F::cross_entropy_opts(&logits, &classes, opts), "reduction");
    }

    /// The loss modules hold their options and compute their functional loss.
    fn modules(dev) {
        let g = golden();
        let get = |k: &str| g.on(k, dev);
        let (a, b) = (get("huber_delta.in0"), get("huber_delta.in1"));
        let want = |k: &str| g.get(k);
        let tol = (1e-12, 1e-12);
        let huber = nn::HuberLoss::new().delta(2.0).reduction(Reduction::Sum);
        assert_close(&huber.forward(&a, &b).unwrap(), &want("huber_delta.out"), dev, tol.0, tol.1);
        let (a, b) = (get("smooth_l1_beta.in0"), get("smooth_l1_beta.in1"));
        let smooth = nn::SmoothL1Loss::new().beta(0.5).reduction(Reduction::None);
        assert_close(&smooth.forward(&a, &b).unwrap(), &want("smooth_l1_beta.out"), dev, tol.0, tol.1);
        let (a, b) = (get("l1.in0"), get("l1.in1"));
        assert_close(&nn::L1Loss::new().forward(&a, &b).unwrap(), &want("l1.out"), dev, tol.0, tol.1);
        let (a, b) = (get("mse_sum.in0"), get("mse_sum.in1"));
        let mse = nn::MSELoss::new().reduction(Reduction::Sum);
        assert_close(&mse.forward(&a, &b).unwrap(), &want("mse_sum.out"), dev, tol.0, tol.1);
        let (a, b) = (get("kl_log_target.in0"), get("kl_log_target.in1"));
        let kl = nn::KLDivLoss::new().reduction(Reduction::Sum).log_target(true);
        assert_close(&kl.forward(&a, &b).unwrap(), &want("kl_log_target.out"), dev, tol.0, tol.1);
        let (p, t) = (get("bce_weight_sum.in0"), get("bce_weight_sum.in1"));
        let bce = nn::BCELoss::new().weight(get("bce_weight_sum.weight")).reduction(Reduction::Sum);
        assert_close(&bce.forward(&p, &t).unwrap(), &want("bce_weight_sum.out"), dev, tol.0, tol.1);
        let (z, t) = (get("bce_logits_pos_weight.in0"), get("bce_logits_pos_weight.in1"));
        let logits = nn::BCEWithLogitsLoss::new()
            .weight(get("bce_logits_pos_weight.weight"))
            .pos_weight(get("bce_logits_pos_weight.pos_weight"))
            .reduction(Reduction::Sum);
        assert_close(&logits.forward(&z, &t).unwrap(), &want("bce_logits_pos_weight.out"), dev, tol.0, tol.1);
        // CrossEntropyLoss: F::cross_entropy_opts with the options it holds.
        let x = Tensor::from_vec(vec![0.5f64, -1.0, 2.0, 0.1, 0.2, 0.3], &[2, 3], dev).unwrap();
        let y = Tensor::from_vec(vec![2i64, -100], &[2], dev).unwrap();
        let w = Tensor::from_vec(vec![1.0f64, 2.0, 0.5], &[3], dev).unwrap();
        let ce = nn::CrossEntropyLoss::new().weight(w.clone()).label_smoothing(0.1).reduction(Reduction::Sum);
        let opts = F::CrossEntropyOpts::new().weight(&w).label_smoothing(0.1).reduction(Reduction::Sum);
        assert_eq!(host(&ce.forward(&x, &y).unwrap()), host(&F::cross_entropy_opts(&x, &y, opts).unwrap()));
        assert_eq!(nn::repr(&nn::L1Loss::new()), "L1Loss()");
    }
}

/// The CUDA side of every loss above against the CPU backend in every float dtype
/// (the new `unary`/`binary` kernel cases: BCE and its gradient, smooth L1, Huber and
/// their gradients), forward and the gradients of input and target, on odd-sized
/// transposed views whose differences sit on and around the kinks.
#[test]
fn cuda_pointwise_losses_match_the_cpu_in_every_float_dtype() {
    let Some(gpu) =
        common::cuda_or_skip("cuda_pointwise_losses_match_the_cpu_in_every_float_dtype")
    else {
        return;
    };
    type Loss = (&'static str, fn(&Tensor, &Tensor) -> Result<Tensor>);
    let losses: [Loss; 9] = [
        ("bce", |p, t| {
            F::binary_cross_entropy(
                &p.sigmoid()?,
                t,
                F::LossOpts::new().reduction(Reduction::None),
            )
        }),
        ("bce_logits", |z, t| {
            F::binary_cross_entropy_with_logits(z, t, F::BceOpts::new().reduction(Reduction::None))
        }),
        ("l1", |a, b| F::l1_loss(a, b, Reduction::None)),
        ("smooth_l1", |a, b| {
            F::smooth_l1_loss(a, b, 0.5, Reduction::None)
        }),
        ("huber", |a, b| F::huber_loss(a, b, 1.0, Reduction::None)),
        ("mse", |a, b| F::mse_loss_with(a, b, Reduction::Sum)),
        ("kl_div", |a, t| {
            F::kl_div(a, &t.sigmoid()?, Reduction::BatchMean, false)
        }),
        ("cosine", |a, b| F::cosine_similarity(a, b, 1, 1e-8)),
        ("normalize", |a, _| F::normalize(a, 3.0, 0, 1e-12)),
    ];
    // Differences 0, ±0.5 and ±1 (the kinks of smooth L1 with β = 0.5 and Huber with
    // δ = 1) and others; targets in [0, 1] for the probability losses' second input.
    let n = 9 * 7;
    let a: Vec<f64> = (0..n)
        .map(|i| ((i * 37 % 23) as f64 - 11.0) / 4.0)
        .collect();
    let kinks = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0];
    let b: Vec<f64> = a
        .iter()
        .enumerate()
        .map(|(i, v)| v - kinks[i % kinks.len()])
        .collect();
    let ab = [a, b].map(|v| Tensor::from_vec(v, &[9, 7], &Device::Cpu).unwrap());
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let (atol, rtol) = common::device_tol(dtype, &gpu);
        let on = |t: &Tensor, d: &Device| {
            t.to_dtype(dtype)
                .unwrap()
                .to_device(d)
                .unwrap()
                .transpose(0, 1)
                .unwrap()
        };
        for (name, loss) in losses {
            let run = |d: &Device| {
                let (x, y) = (
                    on(&ab[0], d).detach().requires_grad(),
                    on(&ab[1], d).detach().requires_grad(),
                );
                let y01 = if name.starts_with("bce") {
                    y.sigmoid().unwrap()
                } else {
                    y.clone()
                };
                let out = loss(&x, &y01).unwrap();
                out.sum_all().unwrap().backward().unwrap();
                [
                    out,
                    x.grad().unwrap(),
                    y.grad().unwrap_or_else(|| y.zeros_like().unwrap()),
                ]
            };
            let (want, got) = (run(&Device::Cpu), run(&gpu));
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(g.device(), gpu, "{name} {dtype:?}");
                common::assert_values(&format!("{name} {dtype:?}"), g, w, atol * 4.0, rtol * 4.0);
            }
        }
    }
}

/// On the emulated device, the sweep above launches the unary and binary kernels of
/// every float dtype (the new losses are cases of them).
#[test]
fn every_loss_kernel_is_launched() {
    if common::launches("binary_f32").is_none() {
        eprintln!("skipped: launch counts exist only on the emulated device");
        return;
    }
    cuda_pointwise_losses_match_the_cpu_in_every_float_dtype();
    for dtype in ["f32", "f64", "f16", "bf16"] {
        for kernel in ["unary", "binary"] {
            let name = format!("{kernel}_{dtype}");
            assert!(common::launches(&name).unwrap() > 0, "{name} never ran");
        }
    }
}
