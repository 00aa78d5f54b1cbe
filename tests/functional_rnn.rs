//! The rnn family — the fused step of the recurrent layers (`F::fused_lstm_cell`,
//! `fused_gru_cell`, `fused_rnn_tanh_cell`, `fused_rnn_relu_cell`) — against PyTorch on
//! every device (values and the gradients of both gate inputs and the state, through
//! contiguous and strided operands, and with no rows), f64 gradchecks, errors naming
//! the argument, and the CUDA kernels against the CPU backend in every float dtype.
//!
//! The fixture is `tests/data/rnn.safetensors` (`scripts/golden/rnn.py`, the `fused_*`
//! cases at its end, whose comments hold PyTorch's formulas); nn::LSTM/GRU/RNN, which
//! run these steps, are tested in tests/nn_rnn.rs.

mod common;

use common::{assert_close, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("rnn"))
}

/// The four steps, by the op's fixture name, over `[gi, gh]` or `[gi, gh, state]`: their
/// results in the fixture's order (`h`, then the LSTM's `c`).
fn step(op: &str, x: &[Tensor]) -> Result<Vec<Tensor>> {
    Ok(match op {
        "lstm" => {
            let (h, c) = F::fused_lstm_cell(&x[0], &x[1], &x[2])?;
            vec![h, c]
        }
        "gru" => vec![F::fused_gru_cell(&x[0], &x[1], &x[2])?],
        "rnn_tanh" => vec![F::fused_rnn_tanh_cell(&x[0], &x[1])?],
        "rnn_relu" => vec![F::fused_rnn_relu_cell(&x[0], &x[1])?],
        _ => unreachable!("no op {op}"),
    })
}

/// The operand names an op takes and the results it gives.
fn names(op: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match op {
        "lstm" => (&["gi", "gh", "s"], &["h", "c"]),
        "gru" => (&["gi", "gh", "s"], &["h"]),
        _ => (&["gi", "gh"], &["h"]),
    }
}

/// `t`'s values in a column-major (transposed, so non-contiguous) layout; gradients
/// flow back to `t`.
fn strided(t: &Tensor) -> Tensor {
    t.transpose(0, 1)
        .unwrap()
        .contiguous()
        .unwrap()
        .transpose(0, 1)
        .unwrap()
}

/// Golden case `fused_<op><suffix>` on `dev`, its operands as given or (`strided`)
/// through transposed layouts: the results, then the operands' gradients under
/// PyTorch's upstream gradients.
fn check_case(op: &str, suffix: &str, as_strided: bool, dev: &Device) {
    let g = golden();
    let case = format!("fused_{op}{suffix}");
    let (operands, results) = names(op);
    let leaves: Vec<Tensor> = operands
        .iter()
        .map(|n| g.on(&format!("{case}.{n}"), dev).requires_grad())
        .collect();
    let args: Vec<Tensor> = if as_strided {
        leaves.iter().map(strided).collect()
    } else {
        leaves.clone()
    };
    let out = step(op, &args).unwrap();
    let mut loss = Tensor::zeros(&[], DType::F64, dev).unwrap();
    for (name, r) in results.iter().zip(&out) {
        assert_close(r, &g.get(&format!("{case}.{name}")), dev, 1e-12, 1e-12);
        let upstream = g.on(&format!("{case}.g_{name}"), dev);
        loss = loss
            .add(&r.mul(&upstream).unwrap().sum_all().unwrap())
            .unwrap();
    }
    loss.backward().unwrap();
    for (name, leaf) in operands.iter().zip(&leaves) {
        let want = g.get(&format!("{case}.grad_{name}"));
        assert_close(&leaf.grad().unwrap(), &want, dev, 1e-12, 1e-12);
    }
}

common::device_test! {
    /// Each step and its gradients equal PyTorch's, with contiguous and with strided
    /// operands.
    fn steps_match_pytorch(dev) {
        for op in ["lstm", "gru", "rnn_tanh", "rnn_relu"] {
            for as_strided in [false, true] {
                check_case(op, "", as_strided, dev);
            }
        }
    }

    /// No rows: empty results and empty gradients.
    fn empty_batch(dev) {
        check_case("lstm", "_empty", false, dev);
    }

    /// Finite differences agree with every operand's gradient, through strided views.
    fn gradchecks(dev) {
        let (n, h) = (3, 4);
        for op in ["lstm", "gru", "rnn_tanh", "rnn_relu"] {
            let (operands, _) = names(op);
            let width = match op {
                "lstm" => 4 * h,
                "gru" => 3 * h,
                _ => h,
            };
            let shapes = [[n, width], [n, width], [n, h]];
            let leaves: Vec<Tensor> = shapes[..operands.len()]
                .iter()
                .map(|s| Tensor::randn(s, DType::F64, dev).unwrap().requires_grad())
                .collect();
            // One result per call: the LSTM's h and c together.
            let f = |x: &[Tensor]| -> Result<Tensor> {
                let x: Vec<Tensor> = x.iter().map(strided).collect();
                let out = step(op, &x)?;
                let flat: Vec<Tensor> = out.iter().map(|t| t.reshape(&[t.numel()])).collect::<Result<_>>()?;
                Tensor::cat(&flat.iter().collect::<Vec<_>>(), 0)
            };
            gradcheck(f, &leaves, GradcheckOpts::default()).unwrap_or_else(|e| panic!("{op}: {e}"));
        }
    }

    /// Bad operands are errors naming the argument.
    fn bad_arguments_are_errors(dev) {
        let t = |shape: &[usize], dtype: DType| Tensor::zeros(shape, dtype, dev).unwrap();
        let (gi, s) = (t(&[2, 8], DType::F32), t(&[2, 2], DType::F32));
        let invalid = |r: Result<Vec<Tensor>>, expected: &str| match r {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
            other => panic!("expected an invalid `{expected}`, got {other:?}"),
        };
        // Not (N, 4H), not 2-D, not float.
        invalid(step("lstm", &[t(&[2, 6], DType::F32), t(&[2, 6], DType::F32), s.clone()]), "input_gates");
        invalid(step("lstm", &[t(&[2, 8, 1], DType::F32), t(&[2, 8, 1], DType::F32), s.clone()]), "input_gates");
        invalid(step("rnn_tanh", &[t(&[2, 2], DType::I64), t(&[2, 2], DType::I64)]), "input_gates");
        invalid(step("gru", &[t(&[2, 6], DType::F32), t(&[2, 3], DType::F32), s.clone()]), "hidden_gates");
        invalid(step("lstm", &[gi.clone(), t(&[2, 8], DType::F64), s.clone()]), "hidden_gates");
        invalid(step("lstm", &[gi.clone(), gi.clone(), t(&[2, 3], DType::F32)]), "cx");
        invalid(step("lstm", &[gi.clone(), gi.clone(), t(&[2, 2], DType::F64)]), "cx");
        invalid(step("gru", &[t(&[2, 6], DType::F32), t(&[2, 6], DType::F32), t(&[3, 2], DType::F32)]), "hx");
        invalid(step("rnn_relu", &[t(&[2, 3], DType::F32), t(&[3, 2], DType::F32)]), "hidden_gates");
    }
}

/// Operands on different devices are an error naming the one that is off.
#[test]
fn operands_on_another_device_are_errors() {
    let Some(gpu) = common::cuda_or_skip("operands_on_another_device_are_errors") else {
        return;
    };
    let gi = Tensor::zeros(&[2, 8], DType::F32, &gpu).unwrap();
    let on_cpu = Tensor::zeros(&[2, 8], DType::F32, &Device::Cpu).unwrap();
    let s = Tensor::zeros(&[2, 2], DType::F32, &Device::Cpu).unwrap();
    for (r, expected) in [
        (
            F::fused_lstm_cell(&gi, &on_cpu, &s).map(|_| ()),
            "hidden_gates",
        ),
        (F::fused_lstm_cell(&gi, &gi, &s).map(|_| ()), "cx"),
    ] {
        match r {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
            other => panic!("expected an invalid `{expected}`, got {other:?}"),
        }
    }
}

/// The CUDA kernels against the CPU backend in every float dtype, forward and
/// backward: odd sizes, one row of one unit, more units than a block has threads, and
/// strided operands. f32/f64 within rounding of the same formulas (a GPU may contract
/// into FMAs), halves within their precision (both compute in f32 and round once).
#[test]
fn cuda_steps_match_the_cpu_in_every_float_dtype() {
    let Some(gpu) = common::cuda_or_skip("cuda_steps_match_the_cpu_in_every_float_dtype") else {
        return;
    };
    let sizes = [(3, 5, false), (1, 1, false), (2, 300, false), (7, 33, true)];
    for (n, h, as_strided) in sizes {
        for op in ["lstm", "gru", "rnn_tanh", "rnn_relu"] {
            for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
                sweep_case(op, n, h, as_strided, dtype, &gpu);
            }
        }
    }
}

/// One case of the sweep above.
fn sweep_case(op: &str, n: usize, h: usize, as_strided: bool, dtype: DType, gpu: &Device) {
    let (operands, _) = names(op);
    let width = match op {
        "lstm" => 4 * h,
        "gru" => 3 * h,
        _ => h,
    };
    let shapes = [[n, width], [n, width], [n, h]];
    let inputs: Vec<Tensor> = shapes[..operands.len()]
        .iter()
        .map(|s| {
            let x = Tensor::randn(s, DType::F64, &Device::Cpu).unwrap();
            x.mul_scalar(2.0).unwrap().to_dtype(dtype).unwrap()
        })
        .collect();
    let run = |dev: &Device| -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let leaves: Vec<Tensor> = inputs
            .iter()
            .map(|x| x.to_device(dev).unwrap().requires_grad())
            .collect();
        let args: Vec<Tensor> = if as_strided {
            leaves.iter().map(strided).collect()
        } else {
            leaves.clone()
        };
        let out = step(op, &args).unwrap();
        let mut loss: Option<Tensor> = None;
        for (k, r) in out.iter().enumerate() {
            // A fixed upstream gradient per result, the same on both devices.
            let up = Tensor::full(r.shape(), 0.5 + k as f64, dtype, dev).unwrap();
            let term = r.mul(&up).unwrap().sum_all().unwrap();
            loss = Some(match loss {
                Some(l) => l.add(&term).unwrap(),
                None => term,
            });
        }
        loss.unwrap().backward().unwrap();
        let grads = leaves.iter().map(|l| host(&l.grad().unwrap())).collect();
        (out.iter().map(host).collect(), grads)
    };
    let (want, want_grads) = run(&Device::Cpu);
    let (got, got_grads) = run(gpu);
    let tol = match dtype {
        DType::F64 => 1e-12,
        DType::F32 => 1e-5,
        DType::F16 => 4e-3,
        _ => 2e-2,
    };
    let what = format!("{op} {dtype:?} n {n} h {h} strided {as_strided}");
    for (g, w) in got
        .iter()
        .chain(&got_grads)
        .zip(want.iter().chain(&want_grads))
    {
        assert_eq!(g.len(), w.len(), "{what}");
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}: {a} vs {b}");
        }
    }
}

/// On the emulated device, the sweep above launches every kernel of kernels/rnn.cu
/// (the golden tests launch them too, but only in f64).
#[test]
fn every_rnn_kernel_is_launched() {
    let suite: [fn(); 1] = [cuda_steps_match_the_cpu_in_every_float_dtype];
    common::parity::assert_every_kernel_launched("rnn", &suite, &[]);
}
