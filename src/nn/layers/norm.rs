//! Batch normalisation over the channels of NCHW images.

use crate::nn::{self, functional as F, Buffer, Forward, Mode, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.BatchNorm2d(num_features)`: normalises each channel with the batch's
/// statistics in training mode (and updates the running statistics), with the
/// running statistics in eval mode. Weight 1, bias 0, running mean 0, running var 1.
#[derive(Debug, nn::Module)]
pub struct BatchNorm2d {
    /// Per-channel scale (γ).
    pub weight: Parameter,
    /// Per-channel shift (β).
    pub bias: Parameter,
    /// Running mean, updated in training mode.
    pub running_mean: Buffer,
    /// Running (unbiased) variance, updated in training mode.
    pub running_var: Buffer,
    /// Number of training batches seen (I64 scalar, as PyTorch saves it).
    pub num_batches_tracked: Buffer,
    #[module(skip)]
    momentum: f64,
    #[module(skip)]
    eps: f64,
    mode: Mode,
}

impl BatchNorm2d {
    /// A layer for `num_features` channels with PyTorch's defaults (momentum 0.1, eps 1e-5).
    pub fn new(num_features: usize, device: &Device) -> Result<BatchNorm2d> {
        BatchNorm2d::with_options(num_features, 0.1, 1e-5, device)
    }

    /// A layer with the given running-average `momentum` and `eps`.
    pub fn with_options(
        num_features: usize,
        momentum: f64,
        eps: f64,
        device: &Device,
    ) -> Result<BatchNorm2d> {
        if num_features == 0 {
            return Err(Error::arg("num_features", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&momentum) {
            return Err(Error::arg(
                "momentum",
                format!("must be in [0, 1], got {momentum}"),
            ));
        }
        if eps.is_nan() || eps <= 0.0 {
            return Err(Error::arg("eps", format!("must be > 0, got {eps}")));
        }
        let c = [num_features];
        Ok(BatchNorm2d {
            weight: Parameter::new(Tensor::ones(&c, DType::F32, device)?)?,
            bias: Parameter::new(Tensor::zeros(&c, DType::F32, device)?)?,
            running_mean: Buffer::new(Tensor::zeros(&c, DType::F32, device)?),
            running_var: Buffer::new(Tensor::ones(&c, DType::F32, device)?),
            num_batches_tracked: Buffer::new(Tensor::zeros(&[], DType::I64, device)?),
            momentum,
            eps,
            mode: Mode::default(),
        })
    }
}

impl Forward for BatchNorm2d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() != 4 {
            return Err(Error::shape(
                "BatchNorm2d",
                format!(
                    "expected a 4-D (N, C, H, W) input, got shape {:?}",
                    x.shape()
                ),
            ));
        }
        let training = self.mode.is_training();
        let y = F::batch_norm(
            x,
            &self.running_mean,
            &self.running_var,
            Some(&self.weight),
            Some(&self.bias),
            training,
            self.momentum,
            self.eps,
        )?;
        if training {
            let _guard = crate::no_grad();
            self.num_batches_tracked
                .copy_(&self.num_batches_tracked.add_scalar(1.0)?)?;
        }
        Ok(y)
    }
}
