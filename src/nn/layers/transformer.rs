//! PyTorch's transformer encoder: [`TransformerEncoderLayer`] and the stack
//! [`TransformerEncoder`], composed of [`MultiheadAttention`], [`Linear`],
//! [`LayerNorm`] and [`Dropout`] with PyTorch's parameter names (`self_attn`,
//! `linear1`, `linear2`, `norm1`, `norm2`, `layers.<i>`, `norm`), so a PyTorch
//! `state_dict` loads and gives PyTorch's outputs. The decoder is in
//! `transformer_decoder.rs`; [`TransformerOpts`] serves both.

use super::{Activation, AttnOpts, Dropout, LayerNorm, Linear, MultiheadAttention};
use crate::nn::{self, Forward, Mode, Module};
use crate::{Device, Error, Result, Tensor};

/// Options of the transformer layers, PyTorch's keyword arguments with PyTorch's
/// defaults: `dim_feedforward` 2048, `dropout` 0.1, `activation` ReLU,
/// `layer_norm_eps` 1e-5, `batch_first` false (inputs `(L, N, E)`; `true` for
/// `(N, L, E)`), `norm_first` false (post-norm).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TransformerOpts {
    pub(super) dim_feedforward: usize,
    pub(super) dropout: f64,
    pub(super) activation: Activation,
    pub(super) layer_norm_eps: f64,
    pub(super) batch_first: bool,
    pub(super) norm_first: bool,
}

impl Default for TransformerOpts {
    fn default() -> Self {
        TransformerOpts {
            dim_feedforward: 2048,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            batch_first: false,
            norm_first: false,
        }
    }
}

impl TransformerOpts {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The width of the feed-forward block (`linear1`'s outputs).
    pub fn dim_feedforward(mut self, n: usize) -> Self {
        self.dim_feedforward = n;
        self
    }

    /// The dropout probability of the attention weights, the feed-forward block and
    /// each residual branch (training mode only).
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }

    /// The feed-forward nonlinearity: [`Activation::Relu`] or [`Activation::Gelu`].
    pub fn activation(mut self, activation: Activation) -> Self {
        self.activation = activation;
        self
    }

    /// The eps of every LayerNorm of the layer.
    pub fn layer_norm_eps(mut self, eps: f64) -> Self {
        self.layer_norm_eps = eps;
        self
    }

    /// Inputs and outputs are `(N, L, E)` instead of `(L, N, E)`.
    pub fn batch_first(mut self, batch_first: bool) -> Self {
        self.batch_first = batch_first;
        self
    }

    /// Pre-norm: each sub-block normalises its input (`x + f(norm(x))`) instead of
    /// the residual sum (`norm(x + f(x))`).
    pub fn norm_first(mut self, norm_first: bool) -> Self {
        self.norm_first = norm_first;
        self
    }

    /// Err naming the first invalid option.
    fn check(&self) -> Result<()> {
        if self.dim_feedforward == 0 {
            return Err(Error::arg("dim_feedforward", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            return Err(Error::arg(
                "dropout",
                format!("probability must be in [0, 1], got {}", self.dropout),
            ));
        }
        if self.activation == Activation::Tanh {
            return Err(Error::arg(
                "activation",
                "the transformer layers take Relu or Gelu, as PyTorch's",
            ));
        }
        Ok(())
    }
}

/// The feed-forward block shared by the encoder and decoder layers:
/// `linear2(dropout(activation(linear1(x))))`.
pub(super) fn feed_forward(
    linear1: &Linear,
    dropout: &Dropout,
    linear2: &Linear,
    activation: Activation,
    x: &Tensor,
) -> Result<Tensor> {
    linear2.forward(&dropout.forward(&activation.apply(&linear1.forward(x)?)?)?)
}

/// `x + dropout(f)`: a residual branch added to the stream in the stream's dtype
/// (f32 under autocast, where the branch computes in BF16).
pub(super) fn residual(x: &Tensor, dropout: &Dropout, f: Tensor) -> Result<Tensor> {
    x.add(&dropout.forward(&f)?.to_dtype(x.dtype())?)
}

/// Err unless `t` is rank 3 with `d` features (`name` is PyTorch's argument name).
pub(super) fn check_input(name: &'static str, t: &Tensor, d: usize) -> Result<()> {
    if t.rank() != 3 || t.shape()[2] != d {
        return Err(Error::arg(
            name,
            format!(
                "needs shape (L, N, {d}) or (N, L, {d}), got {:?}",
                t.shape()
            ),
        ));
    }
    Ok(())
}

/// `t` as `(N, L, E)`: transposed from `(L, N, E)` unless already batch-first.
pub(super) fn to_batch_first(t: &Tensor, batch_first: bool) -> Result<Tensor> {
    if batch_first {
        Ok(t.clone())
    } else {
        t.transpose(0, 1)
    }
}

/// `m` with `src`'s parameters, dtype and mode: PyTorch's `copy.deepcopy` of a layer,
/// which the stacks make `num_layers` of. `m` is a fresh layer of `src`'s sizes.
pub(super) fn copy_of<M: Module>(src: &M, m: M) -> Result<M> {
    if let Some((_, p)) = src.named_parameters().first() {
        m.to_dtype(p.dtype())?;
    }
    m.load_state_dict(&src.state_dict())?;
    m.set_training(src.is_training());
    Ok(m)
}

/// `nn.TransformerEncoderLayer(d_model, nhead, ...)`: self-attention then a
/// feed-forward block, each with a residual connection and a LayerNorm (after the sum
/// by default, before the block with `norm_first`).
#[derive(Debug, nn::Module)]
pub struct TransformerEncoderLayer {
    /// Self-attention (`self_attn.in_proj_weight`, ...).
    pub self_attn: MultiheadAttention,
    /// `d_model → dim_feedforward`.
    pub linear1: Linear,
    /// Dropout inside the feed-forward block.
    pub dropout: Dropout,
    /// `dim_feedforward → d_model`.
    pub linear2: Linear,
    /// The LayerNorm of the attention sub-block.
    pub norm1: LayerNorm,
    /// The LayerNorm of the feed-forward sub-block.
    pub norm2: LayerNorm,
    /// Dropout on the attention branch.
    pub dropout1: Dropout,
    /// Dropout on the feed-forward branch.
    pub dropout2: Dropout,
    #[module(skip)]
    nhead: usize,
    #[module(skip)]
    opts: TransformerOpts,
    mode: Mode,
}

impl TransformerEncoderLayer {
    /// A layer of width `d_model` with `nhead` heads on `device` (f32), initialised as
    /// PyTorch's. Err naming the argument for a `d_model` that is not a positive
    /// multiple of `nhead`, or an invalid option.
    pub fn new(
        d_model: usize,
        nhead: usize,
        opts: TransformerOpts,
        device: &Device,
    ) -> Result<TransformerEncoderLayer> {
        opts.check()?;
        let norm = || LayerNorm::with_options(&[d_model], opts.layer_norm_eps, true, true, device);
        Ok(TransformerEncoderLayer {
            self_attn: MultiheadAttention::new(d_model, nhead, device)?
                .with_dropout(opts.dropout)?,
            linear1: Linear::new(d_model, opts.dim_feedforward, device)?,
            dropout: Dropout::new(opts.dropout)?,
            linear2: Linear::new(opts.dim_feedforward, d_model, device)?,
            norm1: norm()?,
            norm2: norm()?,
            dropout1: Dropout::new(opts.dropout)?,
            dropout2: Dropout::new(opts.dropout)?,
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

    /// PyTorch's `layer(src, src_mask, src_key_padding_mask, is_causal)`: `opts`
    /// carries the masks and causality, in [`MultiheadAttention`]'s conventions.
    /// `src` is `(L, N, d_model)`, or `(N, L, d_model)` when batch-first.
    pub fn forward_mask(&self, src: &Tensor, opts: AttnOpts) -> Result<Tensor> {
        check_input("src", src, self.d_model())?;
        let x = to_batch_first(src, self.opts.batch_first)?;
        to_batch_first(&self.forward_batch_first(&x, opts)?, self.opts.batch_first)
    }

    /// The layer on a batch-first `(N, L, d_model)` input.
    fn forward_batch_first(&self, x: &Tensor, opts: AttnOpts) -> Result<Tensor> {
        let sa = |h: &Tensor| self.self_attn.forward_qkv(h, h, h, opts);
        let ff = |h: &Tensor| {
            let act = self.opts.activation;
            feed_forward(&self.linear1, &self.dropout, &self.linear2, act, h)
        };
        if self.opts.norm_first {
            let x = residual(x, &self.dropout1, sa(&self.norm1.forward(x)?)?)?;
            residual(&x, &self.dropout2, ff(&self.norm2.forward(&x)?)?)
        } else {
            let x = self.norm1.forward(&residual(x, &self.dropout1, sa(x)?)?)?;
            self.norm2.forward(&residual(&x, &self.dropout2, ff(&x)?)?)
        }
    }

    /// A fresh layer of the same sizes and options with this one's parameters.
    fn deep_copy(&self) -> Result<TransformerEncoderLayer> {
        let w = &self.linear1.weight;
        let fresh =
            TransformerEncoderLayer::new(self.d_model(), self.nhead, self.opts, &w.device())?;
        copy_of(self, fresh)
    }
}

impl Forward for TransformerEncoderLayer {
    /// `forward_mask(src, AttnOpts::new())`.
    fn forward(&self, src: &Tensor) -> Result<Tensor> {
        self.forward_mask(src, AttnOpts::new())
    }
}

/// `nn.TransformerEncoder(encoder_layer, num_layers, norm)`: `num_layers` copies of
/// one layer (`layers.<i>`, each starting with the given layer's parameters, as
/// PyTorch's deep copies), then an optional final LayerNorm (`norm`).
#[derive(Debug, nn::Module)]
pub struct TransformerEncoder {
    /// The layers, applied in order.
    pub layers: Vec<TransformerEncoderLayer>,
    /// The final LayerNorm, when there is one.
    pub norm: Option<LayerNorm>,
    mode: Mode,
}

impl TransformerEncoder {
    /// `num_layers` copies of `layer` (no final norm). Err for `num_layers` 0.
    pub fn new(layer: TransformerEncoderLayer, num_layers: usize) -> Result<TransformerEncoder> {
        Ok(TransformerEncoder {
            layers: stack(layer, num_layers, TransformerEncoderLayer::deep_copy)?,
            norm: None,
            mode: Mode::default(),
        })
    }

    /// The same stack with a final LayerNorm (PyTorch's `norm=`).
    pub fn with_norm(mut self, norm: LayerNorm) -> TransformerEncoder {
        self.norm = Some(norm);
        self
    }

    /// PyTorch's `encoder(src, mask, src_key_padding_mask, is_causal)`: every layer
    /// with the same `opts`, then the final norm.
    pub fn forward_mask(&self, src: &Tensor, opts: AttnOpts) -> Result<Tensor> {
        let first = &self.layers[0];
        check_input("src", src, first.d_model())?;
        let batch_first = first.opts.batch_first;
        let mut x = to_batch_first(src, batch_first)?;
        for layer in &self.layers {
            x = layer.forward_batch_first(&x, opts)?;
        }
        if let Some(norm) = &self.norm {
            x = norm.forward(&x)?;
        }
        to_batch_first(&x, batch_first)
    }
}

impl Forward for TransformerEncoder {
    /// `forward_mask(src, AttnOpts::new())`.
    fn forward(&self, src: &Tensor) -> Result<Tensor> {
        self.forward_mask(src, AttnOpts::new())
    }
}

/// `layer` followed by `n - 1` deep copies of it. Err for `n` 0.
pub(super) fn stack<L>(layer: L, n: usize, copy: fn(&L) -> Result<L>) -> Result<Vec<L>> {
    if n == 0 {
        return Err(Error::arg("num_layers", "must be at least 1"));
    }
    let mut layers = Vec::with_capacity(n);
    for _ in 1..n {
        layers.push(copy(&layer)?);
    }
    layers.insert(0, layer);
    Ok(layers)
}
