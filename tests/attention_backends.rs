//! Every attention backend gives one answer: each case below runs through the math
//! path and the fused op, on the CPU and on CUDA (the emulated device in CI), and the
//! results and the gradients of q, k and v must equal the CPU math path's. The cases
//! are the edges where backends drift apart: U8 masks holding values other than 0
//! and 1 (any non-zero allows, as PyTorch's bool), fully masked rows, float masks
//! with -inf, no keys (zeros, as PyTorch), no queries, an empty batch, causal with
//! L ≠ S, broadcast masks, a custom scale, head dims of 1 and odd sizes.

mod common;

use common::rng::uniform;
use common::{assert_values, device_test};
use kiln::nn::functional::{self as F, SdpaBackend, SdpaOpts};
use kiln::{DType, Device, Error, Tensor};

/// Pseudo-random values in [-2, 2) from a seed.
fn values(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(uniform(n, seed, -2.0, 2.0), shape, &Device::Cpu).unwrap()
}

/// A U8 mask of `shape` cycling through `pattern`.
fn u8_mask(shape: &[usize], pattern: &[u8]) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n).map(|i| pattern[i % pattern.len()]).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// One call: q, k, v, a mask, causal, a scale (all on the CPU).
struct Case {
    name: &'static str,
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Option<Tensor>,
    causal: bool,
    scale: Option<f64>,
}

/// `(N, H, L, S, E, EV)`, a mask, causal, scale.
fn case(
    name: &'static str,
    [n, h, l, s, e, ev]: [usize; 6],
    mask: Option<Tensor>,
    causal: bool,
    scale: Option<f64>,
) -> Case {
    Case {
        name,
        q: values(&[n, h, l, e], 1),
        k: values(&[n, h, s, e], 2),
        v: values(&[n, h, s, ev], 3),
        mask,
        causal,
        scale,
    }
}

fn cases() -> Vec<Case> {
    let fully_masked_float = u8_mask(&[3, 4], &[1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1])
        .to_dtype(DType::F64)
        .unwrap()
        .log()
        .unwrap();
    vec![
        case("plain", [1, 2, 3, 4, 8, 8], None, false, None),
        case("causal, L < S", [2, 1, 3, 5, 4, 6], None, true, None),
        case("causal, L > S", [1, 2, 5, 3, 4, 4], None, true, Some(0.3)),
        case(
            "u8 mask of 0/1",
            [1, 2, 3, 4, 8, 8],
            Some(u8_mask(&[3, 4], &[1, 0, 1])),
            false,
            None,
        ),
        case(
            "u8 mask of 0/2/255",
            [1, 2, 3, 4, 8, 8],
            Some(u8_mask(&[3, 4], &[2, 0, 255, 1])),
            false,
            None,
        ),
        case(
            "u8 mask, fully masked rows",
            [1, 2, 3, 4, 8, 8],
            Some(u8_mask(&[3, 4], &[7, 1, 0, 3, 0, 0, 0, 0, 1, 0, 9, 1])),
            true,
            None,
        ),
        case(
            "u8 mask broadcast over heads",
            [2, 3, 4, 5, 3, 2],
            Some(u8_mask(&[3, 1, 5], &[0, 4, 1, 0, 3, 2, 0])),
            false,
            None,
        ),
        case(
            "float mask with -inf rows",
            [1, 2, 3, 4, 8, 8],
            Some(fully_masked_float),
            false,
            None,
        ),
        case(
            "float mask, causal",
            [1, 1, 4, 4, 5, 3],
            Some(values(&[4, 4], 9)),
            true,
            Some(1.5),
        ),
        case("no keys", [1, 2, 3, 0, 8, 8], None, false, None),
        case(
            "no keys, masked and causal",
            [1, 2, 3, 0, 8, 8],
            Some(u8_mask(&[3, 0], &[1])),
            true,
            None,
        ),
        case("no queries", [1, 2, 0, 4, 8, 8], None, true, None),
        case("empty batch", [0, 2, 3, 4, 8, 8], None, false, None),
        case("one query, one key", [1, 1, 1, 1, 1, 1], None, true, None),
        case(
            "odd sizes",
            [3, 1, 7, 9, 5, 3],
            Some(u8_mask(&[7, 9], &[1, 1, 0, 5])),
            false,
            Some(-0.8),
        ),
    ]
}

/// The output and the gradients of q, k, v of `c` on `dev` by `backend`.
fn run(c: &Case, dev: &Device, backend: SdpaBackend) -> kiln::Result<Vec<Tensor>> {
    let leaf = |t: &Tensor| t.to_device(dev).unwrap().requires_grad();
    let (q, k, v) = (leaf(&c.q), leaf(&c.k), leaf(&c.v));
    let mask = c.mask.as_ref().map(|m| m.to_device(dev).unwrap());
    let mut opts = SdpaOpts::new().causal(c.causal).backend(backend);
    if let Some(m) = &mask {
        opts = opts.mask(m);
    }
    if let Some(s) = c.scale {
        opts = opts.scale(s);
    }
    let y = F::scaled_dot_product_attention(&q, &k, &v, opts)?;
    let gout = values(y.shape(), 4).to_device(dev)?;
    y.mul(&gout)?.sum_all()?.backward()?;
    let grad = |t: &Tensor| t.grad().expect("a gradient");
    Ok(vec![y, grad(&q), grad(&k), grad(&v)])
}

device_test! {
    /// Math and fused, on this device, equal the CPU math path in f64.
    fn every_backend_gives_the_cpu_math_answer(dev) {
        for c in cases() {
            let want = run(&c, &Device::Cpu, SdpaBackend::Math)
                .unwrap_or_else(|e| panic!("{}: the CPU math path failed: {e}", c.name));
            for backend in [SdpaBackend::Math, SdpaBackend::Fused, SdpaBackend::Auto] {
                let got = run(&c, dev, backend)
                    .unwrap_or_else(|e| panic!("{}: {backend:?} on {dev} failed: {e}", c.name));
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(g.device(), *dev);
                    let what = format!("{}: {backend:?} on {dev}, {}", c.name, ["out", "dq", "dk", "dv"][i]);
                    assert_values(&what, g, w, 1e-10, 1e-10);
                }
            }
        }
    }

    /// Where the fused op cannot run (dropout in training, a mask that needs a
    /// gradient), `Fused` is an `Err` naming `backend` and `Auto` gives the math path's
    /// answer.
    fn auto_falls_back_where_fused_cannot_run(dev) {
        let c = case("", [1, 2, 3, 4, 8, 8], None, false, None);
        let (q, k, v) = (c.q.to_device(dev).unwrap(), c.k.to_device(dev).unwrap(), c.v.to_device(dev).unwrap());
        let mask = values(&[3, 4], 5).to_device(dev).unwrap().requires_grad();
        let opts = |b| SdpaOpts::new().mask(&mask).backend(b);
        match F::scaled_dot_product_attention(&q, &k, &v, opts(SdpaBackend::Fused)) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "backend"),
            other => panic!("expected an Err naming backend, got {other:?}"),
        }
        let auto = F::scaled_dot_product_attention(&q, &k, &v, opts(SdpaBackend::Auto)).unwrap();
        let math = F::scaled_dot_product_attention(&q, &k, &v, opts(SdpaBackend::Math)).unwrap();
        assert_values("auto", &auto, &math, 0.0, 0.0);
    }
}
