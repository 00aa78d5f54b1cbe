//! [`SyncBatchNorm`]: batch normalisation with the statistics of the whole batch,
//! over every rank of a process group (PyTorch's `nn.SyncBatchNorm`).

use crate::autograd::record;
use crate::distributed::{ProcessGroup, ReduceOp};
use crate::nn::{
    functional as F, Buffer, Forward, Layer, Member, Mode, Module, Parameter, Sequential,
};
use crate::{DType, Error, Result, Tensor};

/// `nn.SyncBatchNorm(num_features)`: in training mode each channel is normalised with
/// the mean and (biased) variance of its values on every rank — what a `BatchNorm` on
/// the concatenation of the ranks' batches computes — and the running statistics are
/// updated with them (unbiased variance, momentum 0.1, eps 1e-5); in eval mode it is a
/// `BatchNorm` with the running statistics. Inputs are `(N, C, *)`. Its parameters and
/// buffers are `BatchNorm`'s, under the same names.
///
/// The per-channel sums of `x` and `x²` and the count are all-reduced (summed) in one
/// collective; its backward all-reduces their gradients, so gradients equal the
/// concatenated batch's too. Every rank must call `forward` and `backward` the same
/// number of times.
pub struct SyncBatchNorm {
    /// Per-channel scale (γ), `(C)`.
    pub weight: Parameter,
    /// Per-channel shift (β), `(C)`.
    pub bias: Parameter,
    /// Running mean, `(C)`.
    pub running_mean: Buffer,
    /// Running (unbiased) variance, `(C)`.
    pub running_var: Buffer,
    /// Number of training batches seen (I64 scalar).
    pub num_batches_tracked: Buffer,
    momentum: f64,
    eps: f64,
    mode: Mode,
    pg: ProcessGroup,
}

impl SyncBatchNorm {
    /// A layer for `num_features` channels on `device` (the group's device), with
    /// PyTorch's defaults (weight 1, bias 0, running mean 0 and var 1, momentum 0.1,
    /// eps 1e-5). An `Err` naming `device` when it is not `pg.device()`.
    pub fn new(num_features: usize, pg: &ProcessGroup, device: &crate::Device) -> Result<Self> {
        if *device != pg.device() {
            return Err(Error::arg(
                "device",
                format!(
                    "{device:?}; SyncBatchNorm all-reduces its statistics on the group's \
                     device, {:?}",
                    pg.device()
                ),
            ));
        }
        if num_features == 0 {
            return Err(Error::arg("num_features", "must be at least 1"));
        }
        let c = [num_features];
        Ok(SyncBatchNorm {
            weight: Parameter::new(Tensor::ones(&c, DType::F32, device)?)?,
            bias: Parameter::new(Tensor::zeros(&c, DType::F32, device)?)?,
            running_mean: Buffer::new(Tensor::zeros(&c, DType::F32, device)?),
            running_var: Buffer::new(Tensor::ones(&c, DType::F32, device)?),
            num_batches_tracked: Buffer::new(Tensor::zeros(&[], DType::I64, device)?),
            momentum: 0.1,
            eps: 1e-5,
            mode: Mode::default(),
            pg: pg.clone(),
        })
    }

    /// `seq` with each of its `BatchNorm1d`/`2d`/`3d` layers replaced by a
    /// `SyncBatchNorm` with the same eps, momentum, parameters, buffers and mode
    /// (PyTorch's `convert_sync_batchnorm`, for the layers of the chain itself; in a
    /// derived struct, build `SyncBatchNorm::new` in place of the batch norm). An `Err`
    /// when a batch norm is not on `pg.device()` or not F32.
    pub fn convert(seq: Sequential, pg: &ProcessGroup) -> Result<Sequential> {
        seq.map_layers(|layer| {
            if !matches!(
                layer.type_name().as_str(),
                "BatchNorm1d" | "BatchNorm2d" | "BatchNorm3d"
            ) {
                return Ok(layer);
            }
            let state = layer.state_dict();
            let c = state[0].1.shape()[0];
            let dev = state[0].1.device();
            let mut sync = SyncBatchNorm::new(c, pg, &dev)?;
            // A `dyn Layer` cannot be downcast; its eps and momentum are read from
            // `extra_repr`, PyTorch's `C, eps=…, momentum=…, …` (kiln's layers write it).
            let repr = layer.extra_repr();
            let option = |key: &str| -> Result<f64> {
                repr.split(", ")
                    .find_map(|kv| kv.strip_prefix(key))
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| {
                        Error::arg("seq", format!("a batch norm's repr without {key}: {repr}"))
                    })
            };
            (sync.eps, sync.momentum) = (option("eps=")?, option("momentum=")?);
            sync.load_state_dict(&state)?;
            sync.set_training(layer.is_training());
            Ok(Box::new(sync) as Box<dyn Layer>)
        })
    }

    /// The training-mode output, with the statistics of every rank's batch.
    fn forward_synced(&self, x: &Tensor) -> Result<Tensor> {
        let c = x.shape()[1];
        // (C, N·S): each channel's values on a row.
        let rows = x.transpose(0, 1)?.reshape(&[c, x.numel() / c.max(1)])?;
        let local = Tensor::cat(
            &[
                &rows.sum(1, false)?,
                &rows.mul(&rows)?.sum(1, false)?,
                &Tensor::full(
                    &[1],
                    (rows.numel() / c.max(1)) as f64,
                    x.dtype(),
                    &x.device(),
                )?,
            ],
            0,
        )?;
        let total = all_reduce_sum(&local, &self.pg)?;
        let count = total
            .narrow(0, 2 * c, 1)?
            .to_dtype(DType::F64)?
            .to_vec::<f64>()?[0];
        if count <= 1.0 {
            return Err(Error::arg(
                "input",
                format!(
                    "SyncBatchNorm in training needs more than 1 value per channel over \
                     the ranks, got input of shape {:?}",
                    x.shape()
                ),
            ));
        }
        let mean = total.narrow(0, 0, c)?.div_scalar(count)?;
        let var = total
            .narrow(0, c, c)?
            .div_scalar(count)?
            .sub(&mean.mul(&mean)?)?;
        self.update_running(&mean, &var, count)?;
        let per_channel = |t: &Tensor| -> Result<Tensor> {
            let mut shape = vec![1; x.rank()];
            shape[1] = c;
            t.reshape(&shape)
        };
        let inv_std = var.add_scalar(self.eps)?.sqrt()?;
        let scale = per_channel(&self.weight.div(&inv_std)?)?;
        let shift = per_channel(&self.bias.sub(&mean.mul(&self.weight.div(&inv_std)?)?)?)?;
        x.mul(&scale)?.add(&shift)
    }

    /// PyTorch's running-statistics update, with the unbiased variance.
    fn update_running(&self, mean: &Tensor, var: &Tensor, count: f64) -> Result<()> {
        let _guard = crate::no_grad();
        let m = self.momentum;
        let unbiased = var.mul_scalar(count / (count - 1.0))?;
        for (running, batch) in [(&self.running_mean, mean), (&self.running_var, &unbiased)] {
            let next = running.mul_scalar(1.0 - m)?.add(&batch.mul_scalar(m)?)?;
            running.copy_(&next)?;
        }
        self.num_batches_tracked
            .copy_(&self.num_batches_tracked.add_scalar(1.0)?)
    }
}

/// The sum of every rank's `t`, differentiable: its backward is the sum of every
/// rank's gradient (the loss being the sum of the ranks' losses).
fn all_reduce_sum(t: &Tensor, pg: &ProcessGroup) -> Result<Tensor> {
    let _op = crate::profiler::op("all_reduce", &[t]);
    let out = t.detach().contiguous_copy()?;
    pg.all_reduce(&out, ReduceOp::Sum)?;
    let pg = pg.clone();
    Ok(record(out, "all_reduce", &[t], move |_, g| {
        let g = g.contiguous_copy()?;
        pg.all_reduce(&g, ReduceOp::Sum)?;
        Ok(vec![Some(g)])
    }))
}

impl Module for SyncBatchNorm {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        crate::nn::layers::visit_batch_norm(
            [&self.weight, &self.bias],
            [
                &self.running_mean,
                &self.running_var,
                &self.num_batches_tracked,
            ],
            &self.mode,
            visitor,
        );
    }

    fn type_name(&self) -> String {
        "SyncBatchNorm".into()
    }
}

impl Forward for SyncBatchNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let c = self.weight.shape()[0];
        if x.rank() < 2 || x.shape()[1] != c {
            return Err(Error::arg(
                "input",
                format!(
                    "SyncBatchNorm({c}) expects an (N, {c}, *) input, got shape {:?}",
                    x.shape()
                ),
            ));
        }
        if self.mode.is_training() {
            return self.forward_synced(x);
        }
        F::batch_norm(
            x,
            &self.running_mean,
            &self.running_var,
            Some(&self.weight),
            Some(&self.bias),
            false,
            self.momentum,
            self.eps,
        )
    }
}
