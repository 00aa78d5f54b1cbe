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

/// Options of [`embedding_with`] and `nn::Embedding::new_with` (PyTorch's keyword
/// arguments of `F.embedding` / `nn.Embedding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddingOpts {
    padding_idx: Option<usize>,
}

impl EmbeddingOpts {
    /// No options: every row is looked up and trained.
    pub fn new() -> EmbeddingOpts {
        EmbeddingOpts::default()
    }

    /// The id whose row receives no gradient (PyTorch's `padding_idx`);
    /// `nn::Embedding` also initialises that row to zeros.
    pub fn padding_idx(mut self, idx: usize) -> EmbeddingOpts {
        self.padding_idx = Some(idx);
        self
    }

    /// The padding id, if one is set.
    pub fn get_padding_idx(&self) -> Option<usize> {
        self.padding_idx
    }
}

/// [`embedding`] with options: with a `padding_idx`, the output is the same but the
/// rows of that id pass no gradient to the weight (PyTorch's
/// `F.embedding(input, weight, padding_idx=p)`). A `padding_idx` outside
/// `[0, num_embeddings)` is an `Err` naming it.
pub fn embedding_with(input: &Tensor, weight: &Tensor, opts: EmbeddingOpts) -> Result<Tensor> {
    let out = embedding(input, weight)?;
    let Some(p) = opts.padding_idx else {
        return Ok(out);
    };
    if p >= weight.shape()[0] {
        return Err(Error::arg(
            "padding_idx",
            format!(
                "embedding: must be below num_embeddings {}, got {p}",
                weight.shape()[0]
            ),
        ));
    }
    let pad_id = Tensor::full(&[], p as f64, DType::I64, &input.device())?;
    let is_pad = input.eq(&pad_id)?.unsqueeze(input.rank())?;
    // Same values either way; only the non-padding rows are on the gradient path.
    is_pad.where_cond(&out.detach(), &out)
}
