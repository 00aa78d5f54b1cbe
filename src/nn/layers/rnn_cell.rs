//! The pieces every recurrent layer shares: the weights of one direction of one layer
//! with PyTorch's names, the per-step gate arithmetic of the RNN, LSTM and GRU, and
//! the single-step modules [`LSTMCell`] and [`GRUCell`].
//!
//! One step is one GEMM of the hidden state with `weight_hh` (the input projection of
//! all steps is computed before the loop, as one GEMM) and the fused gate update
//! ([`step`]: one kernel on CUDA, forward and backward).

use super::Activation;
use crate::nn::functional as F;
use crate::nn::summary::py_bool;
use crate::nn::{init, Forward, Member, Mode, Module, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// Which recurrence a layer runs, and its gate count (PyTorch's gate order: LSTM
/// `i, f, g, o`; GRU `r, z, n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellKind {
    /// `h' = act(W_ih·x + b_ih + W_hh·h + b_hh)`.
    Rnn(Activation),
    /// The long short-term memory: 4 gates and a cell state.
    Lstm,
    /// The gated recurrent unit: 3 gates.
    Gru,
}

impl CellKind {
    /// Rows of `weight_ih` per hidden unit.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

/// The weights of one direction of one layer: `weight_ih (G·H, in)`, `weight_hh
/// (G·H, out)`, the optional biases `(G·H)` and the LSTM's projection `weight_hr
/// (proj, H)`, all drawn from U(±1/√H) as PyTorch's.
#[derive(Debug)]
pub(super) struct CellWeights {
    pub w_ih: Parameter,
    pub w_hh: Parameter,
    pub b_ih: Option<Parameter>,
    pub b_hh: Option<Parameter>,
    pub w_hr: Option<Parameter>,
}

impl CellWeights {
    /// Weights for inputs of `input` features, `hidden` units and outputs of `proj`
    /// features (0: no projection).
    pub fn new(
        kind: CellKind,
        [input, hidden, proj]: [usize; 3],
        bias: bool,
        device: &Device,
    ) -> Result<CellWeights> {
        let bound = 1.0 / (hidden as f64).sqrt();
        let u = |shape: &[usize]| {
            Parameter::new(init::uniform(shape, -bound, bound, DType::F32, device)?)
        };
        let rows = kind.gates() * hidden;
        let out = if proj > 0 { proj } else { hidden };
        Ok(CellWeights {
            w_ih: u(&[rows, input])?,
            w_hh: u(&[rows, out])?,
            b_ih: bias.then(|| u(&[rows])).transpose()?,
            b_hh: bias.then(|| u(&[rows])).transpose()?,
            w_hr: (proj > 0).then(|| u(&[proj, hidden])).transpose()?,
        })
    }

    /// Reports the parameters named with PyTorch's `suffix` (`_l0`, `_l1_reverse`, or
    /// none for a cell).
    pub fn visit<'a>(&'a self, suffix: &str, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visitor(&format!("weight_ih{suffix}"), Member::Parameter(&self.w_ih));
        visitor(&format!("weight_hh{suffix}"), Member::Parameter(&self.w_hh));
        if let (Some(b_ih), Some(b_hh)) = (&self.b_ih, &self.b_hh) {
            visitor(&format!("bias_ih{suffix}"), Member::Parameter(b_ih));
            visitor(&format!("bias_hh{suffix}"), Member::Parameter(b_hh));
        }
        if let Some(w_hr) = &self.w_hr {
            visitor(&format!("weight_hr{suffix}"), Member::Parameter(w_hr));
        }
    }

    /// `W_ih·x + b_ih` for every row of `x (.., in)`: the input projection, one GEMM.
    pub fn project_input(&self, x: &Tensor) -> Result<Tensor> {
        F::linear(x, &self.w_ih, self.b_ih.as_deref())
    }

    /// One step from the projected input `gi (N, G·H)` and the state `h (N, out)`,
    /// `c (N, H)` (LSTM): the new `(h, c)`.
    pub fn step(
        &self,
        kind: CellKind,
        gi: &Tensor,
        h: &Tensor,
        c: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let gh = F::linear(h, &self.w_hh, self.b_hh.as_deref())?;
        let (h, c) = step(kind, gi, &gh, h, c)?;
        match &self.w_hr {
            Some(w_hr) => Ok((F::linear(&h, w_hr, None)?, c)),
            None => Ok((h, c)),
        }
    }
}

/// The fused update of one step (one kernel on CUDA, [`F::fused_lstm_cell`] and
/// friends) from the input and hidden projections `gi`, `gh` `(N, G·H)` (biases
/// included), the previous hidden state `h` and, for the LSTM, cell state `c`: the new
/// `(h, c)` (before the LSTM's projection).
pub(super) fn step(
    kind: CellKind,
    gi: &Tensor,
    gh: &Tensor,
    h: &Tensor,
    c: Option<&Tensor>,
) -> Result<(Tensor, Option<Tensor>)> {
    match kind {
        CellKind::Rnn(Activation::Relu) => Ok((F::fused_rnn_relu_cell(gi, gh)?, None)),
        CellKind::Rnn(Activation::Tanh) => Ok((F::fused_rnn_tanh_cell(gi, gh)?, None)),
        CellKind::Rnn(act) => Err(Error::arg(
            "nonlinearity",
            format!("nn::RNN takes Tanh or Relu, got {act:?}"),
        )),
        CellKind::Lstm => {
            let c = c.ok_or_else(|| Error::arg("c", "the LSTM step needs a cell state"))?;
            let (h, c) = F::fused_lstm_cell(gi, gh, c)?;
            Ok((h, Some(c)))
        }
        CellKind::Gru => Ok((F::fused_gru_cell(gi, gh, h)?, None)),
    }
}

/// Err naming `name` unless `t` is `(N, features)` or `(features)` (unbatched) of a
/// float dtype.
fn check_rows(name: &'static str, t: &Tensor, features: usize) -> Result<()> {
    let ok =
        matches!(t.rank(), 1 | 2) && t.shape()[t.rank() - 1] == features && t.dtype().is_float();
    if !ok {
        return Err(Error::arg(
            name,
            format!(
                "needs a float (N, {features}) or ({features}) tensor, got {:?} {:?}",
                t.dtype(),
                t.shape()
            ),
        ));
    }
    Ok(())
}

/// A cell's step: `x (N, in)` or `(in)` and an optional state of the same batch; the
/// state is zeros when absent. Returns the new `(h, c)` in `x`'s batching.
fn cell_forward(
    kind: CellKind,
    w: &CellWeights,
    x: &Tensor,
    state: Option<(&Tensor, Option<&Tensor>)>,
) -> Result<(Tensor, Option<Tensor>)> {
    let (input, hidden) = (w.w_ih.shape()[1], w.w_hh.shape()[1]);
    check_rows("input", x, input)?;
    let unbatched = x.rank() == 1;
    let x2 = if unbatched {
        x.unsqueeze(0)?
    } else {
        x.clone()
    };
    let zeros = Tensor::zeros(&[x2.shape()[0], hidden], x.dtype(), &x.device())?;
    let as_rows = |name: &'static str, t: Option<&Tensor>| -> Result<Tensor> {
        match t {
            None => Ok(zeros.clone()),
            Some(t) => {
                check_rows(name, t, hidden)?;
                if t.rank() != x.rank() || (t.rank() == 2 && t.shape()[0] != x2.shape()[0]) {
                    return Err(Error::arg(
                        name,
                        format!(
                            "needs the input's batch: {:?}, got {:?}",
                            zeros.shape(),
                            t.shape()
                        ),
                    ));
                }
                if unbatched {
                    t.unsqueeze(0)
                } else {
                    Ok(t.clone())
                }
            }
        }
    };
    let h = as_rows("hx", state.map(|s| s.0))?;
    let c = match kind {
        CellKind::Lstm => Some(as_rows("cx", state.and_then(|s| s.1))?),
        _ => None,
    };
    let (h, c) = w.step(kind, &w.project_input(&x2)?, &h, c.as_ref())?;
    let back = |t: Tensor| if unbatched { t.squeeze(0) } else { Ok(t) };
    Ok((back(h)?, c.map(back).transpose()?))
}

macro_rules! cell_module {
    ($name:ident, $kind:expr) => {
        impl Module for $name {
            fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
                self.weights.visit("", visitor);
                visitor("", Member::Mode(&self.mode));
            }

            /// PyTorch's `extra_repr`: `input_size, hidden_size` and `bias=False` when so.
            fn extra_repr(&self) -> String {
                let w = &self.weights;
                let mut s = format!("{}, {}", w.w_ih.shape()[1], w.w_hh.shape()[1]);
                if w.b_ih.is_none() {
                    s.push_str(&format!(", bias={}", py_bool(false)));
                }
                s
            }
        }

        impl $name {
            /// A cell for `input_size` features and `hidden_size` units on `device`
            /// (F32), initialised U(±1/√hidden) as PyTorch's.
            pub fn new(input_size: usize, hidden_size: usize, device: &Device) -> Result<$name> {
                $name::with_bias(input_size, hidden_size, true, device)
            }

            /// The same, with or without the biases (`bias=False`).
            pub fn with_bias(
                input_size: usize,
                hidden_size: usize,
                bias: bool,
                device: &Device,
            ) -> Result<$name> {
                for (name, n) in [("input_size", input_size), ("hidden_size", hidden_size)] {
                    if n == 0 {
                        return Err(Error::arg(name, "must be at least 1"));
                    }
                }
                Ok($name {
                    weights: CellWeights::new($kind, [input_size, hidden_size, 0], bias, device)?,
                    mode: Mode::default(),
                })
            }
        }
    };
}

/// `nn.LSTMCell(input_size, hidden_size)`: one LSTM step with PyTorch's names
/// (`weight_ih (4H, in)`, `weight_hh (4H, H)`, `bias_ih`, `bias_hh`) and gate order
/// (input, forget, cell, output).
#[derive(Debug)]
pub struct LSTMCell {
    weights: CellWeights,
    mode: Mode,
}
cell_module!(LSTMCell, CellKind::Lstm);

impl LSTMCell {
    /// PyTorch's `cell(x, (h, c))`: `x (N, in)` or `(in)`, the state `(h, c)` of the same
    /// batching (zeros when `None`); returns the new `(h, c)`. Errors name `input`,
    /// `hx` or `cx`.
    pub fn forward_state(
        &self,
        x: &Tensor,
        state: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, Tensor)> {
        let (h, c) = cell_forward(
            CellKind::Lstm,
            &self.weights,
            x,
            state.map(|(h, c)| (h, Some(c))),
        )?;
        Ok((h, c.ok_or_else(|| Error::arg("cx", "missing"))?))
    }
}

/// `nn.GRUCell(input_size, hidden_size)`: one GRU step with PyTorch's names
/// (`weight_ih (3H, in)`, `weight_hh (3H, H)`, `bias_ih`, `bias_hh`) and gate order
/// (reset, update, new).
#[derive(Debug)]
pub struct GRUCell {
    weights: CellWeights,
    mode: Mode,
}
cell_module!(GRUCell, CellKind::Gru);

impl GRUCell {
    /// PyTorch's `cell(x, h)`: `x (N, in)` or `(in)`, `h` of the same batching (zeros
    /// when `None`); returns the new `h`. Errors name `input` or `hx`.
    pub fn forward_state(&self, x: &Tensor, h: Option<&Tensor>) -> Result<Tensor> {
        Ok(cell_forward(CellKind::Gru, &self.weights, x, h.map(|h| (h, None)))?.0)
    }
}

impl Forward for LSTMCell {
    /// The new hidden state `h` from a zero state.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_state(x, None)?.0)
    }
}

impl Forward for GRUCell {
    /// The new hidden state from a zero state.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_state(x, None)
    }
}
