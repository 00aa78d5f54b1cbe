//! `scaled_dot_product_attention`: softmax(q·kᵀ·scale + mask)·v, PyTorch's
//! `F.scaled_dot_product_attention`.
//!
//! Two implementations, one semantics:
//!
//! * the **fused** op (`backend::attention`): on CUDA a FlashAttention-style kernel
//!   that never stores the `L×S` weights (online softmax over key tiles; the backward
//!   recomputes them from the saved row logsumexp), on the CPU a row-at-a-time loop;
//! * the **math** path: the same computation composed of tensor ops (matmul, scale,
//!   additive mask, softmax, dropout, matmul), differentiated by autograd.
//!
//! [`SdpaBackend::Auto`] (the default) runs the fused op unless dropout is active
//! (training with `p > 0`), the float mask itself needs a gradient, or the head dims
//! exceed what the device's kernels hold (128 on CUDA); then the math path.

use crate::autograd::record;
use crate::backend::attention::{AttentionLayouts, AttentionParams};
use crate::nn::functional::dropout;
use crate::shape::{broadcast_shape, Layout};
use crate::tensor::StorageLocks;
use crate::{DType, Error, Result, Tensor};

const OP: &str = "scaled_dot_product_attention";

/// Which implementation [`scaled_dot_product_attention`] runs (PyTorch's
/// `torch.nn.attention.SDPBackend`, reduced to kiln's two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SdpaBackend {
    /// The fused op when it applies (no active dropout, no mask that needs a
    /// gradient, head dims up to 128 on CUDA), else the math path.
    #[default]
    Auto,
    /// The composition of tensor ops, always.
    Math,
    /// The fused op, always: an `Err` where it does not apply.
    Fused,
}

/// Options of [`scaled_dot_product_attention`], built like PyTorch's keyword
/// arguments: `SdpaOpts::new().causal(true).mask(&m).scale(0.1).dropout(0.1, training)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SdpaOpts<'a> {
    causal: bool,
    mask: Option<&'a Tensor>,
    scale: Option<f64>,
    dropout: Option<(f64, bool)>,
    backend: SdpaBackend,
}

impl<'a> SdpaOpts<'a> {
    /// No mask, not causal, scale `1/√E`, no dropout, [`SdpaBackend::Auto`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Query `i` attends to key `j` only when `j <= i` (the lower triangle of the
    /// `(L, S)` scores, aligned top-left as PyTorch's `is_causal`). Unlike PyTorch,
    /// it combines with [`SdpaOpts::mask`]: a pair must be allowed by both.
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// `attn_mask`, broadcastable to `(..., L, S)`: U8 (1 = may attend, PyTorch's
    /// `True`; 0 = may not) or a float mask added to the scores (converted to q's
    /// dtype when it has another).
    pub fn mask(mut self, mask: &'a Tensor) -> Self {
        self.mask = Some(mask);
        self
    }

    /// The factor applied to `q·kᵀ` (default `1/√E`).
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Dropout with probability `p` on the attention weights when `training`; the mode
    /// is required, as in [`dropout`](crate::nn::functional::dropout).
    pub fn dropout(mut self, p: f64, training: bool) -> Self {
        self.dropout = Some((p, training));
        self
    }

    /// Which implementation runs (default [`SdpaBackend::Auto`]).
    pub fn backend(mut self, backend: SdpaBackend) -> Self {
        self.backend = backend;
        self
    }
}

/// The sizes of one call: the broadcast batch dims and `L`, `S`, `E`, `EV`.
struct Dims {
    batch: Vec<usize>,
    l: usize,
    s: usize,
    e: usize,
    ev: usize,
}

/// Attention: `softmax(q·kᵀ·scale + mask)·v`, PyTorch's
/// `F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale)`.
///
/// `q` is `(..., L, E)`, `k` `(..., S, E)` and `v` `(..., S, EV)`, their leading dims
/// broadcasting like `matmul`'s (typically `(N, heads)`); the result is
/// `(..., L, EV)`. See [`SdpaOpts`] for the mask, causality, scale and dropout. A
/// query row that may attend to no key gives 0 (and no gradient), as PyTorch 2.15.
/// Gradients flow to q, k, v, and to a float mask that requires one (on the math
/// path). Under [`autocast`](crate::autocast) q, k, v and a float mask run in the
/// autocast dtype (PyTorch's lower-precision list).
///
/// Errors name the argument: `query`/`key`/`value` for a non-float dtype, rank < 2,
/// mismatched dtypes, devices or sizes, leading dims that do not broadcast; `mask`
/// for a dtype other than U8 or a float, another device, or a shape that does not
/// broadcast to `(..., L, S)`; `scale` when not finite; `dropout` for `p` outside
/// `[0, 1]`; `backend` when [`SdpaBackend::Fused`] cannot run the call.
pub fn scaled_dot_product_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    opts: SdpaOpts,
) -> Result<Tensor> {
    // Under autocast, on the lower-precision list as in PyTorch: q, k, v and a float
    // mask are cast to the autocast dtype.
    if let Some(y) = crate::tensor::autocast::lower([q, k, v], [opts.mask], |[q, k, v], [mask]| {
        scaled_dot_product_attention(q, k, v, SdpaOpts { mask, ..opts })
    }) {
        return y;
    }
    let _op = crate::profiler::op(OP, &[q, k, v]);
    let dims = check(q, k, v, &opts)?;
    // A float mask of another float dtype (an f32 mask under BF16 autocast) is
    // converted, as PyTorch's autocast casts every float argument.
    let converted = match opts.mask {
        Some(m) if m.dtype().is_float() && m.dtype() != q.dtype() => Some(m.to_dtype(q.dtype())?),
        _ => None,
    };
    let opts = match &converted {
        Some(m) => SdpaOpts {
            mask: Some(m),
            ..opts
        },
        None => opts,
    };
    let scale = opts.scale.unwrap_or(1.0 / (dims.e as f64).sqrt());
    let (p, training) = opts.dropout.unwrap_or((0.0, false));
    let dropping = training && p > 0.0;
    let mask_grad = opts
        .mask
        .is_some_and(|m| m.dtype().is_float() && m.requires_grad_flag());
    let max_head_dim = q.storage().attention_max_head_dim()?;
    let too_wide = max_head_dim.filter(|&max| dims.e > max || dims.ev > max);
    let why_not_fused = if dropping {
        Some("the fused op has no dropout: use SdpaBackend::Math or Auto".to_string())
    } else if mask_grad {
        Some("the fused op takes no gradient for the mask: use SdpaBackend::Math or Auto".into())
    } else {
        too_wide.map(|max| format!("the fused op on {} takes head dims up to {max}", q.device()))
    };
    match (opts.backend, why_not_fused) {
        (SdpaBackend::Math, _) | (SdpaBackend::Auto, Some(_)) => {
            math(q, k, v, &opts, scale, (p, training))
        }
        (SdpaBackend::Fused, Some(why)) => Err(Error::arg("backend", why)),
        (_, None) => fused(q, k, v, &opts, scale, &dims),
    }
}

/// Validates the arguments; the call's sizes.
fn check(q: &Tensor, k: &Tensor, v: &Tensor, opts: &SdpaOpts) -> Result<Dims> {
    for (name, t) in [("query", q), ("key", k), ("value", v)] {
        if !t.dtype().is_float() {
            return Err(Error::arg(
                name,
                format!("needs a float dtype, got {:?}", t.dtype()),
            ));
        }
        if t.rank() < 2 {
            return Err(Error::arg(
                name,
                format!("needs shape (..., rows, features), got {:?}", t.shape()),
            ));
        }
        if t.dtype() != q.dtype() || t.device() != q.device() {
            return Err(Error::arg(
                name,
                format!(
                    "is {:?} on {}, but query is {:?} on {}",
                    t.dtype(),
                    t.device(),
                    q.dtype(),
                    q.device()
                ),
            ));
        }
    }
    let split = |t: &Tensor| {
        let r = t.rank();
        (
            t.shape()[..r - 2].to_vec(),
            t.shape()[r - 2],
            t.shape()[r - 1],
        )
    };
    let ((qb, l, e), (kb, s, ke), (vb, vs, ev)) = (split(q), split(k), split(v));
    if ke != e {
        return Err(Error::arg(
            "key",
            format!(
                "has {ke} features, but query has {e} (query {:?}, key {:?})",
                q.shape(),
                k.shape()
            ),
        ));
    }
    if vs != s {
        return Err(Error::arg(
            "value",
            format!(
                "has {vs} rows, but key has {s} (key {:?}, value {:?})",
                k.shape(),
                v.shape()
            ),
        ));
    }
    let batch = broadcast_shape(OP, &qb, &kb).map_err(|_| {
        Error::arg(
            "key",
            format!("leading dims {kb:?} do not broadcast with query's {qb:?}"),
        )
    })?;
    let batch = broadcast_shape(OP, &batch, &vb).map_err(|_| {
        Error::arg(
            "value",
            format!("leading dims {vb:?} do not broadcast with {batch:?}"),
        )
    })?;
    if let Some(m) = opts.mask {
        if m.dtype() != DType::U8 && !m.dtype().is_float() {
            return Err(Error::arg(
                "mask",
                format!(
                    "needs U8 (1 = may attend) or a float dtype, got {:?}",
                    m.dtype()
                ),
            ));
        }
        if m.device() != q.device() {
            return Err(Error::arg(
                "mask",
                format!("is on {}, query on {}", m.device(), q.device()),
            ));
        }
        let mut scores = batch.clone();
        scores.extend([l, s]);
        if m.layout().broadcast_to(OP, &scores).is_err() {
            return Err(Error::arg(
                "mask",
                format!(
                    "shape {:?} does not broadcast to the scores' {scores:?}",
                    m.shape()
                ),
            ));
        }
    }
    if let Some(scale) = opts.scale {
        if !scale.is_finite() {
            return Err(Error::arg("scale", format!("must be finite, got {scale}")));
        }
    }
    if let Some((p, _)) = opts.dropout {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::arg(
                "dropout",
                format!("probability must be in [0, 1], got {p}"),
            ));
        }
    }
    Ok(Dims { batch, l, s, e, ev })
}

/// The math path: matmul, scale, additive masks, softmax, dropout, matmul.
fn math(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    opts: &SdpaOpts,
    scale: f64,
    (p, training): (f64, bool),
) -> Result<Tensor> {
    let (dtype, dev) = (q.dtype(), q.device());
    let r = k.rank();
    let mut scores = q.matmul(&k.transpose(r - 2, r - 1)?)?.mul_scalar(scale)?;
    let (l, s) = (q.shape()[q.rank() - 2], k.shape()[r - 2]);
    if opts.causal {
        // allowed[i][j] = i >= j, made on the device; log turns 1/0 into 0/-inf.
        let i = Tensor::arange(l, DType::F32, &dev)?.reshape(&[l, 1])?;
        let j = Tensor::arange(s, DType::F32, &dev)?.reshape(&[1, s])?;
        scores = scores.add(&additive(&i.ge(&j)?, dtype)?)?;
    }
    if let Some(m) = opts.mask {
        scores = scores.add(&additive(m, dtype)?)?;
    }
    let weights = dropout(&safe_softmax(&scores)?, p, training)?;
    weights.matmul(v)
}

/// A mask as scores to add: a U8 mask becomes 0 where allowed (any non-zero value,
/// PyTorch's `True`, as the fused op reads it) and -inf where not; a float mask is
/// itself.
fn additive(mask: &Tensor, dtype: DType) -> Result<Tensor> {
    if mask.dtype() == DType::U8 {
        mask.gt_scalar(0.0)?.to_dtype(dtype)?.log()
    } else {
        Ok(mask.clone())
    }
}

/// Softmax over the last dim that gives 0, not NaN, for a row of `-inf` (PyTorch's
/// `_safe_softmax`): the shift is clamped to the dtype's lowest finite value, so such
/// a row's exponentials are all 0, and its sum of 0 is divided as 1. Rows of no
/// keys are empty: with them the attention is 0, as PyTorch's and the fused op's.
fn safe_softmax(scores: &Tensor) -> Result<Tensor> {
    let (dtype, dev) = (scores.dtype(), scores.device());
    let last = scores.rank() - 1;
    if scores.shape()[last] == 0 {
        return Ok(scores.clone());
    }
    let lowest = -dtype.float_max();
    let shift =
        scores
            .detach()
            .max(last, true)?
            .maximum(&Tensor::full(&[], lowest, dtype, &dev)?)?;
    let e = scores.sub(&shift)?.exp()?;
    let sum = e.sum(last, true)?;
    let empty = sum.eq_scalar(0.0)?.to_dtype(dtype)?;
    e.div(&sum.add(&empty)?)
}

/// `t` (shape `(..., rows, cols)`) broadcast to `batch + [rows, cols]` and seen as the
/// 4-D `(N, H, rows, cols)` the fused op reads, `H` being the last batch dim: a view
/// outside the graph, or a contiguous copy when the leading batch dims do not merge
/// into one stride.
fn view4(t: &Tensor, batch: &[usize], rows: usize, cols: usize) -> Result<Tensor> {
    let mut full = batch.to_vec();
    full.extend([rows, cols]);
    let b = t.layout().broadcast_to(OP, &full)?;
    let nb = batch.len();
    let (h, h_stride) = match nb {
        0 => (1, 0),
        _ => (batch[nb - 1], b.strides[nb - 1]),
    };
    let lead = nb.saturating_sub(1);
    let n: usize = batch[..lead].iter().product();
    let shape = vec![n, h, rows, cols];
    match merged_stride(&batch[..lead], &b.strides[..lead]) {
        Some(n_stride) => Ok(t.detach().with_layout(Layout {
            shape,
            strides: vec![n_stride, h_stride, b.strides[nb], b.strides[nb + 1]],
            offset: b.offset,
        })),
        None => Ok(t
            .detach()
            .broadcast_as(&full)?
            .contiguous_copy()?
            .with_layout(Layout::contiguous(&shape))),
    }
}

/// The one stride that walks `shape`'s dims (size-1 dims aside) as one, if any.
fn merged_stride(shape: &[usize], strides: &[usize]) -> Option<usize> {
    let dims: Vec<(usize, usize)> = shape
        .iter()
        .zip(strides)
        .filter(|(&d, _)| d != 1)
        .map(|(&d, &s)| (d, s))
        .collect();
    for w in dims.windows(2) {
        if w[0].1 != w[1].1 * w[1].0 {
            return None;
        }
    }
    Some(dims.last().map_or(0, |&(_, s)| s))
}

/// The fused op, with its backward.
fn fused(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    opts: &SdpaOpts,
    scale: f64,
    d: &Dims,
) -> Result<Tensor> {
    let (l, s, e, ev) = (d.l, d.s, d.e, d.ev);
    let (q4, k4, v4) = (
        view4(q, &d.batch, l, e)?,
        view4(k, &d.batch, s, e)?,
        view4(v, &d.batch, s, ev)?,
    );
    let m4 = opts.mask.map(|m| view4(m, &d.batch, l, s)).transpose()?;
    let p = AttentionParams {
        n: q4.shape()[0],
        h: q4.shape()[1],
        l,
        s,
        e,
        ev,
        scale,
        causal: opts.causal,
    };
    let (out, lse) = {
        let mut operands = vec![&q4, &k4, &v4];
        operands.extend(m4.as_ref());
        let locks = StorageLocks::read(&operands);
        let layouts = AttentionLayouts {
            q: q4.layout(),
            k: k4.layout(),
            v: v4.layout(),
            mask: m4.as_ref().map(Tensor::layout),
        };
        let mask = m4.as_ref().map(|_| locks.get(3));
        locks
            .get(0)
            .attention_forward(locks.get(1), locks.get(2), mask, &layouts, &p)?
    };
    let with = |last: [usize; 2]| {
        let mut shape = d.batch.clone();
        shape.extend(last);
        shape
    };
    let out = Tensor::from_storage(out, &with([l, ev]));
    let lse = Tensor::from_storage(lse, &[p.n, p.h, l]);
    let saved_out = out.clone();
    let shapes = [q.shape().to_vec(), k.shape().to_vec(), v.shape().to_vec()];
    let grad_shapes = [with([l, e]), with([s, e]), with([s, ev])];
    Ok(record(out, OP, &[q, k, v], move |_, g| {
        // The kernels read the output's gradient contiguously from its start.
        let g = if g.is_contiguous() && g.storage_offset() == 0 {
            g.clone()
        } else {
            g.contiguous_copy()?
        };
        let (dq, dk, dv) = {
            let mut operands = vec![&q4, &k4, &v4, &saved_out, &lse, &g];
            operands.extend(m4.as_ref());
            let locks = StorageLocks::read(&operands);
            let layouts = AttentionLayouts {
                q: q4.layout(),
                k: k4.layout(),
                v: v4.layout(),
                mask: m4.as_ref().map(Tensor::layout),
            };
            let mask = m4.as_ref().map(|_| locks.get(6));
            locks.get(0).attention_backward(
                locks.get(1),
                locks.get(2),
                mask,
                locks.get(3),
                locks.get(4),
                locks.get(5),
                &layouts,
                &p,
            )?
        };
        let grads = [dq, dk, dv]
            .into_iter()
            .zip(&grad_shapes)
            .zip(&shapes)
            .map(|((storage, shape), input)| {
                Tensor::from_storage(storage, shape)
                    .sum_to_shape(input)
                    .map(Some)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(grads)
    }))
}
