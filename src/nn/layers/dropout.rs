//! `nn::Dropout`, the channel dropouts `nn::Dropout1d`/`2d`/`3d` and `StochasticDepth`: dropout that
//! follows its module's train/eval mode.

use crate::nn::summary::{py_bool, py_float};
use crate::nn::{self, functional as F, Forward, Mode};
use crate::{Error, Result, Tensor};

/// `nn.Dropout(p)`: zeroes elements with probability `p` and scales the rest by
/// `1/(1-p)` in training mode; the identity in eval mode.
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct Dropout {
    #[module(skip)]
    p: f64,
    mode: Mode,
}

impl Dropout {
    /// Err unless `0 <= p <= 1`.
    pub fn new(p: f64) -> Result<Dropout> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::arg(
                "p",
                format!("dropout probability must be in [0, 1], got {p}"),
            ));
        }
        Ok(Dropout {
            p,
            mode: Mode::default(),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// PyTorch's `Dropout.extra_repr` (kiln's dropout is never in place).
    fn extra_repr(&self) -> String {
        format!("p={}, inplace={}", py_float(self.p), py_bool(false))
    }
}

impl Forward for Dropout {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::dropout(x, self.p, self.mode.is_training())
    }
}

/// Declares the channel-dropout modules: `p` checked at construction, the op in
/// training mode, the identity in eval mode, printed as PyTorch's.
macro_rules! channel_dropout_module {
    ($($(#[doc = $doc:literal])* $name:ident => $op:path;)*) => {$(
        $(#[doc = $doc])*
        #[derive(Debug, nn::Module)]
        #[module(extra_repr)]
        pub struct $name {
            #[module(skip)]
            p: f64,
            mode: Mode,
        }

        impl $name {
            /// Err unless `0 <= p <= 1`.
            pub fn new(p: f64) -> Result<$name> {
                let Dropout { p, mode } = Dropout::new(p)?;
                Ok($name { p, mode })
            }

            /// The drop probability.
            pub fn p(&self) -> f64 {
                self.p
            }

            /// PyTorch's `extra_repr`, as [`Dropout`]'s.
            fn extra_repr(&self) -> String {
                format!("p={}, inplace={}", py_float(self.p), py_bool(false))
            }
        }

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $op(x, self.p, self.mode.is_training())
            }
        }
    )*};
}

channel_dropout_module! {
    /// `nn.Dropout1d(p)`: zeroes whole channels of an `(N, C, L)` or `(C, L)` input
    /// with probability `p` in training mode ([`F::dropout1d`]).
    Dropout1d => F::dropout1d;
    /// `nn.Dropout2d(p)`: zeroes whole channels of an `(N, C, H, W)` input (or of
    /// `(N, C, L)`, as PyTorch reads a 3-D input) with probability `p` in training
    /// mode ([`F::dropout2d`]).
    Dropout2d => F::dropout2d;
    /// `nn.Dropout3d(p)`: zeroes whole channels of an `(N, C, D, H, W)` or
    /// `(C, D, H, W)` input with probability `p` in training mode ([`F::dropout3d`]).
    Dropout3d => F::dropout3d;
}

/// `torchvision.ops.StochasticDepth(p, mode)`: [`F::stochastic_depth`] that follows
/// its module's train/eval mode (the identity in eval mode).
#[derive(Debug, nn::Module)]
#[module(extra_repr)]
pub struct StochasticDepth {
    #[module(skip)]
    p: f64,
    #[module(skip)]
    mode_kind: F::StochasticDepthMode,
    mode: Mode,
}

impl StochasticDepth {
    /// Err unless `0 <= p <= 1`.
    pub fn new(p: f64, mode: F::StochasticDepthMode) -> Result<StochasticDepth> {
        F::check_drop_probability(p)?;
        Ok(StochasticDepth {
            p,
            mode_kind: mode,
            mode: Mode::default(),
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }

    /// torchvision's `StochasticDepth.__repr__` body.
    fn extra_repr(&self) -> String {
        let mode = match self.mode_kind {
            F::StochasticDepthMode::Row => "row",
            F::StochasticDepthMode::Batch => "batch",
        };
        format!("p={}, mode={mode}", py_float(self.p))
    }
}

impl Forward for StochasticDepth {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::stochastic_depth(x, self.p, self.mode_kind, self.mode.is_training())
    }
}
