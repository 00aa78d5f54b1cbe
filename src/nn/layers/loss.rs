//! Loss modules, PyTorch's `nn.*Loss`: each holds its options (and, for the weighted
//! ones, its weights as buffers, as PyTorch registers them) and calls its functional
//! loss from an inherent `forward(&input, &target)`.
//!
//! ```
//! use kiln::nn::{self, functional as F};
//! use kiln::{Device, Tensor};
//! # fn main() -> kiln::Result<()> {
//! let dev = Device::Cpu;
//! let z = Tensor::from_vec(vec![0.5f32, -1.0, 2.0], &[3], &dev)?;
//! let t = Tensor::from_vec(vec![1.0f32, 0.0, 1.0], &[3], &dev)?;
//! let loss_fn = nn::BCEWithLogitsLoss::new().reduction(F::Reduction::Sum);
//! let sum = loss_fn.forward(&z, &t)?;
//! let mean = nn::BCEWithLogitsLoss::new().forward(&z, &t)?;
//! assert!((sum.item::<f32>()? / 3.0 - mean.item::<f32>()?).abs() < 1e-6);
//! assert_eq!(nn::repr(&loss_fn), "BCEWithLogitsLoss()");
//! # Ok(())
//! # }
//! ```

use crate::nn::functional::{self as F, Reduction};
use crate::nn::{self, Buffer};
use crate::{Result, Tensor};

/// Declares a loss module holding only a reduction (default mean), whose forward is
/// `$op(input, target, reduction)`.
macro_rules! reduction_loss {
    ($($(#[doc = $doc:literal])* $name:ident => $op:path;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, Default, nn::Module)]
        #[module(stateless)]
        pub struct $name {
            #[module(skip)]
            reduction: Reduction,
        }

        impl $name {
            /// The mean reduction, PyTorch's default.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the reduction (`BatchMean` errs in `forward`).
            pub fn reduction(mut self, reduction: Reduction) -> Self {
                self.reduction = reduction;
                self
            }

            /// The loss of `input` against `target`.
            pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
                $op(input, target, self.reduction)
            }
        }
    )*};
}

reduction_loss! {
    /// `nn.MSELoss(reduction)`: [`F::mse_loss_with`].
    MSELoss => F::mse_loss_with;
    /// `nn.L1Loss(reduction)`: [`F::l1_loss`].
    L1Loss => F::l1_loss;
}

/// Declares a loss module with a reduction and one positive threshold (`beta`,
/// `delta`; PyTorch's default 1.0), whose forward is `$op(input, target, threshold,
/// reduction)`.
macro_rules! threshold_loss {
    ($($(#[doc = $doc:literal])* $name:ident($field:ident) => $op:path;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, nn::Module)]
        #[module(stateless)]
        pub struct $name {
            #[module(skip)]
            $field: f64,
            #[module(skip)]
            reduction: Reduction,
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $field: 1.0, reduction: Reduction::Mean }
            }
        }

        impl $name {
            /// PyTorch's defaults: threshold 1.0, mean reduction.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the threshold (checked by the functional loss in `forward`).
            pub fn $field(mut self, $field: f64) -> Self {
                self.$field = $field;
                self
            }

            /// Sets the reduction (`BatchMean` errs in `forward`).
            pub fn reduction(mut self, reduction: Reduction) -> Self {
                self.reduction = reduction;
                self
            }

            /// The loss of `input` against `target`.
            pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
                $op(input, target, self.$field, self.reduction)
            }
        }
    )*};
}

threshold_loss! {
    /// `nn.SmoothL1Loss(reduction, beta)`: [`F::smooth_l1_loss`].
    SmoothL1Loss(beta) => F::smooth_l1_loss;
    /// `nn.HuberLoss(reduction, delta)`: [`F::huber_loss`].
    HuberLoss(delta) => F::huber_loss;
}

/// `nn.KLDivLoss(reduction, log_target)`: [`F::kl_div`]. PyTorch's defaults: the
/// mean reduction (which divides by the number of elements; `BatchMean` is the
/// mathematical KL divergence) and `log_target = false`.
#[derive(Debug, Clone, Copy, Default, nn::Module)]
#[module(stateless)]
pub struct KLDivLoss {
    #[module(skip)]
    reduction: Reduction,
    #[module(skip)]
    log_target: bool,
}

impl KLDivLoss {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the reduction (any of the four).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// Whether the target holds log-probabilities.
    pub fn log_target(mut self, log_target: bool) -> Self {
        self.log_target = log_target;
        self
    }

    /// The divergence of `target` from `input` (log-probabilities).
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        F::kl_div(input, target, self.reduction, self.log_target)
    }
}

/// `nn.CrossEntropyLoss(weight, ignore_index, reduction, label_smoothing)`:
/// [`F::cross_entropy_opts`], with PyTorch's defaults (no weight, ignore index
/// -100, mean reduction, no smoothing). The class weights are the buffer `weight`.
#[derive(Debug, nn::Module)]
#[module(stateless)]
pub struct CrossEntropyLoss {
    /// Class weights `(C)`, when given.
    pub weight: Option<Buffer>,
    #[module(skip)]
    ignore_index: i64,
    #[module(skip)]
    label_smoothing: f64,
    #[module(skip)]
    reduction: Reduction,
}

impl Default for CrossEntropyLoss {
    fn default() -> Self {
        CrossEntropyLoss {
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            reduction: Reduction::Mean,
        }
    }
}

impl CrossEntropyLoss {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Class weights `(C)` (the logits' dtype and device).
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(Buffer::new(weight));
        self
    }

    /// Targets equal to this index are ignored.
    pub fn ignore_index(mut self, ignore_index: i64) -> Self {
        self.ignore_index = ignore_index;
        self
    }

    /// Label smoothing in `[0, 1]` (checked in `forward`).
    pub fn label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.label_smoothing = label_smoothing;
        self
    }

    /// Sets the reduction (`BatchMean` errs in `forward`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The loss of `logits` against class indices `target`.
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
        let mut opts = F::CrossEntropyOpts::new()
            .ignore_index(self.ignore_index)
            .label_smoothing(self.label_smoothing)
            .reduction(self.reduction);
        if let Some(w) = &self.weight {
            opts = opts.weight(w);
        }
        F::cross_entropy_opts(logits, target, opts)
    }
}

/// `nn.BCELoss(weight, reduction)`: [`F::binary_cross_entropy`]; the weight is the
/// buffer `weight`.
#[derive(Debug, Default, nn::Module)]
#[module(stateless)]
pub struct BCELoss {
    /// Per-element weights (broadcast to the target), when given.
    pub weight: Option<Buffer>,
    #[module(skip)]
    reduction: Reduction,
}

impl BCELoss {
    /// No weight, mean reduction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Per-element weights, broadcast to the target's shape.
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(Buffer::new(weight));
        self
    }

    /// Sets the reduction (`BatchMean` errs in `forward`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The loss of probabilities `input` against `target`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        let mut opts = F::LossOpts::new().reduction(self.reduction);
        if let Some(w) = &self.weight {
            opts = opts.weight(w);
        }
        F::binary_cross_entropy(input, target, opts)
    }
}

/// `nn.BCEWithLogitsLoss(weight, reduction, pos_weight)`:
/// [`F::binary_cross_entropy_with_logits`]; the weights are the buffers `weight` and
/// `pos_weight`.
#[derive(Debug, Default, nn::Module)]
#[module(stateless)]
pub struct BCEWithLogitsLoss {
    /// Per-element weights (broadcast to the target), when given.
    pub weight: Option<Buffer>,
    /// Weights of the positive term (broadcast to the target), when given.
    pub pos_weight: Option<Buffer>,
    #[module(skip)]
    reduction: Reduction,
}

impl BCEWithLogitsLoss {
    /// No weights, mean reduction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Per-element weights, broadcast to the target's shape.
    pub fn weight(mut self, weight: Tensor) -> Self {
        self.weight = Some(Buffer::new(weight));
        self
    }

    /// Weights of the positive term, broadcast to the target's shape.
    pub fn pos_weight(mut self, pos_weight: Tensor) -> Self {
        self.pos_weight = Some(Buffer::new(pos_weight));
        self
    }

    /// Sets the reduction (`BatchMean` errs in `forward`).
    pub fn reduction(mut self, reduction: Reduction) -> Self {
        self.reduction = reduction;
        self
    }

    /// The loss of logits `input` against `target`.
    pub fn forward(&self, input: &Tensor, target: &Tensor) -> Result<Tensor> {
        let mut opts = F::BceOpts::new().reduction(self.reduction);
        if let Some(w) = &self.weight {
            opts = opts.weight(w);
        }
        if let Some(pw) = &self.pos_weight {
            opts = opts.pos_weight(pw);
        }
        F::binary_cross_entropy_with_logits(input, target, opts)
    }
}
