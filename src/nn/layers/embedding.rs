//! `nn::Embedding`: a learnable table of `num_embeddings` vectors.

use crate::nn::{self, functional as F, Forward, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.Embedding(num_embeddings, embedding_dim)`: weight `(num_embeddings,
/// embedding_dim)` named "weight", initialised N(0, 1) as in PyTorch; `forward` maps
/// I64 ids of any shape to their rows with [`F::embedding_with`].
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct Embedding {
    /// (num_embeddings, embedding_dim).
    pub weight: Parameter,
    #[module(skip)]
    opts: F::EmbeddingOpts,
    mode: Mode,
}

impl Embedding {
    /// PyTorch's `Embedding.extra_repr`: `num_embeddings, embedding_dim` and the
    /// padding index when there is one.
    fn extra_repr(&self) -> String {
        let shape = self.weight.shape();
        let mut s = format!("{}, {}", shape[0], shape[1]);
        if let Some(p) = self.opts.get_padding_idx() {
            s.push_str(&format!(", padding_idx={p}"));
        }
        s
    }

    /// A table of `num_embeddings` vectors of `embedding_dim` f32 values on `device`.
    pub fn new(num_embeddings: usize, embedding_dim: usize, device: &Device) -> Result<Embedding> {
        Embedding::new_with(
            num_embeddings,
            embedding_dim,
            F::EmbeddingOpts::new(),
            device,
        )
    }

    /// A table with options: with a `padding_idx`, that row starts at zero and is
    /// never trained (PyTorch's `nn.Embedding(n, d, padding_idx=p)`).
    pub fn new_with(
        num_embeddings: usize,
        embedding_dim: usize,
        opts: F::EmbeddingOpts,
        device: &Device,
    ) -> Result<Embedding> {
        for (name, n) in [
            ("num_embeddings", num_embeddings),
            ("embedding_dim", embedding_dim),
        ] {
            if n == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let mut weight = Tensor::randn(&[num_embeddings, embedding_dim], DType::F32, device)?;
        if let Some(p) = opts.get_padding_idx() {
            if p >= num_embeddings {
                return Err(Error::arg(
                    "padding_idx",
                    format!("must be below num_embeddings {num_embeddings}, got {p}"),
                ));
            }
            let rows = Tensor::arange(num_embeddings, DType::I64, device)?
                .reshape(&[num_embeddings, 1])?;
            let pad_id = Tensor::full(&[], p as f64, DType::I64, device)?;
            weight = weight.masked_fill(&rows.eq(&pad_id)?, 0.0)?;
        }
        Ok(Embedding {
            weight: Parameter::new(weight)?,
            opts,
            mode: Mode::default(),
        })
    }

    /// The number of vectors in the table.
    pub fn num_embeddings(&self) -> usize {
        self.weight.shape()[0]
    }

    /// The length of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.weight.shape()[1]
    }
}

impl Forward for Embedding {
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        F::embedding_with(ids, &self.weight, self.opts)
    }
}
