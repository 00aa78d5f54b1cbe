//! `dropout` with Philox randomness that the backward pass regenerates, and the
//! channel dropouts `dropout1d`/`2d`/`3d` built on it.
//!
//! The forward pass reserves `numel` words of kiln's Philox generator; the mask of
//! element `i` depends only on (seed, offset, i) (see `rng`), so the backward pass
//! applies the same backend primitive to the gradient instead of storing the mask,
//! and a CUDA kernel given the same stream produces the same mask.

use crate::autograd::record;
use crate::tensor::StorageLocks;
use crate::{rng, Error, Result, Tensor};

/// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`, like
/// `torch.nn.functional.dropout`. `training` has no default on purpose: pass the
/// mode of the calling module (`self.is_training()`), so evaluation cannot silently
/// keep dropping.
///
/// `p == 0` or `training == false` return `input` itself; `p == 1` gives zeros.
/// Errors: `p` outside [0, 1] (or NaN), and non-float inputs.
pub fn dropout(input: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    let _op = crate::profiler::op("dropout", &[input]);
    if !(0.0..=1.0).contains(&p) {
        return Err(Error::arg(
            "p",
            format!("dropout probability must be in [0, 1], got {p}"),
        ));
    }
    input.check_float("dropout")?;
    if !training || p == 0.0 || input.numel() == 0 {
        return Ok(input.clone());
    }
    if p == 1.0 {
        return input.mul_scalar(0.0);
    }
    let stream = rng::reserve(input.numel());
    let out = input.storage().dropout(input.layout(), stream, p)?;
    let out = Tensor::from_storage(out, input.shape());
    Ok(record(out, "dropout", &[input], move |_, g| {
        let gx = g.storage().dropout(g.layout(), stream, p)?;
        Ok(vec![Some(Tensor::from_storage(gx, g.shape()))])
    }))
}

/// `residual + dropout(x + bias, p, training)` as one op: the bias, dropout and
/// residual add that close a transformer block's attention or MLP branch (PyTorch's
/// `residual + F.dropout(x + bias, p, training)`), in one pass forward and one backward
/// (one kernel each on CUDA) instead of three of each.
///
/// `x` and `residual` have the same shape (rank ≥ 1), `bias` is `(d)` with `d` `x`'s
/// last size; all have one float dtype and device. The mask is [`dropout`]'s for the
/// same generator state (the same `numel` words drawn from the same stream), so with a
/// seed the result equals `residual.add(&dropout(&x.add(bias)?, p, training)?)` — bit
/// for bit in f32 and f64, whose roundings it repeats. `training == false` or
/// `p == 0` give `residual + x + bias` and draw nothing; `p == 1` gives `residual`
/// (times `x + bias`'s NaN, as `dropout`'s product) and draws nothing. `training` has
/// no default, as with [`dropout`]. Gradients flow to all three.
///
/// Errors: `p` outside [0, 1] (or NaN), non-float inputs, and a shape, dtype or device
/// mismatch, each naming the argument.
pub fn bias_dropout_add(
    x: &Tensor,
    bias: &Tensor,
    residual: &Tensor,
    p: f64,
    training: bool,
) -> Result<Tensor> {
    let _op = crate::profiler::op("bias_dropout_add", &[x]);
    check_drop_probability(p)?;
    x.check_float("bias_dropout_add")?;
    x.check_same_device("bias_dropout_add: bias", bias)?;
    x.check_same_dtype("bias_dropout_add: bias", bias)?;
    x.check_same_device("bias_dropout_add: residual", residual)?;
    x.check_same_dtype("bias_dropout_add: residual", residual)?;
    let d = x.shape().last().copied();
    if d.is_none_or(|d| bias.shape() != [d]) {
        return Err(Error::arg(
            "bias",
            format!(
                "must be (d) for an input of shape {:?} (d its last size), got {:?}",
                x.shape(),
                bias.shape()
            ),
        ));
    }
    if residual.shape() != x.shape() {
        return Err(Error::arg(
            "residual",
            format!(
                "must have the input's shape {:?}, got {:?}",
                x.shape(),
                residual.shape()
            ),
        ));
    }
    if training && p == 1.0 {
        return residual.add(&x.add(bias)?.mul_scalar(0.0)?);
    }
    let mask = (training && p > 0.0).then(|| (rng::reserve(x.numel()), p));
    let out = {
        // One lock per distinct storage, in address order (see `tensor::locks`).
        let locks = StorageLocks::read(&[x, bias, residual]);
        locks.get(0).bias_dropout_add(
            x.layout(),
            (locks.get(1), bias.layout()),
            (locks.get(2), residual.layout()),
            mask,
        )?
    };
    let out = Tensor::from_storage(out, x.shape());
    let (shape, d) = (x.shape().to_vec(), bias.numel());
    Ok(record(
        out,
        "bias_dropout_add",
        &[x, bias, residual],
        move |_, g| {
            let (gx, gbias) = g.storage().bias_dropout_add_backward(g.layout(), d, mask)?;
            let gx = gx.map_or_else(|| g.clone(), |gx| Tensor::from_storage(gx, &shape));
            Ok(vec![
                Some(gx),
                Some(Tensor::from_storage(gbias, &[d])),
                Some(g.clone()),
            ])
        },
    ))
}

/// Channel dropout over one spatial dimension: PyTorch's `F.dropout1d(input, p,
/// training)`. `input` is `(N, C, L)` or unbatched `(C, L)`; each channel (each
/// `(n, c)` pair) is zeroed as a whole with probability `p` and the kept ones are
/// scaled by `1/(1-p)`. The keep decisions follow [`dropout`]'s Philox rules, one
/// word per channel: channel `k` (row-major over the `(N, C)` pairs) is kept iff
/// `dropout` would keep element `k` of an `(N, C)` tensor. Errs on another rank, on
/// `p` outside `[0, 1]` and on non-float inputs.
pub fn dropout1d(input: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    channel_dropout(input, p, training, "dropout1d", 1)
}

/// Channel dropout over two spatial dimensions: PyTorch's `F.dropout2d(input, p,
/// training)` on `(N, C, H, W)`. A 3-D input is read as `(N, C, L)`, one mask value
/// per `(n, c)`, as PyTorch 2 reads it today (with a warning that it will become
/// unbatched `(C, H, W)`). Otherwise as [`dropout1d`].
pub fn dropout2d(input: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    channel_dropout(input, p, training, "dropout2d", 2)
}

/// Channel dropout over three spatial dimensions: PyTorch's `F.dropout3d(input, p,
/// training)` on `(N, C, D, H, W)` or unbatched `(C, D, H, W)`; otherwise as
/// [`dropout1d`].
pub fn dropout3d(input: &Tensor, p: f64, training: bool) -> Result<Tensor> {
    channel_dropout(input, p, training, "dropout3d", 3)
}

/// [`dropout1d`], [`dropout2d`] or [`dropout3d`] (`spatial` dims): a mask of one
/// value per channel, made by [`dropout`] on ones, multiplies the input (so the
/// backward pass is the product with the same mask).
fn channel_dropout(
    input: &Tensor,
    p: f64,
    training: bool,
    op: &'static str,
    spatial: usize,
) -> Result<Tensor> {
    check_drop_probability(p)?;
    input.check_float(op)?;
    let rank = input.rank();
    if rank != spatial + 1 && rank != spatial + 2 {
        return Err(Error::arg(
            "input",
            format!(
                "{op} needs a {}-D or {}-D input (unbatched or batched channels with {spatial} spatial dims), got shape {:?}",
                spatial + 1,
                spatial + 2,
                input.shape()
            ),
        ));
    }
    // dropout2d reads a 3-D input as batched (N, C, L), as PyTorch does today.
    let batched = rank == spatial + 2 || (spatial == 2 && rank == 3);
    let channels = if batched { 2 } else { 1 };
    let mut mask_shape = input.shape()[..channels].to_vec();
    mask_shape.resize(rank, 1);
    if !training || p == 0.0 || input.numel() == 0 {
        return Ok(input.clone());
    }
    let ones = Tensor::ones(&mask_shape, input.dtype(), &input.device())?;
    input.mul(&dropout(&ones, p, true)?)
}

/// Which samples [`stochastic_depth`] drops together (torchvision's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StochasticDepthMode {
    /// `"row"`: each sample (index of dimension 0) is kept or zeroed on its own.
    #[default]
    Row,
    /// `"batch"`: the whole input is kept or zeroed at once.
    Batch,
}

/// Stochastic depth, like `torchvision.ops.stochastic_depth(input, p, mode, training)`:
/// in training mode each sample (`Row`) or the whole input (`Batch`) is zeroed with
/// probability `p` and otherwise scaled by `1/(1-p)`; the residual branches of
/// EfficientNet and ConvNeXt are dropped this way. `training` has no default, as with
/// [`dropout`]: pass the calling module's mode.
///
/// `training == false` or `p == 0` return `input` itself; `p == 1` gives zeros.
/// Errors: `p` outside [0, 1] (or NaN), a non-float input, and a rank-0 `input` in
/// `Row` mode (it has no samples).
pub fn stochastic_depth(
    input: &Tensor,
    p: f64,
    mode: StochasticDepthMode,
    training: bool,
) -> Result<Tensor> {
    check_drop_probability(p)?;
    input.check_float("stochastic_depth")?;
    if mode == StochasticDepthMode::Row && input.rank() == 0 {
        return Err(Error::arg(
            "input",
            "row mode needs a batch dimension, got a rank-0 tensor",
        ));
    }
    if !training || p == 0.0 || input.numel() == 0 {
        return Ok(input.clone());
    }
    let mut noise_shape = vec![1; input.rank()];
    if mode == StochasticDepthMode::Row {
        noise_shape[0] = input.shape()[0];
    }
    // torchvision's `noise.bernoulli_(1 - p)`, divided by the survival rate when it
    // is positive; the product's backward scales the gradient by the same noise.
    let survival = 1.0 - p;
    let keep = Tensor::rand(&noise_shape, input.dtype(), &input.device())?
        .lt_scalar(survival)?
        .to_dtype(input.dtype())?;
    let noise = if survival > 0.0 {
        keep.div_scalar(survival)?
    } else {
        keep
    };
    input.mul(&noise)
}

/// Err naming `p` unless `0 <= p <= 1` (shared with `nn::StochasticDepth::new`).
pub(crate) fn check_drop_probability(p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::arg(
            "p",
            format!("drop probability must be in [0, 1], got {p}"),
        ))
    }
}
