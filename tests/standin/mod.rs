//! Stand-ins for layer modules whose functional ops land on other branches
//! (Linear, BatchNorm1d in eval mode, Dropout's mode switch), built only from
//! Parameters, Buffers, Mode and tensor ops, the way a user would write them with
//! `#[derive(nn::Module)]`. The module tests use them to exercise the derive,
//! names, modes and checkpoints; the real layers get their own tests.
#![allow(dead_code)]

use kiln::nn::{self, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};

/// `nn.Linear` stand-in: `x @ weight^T + bias`, PyTorch's default initialisation.
#[derive(nn::Module)]
pub struct Linear {
    pub weight: nn::Parameter,
    pub bias: Option<nn::Parameter>,
}

impl Linear {
    pub fn new(inputs: usize, outputs: usize, dev: &Device) -> Result<Linear> {
        let (weight, bias) = nn::init::default_weight_and_bias(&[outputs, inputs], true, dev)?;
        Ok(Linear { weight, bias })
    }

    pub fn no_bias(inputs: usize, outputs: usize, dev: &Device) -> Result<Linear> {
        let (weight, bias) = nn::init::default_weight_and_bias(&[outputs, inputs], false, dev)?;
        Ok(Linear { weight, bias })
    }
}

impl Forward for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight.transpose(0, 1)?)?;
        match &self.bias {
            Some(b) => y.add(b),
            None => Ok(y),
        }
    }
}

/// `nn.BatchNorm1d` stand-in for (N, C) inputs, eval mode only: normalises with the
/// running statistics. Same parameters and buffers (and names) as PyTorch's.
#[derive(nn::Module)]
pub struct BatchNorm1d {
    pub weight: nn::Parameter,
    pub bias: nn::Parameter,
    pub running_mean: nn::Buffer,
    pub running_var: nn::Buffer,
    pub num_batches_tracked: nn::Buffer,
    #[module(skip)]
    pub eps: f64,
    pub mode: nn::Mode,
}

impl BatchNorm1d {
    pub fn new(channels: usize, dev: &Device) -> Result<BatchNorm1d> {
        Ok(BatchNorm1d {
            weight: nn::Parameter::new(Tensor::ones(&[channels], DType::F32, dev)?)?,
            bias: nn::Parameter::new(Tensor::zeros(&[channels], DType::F32, dev)?)?,
            running_mean: nn::Buffer::new(Tensor::zeros(&[channels], DType::F32, dev)?),
            running_var: nn::Buffer::new(Tensor::ones(&[channels], DType::F32, dev)?),
            num_batches_tracked: nn::Buffer::new(Tensor::zeros(&[], DType::I64, dev)?),
            eps: 1e-5,
            mode: nn::Mode::default(),
        })
    }
}

impl Forward for BatchNorm1d {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.is_training() {
            return Err(Error::InvalidArgument {
                name: "mode",
                msg: "the BatchNorm1d stand-in supports eval mode only".into(),
            });
        }
        let std = self.running_var.add_scalar(self.eps)?.sqrt()?;
        x.sub(&self.running_mean)?
            .div(&std)?
            .mul(&self.weight)?
            .add(&self.bias)
    }
}

/// Dropout stand-in that shows its mode: scales by 2 in training, identity in eval.
#[derive(nn::Module, Default)]
pub struct Dropout {
    pub mode: nn::Mode,
}

impl Forward for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.is_training() {
            x.mul_scalar(2.0)
        } else {
            Ok(x.clone())
        }
    }
}
