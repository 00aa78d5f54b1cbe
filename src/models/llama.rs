//! The Llama family (`kiln::models::llama`): Llama 2/3, TinyLlama, Mistral and Qwen2
//! share one architecture — RMSNorm before attention and MLP, rotary position
//! embeddings, grouped-query attention, a SiLU-gated MLP, a tied or untied head —
//! and `transformers`' tensor names (`model.embed_tokens.weight`,
//! `model.layers.<i>.self_attn.q_proj.weight`, ..., `model.norm.weight`,
//! `lm_head.weight`), so a hub folder loads with [`Llama::from_pretrained`] and saves
//! back with [`Llama::save_pretrained`].

use super::hub::{self, HubConfig};
use super::kv_cache::{attention, check_ids, KvCache};
use super::rope::{self, Rope};
use crate::nn::functional::{self as F, SdpaOpts};
use crate::nn::{self, Embedding, Forward, Linear, LinearOpts, Mode, Module, RMSNorm};
use crate::{DType, Device, Error, Result, Tensor};
use std::path::Path;

/// The sizes and options of a [`Llama`], from `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// The model width.
    pub hidden_size: usize,
    /// The MLP's width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    pub num_key_value_heads: usize,
    /// Features per head (`head_dim`; `hidden_size / num_attention_heads` when absent).
    pub head_dim: usize,
    /// The longest context (`max_position_embeddings`).
    pub max_position_embeddings: usize,
    /// The RMSNorms' eps.
    pub rms_norm_eps: f64,
    /// Rotary embeddings.
    pub rope: Rope,
    /// Biases on q, k, v (`attention_bias` of Llama, always for Qwen2).
    pub qkv_bias: bool,
    /// A bias on the output projection (Llama's `attention_bias`).
    pub o_bias: bool,
    /// Biases in the MLP (`mlp_bias`).
    pub mlp_bias: bool,
    /// The head reuses the token embedding's weight.
    pub tie_word_embeddings: bool,
    /// Attention to at most this many previous positions (Mistral's and Qwen2's
    /// `sliding_window` when in use); kiln refuses longer sequences.
    pub sliding_window: Option<usize>,
    /// Dropout on the attention weights (`attention_dropout`).
    pub attention_dropout: f64,
}

impl LlamaConfig {
    /// The config of a `config.json` of `model_type` llama, mistral or qwen2;
    /// `transformers`' defaults for absent keys. Err naming an unsupported key.
    fn parse(c: &HubConfig) -> Result<LlamaConfig> {
        let model_type = c.str("model_type")?.unwrap_or("llama");
        if !["llama", "mistral", "qwen2"].contains(&model_type) {
            return Err(c.error(
                "model_type",
                &format!("{model_type:?} is not llama, mistral or qwen2"),
            ));
        }
        let act = c.str("hidden_act")?.unwrap_or("silu");
        if act != "silu" {
            return Err(c.error("hidden_act", &format!("{act:?} is not supported (silu is)")));
        }
        let hidden_size = c.usize("hidden_size", None)?;
        let heads = c.usize("num_attention_heads", None)?;
        let bias = c.bool("attention_bias", false)?;
        let qwen2 = model_type == "qwen2";
        let window = match model_type {
            "mistral" => c.usize("sliding_window", Some(0))?,
            "qwen2" if c.bool("use_sliding_window", false)? => {
                c.usize("sliding_window", Some(0))?
            }
            _ => 0,
        };
        Ok(LlamaConfig {
            vocab_size: c.usize("vocab_size", None)?,
            hidden_size,
            intermediate_size: c.usize("intermediate_size", None)?,
            num_hidden_layers: c.usize("num_hidden_layers", None)?,
            num_attention_heads: heads,
            num_key_value_heads: c.usize("num_key_value_heads", Some(heads))?,
            head_dim: c.usize(
                "head_dim",
                Some(hidden_size.checked_div(heads).unwrap_or(0)),
            )?,
            max_position_embeddings: c.usize("max_position_embeddings", Some(2048))?,
            rms_norm_eps: c.f64("rms_norm_eps", 1e-6)?,
            rope: Rope::parse(c)?,
            qkv_bias: bias || qwen2,
            o_bias: bias,
            mlp_bias: c.bool("mlp_bias", false)?,
            tie_word_embeddings: c.bool("tie_word_embeddings", false)?,
            sliding_window: (window > 0).then_some(window),
            attention_dropout: c.f64("attention_dropout", 0.0)?,
        })
    }

    /// Err naming the first size that cannot make a model.
    fn check(&self) -> Result<()> {
        for (name, n) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("head_dim", self.head_dim),
        ] {
            if n == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let (h, kv) = (self.num_attention_heads, self.num_key_value_heads);
        if kv == 0 || !h.is_multiple_of(kv) {
            return Err(Error::arg(
                "num_key_value_heads",
                format!("must divide num_attention_heads = {h}, got {kv}"),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(Error::arg("head_dim", "must be even for rotary embeddings"));
        }
        Ok(())
    }
}

/// Attention: `q_proj`, `k_proj`, `v_proj` (fewer heads with GQA), rotary embeddings
/// on q and k, and `o_proj`.
#[derive(Debug, nn::Module)]
pub struct LlamaAttention {
    /// `hidden → heads · head_dim`.
    pub q_proj: Linear,
    /// `hidden → kv_heads · head_dim`.
    pub k_proj: Linear,
    /// `hidden → kv_heads · head_dim`.
    pub v_proj: Linear,
    /// `heads · head_dim → hidden`.
    pub o_proj: Linear,
    mode: Mode,
}

/// The gated MLP: `down_proj(silu(gate_proj(x)) · up_proj(x))`.
#[derive(Debug, nn::Module)]
pub struct LlamaMlp {
    /// `hidden → intermediate`, through SiLU.
    pub gate_proj: Linear,
    /// `hidden → intermediate`.
    pub up_proj: Linear,
    /// `intermediate → hidden`.
    pub down_proj: Linear,
    mode: Mode,
}

/// One decoder layer: `x + attn(norm(x))`, then `x + mlp(norm(x))`.
#[derive(Debug, nn::Module)]
pub struct LlamaDecoderLayer {
    /// Attention.
    pub self_attn: LlamaAttention,
    /// The MLP.
    pub mlp: LlamaMlp,
    /// RMSNorm before attention.
    pub input_layernorm: RMSNorm,
    /// RMSNorm before the MLP.
    pub post_attention_layernorm: RMSNorm,
    mode: Mode,
}

/// The decoder without its head (`transformers`' `LlamaModel`).
#[derive(Debug, nn::Module)]
pub struct LlamaModel {
    /// Token embedding `(vocab_size, hidden_size)`.
    pub embed_tokens: Embedding,
    /// The layers.
    pub layers: Vec<LlamaDecoderLayer>,
    /// The final RMSNorm.
    pub norm: RMSNorm,
    mode: Mode,
}

/// A Llama-family causal language model (`LlamaForCausalLM`): I64 ids `(B, T)` →
/// logits `(B, T, vocab_size)`.
#[derive(Debug, nn::Module)]
pub struct Llama {
    /// The decoder.
    pub model: LlamaModel,
    /// The head (`None` when tied to `model.embed_tokens`).
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: LlamaConfig,
    #[module(skip)]
    hub: HubConfig,
    /// The rotary inverse frequencies (uploaded with each call's positions, so they
    /// follow the model to any device).
    #[module(skip)]
    inv_freq: Vec<f32>,
    mode: Mode,
}

impl Llama {
    /// The modules of `config`'s sizes on `device` in `dtype`, with each layer's
    /// default initialisation (overwritten by a checkpoint).
    fn build(config: LlamaConfig, hub: HubConfig, dtype: DType, device: &Device) -> Result<Llama> {
        config.check()?;
        let c = &config;
        let (d, hd) = (c.hidden_size, c.head_dim);
        let lin =
            |i, o, bias| Linear::new_with(i, o, LinearOpts::new().bias(bias).dtype(dtype), device);
        let norm = || RMSNorm::with_options(&[d], Some(c.rms_norm_eps), true, device);
        let layers = (0..c.num_hidden_layers)
            .map(|_| {
                Ok(LlamaDecoderLayer {
                    self_attn: LlamaAttention {
                        q_proj: lin(d, c.num_attention_heads * hd, c.qkv_bias)?,
                        k_proj: lin(d, c.num_key_value_heads * hd, c.qkv_bias)?,
                        v_proj: lin(d, c.num_key_value_heads * hd, c.qkv_bias)?,
                        o_proj: lin(c.num_attention_heads * hd, d, c.o_bias)?,
                        mode: Mode::default(),
                    },
                    mlp: LlamaMlp {
                        gate_proj: lin(d, c.intermediate_size, c.mlp_bias)?,
                        up_proj: lin(d, c.intermediate_size, c.mlp_bias)?,
                        down_proj: lin(c.intermediate_size, d, c.mlp_bias)?,
                        mode: Mode::default(),
                    },
                    input_layernorm: norm()?,
                    post_attention_layernorm: norm()?,
                    mode: Mode::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = (!c.tie_word_embeddings)
            .then(|| lin(d, c.vocab_size, false))
            .transpose()?;
        let model = Llama {
            model: LlamaModel {
                embed_tokens: Embedding::new(c.vocab_size, d, device)?,
                layers,
                norm: norm()?,
                mode: Mode::default(),
            },
            lm_head,
            inv_freq: c.rope.inv_freq(hd),
            config,
            hub,
            mode: Mode::default(),
        };
        model.to_dtype(dtype)?;
        Ok(model)
    }

    /// Loads the model in the hub folder `dir` (`config.json` and `model.safetensors`,
    /// or the shards listed by `model.safetensors.index.json`) onto `device` in `dtype`
    /// (the file's dtype is converted), in eval mode. Strict: a missing, unexpected or
    /// mis-shaped tensor is an [`Error::Checkpoint`] naming it; an unsupported config
    /// value (another `model_type`, `hidden_act` or `rope_type`) names its key.
    pub fn from_pretrained(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Llama> {
        let dir = dir.as_ref();
        let hub = HubConfig::read(dir)?;
        let model = Llama::build(LlamaConfig::parse(&hub)?, hub, dtype, device)?;
        let tied = model.config.tie_word_embeddings;
        let state = hub::read_weights(dir)?
            .into_iter()
            // Rotary tables some files carry, and a tied head saved anyway.
            .filter(|(name, _)| {
                !(name.ends_with("rotary_emb.inv_freq") || (tied && name == "lm_head.weight"))
            })
            .map(|(name, t)| Ok((name, t.to_dtype(dtype)?)))
            .collect::<Result<Vec<_>>>()?;
        model.load_state_dict(&state)?;
        model.eval();
        Ok(model)
    }

    /// Writes the model as a hub folder (`config.json` and `model.safetensors` with
    /// `transformers`' names), which `from_pretrained` (kiln's and `transformers`')
    /// loads.
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dtype = self.model.embed_tokens.weight.dtype();
        hub::write_folder(dir.as_ref(), &self.hub, &self.state_dict(), dtype)
    }

    /// The model's sizes and options.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The token ids of `config.json`'s `eos_token_id` (none when absent).
    pub fn eos_token_ids(&self) -> Result<Vec<u32>> {
        self.hub.ids("eos_token_id")
    }

    /// An empty cache for `batch` sequences of up to `max_len` tokens, allocated on the
    /// model's device.
    pub fn kv_cache(&self, batch: usize, max_len: usize) -> Result<KvCache> {
        let c = &self.config;
        self.check_length("max_len", max_len)?;
        let w = &self.model.embed_tokens.weight;
        let shape = [batch, c.num_key_value_heads, max_len, c.head_dim];
        KvCache::new(c.num_hidden_layers, shape, w.dtype(), &w.device())
    }

    /// The logits `(B, t, vocab_size)` of `t` new tokens `ids (B, t)` that follow the
    /// ones in `cache`, whose keys and values are appended to it.
    pub fn forward_with_cache(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        cache.step(ids, |pos, cache| self.run(ids, pos, Some(cache)))
    }

    /// Err naming `name` for a length past the sliding window (which kiln does not
    /// implement).
    fn check_length(&self, name: &'static str, len: usize) -> Result<()> {
        match self.config.sliding_window {
            Some(w) if len > w => Err(Error::arg(
                name,
                format!("{len} positions exceed the model's sliding_window {w}, which kiln does not implement"),
            )),
            _ => Ok(()),
        }
    }

    /// The logits of `ids (B, T)` at positions `pos` (`(B, T)` or `(1, T)`), through the
    /// cache if any.
    fn run(&self, ids: &Tensor, pos: &Tensor, cache: Option<&KvCache>) -> Result<Tensor> {
        let m = &self.model;
        let mut x = m.embed_tokens.forward(ids)?;
        let inv_freq =
            Tensor::from_vec(self.inv_freq.clone(), &[self.inv_freq.len()], &ids.device())?;
        let (cos, sin) = rope::cos_sin(pos, &inv_freq, x.dtype())?;
        for (i, layer) in m.layers.iter().enumerate() {
            x = self.layer(i, layer, &x, [&cos, &sin], cache)?;
        }
        let x = m.norm.forward(&x)?;
        match &self.lm_head {
            Some(head) => head.forward(&x),
            None => F::linear(&x, &m.embed_tokens.weight, None),
        }
    }

    /// Layer `i` on the residual stream `x (B, T, hidden)`.
    fn layer(
        &self,
        i: usize,
        layer: &LlamaDecoderLayer,
        x: &Tensor,
        [cos, sin]: [&Tensor; 2],
        cache: Option<&KvCache>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t, hd) = (x.shape()[0], x.shape()[1], c.head_dim);
        let a = &layer.self_attn;
        let h = layer.input_layernorm.forward(x)?;
        let heads =
            |proj: &Linear, n: usize| proj.forward(&h)?.reshape(&[b, t, n, hd])?.transpose(1, 2);
        let q = rope::apply(&heads(&a.q_proj, c.num_attention_heads)?, cos, sin)?;
        let k = rope::apply(&heads(&a.k_proj, c.num_key_value_heads)?, cos, sin)?;
        let v = heads(&a.v_proj, c.num_key_value_heads)?;
        let training = self.mode.is_training();
        let opts = SdpaOpts::new().dropout(c.attention_dropout, training);
        let y = match cache {
            Some(cache) => cache.attend(i, [&q, &k, &v], opts)?,
            None => attention(&q, &k, &v, opts.causal(true))?,
        };
        let y = a.o_proj.forward(&y.transpose(1, 2)?.reshape(&[
            b,
            t,
            c.num_attention_heads * hd,
        ])?)?;
        let x = x.add(&y.to_dtype(x.dtype())?)?;
        let mlp = &layer.mlp;
        let h = layer.post_attention_layernorm.forward(&x)?;
        let gated = F::silu(&mlp.gate_proj.forward(&h)?)?.mul(&mlp.up_proj.forward(&h)?)?;
        x.add(&mlp.down_proj.forward(&gated)?.to_dtype(x.dtype())?)
    }
}

impl Forward for Llama {
    /// The logits `(B, T, vocab_size)` of I64 ids `(B, T)`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let t = check_ids(ids)?.1;
        self.check_length("ids", t)?;
        let pos = Tensor::arange(t, DType::I64, &ids.device())?.reshape(&[1, t])?;
        self.run(ids, &pos, None)
    }
}
