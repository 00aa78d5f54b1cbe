//! Flattening all but the batch dimension.

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
