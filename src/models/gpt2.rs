//! GPT-2 (`kiln::models::gpt2`): OpenAI's GPT-2 with the Hugging Face hub's names, so a
//! model folder (`config.json` + `model.safetensors`, as `transformers` saves
//! `GPT2LMHeadModel`) loads with [`Gpt2::from_pretrained`] and a kiln model saves back
//! with [`Gpt2::save_pretrained`].
//!
//! The parameters are named as in `transformers` (`transformer.wte.weight`,
//! `transformer.h.<i>.attn.c_attn.weight`, ..., `lm_head.weight` when the head is not
//! tied to the token embedding). GPT-2's `Conv1D` stores its weight as `(in, out)`;
//! kiln's [`Linear`] holds `(out, in)`, so those four weights per block are transposed
//! on load and on save.

use super::hub::{self, HubConfig};
use super::kv_cache::{attention, check_ids, KvCache};
use crate::nn::functional::{self as F, SdpaOpts};
use crate::nn::{self, Dropout, Embedding, Forward, LayerNorm, Linear, LinearOpts, Mode, Module};
use crate::{DType, Device, Error, Result, Tensor};
use std::path::Path;

/// The sizes and options of a [`Gpt2`]: the fields of `transformers`' `GPT2Config`
/// that the computation uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpt2Config {
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// The longest context (rows of `wpe`).
    pub n_positions: usize,
    /// The model width.
    pub n_embd: usize,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// The MLP's width (`n_inner`; `4 · n_embd` when null).
    pub n_inner: usize,
    /// The MLP's nonlinearity (`activation_function`).
    pub activation: Gpt2Activation,
    /// The LayerNorms' eps.
    pub layer_norm_epsilon: f64,
    /// Dropout on the embeddings, the attention weights and the residual branches.
    pub embd_pdrop: f64,
    /// Dropout on the attention weights.
    pub attn_pdrop: f64,
    /// Dropout on each residual branch.
    pub resid_pdrop: f64,
    /// The head reuses `wte`'s weight (`tie_word_embeddings`, true for GPT-2).
    pub tie_word_embeddings: bool,
    /// Scores are scaled by `1/√head_dim` (`scale_attn_weights`).
    pub scale_attn_weights: bool,
    /// Scores of block `i` are also divided by `i + 1` (`scale_attn_by_inverse_layer_idx`).
    pub scale_attn_by_inverse_layer_idx: bool,
    /// The standard deviation of [`Gpt2::new`]'s weights (`initializer_range`).
    pub initializer_range: f64,
}

/// GPT-2's `activation_function` values that kiln computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gpt2Activation {
    /// `"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`: GELU's tanh approximation.
    GeluTanh,
    /// `"gelu"`: the exact GELU.
    Gelu,
    /// `"relu"`.
    Relu,
    /// `"silu"` / `"swish"`.
    Silu,
}

impl Gpt2Activation {
    fn parse(name: &str) -> Option<Gpt2Activation> {
        Some(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Gpt2Activation::GeluTanh,
            "gelu" => Gpt2Activation::Gelu,
            "relu" => Gpt2Activation::Relu,
            "silu" | "swish" => Gpt2Activation::Silu,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Gpt2Activation::GeluTanh => "gelu_new",
            Gpt2Activation::Gelu => "gelu",
            Gpt2Activation::Relu => "relu",
            Gpt2Activation::Silu => "silu",
        }
    }

    fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Gpt2Activation::GeluTanh => F::gelu_tanh(x),
            Gpt2Activation::Gelu => F::gelu(x),
            Gpt2Activation::Relu => F::relu(x),
            Gpt2Activation::Silu => F::silu(x),
        }
    }
}

impl Gpt2Config {
    /// GPT-2 small's sizes (124M parameters), `transformers`' `GPT2Config()` defaults.
    pub fn gpt2_small() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: 3072,
            activation: Gpt2Activation::GeluTanh,
            layer_norm_epsilon: 1e-5,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            resid_pdrop: 0.1,
            tie_word_embeddings: true,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            initializer_range: 0.02,
        }
    }

    /// The config of a `config.json`; `transformers`' defaults for absent keys.
    fn parse(c: &HubConfig) -> Result<Gpt2Config> {
        let d = Gpt2Config::gpt2_small();
        let n_embd = c.usize("n_embd", Some(d.n_embd))?;
        let act = c.str("activation_function")?.unwrap_or("gelu_new");
        let config = Gpt2Config {
            vocab_size: c.usize("vocab_size", Some(d.vocab_size))?,
            n_positions: c.usize("n_positions", Some(d.n_positions))?,
            n_embd,
            n_layer: c.usize("n_layer", Some(d.n_layer))?,
            n_head: c.usize("n_head", Some(d.n_head))?,
            n_inner: c.usize("n_inner", Some(4 * n_embd))?,
            activation: Gpt2Activation::parse(act).ok_or_else(|| {
                c.error("activation_function", &format!("{act:?} is not supported"))
            })?,
            layer_norm_epsilon: c.f64("layer_norm_epsilon", d.layer_norm_epsilon)?,
            embd_pdrop: c.f64("embd_pdrop", d.embd_pdrop)?,
            attn_pdrop: c.f64("attn_pdrop", d.attn_pdrop)?,
            resid_pdrop: c.f64("resid_pdrop", d.resid_pdrop)?,
            tie_word_embeddings: c.bool("tie_word_embeddings", true)?,
            scale_attn_weights: c.bool("scale_attn_weights", true)?,
            scale_attn_by_inverse_layer_idx: c.bool("scale_attn_by_inverse_layer_idx", false)?,
            initializer_range: c.f64("initializer_range", d.initializer_range)?,
        };
        if c.bool("add_cross_attention", false)? {
            return Err(c.error(
                "add_cross_attention",
                "is not supported (a decoder-only GPT-2 is)",
            ));
        }
        Ok(config)
    }

    /// The `config.json` of `transformers`' `GPT2LMHeadModel` with these values.
    fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let json = serde_json::json!({
            "architectures": ["GPT2LMHeadModel"],
            "model_type": "gpt2",
            "vocab_size": self.vocab_size,
            "n_positions": self.n_positions,
            "n_embd": self.n_embd,
            "n_layer": self.n_layer,
            "n_head": self.n_head,
            "n_inner": self.n_inner,
            "activation_function": self.activation.name(),
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "embd_pdrop": self.embd_pdrop,
            "attn_pdrop": self.attn_pdrop,
            "resid_pdrop": self.resid_pdrop,
            "tie_word_embeddings": self.tie_word_embeddings,
            "scale_attn_weights": self.scale_attn_weights,
            "scale_attn_by_inverse_layer_idx": self.scale_attn_by_inverse_layer_idx,
            "initializer_range": self.initializer_range,
        });
        json.as_object().cloned().unwrap_or_default()
    }

    /// Err naming the first size that cannot make a model.
    fn check(&self) -> Result<()> {
        for (name, n) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_inner", self.n_inner),
        ] {
            if n == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        if self.n_embd == 0 || !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Error::arg(
                "n_embd",
                format!(
                    "must be a positive multiple of n_head = {}, got {}",
                    self.n_head, self.n_embd
                ),
            ));
        }
        Ok(())
    }
}

/// Causal self-attention: the packed `c_attn` projection to q, k, v, and `c_proj`.
#[derive(Debug, nn::Module)]
pub struct Gpt2Attention {
    /// `n_embd → 3·n_embd` (q, k, v).
    pub c_attn: Linear,
    /// `n_embd → n_embd`.
    pub c_proj: Linear,
    /// Dropout on the output.
    pub resid_dropout: Dropout,
    mode: Mode,
}

/// The feed-forward part: `dropout(c_proj(act(c_fc(x))))`.
#[derive(Debug, nn::Module)]
pub struct Gpt2Mlp {
    /// `n_embd → n_inner`.
    pub c_fc: Linear,
    /// `n_inner → n_embd`.
    pub c_proj: Linear,
    /// Dropout on the output.
    pub dropout: Dropout,
    mode: Mode,
}

/// One pre-norm block: `x + attn(ln_1(x))`, then `x + mlp(ln_2(x))`.
#[derive(Debug, nn::Module)]
pub struct Gpt2Block {
    /// Before attention.
    pub ln_1: LayerNorm,
    /// Causal self-attention.
    pub attn: Gpt2Attention,
    /// Before the MLP.
    pub ln_2: LayerNorm,
    /// The feed-forward part.
    pub mlp: Gpt2Mlp,
    mode: Mode,
}

/// The transformer without its head (`transformers`' `GPT2Model`).
#[derive(Debug, nn::Module)]
pub struct Gpt2Model {
    /// Token embedding `(vocab_size, n_embd)`.
    pub wte: Embedding,
    /// Position embedding `(n_positions, n_embd)`.
    pub wpe: Embedding,
    /// Dropout on the embeddings' sum.
    pub drop: Dropout,
    /// The blocks.
    pub h: Vec<Gpt2Block>,
    /// The final LayerNorm.
    pub ln_f: LayerNorm,
    mode: Mode,
}

/// GPT-2 with its language-model head (`transformers`' `GPT2LMHeadModel`): I64 ids
/// `(B, T)` → logits `(B, T, vocab_size)`.
#[derive(Debug, nn::Module)]
pub struct Gpt2 {
    /// The transformer.
    pub transformer: Gpt2Model,
    /// The head (`None` when tied to `transformer.wte`).
    pub lm_head: Option<Linear>,
    #[module(skip)]
    config: Gpt2Config,
    #[module(skip)]
    hub: HubConfig,
    mode: Mode,
}

/// Whether a hub tensor name is one of GPT-2's `Conv1D` weights, stored `(in, out)`.
fn is_conv1d_weight(name: &str) -> bool {
    [
        ".attn.c_attn.weight",
        ".attn.c_proj.weight",
        ".mlp.c_fc.weight",
        ".mlp.c_proj.weight",
    ]
    .iter()
    .any(|s| name.ends_with(s))
}

impl Gpt2 {
    /// The modules of `config`'s sizes on `device` in `dtype`, with each layer's
    /// default initialisation (overwritten by [`Gpt2::new`] or a checkpoint).
    fn build(config: Gpt2Config, hub: HubConfig, dtype: DType, device: &Device) -> Result<Gpt2> {
        config.check()?;
        let (d, c) = (config.n_embd, &config);
        let ln = || LayerNorm::with_options(&[d], c.layer_norm_epsilon, true, true, device);
        let lin = |i, o| Linear::new_with(i, o, LinearOpts::new().dtype(dtype), device);
        let h = (0..c.n_layer)
            .map(|_| {
                Ok(Gpt2Block {
                    ln_1: ln()?,
                    attn: Gpt2Attention {
                        c_attn: lin(d, 3 * d)?,
                        c_proj: lin(d, d)?,
                        resid_dropout: Dropout::new(c.resid_pdrop)?,
                        mode: Mode::default(),
                    },
                    ln_2: ln()?,
                    mlp: Gpt2Mlp {
                        c_fc: lin(d, c.n_inner)?,
                        c_proj: lin(c.n_inner, d)?,
                        dropout: Dropout::new(c.resid_pdrop)?,
                        mode: Mode::default(),
                    },
                    mode: Mode::default(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            Some(Linear::new_with(
                d,
                c.vocab_size,
                LinearOpts::new().bias(false).dtype(dtype),
                device,
            )?)
        };
        let model = Gpt2 {
            transformer: Gpt2Model {
                wte: Embedding::new(c.vocab_size, d, device)?,
                wpe: Embedding::new(c.n_positions, d, device)?,
                drop: Dropout::new(c.embd_pdrop)?,
                h,
                ln_f: ln()?,
                mode: Mode::default(),
            },
            lm_head,
            config,
            hub,
            mode: Mode::default(),
        };
        model.to_dtype(dtype)?;
        Ok(model)
    }

    /// A new model of `config`'s sizes on `device` in `dtype`, initialised as
    /// `transformers` initialises GPT-2: weights N(0, `initializer_range`), the
    /// residual projections' scaled by `1/√(2·n_layer)`, biases 0, LayerNorms 1 and 0.
    /// Training mode. Err naming a size that cannot make a model.
    pub fn new(config: Gpt2Config, dtype: DType, device: &Device) -> Result<Gpt2> {
        let hub = HubConfig::from_json(config.to_json());
        let model = Gpt2::build(config, hub, dtype, device)?;
        let c = &model.config;
        let _no_grad = crate::no_grad();
        for (name, p) in model.named_parameters() {
            let std = if name.ends_with("c_proj.weight") {
                c.initializer_range / (2.0 * c.n_layer as f64).sqrt()
            } else {
                c.initializer_range
            };
            if p.rank() == 2 {
                let w = Tensor::randn(p.shape(), DType::F32, device)?.mul_scalar(std)?;
                p.copy_(&w.to_dtype(dtype)?)?;
            } else if name.ends_with("bias") {
                p.copy_(&Tensor::zeros(p.shape(), dtype, device)?)?;
            }
        }
        Ok(model)
    }

    /// Loads the GPT-2 in the model folder `dir` (`config.json` and
    /// `model.safetensors` or its shards, as `transformers` saves them, with or without
    /// the `transformer.` prefix of `GPT2Model` files) onto `device` in `dtype`, in eval
    /// mode. Strict: a missing, unexpected or mis-shaped tensor is an
    /// [`Error::Checkpoint`] naming it; an unsupported config value names its key.
    pub fn from_pretrained(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Gpt2> {
        let dir = dir.as_ref();
        let hub = HubConfig::read(dir)?;
        let model = Gpt2::build(Gpt2Config::parse(&hub)?, hub, dtype, device)?;
        let tied = model.config.tie_word_embeddings;
        let state = hub::read_weights(dir)?
            .into_iter()
            .filter_map(|(name, t)| {
                let name = if name.starts_with("transformer.") || name == "lm_head.weight" {
                    name
                } else {
                    format!("transformer.{name}")
                };
                // The causal-mask buffers of old files, and a tied head saved anyway.
                let skip = (name.ends_with(".attn.bias") && t.rank() == 4)
                    || name.ends_with(".attn.masked_bias")
                    || (tied && name == "lm_head.weight");
                (!skip).then_some((name, t))
            })
            .map(|(name, t)| {
                let t = if is_conv1d_weight(&name) {
                    t.transpose(0, 1)?
                } else {
                    t
                };
                Ok((name, t.to_dtype(dtype)?))
            })
            .collect::<Result<Vec<_>>>()?;
        model.load_state_dict(&state)?;
        model.eval();
        Ok(model)
    }

    /// Writes the model as a hub folder: `config.json` (the loaded one, or this model's
    /// sizes) and `model.safetensors` with `transformers`' names and `Conv1D` layouts,
    /// which `GPT2LMHeadModel.from_pretrained(dir)` loads (and so does
    /// [`Gpt2::from_pretrained`]).
    pub fn save_pretrained(&self, dir: impl AsRef<Path>) -> Result<()> {
        let state = self
            .state_dict()
            .into_iter()
            .map(|(name, t)| {
                let t = if is_conv1d_weight(&name) {
                    t.transpose(0, 1)?.contiguous()?
                } else {
                    t
                };
                Ok((name, t))
            })
            .collect::<Result<Vec<_>>>()?;
        let dtype = self.transformer.wte.weight.dtype();
        hub::write_folder(dir.as_ref(), &self.hub, &state, dtype)
    }

    /// The model's sizes and options.
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// The token ids of `config.json`'s `eos_token_id` (none when absent).
    pub fn eos_token_ids(&self) -> Result<Vec<u32>> {
        self.hub.ids("eos_token_id")
    }

    /// An empty cache for `batch` sequences of up to `max_len` tokens (at most
    /// `n_positions`), allocated on the model's device.
    pub fn kv_cache(&self, batch: usize, max_len: usize) -> Result<KvCache> {
        let c = &self.config;
        if max_len > c.n_positions {
            return Err(Error::arg(
                "max_len",
                format!(
                    "{max_len} exceeds the model's n_positions {}",
                    c.n_positions
                ),
            ));
        }
        let w = &self.transformer.wte.weight;
        let shape = [batch, c.n_head, max_len, c.n_embd / c.n_head];
        KvCache::new(c.n_layer, shape, w.dtype(), &w.device())
    }

    /// The logits `(B, t, vocab_size)` of `t` new tokens `ids (B, t)` that follow the
    /// ones in `cache`, whose keys and values are appended to it.
    pub fn forward_with_cache(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
        cache.step(ids, |pos, cache| self.run(ids, pos, Some(cache)))
    }

    /// The logits of `ids (B, T)` at positions `pos` (`(B, T)` or `(1, T)`), through the
    /// cache if any.
    fn run(&self, ids: &Tensor, pos: &Tensor, cache: Option<&KvCache>) -> Result<Tensor> {
        let m = &self.transformer;
        let mut x = m
            .drop
            .forward(&m.wte.forward(ids)?.add(&m.wpe.forward(pos)?)?)?;
        for (i, block) in m.h.iter().enumerate() {
            x = self.block(i, block, &x, cache)?;
        }
        let x = m.ln_f.forward(&x)?;
        match &self.lm_head {
            Some(head) => head.forward(&x),
            None => F::linear(&x, &m.wte.weight, None),
        }
    }

    /// Block `i` on the residual stream `x (B, T, n_embd)`.
    fn block(
        &self,
        i: usize,
        block: &Gpt2Block,
        x: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (b, t, d) = (x.shape()[0], x.shape()[1], c.n_embd);
        let hd = d / c.n_head;
        let qkv = block.attn.c_attn.forward(&block.ln_1.forward(x)?)?;
        let heads = |j: usize| {
            qkv.narrow(2, j * d, d)?
                .reshape(&[b, t, c.n_head, hd])?
                .transpose(1, 2)
        };
        let (q, k, v) = (heads(0)?, heads(1)?, heads(2)?);
        let mut scale = if c.scale_attn_weights {
            1.0 / (hd as f64).sqrt()
        } else {
            1.0
        };
        if c.scale_attn_by_inverse_layer_idx {
            scale /= (i + 1) as f64;
        }
        let training = self.mode.is_training();
        let opts = SdpaOpts::new().scale(scale).dropout(c.attn_pdrop, training);
        let a = match cache {
            Some(cache) => cache.attend(i, [&q, &k, &v], opts)?,
            None => attention(&q, &k, &v, opts.causal(true))?,
        };
        let a = block
            .attn
            .c_proj
            .forward(&a.transpose(1, 2)?.reshape(&[b, t, d])?)?;
        let x = x.add(&block.attn.resid_dropout.forward(&a)?.to_dtype(x.dtype())?)?;
        let mlp = &block.mlp;
        let h = mlp.c_fc.forward(&block.ln_2.forward(&x)?)?;
        let m = mlp
            .dropout
            .forward(&mlp.c_proj.forward(&c.activation.apply(&h)?)?)?;
        x.add(&m.to_dtype(x.dtype())?)
    }
}

impl Forward for Gpt2 {
    /// The logits `(B, T, vocab_size)` of I64 ids `(B, T)`, `T ≤ n_positions`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let t = check_ids(ids)?.1;
        if t > self.config.n_positions {
            return Err(Error::arg(
                "ids",
                format!(
                    "{t} positions exceed the model's n_positions {}",
                    self.config.n_positions
                ),
            ));
        }
        let pos = Tensor::arange(t, DType::I64, &ids.device())?.reshape(&[1, t])?;
        self.run(ids, &pos, None)
    }
}
