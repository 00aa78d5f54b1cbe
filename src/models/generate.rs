//! Text generation with a key/value cache: [`generate`] runs the prompt once, then one
//! token per step through [`CausalLm::forward_with_cache`], choosing each token
//! greedily or by sampling (temperature, top-k, top-p, a seed), for a batch of
//! prompts of different lengths (left padding with an attention mask), until
//! `max_new_tokens` or a stop token in every row.

use super::gpt2::Gpt2;
use super::kv_cache::{check_ids, KvCache};
use super::llama::Llama;
use crate::rng::{philox4x32_10, reserve};
use crate::{DType, Error, Result, Tensor};

/// A decoder-only language model that decodes incrementally with a [`KvCache`].
pub trait CausalLm {
    /// An empty cache for `batch` sequences of up to `max_len` tokens on the model's
    /// device (allocated once).
    fn kv_cache(&self, batch: usize, max_len: usize) -> Result<KvCache>;

    /// The logits `(B, t, vocab)` of the `t` new tokens `ids (B, t)`, appended to
    /// `cache`.
    fn forward_with_cache(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor>;
}

macro_rules! causal_lm {
    ($($model:ty),*) => {$(
        impl CausalLm for $model {
            fn kv_cache(&self, batch: usize, max_len: usize) -> Result<KvCache> {
                <$model>::kv_cache(self, batch, max_len)
            }
            fn forward_with_cache(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor> {
                <$model>::forward_with_cache(self, ids, cache)
            }
        }
    )*};
}
causal_lm!(Gpt2, Llama);

/// Options of [`generate`]: `GenerateOpts::new().max_new_tokens(64).temperature(0.8)
/// .top_k(50).top_p(0.95).seed(0)`. Defaults: 20 new tokens, temperature 1 (sampling
/// from the model's distribution; 0 is greedy), no top-k or top-p filter, a seed drawn
/// from kiln's generator, no stop tokens, no padding.
#[derive(Debug, Clone)]
pub struct GenerateOpts<'a> {
    max_new_tokens: usize,
    temperature: f64,
    top_k: Option<usize>,
    top_p: Option<f64>,
    seed: Option<u64>,
    stop_tokens: Vec<u32>,
    pad_token_id: Option<u32>,
    attention_mask: Option<&'a Tensor>,
}

impl Default for GenerateOpts<'_> {
    fn default() -> Self {
        GenerateOpts {
            max_new_tokens: 20,
            temperature: 1.0,
            top_k: None,
            top_p: None,
            seed: None,
            stop_tokens: Vec::new(),
            pad_token_id: None,
            attention_mask: None,
        }
    }
}

impl<'a> GenerateOpts<'a> {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most tokens added to each prompt.
    pub fn max_new_tokens(mut self, n: usize) -> Self {
        self.max_new_tokens = n;
        self
    }

    /// Logits are divided by `t` before sampling; `0.0` picks the most likely token
    /// (greedy decoding, which ignores top-k, top-p and the seed).
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = t;
        self
    }

    /// Samples among the `k` most likely tokens only.
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = Some(k);
        self
    }

    /// Samples among the most likely tokens whose probabilities sum to at least `p`
    /// (nucleus sampling; applied after top-k, as in `transformers`).
    pub fn top_p(mut self, p: f64) -> Self {
        self.top_p = Some(p);
        self
    }

    /// The seed of the sampling: the same seed, model and prompt give the same tokens.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Tokens that end a row (emitted, then the row is padded while others go on);
    /// generation stops when every row has ended.
    pub fn stop_tokens(mut self, ids: &[u32]) -> Self {
        self.stop_tokens = ids.to_vec();
        self
    }

    /// The token written after a row has ended (default: the first stop token).
    pub fn pad_token_id(mut self, id: u32) -> Self {
        self.pad_token_id = Some(id);
        self
    }

    /// `(B, T)` I64 or U8, 1 for a prompt's tokens and 0 for its padding, which must
    /// come first in its row (left padding, as `transformers` pads for generation).
    pub fn attention_mask(mut self, mask: &'a Tensor) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Err naming the first invalid option.
    fn check(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(Error::arg(
                "temperature",
                format!("must be finite and >= 0, got {}", self.temperature),
            ));
        }
        if self.top_k == Some(0) {
            return Err(Error::arg("top_k", "must be at least 1"));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::arg("top_p", format!("must be in (0, 1], got {p}")));
            }
        }
        Ok(())
    }
}

/// Continues each row of `prompt` (I64 `(B, T)`) by up to `max_new_tokens` tokens:
/// the prompt and the new tokens, I64 `(B, T + n)` on the prompt's device, `n` being
/// the steps taken (fewer than `max_new_tokens` when every row stopped). The cache
/// holds `T + max_new_tokens` positions, allocated once; each step runs the model on
/// one token per row. No gradients are recorded.
///
/// Errors name the argument: `ids` for a prompt that is not I64 `(B, T)` with
/// `T >= 1`; `attention_mask` for a mask of another shape or that is not left
/// padding; `temperature`, `top_k`, `top_p` for values out of range; `max_len` when
/// the prompt plus the new tokens exceed the model's context.
pub fn generate<M: CausalLm + ?Sized>(
    model: &M,
    prompt: &Tensor,
    opts: GenerateOpts,
) -> Result<Tensor> {
    opts.check()?;
    let (b, t) = check_ids(prompt)?;
    if t == 0 {
        return Err(Error::arg("ids", "the prompt needs at least one token"));
    }
    let _no_grad = crate::no_grad();
    let mut cache = model.kv_cache(b, t + opts.max_new_tokens)?;
    if let Some(mask) = opts.attention_mask {
        cache.set_left_padding(&left_padding(mask, b, t)?)?;
    }
    let mut sampler = Sampler::new(&opts, b);
    let pad = opts
        .pad_token_id
        .or(opts.stop_tokens.first().copied())
        .unwrap_or(0);
    let mut done = vec![false; b];
    let mut new_tokens: Vec<Vec<i64>> = vec![Vec::new(); b];
    let mut logits = model
        .forward_with_cache(prompt, &mut cache)?
        .narrow(1, t - 1, 1)?;
    for step in 0..opts.max_new_tokens {
        let next = sampler.choose(&logits.squeeze(1)?, step)?;
        for (row, &token) in next.iter().enumerate() {
            let token = if done[row] { pad } else { token };
            done[row] |= opts.stop_tokens.contains(&token);
            new_tokens[row].push(i64::from(token));
        }
        if done.iter().all(|&d| d) || step + 1 == opts.max_new_tokens {
            break;
        }
        let ids: Vec<i64> = new_tokens.iter().map(|row| row[step]).collect();
        let ids = Tensor::from_vec(ids, &[b, 1], &prompt.device())?;
        logits = model.forward_with_cache(&ids, &mut cache)?;
    }
    let n = new_tokens[0].len();
    let new = Tensor::from_vec(new_tokens.concat(), &[b, n], &prompt.device())?;
    Tensor::cat(&[prompt, &new], 1)
}

/// Each row's count of leading zeros in `mask (B, T)`; Err naming `attention_mask`
/// unless it is `(B, T)` of 0 and 1 with the zeros first and a 1 in every row.
fn left_padding(mask: &Tensor, b: usize, t: usize) -> Result<Vec<usize>> {
    if mask.shape() != [b, t] || !matches!(mask.dtype(), DType::I64 | DType::U8) {
        return Err(Error::arg(
            "attention_mask",
            format!(
                "needs I64 or U8 of the prompt's shape ({b}, {t}), got {:?} {:?}",
                mask.dtype(),
                mask.shape()
            ),
        ));
    }
    let values = mask.to_dtype(DType::I64)?.to_vec::<i64>()?;
    values
        .chunks(t)
        .map(|row| {
            let pad = row.iter().take_while(|&&v| v == 0).count();
            if pad == t || row[pad..].iter().any(|&v| v != 1) {
                return Err(Error::arg(
                    "attention_mask",
                    format!("each row must be 0s (left padding) then at least one 1, got {row:?}"),
                ));
            }
            Ok(pad)
        })
        .collect()
}

/// Chooses each row's next token from its logits.
struct Sampler {
    temperature: f64,
    top_k: Option<usize>,
    top_p: Option<f64>,
    /// The Philox key of the sampling stream, and its first counter.
    seed: u64,
    offset: u64,
    batch: usize,
}

impl Sampler {
    fn new(opts: &GenerateOpts, batch: usize) -> Sampler {
        // Without a seed, a stream reserved from kiln's generator (two words per draw).
        let (seed, offset) = match opts.seed {
            Some(seed) => (seed, 0),
            None => {
                let s = reserve(2 * batch * opts.max_new_tokens);
                (s.seed, s.offset)
            }
        };
        Sampler {
            temperature: opts.temperature,
            top_k: opts.top_k,
            top_p: opts.top_p,
            seed,
            offset,
            batch,
        }
    }

    /// The next token of each row of `logits (B, vocab)` at step `step`.
    fn choose(&mut self, logits: &Tensor, step: usize) -> Result<Vec<u32>> {
        if self.temperature == 0.0 {
            let ids = logits.argmax(1, false)?.to_vec::<i64>()?;
            return Ok(ids.into_iter().map(|i| i as u32).collect());
        }
        let vocab = logits.shape()[1];
        let values = logits.to_dtype(DType::F32)?.to_vec::<f32>()?;
        Ok(values
            .chunks(vocab)
            .enumerate()
            .map(|(row, l)| self.sample(l, self.uniform(step * self.batch + row)))
            .collect())
    }

    /// A uniform number in [0, 1) with 53 random bits: draw `i` of the stream.
    fn uniform(&self, i: usize) -> f64 {
        let n = self.offset.wrapping_add(i as u64);
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let w = philox4x32_10([n as u32, (n >> 32) as u32, 0, 0], key);
        let bits = (u64::from(w[0]) << 21) ^ u64::from(w[1] >> 11);
        (bits & ((1 << 53) - 1)) as f64 / (1u64 << 53) as f64
    }

    /// The token that `u` picks from the filtered distribution of `logits`.
    fn sample(&self, logits: &[f32], u: f64) -> u32 {
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        order.truncate(self.top_k.unwrap_or(order.len()).min(order.len()));
        let top = f64::from(logits[order[0]]);
        let mut probs: Vec<f64> = order
            .iter()
            .map(|&i| ((f64::from(logits[i]) - top) / self.temperature).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if let Some(top_p) = self.top_p {
            // The smallest prefix whose mass reaches top_p (at least one token).
            let mut mass = 0.0;
            let keep = probs
                .iter()
                .position(|p| {
                    mass += p;
                    mass >= top_p
                })
                .map_or(probs.len(), |i| i + 1);
            probs.truncate(keep);
        }
        let total: f64 = probs.iter().sum();
        let mut target = u * total;
        for (p, &token) in probs.iter().zip(&order) {
            if target < *p {
                return token as u32;
            }
            target -= p;
        }
        order[probs.len() - 1] as u32
    }
}
