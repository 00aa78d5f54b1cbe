//! A GPT language model (`kiln::models::gpt`): token and position embeddings, `n_layer`
//! pre-norm blocks of causal multi-head self-attention and a GELU MLP, a final
//! LayerNorm and a linear head to the vocabulary (optionally tied to the token
//! embedding). `examples/train_gpt.rs` trains it on characters.
//!
//! Parameter names follow the PyTorch definition in `scripts/golden/gpt.py`
//! (`wte`, `wpe`, `blocks.<i>.ln_1`, `blocks.<i>.attn` — an `nn.MultiheadAttention` —,
//! `blocks.<i>.ln_2`, `blocks.<i>.mlp.c_fc`, `blocks.<i>.mlp.c_proj`, `ln_f`,
//! `lm_head`), so a state_dict saved by PyTorch loads.

use crate::nn::{
    self, functional as F, AttnOpts, Embedding, Forward, LayerNorm, Linear, Mode,
    MultiheadAttention,
};
use crate::{DType, Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The sizes of a [`Gpt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// The longest context (positions in `wpe`).
    pub block_size: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// The model width.
    pub n_embd: usize,
    /// The head reuses the token embedding's weight (no `lm_head` parameter).
    pub tie_weights: bool,
}

/// The feed-forward part of a block: `c_proj(gelu(c_fc(x)))`, 4× wide.
#[derive(Debug, nn::Module)]
pub struct Mlp {
    /// `n_embd → 4·n_embd`.
    pub c_fc: Linear,
    /// `4·n_embd → n_embd`.
    pub c_proj: Linear,
    mode: Mode,
}

impl Forward for Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.c_proj.forward(&F::gelu(&self.c_fc.forward(x)?)?)
    }
}

/// One pre-norm block: `x + attn(ln_1(x))` (causal), then `x + mlp(ln_2(x))`.
#[derive(Debug, nn::Module)]
pub struct Block {
    /// Before attention.
    pub ln_1: LayerNorm,
    /// Causal self-attention.
    pub attn: MultiheadAttention,
    /// Before the MLP.
    pub ln_2: LayerNorm,
    /// The feed-forward part.
    pub mlp: Mlp,
    mode: Mode,
    /// Run under activation checkpointing ([`Block::set_checkpoint`]).
    #[module(skip)]
    checkpoint: AtomicBool,
}

impl Block {
    /// With `on`, the model runs this block through [`crate::utils::checkpoint`]: its
    /// activations are recomputed during backward instead of kept.
    pub fn set_checkpoint(&self, on: bool) {
        self.checkpoint.store(on, Ordering::Relaxed);
    }
}

impl Forward for Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // The residual stream keeps its dtype (f32 under BF16 autocast, where the
        // attention and the MLP compute in BF16).
        let h = self.ln_1.forward(x)?;
        let a = self
            .attn
            .forward_qkv(&h, &h, &h, AttnOpts::new().causal(true))?;
        let x = x.add(&a.to_dtype(x.dtype())?)?;
        let m = self.mlp.forward(&self.ln_2.forward(&x)?)?;
        x.add(&m.to_dtype(x.dtype())?)
    }
}

/// The model: `forward` maps I64 token ids `(B, T)` (T ≤ `block_size`) to logits
/// `(B, T, vocab_size)`.
#[derive(Debug, nn::Module)]
pub struct Gpt {
    /// Token embedding `(vocab_size, n_embd)`.
    pub wte: Embedding,
    /// Position embedding `(block_size, n_embd)`.
    pub wpe: Embedding,
    /// The transformer blocks (shared, so that a checkpointed one can run again
    /// during backward).
    pub blocks: Vec<Arc<Block>>,
    /// The final LayerNorm.
    pub ln_f: LayerNorm,
    /// The head (`None` when tied to `wte`).
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: GptConfig,
    mode: Mode,
}

impl Gpt {
    /// A model of `config`'s sizes on `device` (f32): PyTorch's default
    /// initialisation of each layer, then GPT-2's N(0, 0.02) for the embeddings and
    /// the weights of every linear map (the scale at which a small model trains
    /// quickly). Err for a zero size or `n_embd` not a multiple of `n_head`.
    pub fn new(config: GptConfig, device: &Device) -> Result<Gpt> {
        for (name, v) in [
            ("vocab_size", config.vocab_size),
            ("block_size", config.block_size),
            ("n_layer", config.n_layer),
        ] {
            if v == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let d = config.n_embd;
        let blocks = (0..config.n_layer)
            .map(|_| -> Result<Arc<Block>> {
                Ok(Arc::new(Block {
                    ln_1: LayerNorm::new(d, device)?,
                    attn: MultiheadAttention::new(d, config.n_head, device)?,
                    ln_2: LayerNorm::new(d, device)?,
                    mlp: Mlp {
                        c_fc: Linear::new(d, 4 * d, device)?,
                        c_proj: Linear::new(4 * d, d, device)?,
                        mode: Mode::default(),
                    },
                    mode: Mode::default(),
                    checkpoint: AtomicBool::new(false),
                }))
            })
            .collect::<Result<Vec<_>>>()?;
        let gpt = Gpt {
            wte: Embedding::new(config.vocab_size, d, device)?,
            wpe: Embedding::new(config.block_size, d, device)?,
            blocks,
            ln_f: LayerNorm::new(d, device)?,
            lm_head: if config.tie_weights {
                None
            } else {
                Some(Linear::no_bias(d, config.vocab_size, device)?)
            },
            config,
            mode: Mode::default(),
        };
        let _no_grad = crate::no_grad();
        for (name, p) in nn::Module::named_parameters(&gpt) {
            if name.ends_with("weight") && p.rank() == 2 {
                let init = Tensor::randn(p.shape(), DType::F32, device)?.mul_scalar(0.02)?;
                p.copy_(&init.to_dtype(p.dtype())?)?;
            }
        }
        Ok(gpt)
    }

    /// The model's sizes.
    pub fn config(&self) -> GptConfig {
        self.config
    }

    /// [`Block::set_checkpoint`] on every block: activation checkpointing per block.
    pub fn set_checkpoint(&self, on: bool) {
        self.blocks.iter().for_each(|b| b.set_checkpoint(on));
    }
}

impl Forward for Gpt {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
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
        let t = ids.shape()[1];
        if t > self.config.block_size {
            return Err(Error::arg(
                "ids",
                format!(
                    "{t} positions exceed the model's block_size {}",
                    self.config.block_size
                ),
            ));
        }
        let pos = Tensor::arange(t, DType::I64, &ids.device())?;
        let mut x = self.wte.forward(ids)?.add(&self.wpe.forward(&pos)?)?;
        for block in &self.blocks {
            x = super::run_block(block, &block.checkpoint, &x)?;
        }
        let x = self.ln_f.forward(&x)?;
        match &self.lm_head {
            Some(head) => head.forward(&x),
            None => F::linear(&x, &self.wte.weight, None),
        }
    }
}
