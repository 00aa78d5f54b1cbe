//! The key/value cache of incremental decoding, and the causal attention that the
//! decoder-only models ([`Gpt2`](super::gpt2::Gpt2), [`Llama`](super::llama::Llama))
//! run with or without it.
//!
//! The cache holds, per layer, keys and values of shape `(B, kv_heads, max_len,
//! head_dim)`, allocated once on the model's device. Each forward pass writes its new
//! positions into slots `len..len + t` in place (`narrow` + `copy_`) and attends over
//! the view of slots `0..len + t`: the fused attention kernel reads the cache through
//! its strides, so nothing is re-allocated or copied per token. Rows of different
//! lengths are left-padded: [`KvCache::set_left_padding`] masks each row's padding
//! keys and shifts its positions, as `transformers` does with an attention mask.

use crate::nn::functional::{self as F, SdpaOpts};
use crate::{DType, Device, Error, Result, Tensor};

/// Keys and values of every layer for `batch` sequences of up to `max_len` tokens.
/// Made by a model's `kv_cache(batch, max_len)`; filled by its `forward_with_cache`.
#[derive(Debug)]
pub struct KvCache {
    kv: Vec<(Tensor, Tensor)>,
    /// U8 `(B, 1, 1, 1, max_len)`, 1 where a slot holds a real token; `None` without
    /// padding.
    key_mask: Option<Tensor>,
    pad: Vec<usize>,
    len: usize,
}

impl KvCache {
    /// A cache of `layers` layers for `(batch, kv_heads, max_len, head_dim)` keys and
    /// values of `dtype` on `device`, all allocated now.
    pub(crate) fn new(
        layers: usize,
        [batch, kv_heads, max_len, head_dim]: [usize; 4],
        dtype: DType,
        device: &Device,
    ) -> Result<KvCache> {
        for (name, n) in [("batch", batch), ("max_len", max_len)] {
            if n == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let shape = [batch, kv_heads, max_len, head_dim];
        let kv = (0..layers)
            .map(|_| {
                Ok((
                    Tensor::zeros(&shape, dtype, device)?,
                    Tensor::zeros(&shape, dtype, device)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(KvCache {
            kv,
            key_mask: None,
            pad: vec![0; batch],
            len: 0,
        })
    }

    /// Positions filled so far (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first forward pass.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most positions the cache holds.
    pub fn max_len(&self) -> usize {
        self.kv.first().map_or(0, |(k, _)| k.shape()[2])
    }

    /// The number of sequences.
    pub fn batch(&self) -> usize {
        self.pad.len()
    }

    /// Empties the cache (keeping its memory) for a new batch of sequences.
    pub fn reset(&mut self) {
        self.len = 0;
        self.key_mask = None;
        self.pad.iter_mut().for_each(|p| *p = 0);
    }

    /// Forgets every position from `len` on (keeping the memory), so decoding resumes
    /// after the first `len` tokens. Err naming `len` past the filled positions.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(Error::arg(
                "len",
                format!("{len} is past the {} filled positions", self.len),
            ));
        }
        self.len = len;
        Ok(())
    }

    /// Declares that row `b`'s first `pad[b]` positions are padding (prompts of
    /// different lengths, left-padded): no query attends to them, and row `b`'s
    /// positions count from its first real token. Only before the first forward
    /// pass; Err naming `pad` for a wrong length or a row that is all padding.
    pub fn set_left_padding(&mut self, pad: &[usize]) -> Result<()> {
        if !self.is_empty() {
            return Err(Error::arg(
                "pad",
                "must be set before the first forward pass",
            ));
        }
        if pad.len() != self.batch() {
            return Err(Error::arg(
                "pad",
                format!("has {} rows, but the cache has {}", pad.len(), self.batch()),
            ));
        }
        let max_len = self.max_len();
        if pad.iter().any(|&p| p >= max_len) {
            return Err(Error::arg(
                "pad",
                format!(
                    "every row needs fewer than max_len = {max_len} padding slots, got {pad:?}"
                ),
            ));
        }
        self.pad.copy_from_slice(pad);
        self.key_mask = if pad.iter().any(|&p| p > 0) {
            let mask: Vec<u8> = pad
                .iter()
                .flat_map(|&p| (0..max_len).map(move |j| u8::from(j >= p)))
                .collect();
            let dev = self.kv[0].0.device();
            Some(Tensor::from_vec(
                mask,
                &[pad.len(), 1, 1, 1, max_len],
                &dev,
            )?)
        } else {
            None
        };
        Ok(())
    }

    /// Runs a model's forward pass `run(ids, positions, cache)` over the new tokens
    /// `ids (B, t)` (I64), whose positions it gives, then records them as filled: what
    /// each model's `forward_with_cache` is. Err naming `ids` unless they fit.
    pub(crate) fn step(
        &mut self,
        ids: &Tensor,
        run: impl FnOnce(&Tensor, &KvCache) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (b, t) = check_ids(ids)?;
        if b != self.batch() {
            return Err(Error::arg(
                "ids",
                format!("has {b} rows, but the cache was made for {}", self.batch()),
            ));
        }
        if self.len + t > self.max_len() {
            return Err(Error::arg(
                "ids",
                format!(
                    "{t} more tokens after {} exceed the cache's max_len {}",
                    self.len,
                    self.max_len()
                ),
            ));
        }
        // Slot index minus the row's padding (0 for padding slots).
        let pos: Vec<i64> = self
            .pad
            .iter()
            .flat_map(|&p| (self.len..self.len + t).map(move |j| j.saturating_sub(p) as i64))
            .collect();
        let logits = run(&Tensor::from_vec(pos, &[b, t], &ids.device())?, self)?;
        self.len += t;
        Ok(logits)
    }

    /// Layer `layer`'s attention of the new queries `q (B, H, t, hd)` over the cached
    /// keys and values followed by the new `k`, `v` `(B, kv_heads, t, hd)`, which are
    /// written into the cache: the output `(B, H, t, hd)`. `opts` gives the scale.
    pub(crate) fn attend(
        &self,
        layer: usize,
        [q, k, v]: [&Tensor; 3],
        opts: SdpaOpts,
    ) -> Result<Tensor> {
        let (ck, cv) = &self.kv[layer];
        let t = q.shape()[2];
        let s = self.len + t;
        ck.narrow(2, self.len, t)?.copy_(k)?;
        cv.narrow(2, self.len, t)?.copy_(v)?;
        let (keys, values) = (ck.narrow(2, 0, s)?, cv.narrow(2, 0, s)?);
        let padding = self
            .key_mask
            .as_ref()
            .map(|m| m.narrow(4, 0, s))
            .transpose()?;
        // The new queries see every cached key and the new ones up to their own.
        let causal = if t > 1 {
            let dev = q.device();
            let i = Tensor::arange(t, DType::F32, &dev)?
                .add_scalar(self.len as f64)?
                .reshape(&[t, 1])?;
            let j = Tensor::arange(s, DType::F32, &dev)?.reshape(&[1, s])?;
            Some(j.le(&i)?)
        } else {
            None
        };
        let mask = match (padding, causal) {
            (Some(p), Some(c)) => Some(p.mul(&c)?),
            (p, c) => p.or(c),
        };
        let opts = match &mask {
            Some(m) => opts.mask(m),
            None => opts,
        };
        attention(q, &keys, &values, opts)
    }
}

/// Attention of `q (B, H, L, hd)` over `k`, `v` `(B, kv_heads, S, hd)`, with
/// `H / kv_heads` query heads per key/value head (grouped-query attention; 1 is
/// plain multi-head attention): `(B, H, L, hd)`. `opts` as for
/// [`F::scaled_dot_product_attention`] of the grouped 5-D view `(B, kv_heads, group,
/// ·, hd)`: a mask broadcasts to `(B, kv_heads, group, L, S)`.
pub(crate) fn attention(q: &Tensor, k: &Tensor, v: &Tensor, opts: SdpaOpts) -> Result<Tensor> {
    let &[b, h, l, hd] = q.shape() else {
        return Err(Error::arg(
            "query",
            format!("needs (B, H, L, hd), got {:?}", q.shape()),
        ));
    };
    let kv_heads = k.shape()[1];
    if kv_heads == 0 || h % kv_heads != 0 {
        return Err(Error::arg(
            "key",
            format!("{kv_heads} key/value heads do not divide {h} query heads"),
        ));
    }
    let group = h / kv_heads;
    let q5 = q.reshape(&[b, kv_heads, group, l, hd])?;
    let (k5, v5) = (k.unsqueeze(2)?, v.unsqueeze(2)?);
    F::scaled_dot_product_attention(&q5, &k5, &v5, opts)?.reshape(&[b, h, l, hd])
}

/// `(B, T)` of I64 token ids; Err naming `ids` otherwise.
pub(crate) fn check_ids(ids: &Tensor) -> Result<(usize, usize)> {
    if ids.rank() != 2 || ids.dtype() != DType::I64 {
        return Err(Error::arg(
            "ids",
            format!(
                "needs I64 token ids of shape (B, T), got {:?} {:?}",
                ids.dtype(),
                ids.shape()
            ),
        ));
    }
    Ok((ids.shape()[0], ids.shape()[1]))
}
