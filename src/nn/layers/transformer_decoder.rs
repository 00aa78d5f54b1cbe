//! PyTorch's transformer decoder: [`TransformerDecoderLayer`] (self-attention, then
//! cross-attention over the encoder's output, then the feed-forward block) and the
//! stack [`TransformerDecoder`], with PyTorch's parameter names (`self_attn`,
//! `multihead_attn`, `linear1`, `linear2`, `norm1`..`norm3`).

use super::transformer::{
    check_input, copy_of, feed_forward, residual, stack, to_batch_first, TransformerOpts,
};
use super::{AttnOpts, Dropout, LayerNorm, Linear, MultiheadAttention};
use crate::nn::{self, Forward, Mode};
use crate::{Device, Result, Tensor};

/// `nn.TransformerDecoderLayer(d_model, nhead, ...)`: self-attention over the target,
/// cross-attention from the target to `memory`, and a feed-forward block, each with a
/// residual connection and a LayerNorm (after the sum, or before the block with
/// `norm_first`).
#[derive(Debug, nn::Module)]
pub struct TransformerDecoderLayer {
    /// Self-attention over the target.
    pub self_attn: MultiheadAttention,
    /// Cross-attention: queries from the target, keys and values from `memory`.
    pub multihead_attn: MultiheadAttention,
    /// `d_model → dim_feedforward`.
    pub linear1: Linear,
    /// Dropout inside the feed-forward block.
    pub dropout: Dropout,
    /// `dim_feedforward → d_model`.
    pub linear2: Linear,
    /// The LayerNorm of the self-attention sub-block.
    pub norm1: LayerNorm,
    /// The LayerNorm of the cross-attention sub-block.
    pub norm2: LayerNorm,
    /// The LayerNorm of the feed-forward sub-block.
    pub norm3: LayerNorm,
    /// Dropout on the self-attention branch.
    pub dropout1: Dropout,
    /// Dropout on the cross-attention branch.
    pub dropout2: Dropout,
    /// Dropout on the feed-forward branch.
    pub dropout3: Dropout,
    #[module(skip)]
    nhead: usize,
    #[module(skip)]
    opts: TransformerOpts,
    mode: Mode,
}

impl TransformerDecoderLayer {
    /// A layer of width `d_model` with `nhead` heads on `device` (f32), initialised as
    /// PyTorch's. Err naming the argument for a `d_model` that is not a positive
    /// multiple of `nhead`, or an invalid option.
    pub fn new(
        d_model: usize,
        nhead: usize,
        opts: TransformerOpts,
        device: &Device,
    ) -> Result<TransformerDecoderLayer> {
        // The encoder layer checks the options and makes the parts both layers share.
        let enc = super::TransformerEncoderLayer::new(d_model, nhead, opts, device)?;
        let norm = || LayerNorm::with_options(&[d_model], opts.layer_norm_eps, true, true, device);
        Ok(TransformerDecoderLayer {
            self_attn: enc.self_attn,
            multihead_attn: MultiheadAttention::new(d_model, nhead, device)?
                .with_dropout(opts.dropout)?,
            linear1: enc.linear1,
            dropout: enc.dropout,
            linear2: enc.linear2,
            norm1: enc.norm1,
            norm2: enc.norm2,
            norm3: norm()?,
            dropout1: enc.dropout1,
            dropout2: enc.dropout2,
            dropout3: Dropout::new(opts.dropout)?,
            nhead,
            opts,
            mode: Mode::default(),
        })
    }

    /// The layer's options.
    pub fn opts(&self) -> TransformerOpts {
        self.opts
    }

    /// The model width.
    pub fn d_model(&self) -> usize {
        self.self_attn.embed_dim()
    }

    /// PyTorch's `layer(tgt, memory, tgt_mask, memory_mask, tgt_key_padding_mask,
    /// memory_key_padding_mask, tgt_is_causal, memory_is_causal)`: `tgt_opts` holds
    /// the self-attention's masks, `memory_opts` the cross-attention's. `tgt` is
    /// `(T, N, d_model)` and `memory` `(S, N, d_model)`, or batch-first.
    pub fn forward_mask(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        tgt_opts: AttnOpts,
        memory_opts: AttnOpts,
    ) -> Result<Tensor> {
        let bf = self.opts.batch_first;
        let (x, m) = batch_first_pair(tgt, memory, self.d_model(), bf)?;
        to_batch_first(
            &self.forward_batch_first(&x, &m, tgt_opts, memory_opts)?,
            bf,
        )
    }

    /// The layer on batch-first `(N, T, d)` and `(N, S, d)` inputs.
    fn forward_batch_first(
        &self,
        x: &Tensor,
        memory: &Tensor,
        tgt_opts: AttnOpts,
        memory_opts: AttnOpts,
    ) -> Result<Tensor> {
        let sa = |h: &Tensor| self.self_attn.forward_qkv(h, h, h, tgt_opts);
        let ca = |h: &Tensor| {
            self.multihead_attn
                .forward_qkv(h, memory, memory, memory_opts)
        };
        let ff = |h: &Tensor| {
            let act = self.opts.activation;
            feed_forward(&self.linear1, &self.dropout, &self.linear2, act, h)
        };
        if self.opts.norm_first {
            let x = residual(x, &self.dropout1, sa(&self.norm1.forward(x)?)?)?;
            let x = residual(&x, &self.dropout2, ca(&self.norm2.forward(&x)?)?)?;
            residual(&x, &self.dropout3, ff(&self.norm3.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&residual(x, &self.dropout1, sa(x)?)?)?;
            let x = self
                .norm2
                .forward(&residual(&x, &self.dropout2, ca(&x)?)?)?;
            self.norm3.forward(&residual(&x, &self.dropout3, ff(&x)?)?)
        }
    }

    /// A fresh layer of the same sizes and options with this one's parameters.
    fn deep_copy(&self) -> Result<TransformerDecoderLayer> {
        let dev = self.linear1.weight.device();
        copy_of(
            self,
            TransformerDecoderLayer::new(self.d_model(), self.nhead, self.opts, &dev)?,
        )
    }
}

/// `tgt` and `memory` checked (rank 3, `d` features, one batch size) and batch-first.
fn batch_first_pair(
    tgt: &Tensor,
    memory: &Tensor,
    d: usize,
    batch_first: bool,
) -> Result<(Tensor, Tensor)> {
    check_input("tgt", tgt, d)?;
    check_input("memory", memory, d)?;
    let (x, m) = (
        to_batch_first(tgt, batch_first)?,
        to_batch_first(memory, batch_first)?,
    );
    if x.shape()[0] != m.shape()[0] {
        return Err(crate::Error::arg(
            "memory",
            format!(
                "has batch size {}, but tgt has {}",
                m.shape()[0],
                x.shape()[0]
            ),
        ));
    }
    Ok((x, m))
}

/// `nn.TransformerDecoder(decoder_layer, num_layers, norm)`: `num_layers` copies of
/// one layer (`layers.<i>`), then an optional final LayerNorm (`norm`).
#[derive(Debug, nn::Module)]
pub struct TransformerDecoder {
    /// The layers, applied in order.
    pub layers: Vec<TransformerDecoderLayer>,
    /// The final LayerNorm, when there is one.
    pub norm: Option<LayerNorm>,
    mode: Mode,
}

impl TransformerDecoder {
    /// `num_layers` copies of `layer` (no final norm). Err for `num_layers` 0.
    pub fn new(layer: TransformerDecoderLayer, num_layers: usize) -> Result<TransformerDecoder> {
        Ok(TransformerDecoder {
            layers: stack(layer, num_layers, TransformerDecoderLayer::deep_copy)?,
            norm: None,
            mode: Mode::default(),
        })
    }

    /// The same stack with a final LayerNorm (PyTorch's `norm=`).
    pub fn with_norm(mut self, norm: LayerNorm) -> TransformerDecoder {
        self.norm = Some(norm);
        self
    }

    /// PyTorch's `decoder(tgt, memory, tgt_mask, memory_mask, ...)`: every layer with
    /// the same masks, then the final norm.
    pub fn forward_mask(
        &self,
        tgt: &Tensor,
        memory: &Tensor,
        tgt_opts: AttnOpts,
        memory_opts: AttnOpts,
    ) -> Result<Tensor> {
        let first = &self.layers[0];
        let bf = first.opts.batch_first;
        let (mut x, m) = batch_first_pair(tgt, memory, first.d_model(), bf)?;
        for layer in &self.layers {
            x = layer.forward_batch_first(&x, &m, tgt_opts, memory_opts)?;
        }
        if let Some(norm) = &self.norm {
            x = norm.forward(&x)?;
        }
        to_batch_first(&x, bf)
    }
}
