//! The fused pointwise step of the recurrent layers: the gate nonlinearities and the
//! state update of one time step of an RNN, LSTM or GRU, and its backward, in one pass
//! (one kernel on CUDA) — what cuDNN fuses after each step's recurrent GEMM.
//!
//! Operands: the input projection `gi` and the hidden projection `gh`, `(N, G·H)` with
//! their biases added (G = 4 for the LSTM, gates i, f, g, o; 3 for the GRU, gates r, z,
//! n; 1 for the RNN), and the state `s (N, H)`: the LSTM's cell state, the GRU's hidden
//! state (the RNN has none: pass `gi`, it is not read).
//!
//! * LSTM: `i, f, g, o = σ, σ, tanh, σ (gi + gh)`, `c' = f·c + i·g`, `h = o·tanh(c')`;
//!   the output is `(N, 2H) = [h | c']`.
//! * GRU: `r, z = σ(gi + gh)`, `n = tanh(gi_n + r·gh_n)`, `h' = n + z·(h − n)`; `(N, H)`.
//! * RNN: `tanh` or `relu` of `gi + gh`; `(N, H)`.
//!
//! The forward also writes what the backward needs — the activated gates, `(N, S·H)`
//! (see [`CellOp::saved`]) — so the backward re-derives nothing: with the previous state
//! and the output's gradient it is one more pointwise pass.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/rnn.rs"]
mod cpu;
#[path = "cuda/ops/rnn.rs"]
mod cuda;

/// Which recurrence a step computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CellOp {
    /// The long short-term memory.
    Lstm,
    /// The gated recurrent unit.
    Gru,
    /// The Elman RNN with tanh.
    RnnTanh,
    /// The Elman RNN with ReLU.
    RnnRelu,
}

impl CellOp {
    /// Every op, for the kernels' op-code checks.
    #[cfg(test)]
    pub const ALL: [CellOp; 4] = [CellOp::Lstm, CellOp::Gru, CellOp::RnnTanh, CellOp::RnnRelu];

    /// The op's name, which names its code in `kernels/rnn.cu` (`R_LSTM`, ...).
    pub fn name(self) -> &'static str {
        match self {
            CellOp::Lstm => "lstm",
            CellOp::Gru => "gru",
            CellOp::RnnTanh => "rnn_tanh",
            CellOp::RnnRelu => "rnn_relu",
        }
    }

    /// Gates per unit: the width of `gi` and `gh` is `gates() · H`.
    pub fn gates(self) -> usize {
        match self {
            CellOp::Lstm => 4,
            CellOp::Gru => 3,
            CellOp::RnnTanh | CellOp::RnnRelu => 1,
        }
    }

    /// The width, in units of `H`, of the values the forward saves for the backward:
    /// the LSTM's `[i | f | g | o | tanh c']`, the GRU's `[r | z | n | gh_n]`, the RNN's
    /// output.
    pub fn saved(self) -> usize {
        match self {
            CellOp::Lstm => 5,
            CellOp::Gru => 4,
            CellOp::RnnTanh | CellOp::RnnRelu => 1,
        }
    }

    /// Whether the step has a state operand (the LSTM's cell, the GRU's hidden state).
    pub fn has_state(self) -> bool {
        matches!(self, CellOp::Lstm | CellOp::Gru)
    }

    /// The output's width in units of `H` (the LSTM's `[h | c']` is 2).
    pub fn out_width(self) -> usize {
        if self == CellOp::Lstm {
            2
        } else {
            1
        }
    }
}

/// One step: `rows` (N) sequences of `hidden` (H) units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellParams {
    /// The recurrence.
    pub op: CellOp,
    /// N.
    pub rows: usize,
    /// H.
    pub hidden: usize,
}

/// The layouts of a step's operands (any strides): `gi`, `gh` `(N, G·H)`, `s (N, H)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CellLayouts<'a> {
    /// The input projection.
    pub gi: &'a Layout,
    /// The hidden projection.
    pub gh: &'a Layout,
    /// The state.
    pub s: &'a Layout,
}

/// The gradients of one step: of `gi`, of `gh` (the GRU's only: for the LSTM and the
/// RNN it equals `gi`'s), of the state (not for the RNN). All contiguous.
pub(crate) type CellGrads<S> = (S, Option<S>, Option<S>);

/// The fused recurrent step of a backend. Every operand has one float dtype.
pub(crate) trait RnnOps: Sized {
    /// The step from `self` = `gi`: its output, contiguous `(N, out_width·H)`, and the
    /// values saved for the backward, contiguous `(N, saved·H)`.
    fn rnn_cell_forward(
        &self,
        gh: &Self,
        s: &Self,
        l: &CellLayouts,
        p: &CellParams,
    ) -> Result<(Self, Self)>;

    /// The gradients of `gi`, `gh` and `s` from `self` = the forward's saved values, the
    /// previous state `s` (layout `sl`; not read by the RNN) and the output's gradient
    /// `dout` (layout `dl`).
    fn rnn_cell_backward(
        &self,
        s: &Self,
        dout: &Self,
        sl: &Layout,
        dl: &Layout,
        p: &CellParams,
    ) -> Result<CellGrads<Self>>;
}

impl Storage {
    /// See [`RnnOps::rnn_cell_forward`].
    pub(crate) fn rnn_cell_forward(
        &self,
        gh: &Storage,
        s: &Storage,
        l: &CellLayouts,
        p: &CellParams,
    ) -> Result<(Storage, Storage)> {
        dispatch!("rnn_cell", (self, gh, s), |(gi, gh, s)| gi
            .rnn_cell_forward(gh, s, l, p))
    }

    /// See [`RnnOps::rnn_cell_backward`].
    pub(crate) fn rnn_cell_backward(
        &self,
        s: &Storage,
        dout: &Storage,
        sl: &Layout,
        dl: &Layout,
        p: &CellParams,
    ) -> Result<CellGrads<Storage>> {
        dispatch!("rnn_cell_backward", (self, s, dout), |(saved, s, d)| saved
            .rnn_cell_backward(s, d, sl, dl, p))
    }
}
