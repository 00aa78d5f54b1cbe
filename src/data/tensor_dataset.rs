//! [`TensorDataset`]: samples are slices along dimension 0 of a few tensors, like
//! `torch.utils.data.TensorDataset`.

use super::{check_index, Dataset};
use crate::{Error, Result, Tensor};

/// Tensors that share their first dimension; sample `i` is `[t[i] for t in tensors]`
/// (each a view of row `i`, with dimension 0 removed), in the order given.
#[derive(Debug, Clone)]
pub struct TensorDataset {
    tensors: Vec<Tensor>,
    len: usize,
}

impl TensorDataset {
    /// A dataset over `tensors`: at least one, each of rank ≥ 1, all with the same size
    /// of dimension 0, all on the CPU (the [`super::DataLoader`] moves batches to
    /// their device). Err naming `tensors` otherwise.
    pub fn new(tensors: Vec<Tensor>) -> Result<Self> {
        let first = tensors
            .first()
            .ok_or_else(|| Error::arg("tensors", "a TensorDataset needs at least one tensor"))?;
        let len = first.shape().first().copied().unwrap_or(0);
        for (k, t) in tensors.iter().enumerate() {
            if t.rank() == 0 || t.shape()[0] != len {
                return Err(Error::arg(
                    "tensors",
                    format!(
                        "every tensor needs dimension 0 of size {len} (tensor 0's); tensor {k} \
                         has shape {:?}",
                        t.shape()
                    ),
                ));
            }
            if !t.device().is_cpu() {
                return Err(Error::arg(
                    "tensors",
                    format!(
                        "tensor {k} is on {}; a TensorDataset holds CPU tensors (the \
                         DataLoader's .device() moves each batch)",
                        t.device()
                    ),
                ));
            }
        }
        Ok(TensorDataset { tensors, len })
    }

    /// The tensors, as given.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }
}

impl Dataset for TensorDataset {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Vec<Tensor>> {
        check_index(index, self.len)?;
        self.tensors
            .iter()
            .map(|t| t.narrow(0, index, 1)?.squeeze(0))
            .collect()
    }
}
