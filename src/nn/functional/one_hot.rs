//! `F::one_hot`: class ids as rows of zeros with a one at the id.

use crate::{DType, Error, Result, Tensor};

/// Each I64 class id of `labels` (any shape) as a row of `num_classes` I64 values,
/// 1 at the id and 0 elsewhere: shape `labels.shape() + [num_classes]`, like
/// `F.one_hot(labels, num_classes)`. `None` (PyTorch's -1) takes the largest id + 1,
/// which needs a non-empty `labels`. An id outside `[0, num_classes)` is an `Err`
/// naming `labels`. Made on the labels' device (one comparison kernel); reading the
/// ids' range back is the only transfer, as in PyTorch.
///
/// ```
/// # use kiln::{nn::functional as F, Device, Tensor};
/// let labels = Tensor::from_vec(vec![2i64, 0], &[2], &Device::Cpu)?;
/// assert_eq!(F::one_hot(&labels, 3)?.to_vec::<i64>()?, [0, 0, 1, 1, 0, 0]);
/// # Ok::<(), kiln::Error>(())
/// ```
pub fn one_hot(labels: &Tensor, num_classes: i64) -> Result<Tensor> {
    if labels.dtype() != DType::I64 {
        return Err(Error::arg(
            "labels",
            format!("one_hot: class ids must be I64, got {:?}", labels.dtype()),
        ));
    }
    let num_classes = match num_classes {
        -1 => None,
        c => Some(usize::try_from(c).map_err(|_| {
            Error::arg(
                "num_classes",
                format!("one_hot: num_classes must be -1 or at least 0, got {c}"),
            )
        })?),
    };
    let n = labels.numel();
    // The smallest and largest id (two values read back), when there are ids.
    let range = match n {
        0 => None,
        _ => {
            let flat = labels.reshape(&[n])?;
            let both = Tensor::stack(&[&flat.min(0, false)?, &flat.max(0, false)?], 0)?;
            let v = both.to_vec::<i64>()?;
            Some((v[0], v[1]))
        }
    };
    let classes = match (num_classes, range) {
        (Some(c), _) => c,
        (None, Some((_, hi))) => usize::try_from(hi).map_or(0, |hi| hi + 1),
        (None, None) => {
            return Err(Error::arg(
                "num_classes",
                "one_hot: cannot infer the number of classes of empty labels; give it",
            ))
        }
    };
    if let Some((lo, hi)) = range {
        if lo < 0 || hi >= classes as i64 {
            let bad = if lo < 0 { lo } else { hi };
            return Err(Error::arg(
                "labels",
                format!("one_hot: class {bad} is outside [0, {classes})"),
            ));
        }
    }
    let mut shape = labels.shape().to_vec();
    shape.push(1);
    let ids = Tensor::arange(classes, DType::I64, &labels.device())?;
    labels.reshape(&shape)?.eq(&ids)?.to_dtype(DType::I64)
}
