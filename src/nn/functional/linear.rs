//! `linear`: `x · weightᵀ + bias` over the last dimension of `x`.
//!
//! One recorded op (rather than matmul + add) so that backward computes only the
//! gradients that are needed: a first layer's input usually needs none.

use crate::autograd::{is_grad_enabled, no_grad, record};
use crate::backend::matmul::Activation;
use crate::{Error, Result, Tensor};

/// `input · weightᵀ + bias` like `torch.nn.functional.linear`: `input` (…, in) of any
/// rank ≥ 1, `weight` (out, in), `bias` (out); the result is (…, out).
///
/// Errors name the argument: a rank-0 input, a weight that is not 2-D, an input
/// whose last dimension is not `in`, a bias not of shape (out), and dtype or device
/// mismatches.
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if let Some(y) =
        crate::tensor::autocast::lower([input, weight], [bias], |[x, w], [b]| linear(x, w, b))
    {
        return y;
    }
    let _op = crate::profiler::op("linear", &[input, weight]);
    input.check_float("linear")?;
    input.check_same_dtype("linear weight", weight)?;
    input.check_same_device("linear weight", weight)?;
    let [out_f, in_f] = weight.shape()[..] else {
        return Err(Error::arg(
            "weight",
            format!(
                "expected (out_features, in_features), got shape {:?}",
                weight.shape()
            ),
        ));
    };
    if input.rank() == 0 || input.shape()[input.rank() - 1] != in_f {
        return Err(Error::arg(
            "input",
            format!(
                "last dimension must be in_features = {in_f} (weight {:?}), got shape {:?}",
                weight.shape(),
                input.shape()
            ),
        ));
    }
    if let Some(b) = bias {
        input.check_same_dtype("linear bias", b)?;
        input.check_same_device("linear bias", b)?;
        if b.shape() != [out_f] {
            return Err(Error::arg(
                "bias",
                format!("expected shape [{out_f}], got {:?}", b.shape()),
            ));
        }
    }
    let rows: usize = input.shape()[..input.rank() - 1].iter().product();
    let mut out_shape = input.shape().to_vec();
    *out_shape.last_mut().expect("rank checked ≥ 1") = out_f;
    let (x2, w) = (
        input.detach().reshape(&[rows, in_f])?.contiguous()?,
        weight.detach(),
    );
    let out = {
        let _guard = no_grad();
        // The bias in the GEMM's epilogue where the backend fuses (cuBLASLt, or kiln's
        // CUDA kernels).
        let y = match x2.linear_fused(&w, bias, Activation::None)? {
            Some(y) => y,
            None => {
                let y = x2.matmul(&w.transpose(0, 1)?)?;
                match bias {
                    Some(b) => y.add(&b.detach())?,
                    None => y,
                }
            }
        };
        y.reshape(&out_shape)?
    };
    let need = [
        input.requires_grad_flag(),
        weight.requires_grad_flag(),
        bias.is_some_and(|b| b.requires_grad_flag()),
    ];
    let x_shape = input.shape().to_vec();
    let mut inputs = vec![input, weight];
    inputs.extend(bias);
    Ok(record(out, "linear", &inputs, move |_, g| {
        let g2 = g.reshape(&[rows, out_f])?;
        let gx = need[0]
            .then(|| g2.matmul(&w)?.reshape(&x_shape))
            .transpose()?;
        // Weight and bias gradients from one GEMM where the backend fuses (cuBLASLt's
        // BGRADB epilogue sums gᵀ over the rows it contracts).
        let fused = match need {
            [_, true, true] => g2.transpose(0, 1)?.matmul_bias_grad(&x2)?,
            _ => None,
        };
        let (gw, gb) = match fused {
            Some((gw, gb)) => (Some(gw), Some(gb)),
            None => (
                need[1]
                    .then(|| g2.transpose(0, 1)?.matmul(&x2))
                    .transpose()?,
                need[2].then(|| g2.sum(0, false)).transpose()?,
            ),
        };
        let mut grads = vec![gx, gw];
        if need[2] {
            grads.push(gb);
        }
        Ok(grads)
    }))
}

/// The activation [`linear_act`] applies after the affine map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinearAct {
    /// [`relu`](super::relu).
    Relu,
    /// [`gelu`](super::gelu), the exact (erf) form.
    Gelu,
    /// [`gelu_tanh`](super::gelu_tanh), the tanh approximation.
    GeluTanh,
}

/// `act(input · weightᵀ + bias)`: [`linear`] followed by the activation, with the same
/// arguments, errors and results as that composition.
///
/// On a device whose GEMM is cuBLASLt the work is fused into the GEMM's epilogue
/// where cuBLASLt has one: bias + ReLU or bias + tanh-GELU in one kernel when no
/// gradient is recorded (inference, [`no_grad`](crate::no_grad)); when a graph is
/// recorded, the bias is fused (as in [`linear`]) and the activation runs as its own op,
/// whose backward needs the pre-activation. cuBLASLt has no exact-GELU epilogue, so
/// [`LinearAct::Gelu`] fuses the bias only. kiln's own CUDA GEMM fuses the same way
/// (bias + ReLU or tanh-GELU in its kernels' epilogue); on the CPU it is the
/// composition.
pub fn linear_act(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    act: LinearAct,
) -> Result<Tensor> {
    if let Some(y) = crate::tensor::autocast::lower([input, weight], [bias], |[x, w], [b]| {
        linear_act(x, w, b, act)
    }) {
        return y;
    }
    let fusable = match act {
        LinearAct::Relu => Some(Activation::Relu),
        LinearAct::GeluTanh => Some(Activation::GeluTanh),
        LinearAct::Gelu => None,
    };
    let records = is_grad_enabled()
        && (input.requires_grad_flag()
            || weight.requires_grad_flag()
            || bias.is_some_and(|b| b.requires_grad_flag()));
    if let (Some(fused), false, &[out_f, in_f]) = (fusable, records, weight.shape()) {
        // Argument checks are linear's: only inputs it accepts reach the fused path.
        let valid = input.rank() >= 1
            && input.shape()[input.rank() - 1] == in_f
            && input.dtype() == weight.dtype()
            && input.device() == weight.device()
            && input.dtype().is_float()
            && bias.is_none_or(|b| {
                b.shape() == [out_f] && b.dtype() == input.dtype() && b.device() == input.device()
            });
        if valid {
            let rows: usize = input.shape()[..input.rank() - 1].iter().product();
            let x2 = input.reshape(&[rows, in_f])?.contiguous()?;
            if let Some(y) = x2.linear_fused(weight, bias, fused)? {
                let mut out_shape = input.shape().to_vec();
                *out_shape.last_mut().expect("rank checked >= 1") = out_f;
                return y.reshape(&out_shape);
            }
        }
    }
    let y = linear(input, weight, bias)?;
    match act {
        LinearAct::Relu => super::relu(&y),
        LinearAct::Gelu => super::gelu(&y),
        LinearAct::GeluTanh => super::gelu_tanh(&y),
    }
}
