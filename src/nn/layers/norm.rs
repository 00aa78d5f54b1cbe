//! Batch normalisation layers: [`BatchNorm1d`] over `(N, C)` / `(N, C, L)`,
//! [`BatchNorm2d`] over `(N, C, H, W)` and [`BatchNorm3d`] over `(N, C, D, H, W)`.
//!
//! Like PyTorch's `_BatchNorm`, all are one type, `BatchNorm<D>` (`D` spatial
//! dimensions), that differs only in the input ranks it accepts; the public names
//! are aliases of it, so the layers cannot drift apart.

use crate::nn::summary::py_float;
use crate::nn::{functional as F, init, Buffer, Forward, Member, Mode, Module, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.BatchNorm1d(num_features)`: normalises each channel of an `(N, C)` or
/// `(N, C, L)` input with the batch's statistics in training mode (and updates the
/// running statistics), with the running statistics in eval mode. Weight 1, bias 0,
/// running mean 0, running var 1, momentum 0.1, eps 1e-5. Its parameters (`weight`,
/// `bias`) and buffers (`running_mean`, `running_var`, `num_batches_tracked`) have
/// PyTorch's names, shapes and dtypes.
///
/// ```
/// use kiln::nn::{self, Forward, Module};
/// use kiln::{DType, Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let bn = nn::BatchNorm1d::new(3, &Device::Cpu)?;
/// let x = Tensor::randn(&[8, 3], DType::F32, &Device::Cpu)?;
/// assert_eq!(bn.forward(&x)?.shape(), &[8, 3]);
/// assert_eq!(bn.num_batches_tracked.item::<i64>()?, 1);
/// # Ok(())
/// # }
/// ```
pub type BatchNorm1d = BatchNorm<1>;

/// `nn.BatchNorm2d(num_features)`: normalises each channel of an `(N, C, H, W)` input
/// with the batch's statistics in training mode (and updates the running
/// statistics), with the running statistics in eval mode. Weight 1, bias 0, running
/// mean 0, running var 1, momentum 0.1, eps 1e-5. Same parameters and buffers as
/// [`BatchNorm1d`].
pub type BatchNorm2d = BatchNorm<2>;

/// `nn.BatchNorm3d(num_features)`: normalises each channel of an `(N, C, D, H, W)`
/// input, as [`BatchNorm2d`] does a 4-D one. Same parameters and buffers as
/// [`BatchNorm1d`].
pub type BatchNorm3d = BatchNorm<3>;

/// Batch normalisation over `D` spatial dimensions: the type behind [`BatchNorm1d`],
/// [`BatchNorm2d`] and [`BatchNorm3d`] (users name the aliases). Parameters and buffers have PyTorch's names, shapes and dtypes,
/// so checkpoints are interchangeable.
#[derive(Debug)]
pub struct BatchNorm<const D: usize> {
    /// Per-channel scale (γ), `(C)`.
    pub weight: Parameter,
    /// Per-channel shift (β), `(C)`.
    pub bias: Parameter,
    /// Running mean, `(C)`, updated in training mode.
    pub running_mean: Buffer,
    /// Running (unbiased) variance, `(C)`, updated in training mode.
    pub running_var: Buffer,
    /// Number of training batches seen (I64 scalar, as PyTorch saves it).
    pub num_batches_tracked: Buffer,
    momentum: f64,
    eps: f64,
    mode: Mode,
    fused: bool,
}

/// Options of [`BatchNorm::new_with`] (for [`BatchNorm1d`], [`BatchNorm2d`] and
/// [`BatchNorm3d`]):
/// `BatchNormOpts::new().eps(1e-3).momentum(0.01).dtype(DType::F64)`. The defaults
/// are PyTorch's: eps 1e-5, momentum 0.1, F32 parameters and running statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormOpts {
    /// Added to the variance before its square root (> 0).
    pub eps: f64,
    /// The running statistics' update weight (in `[0, 1]`).
    pub momentum: f64,
    /// The dtype of the parameters and running statistics (a float dtype);
    /// `num_batches_tracked` is I64 whatever it is.
    pub dtype: DType,
}

impl Default for BatchNormOpts {
    fn default() -> Self {
        BatchNormOpts {
            eps: 1e-5,
            momentum: 0.1,
            dtype: DType::F32,
        }
    }
}

impl BatchNormOpts {
    /// The defaults: eps 1e-5, momentum 0.1, F32.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the dtype of the parameters and running statistics.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

/// A batch norm's parameters, buffers and mode under PyTorch's names, in its order
/// (`BatchNorm` and `SyncBatchNorm` checkpoints are interchangeable).
pub(crate) fn visit_batch_norm<'a>(
    [weight, bias]: [&'a Parameter; 2],
    [running_mean, running_var, num_batches_tracked]: [&'a Buffer; 3],
    mode: &'a Mode,
    visitor: &mut dyn FnMut(&str, Member<'a>),
) {
    visitor("weight", Member::Parameter(weight));
    visitor("bias", Member::Parameter(bias));
    visitor("running_mean", Member::Buffer(running_mean));
    visitor("running_var", Member::Buffer(running_var));
    visitor("num_batches_tracked", Member::Buffer(num_batches_tracked));
    visitor("mode", Member::Mode(mode));
}

impl<const D: usize> Module for BatchNorm<D> {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        visit_batch_norm(
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
        Self::NAME.to_owned()
    }

    /// PyTorch's `_NormBase.extra_repr` (PyTorch 2.15 prints `bias=` too).
    fn extra_repr(&self) -> String {
        format!(
            "{}, eps={}, momentum={}, affine=True, bias=True, track_running_stats=True",
            self.weight.shape()[0],
            py_float(self.eps),
            py_float(self.momentum)
        )
    }
}

impl<const D: usize> BatchNorm<D> {
    /// The layer's PyTorch name, for error messages.
    const NAME: &'static str = match D {
        1 => "BatchNorm1d",
        2 => "BatchNorm2d",
        3 => "BatchNorm3d",
        _ => "BatchNorm",
    };

    /// A layer for `num_features` channels with PyTorch's defaults (momentum 0.1, eps 1e-5).
    pub fn new(num_features: usize, device: &Device) -> Result<BatchNorm<D>> {
        BatchNorm::with_options(num_features, 0.1, 1e-5, device)
    }

    /// A layer with the given running-average `momentum` (in `[0, 1]`) and `eps` (> 0).
    pub fn with_options(
        num_features: usize,
        momentum: f64,
        eps: f64,
        device: &Device,
    ) -> Result<BatchNorm<D>> {
        let opts = BatchNormOpts::new().momentum(momentum).eps(eps);
        BatchNorm::new_with(num_features, opts, device)
    }

    /// A layer with the given options (eps, momentum, dtype).
    pub fn new_with(
        num_features: usize,
        opts: BatchNormOpts,
        device: &Device,
    ) -> Result<BatchNorm<D>> {
        let BatchNormOpts {
            eps,
            momentum,
            dtype,
        } = opts;
        init::check_param_dtype(dtype)?;
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
        Ok(BatchNorm {
            weight: Parameter::new(Tensor::ones(&c, dtype, device)?)?,
            bias: Parameter::new(Tensor::zeros(&c, dtype, device)?)?,
            running_mean: Buffer::new(Tensor::zeros(&c, dtype, device)?),
            running_var: Buffer::new(Tensor::ones(&c, dtype, device)?),
            num_batches_tracked: Buffer::new(Tensor::zeros(&[], DType::I64, device)?),
            momentum,
            eps,
            mode: Mode::default(),
            fused: true,
        })
    }

    /// Whether [`BatchNorm::forward_relu`] and [`BatchNorm::forward_add_relu`] run as
    /// one fused op ([`F::batch_norm_act`]; the default) or, with `false`, as the
    /// separate `batch_norm`, `add` and `relu` ops (the same values within rounding;
    /// the reference to compare the fusion with, e.g. kernel launches per step).
    pub fn fused(mut self, on: bool) -> Self {
        self.fused = on;
        self
    }

    /// See [`BatchNorm::fused`].
    pub fn is_fused(&self) -> bool {
        self.fused
    }

    /// `relu(self.forward(x))`: the `bn → relu` of ResNets, fused into one op (see
    /// [`BatchNorm::fused`]). Errors as [`Forward::forward`].
    pub fn forward_relu(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, None)
    }

    /// `relu(self.forward(x) + residual)`: the `bn → add → relu` that closes a
    /// ResNet block, fused into one op (see [`BatchNorm::fused`]). `residual` has
    /// `x`'s shape, dtype and device (else an `Err` naming it).
    pub fn forward_add_relu(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.forward_act(x, Some(residual))
    }

    /// [`BatchNorm::forward_relu`] (`residual` `None`) or
    /// [`BatchNorm::forward_add_relu`].
    fn forward_act(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        if !self.fused {
            if let Some(r) = residual.filter(|r| r.shape() != x.shape()) {
                return Err(Error::arg(
                    "residual",
                    format!(
                        "must have the input's shape {:?}, got {:?}",
                        x.shape(),
                        r.shape()
                    ),
                ));
            }
            let y = self.forward(x)?;
            let y = match residual {
                Some(r) => y.add(r)?,
                None => y,
            };
            return F::relu(&y);
        }
        self.normalise(x, Some(residual))
    }

    /// This layer's batch norm of `x` (checked, the batch counted); with `act`
    /// `Some(residual)`, `F::batch_norm_act`'s residual add and ReLU fused into it.
    fn normalise(&self, x: &Tensor, act: Option<Option<&Tensor>>) -> Result<Tensor> {
        self.check_input(x)?;
        let training = self.mode.is_training();
        let (rm, rv): (&Tensor, &Tensor) = (&self.running_mean, &self.running_var);
        let (w, b): (Option<&Tensor>, Option<&Tensor>) = (Some(&self.weight), Some(&self.bias));
        let (momentum, eps) = (self.momentum, self.eps);
        let y = match act {
            None => F::batch_norm(x, rm, rv, w, b, training, momentum, eps)?,
            Some(r) => F::batch_norm_act(x, rm, rv, w, b, r, training, momentum, eps)?,
        };
        if training {
            let _guard = crate::no_grad();
            self.num_batches_tracked
                .copy_(&self.num_batches_tracked.add_scalar(1.0)?)?;
        }
        Ok(y)
    }

    /// The running-average momentum.
    pub fn momentum(&self) -> f64 {
        self.momentum
    }

    /// The value added to the variance before its square root.
    pub fn eps(&self) -> f64 {
        self.eps
    }

    /// Err (naming `input`) unless `x` has one of the ranks this layer accepts —
    /// `(N, C)` or `(N, C, L)` for one spatial dimension, `(N, C, *D)` otherwise
    /// (PyTorch's `_check_input_dim`) — and this layer's number of channels.
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let rank = x.rank();
        if !(rank == D + 2 || (D == 1 && rank == 2)) {
            let expected = match D {
                1 => "a 2-D (N, C) or 3-D (N, C, L) input".to_string(),
                2 => "a 4-D (N, C, H, W) input".to_string(),
                _ => format!("a {}-D input", D + 2),
            };
            return Err(Error::arg(
                "input",
                format!(
                    "{} expects {expected}, got shape {:?}",
                    Self::NAME,
                    x.shape()
                ),
            ));
        }
        let channels = self.weight.shape()[0];
        if x.shape()[1] != channels {
            return Err(Error::arg(
                "input",
                format!(
                    "{}({channels}) expects {channels} channels in dim 1, got shape {:?}",
                    Self::NAME,
                    x.shape()
                ),
            ));
        }
        Ok(())
    }
}

impl<const D: usize> Forward for BatchNorm<D> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.normalise(x, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(shape: &[usize]) -> Tensor {
        crate::manual_seed(5);
        Tensor::randn(shape, DType::F32, &Device::Cpu).unwrap()
    }

    #[test]
    fn ranks_follow_pytorch() {
        let dev = Device::Cpu;
        let bn1 = BatchNorm1d::new(3, &dev).unwrap();
        let bn2 = BatchNorm2d::new(3, &dev).unwrap();
        for shape in [&[4, 3][..], &[4, 3, 5]] {
            assert_eq!(bn1.forward(&input(shape)).unwrap().shape(), shape);
            assert!(bn2.forward(&input(shape)).is_err());
        }
        assert!(bn1.forward(&input(&[4, 3, 2, 2])).is_err());
        assert!(bn2.forward(&input(&[4, 3, 2, 2])).is_ok());
        for bad in [&[3][..], &[4, 3, 2, 2, 2]] {
            let err = bn1.forward(&input(bad)).unwrap_err().to_string();
            assert!(err.contains("BatchNorm1d"), "{err}");
            let err = bn2.forward(&input(bad)).unwrap_err().to_string();
            assert!(err.contains("BatchNorm2d"), "{err}");
        }
        // Only the accepted inputs counted as training batches.
        assert_eq!(bn1.num_batches_tracked.item::<i64>().unwrap(), 2);
        assert_eq!(bn2.num_batches_tracked.item::<i64>().unwrap(), 1);
    }
}
