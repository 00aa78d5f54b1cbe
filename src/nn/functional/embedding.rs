//! `F::embedding`: rows of a weight table picked by I64 ids.

use crate::{DType, Error, Result, Tensor};

/// Looks up `weight`'s rows (`weight` is `(num_embeddings, embedding_dim)`) for every
/// id in `input` (I64, any shape): the result has shape `input.shape() + [embedding_dim]`
/// (PyTorch's `F.embedding(input, weight)`). The forward pass is
/// [`Tensor::index_select`] of the rows; the weight's gradient adds each output row
/// into its id's row (deterministic on every device, no one-hot matrix). An id
/// outside `[0, num_embeddings)` is an `Err` naming `input`.
pub fn embedding(input: &Tensor, weight: &Tensor) -> Result<Tensor> {
    if input.dtype() != DType::I64 {
        return Err(Error::arg(
            "input",
            format!("embedding: ids must be I64, got {:?}", input.dtype()),
        ));
    }
    if weight.rank() != 2 {
        return Err(Error::arg(
            "weight",
            format!(
                "embedding: must be 2-D (num_embeddings, embedding_dim), got shape {:?}",
                weight.shape()
            ),
        ));
    }
    let flat = input.contiguous()?.reshape(&[input.numel()])?;
    let rows = weight.index_select_named(0, &flat, "input")?;
    let mut shape = input.shape().to_vec();
    shape.push(weight.shape()[1]);
    rows.reshape(&shape)
}
