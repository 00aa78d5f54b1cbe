//! Fused scaled-dot-product attention: the forward pass (output and the row
//! logsumexp) and the backward pass that recomputes the attention weights from them.
//!
//! The tensor layer (`nn/functional/attention.rs`) validates the arguments, views q, k,
//! v as 4-D `(N, H, rows, cols)` layouts (any strides), broadcasts the mask's layout to
//! `(N, H, L, S)` (stride 0 on broadcast dims) and fills in [`AttentionParams`]. Scores
//! are `q·kᵀ · scale`, plus the mask: a U8 mask forbids (0) or allows (1) each pair, a
//! float mask (q's dtype) is added; with `causal`, query `i` sees key `j` only when
//! `j <= i` (PyTorch's top-left alignment). A query row that may attend to no key
//! gives an output of 0 and a logsumexp of `-inf` (PyTorch 2.15's behaviour), and
//! passes no gradient. The logsumexp is kept in the compute dtype (f32 for f32, f16
//! and bf16; f64 for f64), as are all sums.

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::Result;

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/attention.rs"]
mod cpu;
#[path = "cuda/ops/attention.rs"]
mod cuda;

/// One attention problem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AttentionParams {
    /// Batch size (all leading dims but the last, merged).
    pub n: usize,
    /// Heads (the last leading dim; 1 without leading dims).
    pub h: usize,
    /// Queries.
    pub l: usize,
    /// Keys and values.
    pub s: usize,
    /// The query and key feature size.
    pub e: usize,
    /// The value feature size.
    pub ev: usize,
    /// The factor applied to `q·kᵀ`.
    pub scale: f64,
    /// Query `i` sees key `j` only when `j <= i`.
    pub causal: bool,
}

/// The layouts of the operands of one attention problem: q `(N, H, L, E)`, k
/// `(N, H, S, E)`, v `(N, H, S, EV)` and the mask broadcast to `(N, H, L, S)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttentionLayouts<'a> {
    /// The queries.
    pub q: &'a Layout,
    /// The keys.
    pub k: &'a Layout,
    /// The values.
    pub v: &'a Layout,
    /// The mask, when there is one.
    pub mask: Option<&'a Layout>,
}

/// The fused attention primitives of a backend. `self` is q; every operand has q's
/// dtype except a U8 mask.
pub(crate) trait AttentionOps: Sized {
    /// `(out, lse)`: the output `(N, H, L, EV)`, contiguous in q's dtype, and each
    /// query row's logsumexp of its masked scores `(N, H, L)`, in the compute dtype.
    fn attention_forward(
        &self,
        k: &Self,
        v: &Self,
        mask: Option<&Self>,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(Self, Self)>;

    /// `(dq, dk, dv)`, contiguous `(N, H, ·, ·)` in q's dtype, from the output's
    /// gradient `dout` (contiguous `(N, H, L, EV)`), the forward's `out` and `lse`:
    /// with `P = exp(s - lse)` recomputed and `D = rowsum(dout ∘ out)`,
    /// `dv = Pᵀ·dout`, `dS = P ∘ (dout·vᵀ - D)`, `dq = dS·k·scale`, `dk = dSᵀ·q·scale`.
    #[allow(clippy::too_many_arguments)] // the saved forward state, operand by operand
    fn attention_backward(
        &self,
        k: &Self,
        v: &Self,
        mask: Option<&Self>,
        out: &Self,
        lse: &Self,
        dout: &Self,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(Self, Self, Self)>;

    /// The largest head dim (E and EV) the fused op takes on this backend, `None`
    /// when it takes any: a limit of the kernels, declared once beside them.
    fn fused_max_head_dim(&self) -> Option<usize>;
}

impl Storage {
    /// See [`AttentionOps::fused_max_head_dim`].
    pub(crate) fn attention_max_head_dim(&self) -> Result<Option<usize>> {
        dispatch!("scaled_dot_product_attention", (self), |(q)| {
            Ok::<_, crate::Error>(q.fused_max_head_dim())
        })
    }

    /// See [`AttentionOps::attention_forward`].
    pub(crate) fn attention_forward(
        &self,
        k: &Storage,
        v: &Storage,
        mask: Option<&Storage>,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(Storage, Storage)> {
        dispatch!(
            "scaled_dot_product_attention",
            (self, k, v, mask),
            |(q, k, v, m)| q.attention_forward(k, v, m, layouts, p)
        )
    }

    /// See [`AttentionOps::attention_backward`].
    #[allow(clippy::too_many_arguments)] // mirrors the trait method
    pub(crate) fn attention_backward(
        &self,
        k: &Storage,
        v: &Storage,
        mask: Option<&Storage>,
        out: &Storage,
        lse: &Storage,
        dout: &Storage,
        layouts: &AttentionLayouts,
        p: &AttentionParams,
    ) -> Result<(Storage, Storage, Storage)> {
        dispatch!(
            "scaled_dot_product_attention_backward",
            (self, k, v, mask, out, lse, dout),
            |(q, k, v, m, o, l, g)| q.attention_backward(k, v, m, o, l, g, layouts, p)
        )
    }
}
