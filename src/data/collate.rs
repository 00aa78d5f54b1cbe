//! Collation: the samples of a batch stacked field by field, PyTorch's
//! `default_collate`. Every sample is checked against the first — as many fields, each
//! of the same dtype and shape, on the CPU — before anything is stacked, so a dataset
//! whose samples disagree is an error naming the sample and field, never a batch that
//! silently drops or misplaces a field.

use crate::{Error, Result, Tensor};

/// Stacks field `k` of every sample along a new dimension 0 (contiguous CPU tensors).
/// Err naming `dataset` when a sample differs from the first in its number of fields,
/// a field's dtype or shape, or holds a tensor not on the CPU.
pub(crate) fn collate(samples: &[Vec<Tensor>]) -> Result<Vec<Tensor>> {
    let Some(first) = samples.first() else {
        return Err(Error::arg("dataset", "a batch needs at least one sample"));
    };
    for (s, sample) in samples.iter().enumerate() {
        check_sample(s, sample, first)?;
    }
    let _no_grad = crate::no_grad();
    (0..first.len())
        .map(|k| {
            let rows = samples
                .iter()
                .map(|sample| sample[k].unsqueeze(0))
                .collect::<Result<Vec<_>>>()?;
            let refs: Vec<&Tensor> = rows.iter().collect();
            Tensor::cat(&refs, 0)?.contiguous()
        })
        .collect()
}

/// Err unless sample `s` has the first sample's fields (count, dtype, shape), on the CPU.
fn check_sample(s: usize, sample: &[Tensor], first: &[Tensor]) -> Result<()> {
    if sample.len() != first.len() {
        return Err(mismatch(
            s,
            &format!(
                "has {} fields, the first sample {}",
                sample.len(),
                first.len()
            ),
        ));
    }
    for (k, (t, f)) in sample.iter().zip(first).enumerate() {
        if t.shape() != f.shape() || t.dtype() != f.dtype() {
            return Err(mismatch(
                s,
                &format!(
                    "field {k} is {:?} {:?}, the first sample's {:?} {:?}",
                    t.dtype(),
                    t.shape(),
                    f.dtype(),
                    f.shape()
                ),
            ));
        }
        if !t.device().is_cpu() {
            return Err(mismatch(s, &format!("field {k} is on {}", t.device())));
        }
    }
    Ok(())
}

fn mismatch(sample: usize, what: &str) -> Error {
    Error::arg(
        "dataset",
        format!("sample {sample} of the batch {what}; every sample needs the same fields"),
    )
}
