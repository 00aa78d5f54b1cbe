//! The fused step of the recurrent layers: after a time step's GEMMs, the gate
//! nonlinearities and the state update in one op (one kernel on CUDA), as cuDNN and
//! PyTorch's `_thnn_fused_lstm_cell` / `_thnn_fused_gru_cell` compute them. `nn::LSTM`,
//! `nn::GRU`, `nn::RNN` and the cells run one of these per step.
//!
//! `input_gates` and `hidden_gates` are `(N, G·H)` — the input and hidden
//! projections with their biases (`x·W_ihᵀ + b_ih`, `h·W_hhᵀ + b_hh`), PyTorch's gate
//! order. The forward saves the activated gates (and the LSTM's `tanh c'`) for the
//! backward, which with the previous state and the output's gradient is one more
//! pointwise pass: it re-derives nothing and keeps neither projection alive.

use crate::autograd::record;
use crate::backend::rnn::{CellLayouts, CellOp, CellParams};
use crate::tensor::StorageLocks;
use crate::{Error, Result, Tensor};

/// One LSTM step: with `i, f, g, o` the four `(N, H)` blocks of
/// `input_gates + hidden_gates` `(N, 4H)`, `c' = σ(f)·cx + σ(i)·tanh(g)` and
/// `h' = σ(o)·tanh(c')`; returns `(h', c')`. Gradients flow to all three inputs.
///
/// Errors name the argument: `input_gates` unless it is a float `(N, 4H)`;
/// `hidden_gates` unless it matches; `cx` unless it is `(N, H)` of their dtype and
/// device.
pub fn fused_lstm_cell(
    input_gates: &Tensor,
    hidden_gates: &Tensor,
    cx: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let out = cell(CellOp::Lstm, input_gates, hidden_gates, Some(cx))?;
    let h = out.shape()[1] / 2;
    Ok((out.narrow(1, 0, h)?, out.narrow(1, h, h)?))
}

/// One GRU step: with `r, z, n` the three `(N, H)` blocks of the gates `(N, 3H)`,
/// `r = σ(i_r + h_r)`, `z = σ(i_z + h_z)`, `n = tanh(i_n + r·h_n)` and
/// `h' = (1 − z)·n + z·hx`. Errors as [`fused_lstm_cell`] (`hx` for the state).
pub fn fused_gru_cell(input_gates: &Tensor, hidden_gates: &Tensor, hx: &Tensor) -> Result<Tensor> {
    cell(CellOp::Gru, input_gates, hidden_gates, Some(hx))
}

/// One Elman RNN step with tanh: `tanh(input_gates + hidden_gates)`, both `(N, H)`.
pub fn fused_rnn_tanh_cell(input_gates: &Tensor, hidden_gates: &Tensor) -> Result<Tensor> {
    cell(CellOp::RnnTanh, input_gates, hidden_gates, None)
}

/// One Elman RNN step with ReLU: `relu(input_gates + hidden_gates)`, both `(N, H)`.
pub fn fused_rnn_relu_cell(input_gates: &Tensor, hidden_gates: &Tensor) -> Result<Tensor> {
    cell(CellOp::RnnRelu, input_gates, hidden_gates, None)
}

/// The step `op` (see `backend::rnn`): checks, autocast, the primitive and its backward.
fn cell(op: CellOp, gi: &Tensor, gh: &Tensor, state: Option<&Tensor>) -> Result<Tensor> {
    // Under autocast the gates come from BF16/F16 GEMMs while the LSTM's cell state may
    // be f32: the step runs in the widest dtype, as PyTorch's binary ops would.
    if let Some(y) =
        crate::tensor::autocast::promote([gi, gh], [state], |[gi, gh], [s]| cell(op, gi, gh, s))
    {
        return y;
    }
    let _op = crate::profiler::op(op.name(), &[gi, gh]);
    let p = check(op, gi, gh, state)?;
    // The RNN has no state: gi stands in for it and is not read.
    let s = state.unwrap_or(gi);
    let (out, saved) = {
        let locks = StorageLocks::read(&[gi, gh, s]);
        let l = CellLayouts {
            gi: gi.layout(),
            gh: gh.layout(),
            s: s.layout(),
        };
        locks
            .get(0)
            .rnn_cell_forward(locks.get(1), locks.get(2), &l, &p)?
    };
    let out = Tensor::from_storage(out, &[p.rows, op.out_width() * p.hidden]);
    let saved = Tensor::from_storage(saved, &[p.rows, op.saved() * p.hidden]);
    // The state's values as they are now; the RNN's stand-in (never read) is `saved`,
    // so that no input projection is kept alive.
    let s = if op.has_state() {
        s.detach()
    } else {
        saved.clone()
    };
    let mut inputs = vec![gi, gh];
    inputs.extend(state);
    Ok(record(out, op.name(), &inputs, move |_, g| {
        let (dgi, dgh, ds) = {
            let locks = StorageLocks::read(&[&saved, &s, g]);
            locks.get(0).rnn_cell_backward(
                locks.get(1),
                locks.get(2),
                s.layout(),
                g.layout(),
                &p,
            )?
        };
        let gates = [p.rows, op.gates() * p.hidden];
        let dgi = Tensor::from_storage(dgi, &gates);
        // The LSTM's and the RNN's gates are sums of gi and gh: one gradient for both.
        let dgh = match dgh {
            Some(d) => Tensor::from_storage(d, &gates),
            None => dgi.clone(),
        };
        let mut grads = vec![Some(dgi), Some(dgh)];
        grads.extend(ds.map(|d| Some(Tensor::from_storage(d, &[p.rows, p.hidden]))));
        Ok(grads)
    }))
}

/// The step's sizes; Err naming the first argument that does not fit.
fn check(op: CellOp, gi: &Tensor, gh: &Tensor, state: Option<&Tensor>) -> Result<CellParams> {
    let g = op.gates();
    let ok = gi.rank() == 2 && gi.dtype().is_float() && gi.shape()[1].is_multiple_of(g);
    if !ok {
        return Err(Error::arg(
            "input_gates",
            format!(
                "needs a float (N, {g}·H) tensor, got {:?} {:?}",
                gi.dtype(),
                gi.shape()
            ),
        ));
    }
    let (rows, hidden) = (gi.shape()[0], gi.shape()[1] / g);
    if gh.shape() != gi.shape() || gh.dtype() != gi.dtype() || gh.device() != gi.device() {
        return Err(Error::arg(
            "hidden_gates",
            format!(
                "needs input_gates' {:?} {:?} on {}, got {:?} {:?} on {}",
                gi.dtype(),
                gi.shape(),
                gi.device(),
                gh.dtype(),
                gh.shape(),
                gh.device()
            ),
        ));
    }
    if let Some(s) = state {
        let name = if op == CellOp::Lstm { "cx" } else { "hx" };
        if s.shape() != [rows, hidden] || s.dtype() != gi.dtype() || s.device() != gi.device() {
            return Err(Error::arg(
                name,
                format!(
                    "needs {:?} ({rows}, {hidden}) on {}, got {:?} {:?} on {}",
                    gi.dtype(),
                    gi.device(),
                    s.dtype(),
                    s.shape(),
                    s.device()
                ),
            ));
        }
    }
    Ok(CellParams { op, rows, hidden })
}
