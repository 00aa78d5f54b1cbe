//! `linear`: `x · weightᵀ + bias` over the last dimension of `x`.
//!
//! One recorded op (rather than matmul + add) so that backward computes only the
//! gradients that are needed: a first layer's input usually needs none.

use crate::autograd::{no_grad, record};
use crate::{Error, Result, Tensor};

/// `input · weightᵀ + bias` like `torch.nn.functional.linear`: `input` (…, in) of any
/// rank ≥ 1, `weight` (out, in), `bias` (out); the result is (…, out).
///
/// Errors name the argument: a rank-0 input, a weight that is not 2-D, an input
/// whose last dimension is not `in`, a bias not of shape (out), and dtype or device
/// mismatches.
pub fn linear(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if let Some(y) = crate::amp::lower([input, weight], [bias], |[x, w], [b]| linear(x, w, b)) {
        return y;
    }
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
        let y = x2.matmul(&w.transpose(0, 1)?)?;
        let y = match bias {
            Some(b) => y.add(&b.detach())?,
            None => y,
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
        let mut grads = vec![
            need[0]
                .then(|| g2.matmul(&w)?.reshape(&x_shape))
                .transpose()?,
            need[1]
                .then(|| g2.transpose(0, 1)?.matmul(&x2))
                .transpose()?,
        ];
        if need[2] {
            grads.push(Some(g2.sum(0, false)?));
        }
        Ok(grads)
    }))
}
