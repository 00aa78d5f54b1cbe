//! Flattening all but the batch dimension, and unflattening one.

use crate::nn::summary::py_shape;
use crate::nn::{self, Forward, Mode};
use crate::{Result, Tensor};

/// Flattens dims `1..` into one, like `nn.Flatten()`: `(N, C, H, W) → (N, C·H·W)`.
/// A rank-1 input is returned as it is (PyTorch does the same).
#[derive(Debug, Clone, Default, nn::Module)]
#[module(extra_repr)]
pub struct Flatten {
    mode: Mode,
}

impl Flatten {
    /// A flatten layer over dims `1..`.
    pub fn new() -> Flatten {
        Flatten::default()
    }

    /// PyTorch's `Flatten.extra_repr`: dims 1 to the last.
    fn extra_repr(&self) -> String {
        "start_dim=1, end_dim=-1".to_owned()
    }
}

impl Forward for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match x.rank() {
            0 => Err(crate::Error::arg(
                "x",
                "nn::Flatten needs a tensor with at least one dimension (the batch)",
            )),
            1 => Ok(x.clone()),
            rank => x.flatten(1, rank - 1),
        }
    }
}

/// Splits dimension `dim` into `sizes`, like `nn.Unflatten(dim, unflattened_size)`:
/// `(N, 12) → (N, 3, 4)` with `Unflatten::new(1, &[3, 4])`: [`Tensor::unflatten`],
/// a view. Errs in `forward` when `dim` is not a dimension of the input or the
/// product of `sizes` is not its size.
#[derive(Debug, Clone, nn::Module)]
#[module(stateless, extra_repr)]
pub struct Unflatten {
    #[module(skip)]
    dim: usize,
    #[module(skip)]
    sizes: Vec<usize>,
}

impl Unflatten {
    /// Splits `dim` into `sizes` (non-empty).
    pub fn new(dim: usize, sizes: &[usize]) -> Result<Unflatten> {
        if sizes.is_empty() {
            return Err(crate::Error::arg(
                "unflattened_size",
                "must name at least one size",
            ));
        }
        Ok(Unflatten {
            dim,
            sizes: sizes.to_vec(),
        })
    }

    /// PyTorch's `Unflatten.extra_repr`: `dim=1, unflattened_size=(3, 4)`.
    fn extra_repr(&self) -> String {
        format!(
            "dim={}, unflattened_size={}",
            self.dim,
            py_shape(&self.sizes)
        )
    }
}

impl Forward for Unflatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.unflatten(self.dim, &self.sizes)
    }
}
