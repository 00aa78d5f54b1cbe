//! Per-sample normalisation layers: [`GroupNorm`] and the instance norms
//! [`InstanceNorm1d`], [`InstanceNorm2d`], [`InstanceNorm3d`] (one type,
//! `InstanceNorm<D>`, as the batch norms are), whose `forward` is [`F::group_norm`] /
//! [`F::instance_norm`].

use crate::nn::summary::{py_bool, py_float};
use crate::nn::{functional as F, init, Buffer, Forward, Member, Mode, Module, Parameter};
use crate::{DType, Device, Error, Result, Tensor};

/// `nn.GroupNorm(num_groups, num_channels)`: normalises each sample's groups of
/// `num_channels / num_groups` channels of an `(N, C, *)` input, then applies the
/// learnt per-channel `weight` (ones) and `bias` (zeros). eps 1e-5.
///
/// ```
/// use kiln::nn::{self, Forward};
/// use kiln::{DType, Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let gn = nn::GroupNorm::new(2, 6, &Device::Cpu)?;
/// let x = Tensor::randn(&[4, 6, 5, 5], DType::F32, &Device::Cpu)?;
/// assert_eq!(gn.forward(&x)?.shape(), &[4, 6, 5, 5]);
/// assert_eq!(nn::repr(&gn), "GroupNorm(2, 6, eps=1e-05, affine=True, bias=True)");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, crate::nn::Module)]
#[module(extra_repr)]
pub struct GroupNorm {
    /// Per-channel scale, `(C)` (absent without `affine`).
    pub weight: Option<Parameter>,
    /// Per-channel shift, `(C)` (absent without `affine`).
    pub bias: Option<Parameter>,
    #[module(skip)]
    num_groups: usize,
    #[module(skip)]
    num_channels: usize,
    #[module(skip)]
    eps: f64,
    mode: Mode,
}

impl GroupNorm {
    /// `nn.GroupNorm(num_groups, num_channels)`: eps 1e-5, with weight and bias.
    pub fn new(num_groups: usize, num_channels: usize, device: &Device) -> Result<GroupNorm> {
        GroupNorm::with_options(num_groups, num_channels, 1e-5, true, device)
    }

    /// `nn.GroupNorm(num_groups, num_channels, eps, affine)` with F32 parameters:
    /// errs when `num_groups` is 0 or does not divide `num_channels`, or `eps` is
    /// negative or not finite.
    pub fn with_options(
        num_groups: usize,
        num_channels: usize,
        eps: f64,
        affine: bool,
        device: &Device,
    ) -> Result<GroupNorm> {
        if num_groups == 0 || !num_channels.is_multiple_of(num_groups) {
            return Err(Error::arg(
                "num_groups",
                format!("{num_groups} groups must divide num_channels ({num_channels})"),
            ));
        }
        F::check_eps(eps)?;
        let (weight, bias) = affine_params(num_channels, affine, DType::F32, device)?;
        Ok(GroupNorm {
            weight,
            bias,
            num_groups,
            num_channels,
            eps,
            mode: Mode::default(),
        })
    }

    /// The number of groups.
    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// PyTorch's `GroupNorm.extra_repr` (2.15 prints `bias=` too).
    fn extra_repr(&self) -> String {
        let affine = py_bool(self.weight.is_some());
        format!(
            "{}, {}, eps={}, affine={affine}, bias={affine}",
            self.num_groups,
            self.num_channels,
            py_float(self.eps)
        )
    }
}

impl Forward for GroupNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() >= 2 && x.shape()[1] != self.num_channels {
            return Err(Error::arg(
                "input",
                format!(
                    "GroupNorm expects {} channels in dim 1, got shape {:?}",
                    self.num_channels,
                    x.shape()
                ),
            ));
        }
        F::group_norm(
            x,
            self.num_groups,
            self.weight.as_deref(),
            self.bias.as_deref(),
            self.eps,
        )
    }
}

/// `nn.InstanceNorm1d(num_features)`: normalises each channel of each sample of an
/// `(N, C, L)` (or unbatched `(C, L)`) input by its own statistics. PyTorch's
/// defaults: eps 1e-5, momentum 0.1, no affine parameters, no running statistics
/// (see [`InstanceNormOpts`] for both).
pub type InstanceNorm1d = InstanceNorm<1>;

/// `nn.InstanceNorm2d(num_features)`: as [`InstanceNorm1d`] over `(N, C, H, W)` (or
/// unbatched `(C, H, W)`) inputs.
///
/// ```
/// use kiln::nn::{self, Forward};
/// use kiln::{DType, Device, Tensor};
/// # fn main() -> kiln::Result<()> {
/// let inorm = nn::InstanceNorm2d::new(3, &Device::Cpu)?;
/// let x = Tensor::randn(&[2, 3, 4, 4], DType::F32, &Device::Cpu)?;
/// assert_eq!(inorm.forward(&x)?.shape(), &[2, 3, 4, 4]);
/// assert!(inorm.weight.is_none() && inorm.running_mean.is_none());
/// # Ok(())
/// # }
/// ```
pub type InstanceNorm2d = InstanceNorm<2>;

/// `nn.InstanceNorm3d(num_features)`: as [`InstanceNorm1d`] over `(N, C, D, H, W)`
/// (or unbatched `(C, D, H, W)`) inputs.
pub type InstanceNorm3d = InstanceNorm<3>;

/// Options of [`InstanceNorm::new_with`], PyTorch's keyword arguments with its
/// defaults: eps 1e-5, momentum 0.1, `affine = false`, `track_running_stats =
/// false`, F32 parameters and statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceNormOpts {
    /// Added to the variance before its square root (finite, ≥ 0).
    pub eps: f64,
    /// The running statistics' update weight (in `[0, 1]`).
    pub momentum: f64,
    /// Learnt per-channel `weight` (ones) and `bias` (zeros).
    pub affine: bool,
    /// Running statistics, updated in training mode and used in eval mode.
    pub track_running_stats: bool,
    /// The dtype of the parameters and running statistics (a float dtype).
    pub dtype: DType,
}

impl Default for InstanceNormOpts {
    fn default() -> Self {
        InstanceNormOpts {
            eps: 1e-5,
            momentum: 0.1,
            affine: false,
            track_running_stats: false,
            dtype: DType::F32,
        }
    }
}

impl InstanceNormOpts {
    /// PyTorch's defaults.
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

    /// Adds (or removes) the learnt weight and bias.
    pub fn affine(mut self, affine: bool) -> Self {
        self.affine = affine;
        self
    }

    /// Adds (or removes) the running statistics.
    pub fn track_running_stats(mut self, track: bool) -> Self {
        self.track_running_stats = track;
        self
    }

    /// Sets the dtype of the parameters and running statistics.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }
}

/// Instance normalisation over `D` spatial dimensions: the type behind
/// [`InstanceNorm1d`], [`InstanceNorm2d`] and [`InstanceNorm3d`]. Parameters and
/// buffers (when present) have PyTorch's names, shapes and dtypes.
#[derive(Debug)]
pub struct InstanceNorm<const D: usize> {
    /// Per-channel scale, `(C)`, with `affine`.
    pub weight: Option<Parameter>,
    /// Per-channel shift, `(C)`, with `affine`.
    pub bias: Option<Parameter>,
    /// Running mean, `(C)`, with `track_running_stats`.
    pub running_mean: Option<Buffer>,
    /// Running (unbiased) variance, `(C)`, with `track_running_stats`.
    pub running_var: Option<Buffer>,
    /// With `track_running_stats`: kept for PyTorch's checkpoints (I64 scalar, 0;
    /// PyTorch's instance norms never count batches).
    pub num_batches_tracked: Option<Buffer>,
    num_features: usize,
    opts: InstanceNormOpts,
    mode: Mode,
}

impl<const D: usize> Module for InstanceNorm<D> {
    fn visit<'a>(&'a self, visitor: &mut dyn FnMut(&str, Member<'a>)) {
        let params = [("weight", &self.weight), ("bias", &self.bias)];
        for (name, p) in params {
            if let Some(p) = p {
                visitor(name, Member::Parameter(p));
            }
        }
        let buffers = [
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
            ("num_batches_tracked", &self.num_batches_tracked),
        ];
        for (name, b) in buffers {
            if let Some(b) = b {
                visitor(name, Member::Buffer(b));
            }
        }
        visitor("mode", Member::Mode(&self.mode));
    }

    fn type_name(&self) -> String {
        Self::NAME.to_owned()
    }

    /// PyTorch's `_NormBase.extra_repr`.
    fn extra_repr(&self) -> String {
        let affine = py_bool(self.opts.affine);
        format!(
            "{}, eps={}, momentum={}, affine={affine}, bias={affine}, track_running_stats={}",
            self.num_features,
            py_float(self.opts.eps),
            py_float(self.opts.momentum),
            py_bool(self.opts.track_running_stats)
        )
    }
}

impl<const D: usize> InstanceNorm<D> {
    /// The layer's PyTorch name, for printing and errors.
    const NAME: &'static str = match D {
        1 => "InstanceNorm1d",
        2 => "InstanceNorm2d",
        3 => "InstanceNorm3d",
        _ => "InstanceNorm",
    };

    /// A layer for `num_features` channels with PyTorch's defaults (no affine, no
    /// running statistics).
    pub fn new(num_features: usize, device: &Device) -> Result<InstanceNorm<D>> {
        InstanceNorm::new_with(num_features, InstanceNormOpts::new(), device)
    }

    /// A layer with the given options: errs when `num_features` is 0, `momentum` is
    /// outside `[0, 1]`, `eps` is negative or not finite, or `dtype` is not a float.
    pub fn new_with(
        num_features: usize,
        opts: InstanceNormOpts,
        device: &Device,
    ) -> Result<InstanceNorm<D>> {
        init::check_param_dtype(opts.dtype)?;
        if num_features == 0 {
            return Err(Error::arg("num_features", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&opts.momentum) {
            return Err(Error::arg(
                "momentum",
                format!("must be in [0, 1], got {}", opts.momentum),
            ));
        }
        F::check_eps(opts.eps)?;
        let (weight, bias) = affine_params(num_features, opts.affine, opts.dtype, device)?;
        let c = [num_features];
        let buffer = |t: Result<Tensor>| t.map(Buffer::new);
        let (running_mean, running_var, num_batches_tracked) = if opts.track_running_stats {
            (
                Some(buffer(Tensor::zeros(&c, opts.dtype, device))?),
                Some(buffer(Tensor::ones(&c, opts.dtype, device))?),
                Some(buffer(Tensor::zeros(&[], DType::I64, device))?),
            )
        } else {
            (None, None, None)
        };
        Ok(InstanceNorm {
            weight,
            bias,
            running_mean,
            running_var,
            num_batches_tracked,
            num_features,
            opts,
            mode: Mode::default(),
        })
    }

    /// The layer's options.
    pub fn options(&self) -> InstanceNormOpts {
        self.opts
    }

    /// Err (naming `input`) unless `x` is `(N, C, *D)` or unbatched `(C, *D)`; with
    /// parameters or statistics, `C` must be `num_features` (PyTorch only warns
    /// otherwise, where nothing has that size).
    fn check_input(&self, x: &Tensor) -> Result<()> {
        let (rank, channel_dim) = (x.rank(), x.rank().saturating_sub(D + 1));
        let sized = self.opts.affine || self.opts.track_running_stats;
        let bad_rank = rank != D + 1 && rank != D + 2;
        if bad_rank || (sized && x.shape()[channel_dim] != self.num_features) {
            return Err(Error::arg(
                "input",
                format!(
                    "{}({}) expects a {}-D or {}-D input with {} channels, got shape {:?}",
                    Self::NAME,
                    self.num_features,
                    D + 1,
                    D + 2,
                    self.num_features,
                    x.shape()
                ),
            ));
        }
        Ok(())
    }
}

impl<const D: usize> Forward for InstanceNorm<D> {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(x)?;
        if x.rank() == D + 1 {
            return self.forward(&x.unsqueeze(0)?)?.squeeze(0);
        }
        let use_input_stats = self.mode.is_training() || !self.opts.track_running_stats;
        F::instance_norm(
            x,
            self.running_mean.as_deref(),
            self.running_var.as_deref(),
            self.weight.as_deref(),
            self.bias.as_deref(),
            use_input_stats,
            self.opts.momentum,
            self.opts.eps,
        )
    }
}

/// Per-channel weight (ones) and bias (zeros) of `c` channels, or neither.
fn affine_params(
    c: usize,
    affine: bool,
    dtype: DType,
    device: &Device,
) -> Result<(Option<Parameter>, Option<Parameter>)> {
    if !affine {
        return Ok((None, None));
    }
    Ok((
        Some(Parameter::new(Tensor::ones(&[c], dtype, device)?)?),
        Some(Parameter::new(Tensor::zeros(&[c], dtype, device)?)?),
    ))
}
