//! `nn::Embedding`: a learnable table of `num_embeddings` vectors.

use crate::nn::{self, functional as F, Forward, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.Embedding(num_embeddings, embedding_dim)`: weight `(num_embeddings,
/// embedding_dim)` named "weight", initialised N(0, 1) as in PyTorch; `forward` maps
/// I64 ids of any shape to their rows with [`F::embedding`].
#[derive(Debug, nn::Module)]
pub struct Embedding {
    /// (num_embeddings, embedding_dim).
    pub weight: Parameter,
    mode: Mode,
}

impl Embedding {
    /// A table of `num_embeddings` vectors of `embedding_dim` f32 values on `device`.
    pub fn new(num_embeddings: usize, embedding_dim: usize, device: &Device) -> Result<Embedding> {
        for (name, n) in [
            ("num_embeddings", num_embeddings),
            ("embedding_dim", embedding_dim),
        ] {
            if n == 0 {
                return Err(Error::arg(name, "must be at least 1"));
            }
        }
        let weight = Tensor::randn(&[num_embeddings, embedding_dim], DType::F32, device)?;
        Ok(Embedding {
            weight: Parameter::new(weight)?,
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
        F::embedding(ids, &self.weight)
    }
}
