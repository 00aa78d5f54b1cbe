//! `nn::MultiheadAttention`: PyTorch's `nn.MultiheadAttention(d_model, n_heads,
//! batch_first=True)`, computed with [`F::scaled_dot_product_attention`].

use crate::nn::functional::{self as F, SdpaOpts};
use crate::nn::{self, init, Forward, Linear, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// Options of [`MultiheadAttention::forward_qkv`], PyTorch's keyword arguments:
/// `AttnOpts::new().causal(true).attn_mask(&m).key_padding_mask(&pad)`.
///
/// The masks follow **`nn.MultiheadAttention`'s** convention, which is the opposite of
/// [`SdpaOpts::mask`]'s for booleans: a U8 value of 1 (PyTorch's `True`) means "may
/// **not** attend" (a padding key); a float mask is added to the scores.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttnOpts<'a> {
    causal: bool,
    attn_mask: Option<&'a Tensor>,
    key_padding_mask: Option<&'a Tensor>,
}

impl<'a> AttnOpts<'a> {
    /// No masks, not causal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Query `i` attends to key `j` only when `j <= i` (combines with the masks).
    pub fn causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    /// `attn_mask`: `(L, S)` or `(N·heads, L, S)`; U8 (1 = may not attend) or float
    /// (added to the scores), as in `nn.MultiheadAttention`.
    pub fn attn_mask(mut self, mask: &'a Tensor) -> Self {
        self.attn_mask = Some(mask);
        self
    }

    /// `key_padding_mask`: `(N, S)`; U8 (1 = a padding key, ignored) or float (added).
    pub fn key_padding_mask(mut self, mask: &'a Tensor) -> Self {
        self.key_padding_mask = Some(mask);
        self
    }
}

/// Multi-head attention with batch-first inputs `(N, L, d_model)`: the packed input
/// projection `in_proj_weight (3·d_model, d_model)` and `in_proj_bias (3·d_model)`
/// (Xavier-uniform and zeros, as PyTorch), `heads` scaled-dot-product attentions of
/// `d_model / heads` features, and `out_proj` (a [`Linear`] whose bias starts at 0).
/// Parameter names match PyTorch's, so its `state_dict` loads. Dropout on the
/// attention weights (default 0) follows the module's train/eval mode.
#[derive(Debug, nn::Module)]
pub struct MultiheadAttention {
    /// `(3·d_model, d_model)`: the q, k and v projections stacked.
    pub in_proj_weight: Parameter,
    /// `(3·d_model)`.
    pub in_proj_bias: Parameter,
    /// The output projection.
    pub out_proj: Linear,
    #[module(skip)]
    heads: usize,
    #[module(skip)]
    dropout: f64,
    mode: Mode,
}

impl MultiheadAttention {
    /// `nn.MultiheadAttention(d_model, n_heads, batch_first=True)` on `device` (F32).
    /// Err unless `d_model` is a positive multiple of `n_heads`.
    pub fn new(d_model: usize, n_heads: usize, device: &Device) -> Result<MultiheadAttention> {
        if n_heads == 0 {
            return Err(Error::arg("n_heads", "must be at least 1"));
        }
        if d_model == 0 || !d_model.is_multiple_of(n_heads) {
            return Err(Error::arg(
                "d_model",
                format!("must be a positive multiple of n_heads = {n_heads}, got {d_model}"),
            ));
        }
        // xavier_uniform_: U(±√(6 / (fan_in + fan_out))) for the (3d, d) weight.
        let bound = (6.0 / (4 * d_model) as f64).sqrt();
        let in_proj_weight =
            init::uniform(&[3 * d_model, d_model], -bound, bound, DType::F32, device)?;
        let out_proj = Linear::new(d_model, d_model, device)?;
        if let Some(b) = &out_proj.bias {
            let _no_grad = crate::no_grad();
            b.copy_(&Tensor::zeros(&[d_model], DType::F32, device)?)?;
        }
        Ok(MultiheadAttention {
            in_proj_weight: Parameter::new(in_proj_weight)?,
            in_proj_bias: Parameter::new(Tensor::zeros(&[3 * d_model], DType::F32, device)?)?,
            out_proj,
            heads: n_heads,
            dropout: 0.0,
            mode: Mode::default(),
        })
    }

    /// The same module with dropout `p` on the attention weights in training mode
    /// (PyTorch's `dropout=p`). Err unless `0 <= p <= 1`.
    pub fn with_dropout(mut self, p: f64) -> Result<MultiheadAttention> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::arg(
                "p",
                format!("dropout probability must be in [0, 1], got {p}"),
            ));
        }
        self.dropout = p;
        Ok(self)
    }

    /// The number of heads.
    pub fn num_heads(&self) -> usize {
        self.heads
    }

    /// The model width `d_model`.
    pub fn embed_dim(&self) -> usize {
        self.in_proj_weight.shape()[1]
    }

    /// Attention of `query (N, L, d)` over `key (N, S, d)` and `value (N, S, d)`: the
    /// output `(N, L, d)` (PyTorch's first result; the averaged weights are not
    /// computed). Errors name the argument: a tensor that is not `(N, ·, d_model)`,
    /// batch or key/value lengths that differ, masks of the wrong shape or dtype.
    pub fn forward_qkv(
        &self,
        query: &Tensor,
        key: &Tensor,
        value: &Tensor,
        opts: AttnOpts,
    ) -> Result<Tensor> {
        let d = self.embed_dim();
        let (hd, heads) = (d / self.heads, self.heads);
        for (name, t) in [("query", query), ("key", key), ("value", value)] {
            if t.rank() != 3 || t.shape()[2] != d || t.shape()[0] != query.shape()[0] {
                return Err(Error::arg(
                    name,
                    format!(
                        "needs shape (N, length, {d}) with query's N (batch_first), got {:?}",
                        t.shape()
                    ),
                ));
            }
        }
        let (n, l, s) = (query.shape()[0], query.shape()[1], key.shape()[1]);
        if value.shape()[1] != s {
            return Err(Error::arg(
                "value",
                format!("has {} rows, but key has {s}", value.shape()[1]),
            ));
        }
        let (w, b) = (&*self.in_proj_weight, &*self.in_proj_bias);
        let project = |x: &Tensor, i: usize| -> Result<Tensor> {
            F::linear(x, &w.narrow(0, i * d, d)?, Some(&b.narrow(0, i * d, d)?))
        };
        let (q, k, v) = if query.id() == key.id() && key.id() == value.id() {
            // Self-attention: one packed projection, as PyTorch.
            let qkv = F::linear(query, w, Some(b))?;
            (
                qkv.narrow(2, 0, d)?,
                qkv.narrow(2, d, d)?,
                qkv.narrow(2, 2 * d, d)?,
            )
        } else {
            (project(query, 0)?, project(key, 1)?, project(value, 2)?)
        };
        let split = |t: &Tensor, len: usize| t.reshape(&[n, len, heads, hd])?.transpose(1, 2);
        let (q, k, v) = (split(&q, l)?, split(&k, s)?, split(&v, s)?);
        let mask = self.sdpa_mask(&opts, q.dtype(), (n, l, s))?;
        let mut sdpa = SdpaOpts::new()
            .causal(opts.causal)
            .dropout(self.dropout, self.mode.is_training());
        if let Some(m) = &mask {
            sdpa = sdpa.mask(m);
        }
        let y = F::scaled_dot_product_attention(&q, &k, &v, sdpa)?;
        self.out_proj
            .forward(&y.transpose(1, 2)?.reshape(&[n, l, d])?)
    }

    /// The module's masks as one SDPA mask broadcastable to `(N, heads, L, S)`: U8
    /// (1 = may attend) when both are boolean, else additive.
    fn sdpa_mask(
        &self,
        opts: &AttnOpts,
        dtype: DType,
        (n, l, s): (usize, usize, usize),
    ) -> Result<Option<Tensor>> {
        let heads = self.heads;
        let attn = opts
            .attn_mask
            .map(|m| {
                let shape = match m.shape() {
                    [ml, ms] if (*ml, *ms) == (l, s) => vec![l, s],
                    [b, ml, ms] if (*b, *ml, *ms) == (n * heads, l, s) => vec![n, heads, l, s],
                    other => {
                        return Err(Error::arg(
                            "attn_mask",
                            format!(
                                "needs shape ({l}, {s}) or ({}, {l}, {s}), got {other:?}",
                                n * heads
                            ),
                        ))
                    }
                };
                to_sdpa("attn_mask", m, dtype)?.reshape(&shape)
            })
            .transpose()?;
        let padding = opts
            .key_padding_mask
            .map(|m| {
                if m.shape() != [n, s] {
                    return Err(Error::arg(
                        "key_padding_mask",
                        format!("needs shape ({n}, {s}), got {:?}", m.shape()),
                    ));
                }
                to_sdpa("key_padding_mask", m, dtype)?.reshape(&[n, 1, 1, s])
            })
            .transpose()?;
        match (attn, padding) {
            (Some(a), Some(p)) if a.dtype() == DType::U8 && p.dtype() == DType::U8 => {
                Ok(Some(a.mul(&p)?))
            }
            (Some(a), Some(p)) => Ok(Some(additive(&a, dtype)?.add(&additive(&p, dtype)?)?)),
            (a, p) => Ok(a.or(p)),
        }
    }
}

/// An `nn.MultiheadAttention` mask in SDPA's convention: a U8 mask inverted (1 = may
/// attend), a float mask converted to `dtype` (the projections' dtype, BF16 under
/// autocast).
fn to_sdpa(name: &'static str, m: &Tensor, dtype: DType) -> Result<Tensor> {
    match m.dtype() {
        DType::U8 => m.eq_scalar(0.0),
        d if d.is_float() => m.to_dtype(dtype),
        d => Err(Error::arg(
            name,
            format!("needs U8 (1 = masked) or a float dtype, got {d:?}"),
        )),
    }
}

/// An SDPA mask as scores to add (0 / -inf for a U8 one).
fn additive(m: &Tensor, dtype: DType) -> Result<Tensor> {
    if m.dtype() == DType::U8 {
        m.to_dtype(dtype)?.log()
    } else {
        Ok(m.clone())
    }
}

impl Forward for MultiheadAttention {
    /// Self-attention: `forward_qkv(x, x, x, AttnOpts::new())`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_qkv(x, x, x, AttnOpts::new())
    }
}
