//! scaled_dot_product_attention against PyTorch (scripts/golden/attention.py holds
//! each case's call): the output and the gradients of q, k and v, on both paths (the
//! fused op and the math composition), causal (L = S, L < S, L > S), boolean and
//! additive masks, a row that may attend nowhere, head dims 16 to 128, f64, f32 and
//! BF16; the fused op against the math path for broadcast and strided operands and
//! across many of the CPU kernel's blocks (head dims 8 to 256); an
//! f64 gradcheck of the fused op; dropout's mode; and bad input.

mod common;

use common::rng::uniform;
use common::{assert_values, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional::{self as F, SdpaBackend, SdpaOpts};
use kiln::{DType, Device, Error, Result, Tensor};

/// The golden cases: (name, causal).
const CASES: [(&str, bool); 11] = [
    ("plain", false),
    ("causal", true),
    ("causal_l_lt_s", true),
    ("causal_l_gt_s", true),
    ("bool_mask", false),
    ("float_mask", false),
    ("hd64", false),
    ("hd128", true),
    ("rank3", false),
    ("causal_and_mask", true),
    ("f32_causal", true),
];

fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

/// Runs golden `case` on `dev` in `dtype` with `backend`: output and the three
/// gradients within `tol` (absolute and relative, on the CPU).
fn check_case(
    case: &str,
    causal: bool,
    dev: &Device,
    dtype: DType,
    backend: SdpaBackend,
    tol: f64,
) {
    let g = Golden::load("attention");
    let key = |k: &str| format!("{case}.{k}");
    let get = |k: &str| g.on(&key(k), dev).to_dtype(dtype).unwrap();
    let (q, k, v) = (
        get("q").requires_grad(),
        get("k").requires_grad(),
        get("v").requires_grad(),
    );
    // "causal_and_mask" stores the product of its mask and the triangle; the mask
    // given here is the product too, and `causal` applies the triangle once more.
    let mask = ["bool_mask", "float_mask", "causal_and_mask", "f32_mask"]
        .contains(&case)
        .then(|| {
            let m = g.on(&key("mask"), dev);
            if m.dtype() == DType::U8 {
                m
            } else {
                m.to_dtype(dtype).unwrap()
            }
        });
    let scale = g.get(&key("scale")).item::<f64>().unwrap();
    let mut opts = SdpaOpts::new().causal(causal).scale(scale).backend(backend);
    if let Some(m) = &mask {
        opts = opts.mask(m);
    }
    let y = F::scaled_dot_product_attention(&q, &k, &v, opts).unwrap();
    assert_eq!(y.dtype(), dtype);
    let what = format!("{case} {dtype:?} {backend:?}");
    let close = |got: &Tensor, want: &str| {
        assert_eq!(got.device(), *dev, "{what}: {want} on the wrong device");
        let (datol, drtol) = common::device_tol(dtype, dev);
        assert_values(
            &format!("{what}: {want}"),
            got,
            &g.get(&key(want)),
            tol.max(datol),
            tol.max(drtol),
        );
    };
    close(&y, "out");
    y.mul(&get("gout"))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    close(&q.grad().unwrap(), "grad_q");
    close(&k.grad().unwrap(), "grad_k");
    close(&v.grad().unwrap(), "grad_v");
}

/// Pseudo-random f64 values in [-2, 2) from a seed.
fn randn(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(uniform(n, seed, -2.0, 2.0), shape, dev).unwrap()
}

/// Output and gradients of q, k, v under `opts`'s backend, for a fresh graph.
fn run(q: &Tensor, k: &Tensor, v: &Tensor, opts: SdpaOpts, gout_seed: u64) -> Vec<Tensor> {
    let (q, k, v) = (
        q.detach().requires_grad(),
        k.detach().requires_grad(),
        v.detach().requires_grad(),
    );
    let y = F::scaled_dot_product_attention(&q, &k, &v, opts).unwrap();
    let gout = randn(y.shape(), gout_seed, &y.device())
        .to_dtype(y.dtype())
        .unwrap();
    y.mul(&gout).unwrap().sum_all().unwrap().backward().unwrap();
    vec![y, q.grad().unwrap(), k.grad().unwrap(), v.grad().unwrap()]
}

device_test! {
    fn fused_sdpa_matches_pytorch_in_f64(dev) {
        for (case, causal) in CASES.iter().filter(|(c, _)| !c.starts_with("f32")) {
            check_case(case, *causal, dev, DType::F64, SdpaBackend::Fused, 1e-10);
        }
    }

    fn math_sdpa_matches_pytorch_in_f64(dev) {
        for (case, causal) in CASES.iter().filter(|(c, _)| !c.starts_with("f32")) {
            check_case(case, *causal, dev, DType::F64, SdpaBackend::Math, 1e-10);
        }
    }

    fn both_paths_match_pytorch_in_f32(dev) {
        for backend in [SdpaBackend::Fused, SdpaBackend::Math] {
            check_case("f32_causal", true, dev, DType::F32, backend, 1e-5);
            check_case("f32_mask", false, dev, DType::F32, backend, 1e-5);
        }
    }

    /// BF16 inputs (the f32 cases, rounded) against PyTorch's f32 results: within
    /// a few BF16 roundings of the values involved.
    fn both_paths_match_pytorch_in_bf16(dev) {
        for backend in [SdpaBackend::Fused, SdpaBackend::Math] {
            check_case("f32_causal", true, dev, DType::BF16, backend, 6e-2);
            check_case("f32_mask", false, dev, DType::BF16, backend, 6e-2);
        }
    }

    /// A query row that may attend to no key gives 0 and passes no gradient
    /// (PyTorch 2.15), on both paths, with boolean and additive masks.
    fn a_fully_masked_row_gives_zeros_not_nan(dev) {
        let (q, k, v) = (randn(&[1, 2, 3, 8], 1, dev), randn(&[1, 2, 4, 8], 2, dev), randn(&[1, 2, 4, 8], 3, dev));
        let allowed = Tensor::from_vec(vec![1u8, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1], &[3, 4], &Device::Cpu)
            .unwrap()
            .to_device(dev)
            .unwrap();
        let additive = allowed.to_dtype(DType::F64).unwrap().log().unwrap();
        for mask in [&allowed, &additive] {
            for backend in [SdpaBackend::Fused, SdpaBackend::Math] {
                let r = run(&q, &k, &v, SdpaOpts::new().mask(mask).backend(backend), 4);
                let out = common::host(&r[0]);
                let dq = common::host(&r[1]);
                for h in 0..2 {
                    for c in 0..8 {
                        assert_eq!(out[(h * 3 + 1) * 8 + c], 0.0, "{backend:?} output");
                        assert_eq!(dq[(h * 3 + 1) * 8 + c], 0.0, "{backend:?} grad_q");
                    }
                }
                assert!(r.iter().all(|t| common::host(t).iter().all(|x| x.is_finite())));
            }
        }
    }

    /// The fused op agrees with the math path where only kiln can be asked: k and v
    /// broadcast over heads, q a transposed view, five leading dims, a mask broadcast
    /// over some of them, causal with EV != E.
    fn fused_matches_math_for_broadcast_and_strided_operands(dev) {
        // q stored (N, L, H, E) and seen as (N, H, L, E), as after a head split.
        let q = randn(&[2, 5, 3, 8], 10, dev).transpose(1, 2).unwrap();
        let k = randn(&[2, 1, 7, 8], 11, dev);
        let v = randn(&[2, 1, 7, 6], 12, dev);
        let mask = randn(&[3, 1, 7], 13, dev).gt_scalar(-0.5).unwrap();
        let q5 = randn(&[2, 1, 2, 3, 4, 8], 14, dev).reshape(&[2, 2, 3, 4, 8]).unwrap();
        let k5 = randn(&[2, 2, 1, 6, 8], 15, dev);
        let v5 = randn(&[1, 2, 3, 6, 5], 16, dev);
        let fmask = randn(&[2, 1, 1, 4, 6], 17, dev);
        let cases: [(&Tensor, &Tensor, &Tensor, Option<&Tensor>, bool); 4] = [
            (&q, &k, &v, None, true),
            (&q, &k, &v, Some(&mask), false),
            (&q5, &k5, &v5, Some(&fmask), false),
            (&q5, &k5, &v5, None, true),
        ];
        for (i, (q, k, v, mask, causal)) in cases.into_iter().enumerate() {
            let opts = |backend| {
                let o = SdpaOpts::new().causal(causal).backend(backend);
                match mask {
                    Some(m) => o.mask(m),
                    None => o,
                }
            };
            let fused = run(q, k, v, opts(SdpaBackend::Fused), 20);
            let math = run(q, k, v, opts(SdpaBackend::Math), 20);
            for (j, (f, m)) in fused.iter().zip(&math).enumerate() {
                assert_values(&format!("case {i} result {j}"), f, m, 1e-10, 1e-10);
            }
        }
    }

    /// The fused op against the math path on sequences longer than one block of the
    /// CPU kernels (query tiles of 32 and 64, key tiles of 128, short last tiles),
    /// causal with L > S and L < S, with boolean and additive masks, head dims 8 to
    /// 256 (the CUDA fused op takes up to 128: larger ones run Auto there), in f64
    /// and f32.
    fn fused_matches_math_across_many_tiles(dev) {
        let cases: [([usize; 6], bool, Option<DType>, DType); 6] = [
            ([1, 2, 150, 140, 8, 8], true, None, DType::F64),
            ([1, 2, 70, 300, 16, 12], true, Some(DType::U8), DType::F64),
            ([2, 1, 200, 130, 24, 24], false, Some(DType::F64), DType::F64),
            ([1, 1, 40, 260, 256, 256], true, None, DType::F64),
            ([1, 2, 150, 140, 32, 32], true, None, DType::F32),
            ([1, 1, 33, 129, 8, 8], false, Some(DType::U8), DType::F32),
        ];
        for (i, ([n, h, l, s, e, ev], causal, mask, dtype)) in cases.into_iter().enumerate() {
            let seed = 100 + 10 * i as u64;
            let t = |shape: &[usize], seed| randn(shape, seed, dev).to_dtype(dtype).unwrap();
            let (q, k, v) = (t(&[n, h, l, e], seed), t(&[n, h, s, e], seed + 1), t(&[n, h, s, ev], seed + 2));
            let mask = mask.map(|m| {
                let r = randn(&[l, s], seed + 3, dev);
                if m == DType::U8 { r.gt_scalar(-1.0).unwrap() } else { r.to_dtype(dtype).unwrap() }
            });
            let fused = if dev.is_cpu() || e <= 128 { SdpaBackend::Fused } else { SdpaBackend::Auto };
            let opts = |backend| {
                let o = SdpaOpts::new().causal(causal).backend(backend);
                match &mask {
                    Some(m) => o.mask(m),
                    None => o,
                }
            };
            let got = run(&q, &k, &v, opts(fused), seed + 4);
            let want = run(&q, &k, &v, opts(SdpaBackend::Math), seed + 4);
            let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_values(&format!("case {i} result {j}"), g, w, tol, tol);
            }
        }
    }

    fn fused_sdpa_passes_gradcheck_in_f64(dev) {
        let q = randn(&[1, 2, 4, 5], 30, dev);
        let k = randn(&[1, 2, 6, 5], 31, dev);
        let v = randn(&[1, 2, 6, 3], 32, dev);
        let mask = randn(&[4, 6], 33, dev);
        let allowed = randn(&[2, 4, 6], 34, dev).gt_scalar(-0.8).unwrap();
        let opts = GradcheckOpts { eps: 1e-6, atol: 1e-7, rtol: 1e-5 };
        for causal in [false, true] {
            gradcheck(
                |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2],
                    SdpaOpts::new().causal(causal).mask(&mask).backend(SdpaBackend::Fused)),
                &[q.clone(), k.clone(), v.clone()],
                opts,
            )
            .unwrap();
            gradcheck(
                |x| F::scaled_dot_product_attention(&x[0], &x[1], &x[2],
                    SdpaOpts::new().causal(causal).mask(&allowed).scale(0.7).backend(SdpaBackend::Fused)),
                &[q.clone(), k.clone(), v.clone()],
                opts,
            )
            .unwrap();
        }
    }

    /// Dropout needs the mode: in training the weights are dropped (the math path,
    /// whose result differs from the undropped one), in eval the call is the fused op.
    fn dropout_follows_the_mode(dev) {
        let (q, k, v) = (randn(&[1, 2, 6, 8], 40, dev), randn(&[1, 2, 6, 8], 41, dev), randn(&[1, 2, 6, 8], 42, dev));
        let plain = F::scaled_dot_product_attention(&q, &k, &v, SdpaOpts::new().backend(SdpaBackend::Fused)).unwrap();
        let eval = F::scaled_dot_product_attention(&q, &k, &v, SdpaOpts::new().dropout(0.5, false)).unwrap();
        assert_values("eval", &eval, &plain, 0.0, 0.0);
        let train = F::scaled_dot_product_attention(&q, &k, &v, SdpaOpts::new().dropout(0.5, true)).unwrap();
        let diff = train.sub(&plain).unwrap().abs().unwrap().sum_all().unwrap().item::<f64>().unwrap();
        assert!(diff > 1e-3, "training with p = 0.5 left the output unchanged");
        assert_eq!(train.device(), *dev);
    }

    /// Under BF16 autocast, f32 q, k, v and an f32 mask run in BF16 (PyTorch's
    /// lower-precision list), and the result stays within BF16 roundings of f32's.
    fn autocast_runs_attention_in_bf16(dev) {
        let f32 = |t: Tensor| t.to_dtype(DType::F32).unwrap();
        let (q, k, v) = (f32(randn(&[1, 2, 5, 16], 60, dev)), f32(randn(&[1, 2, 7, 16], 61, dev)), f32(randn(&[1, 2, 7, 16], 62, dev)));
        let mask = f32(randn(&[5, 7], 63, dev));
        let opts = SdpaOpts::new().causal(true).mask(&mask);
        let want = F::scaled_dot_product_attention(&q, &k, &v, opts).unwrap();
        let got = {
            let _ac = kiln::autocast(DType::BF16).unwrap();
            F::scaled_dot_product_attention(&q, &k, &v, opts).unwrap()
        };
        assert_eq!((got.dtype(), got.device()), (DType::BF16, *dev));
        assert_values("autocast", &got, &want, 5e-2, 5e-2);
    }

    fn bad_input_is_an_error_naming_the_argument(dev) {
        let (q, k, v) = (randn(&[1, 2, 3, 4], 50, dev), randn(&[1, 2, 5, 4], 51, dev), randn(&[1, 2, 5, 4], 52, dev));
        let sdpa = |q: &Tensor, k: &Tensor, v: &Tensor, o| F::scaled_dot_product_attention(q, k, v, o);
        let o = SdpaOpts::new;
        assert_invalid_arg(sdpa(&q.to_dtype(DType::I64).unwrap(), &k, &v, o()), "query");
        assert_invalid_arg(sdpa(&q.reshape(&[24]).unwrap(), &k, &v, o()), "query");
        assert_invalid_arg(sdpa(&q, &k.narrow(3, 0, 3).unwrap(), &v, o()), "key");
        assert_invalid_arg(sdpa(&q, &k, &v.narrow(2, 0, 4).unwrap(), o()), "value");
        assert_invalid_arg(sdpa(&q, &k, &v.to_dtype(DType::F32).unwrap(), o()), "value");
        assert_invalid_arg(sdpa(&q, &randn(&[1, 3, 5, 4], 53, dev), &v, o()), "key");
        let wrong_shape = Tensor::ones(&[3, 4], DType::U8, dev).unwrap();
        assert_invalid_arg(sdpa(&q, &k, &v, o().mask(&wrong_shape)), "mask");
        let wrong_dtype = Tensor::ones(&[3, 5], DType::I64, dev).unwrap();
        assert_invalid_arg(sdpa(&q, &k, &v, o().mask(&wrong_dtype)), "mask");
        assert_invalid_arg(sdpa(&q, &k, &v, o().scale(f64::NAN)), "scale");
        assert_invalid_arg(sdpa(&q, &k, &v, o().dropout(1.5, true)), "dropout");
        assert_invalid_arg(sdpa(&q, &k, &v, o().dropout(0.1, true).backend(SdpaBackend::Fused)), "backend");
        if !dev.is_cpu() {
            let on_cpu = q.to_device(&Device::Cpu).unwrap();
            assert_invalid_arg(sdpa(&on_cpu, &k, &v, o()), "key");
        }
    }
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The fused attention kernels on every float dtype against the CPU backend
/// (tests/common/parity.rs), and the check that these tests launch every kernel of
/// kernels/attention.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{Device, Result, Tensor};

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

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/attention.cu.
    #[test]
    fn every_attention_kernel_is_launched() {
        let suite: [fn(); 1] = [attention_matches_the_cpu_in_every_float_dtype];
        assert_every_kernel_launched("attention", &suite, &[]);
    }
}
