//! Optimizers: [`Sgd`], [`Adam`], [`AdamW`], with PyTorch's `torch.optim` update rules.
//!
//! An optimizer holds the parameters it updates. Before changing anything, `step`
//! checks the seed's pitfalls (see [`ParamSet::check`]): a parameter it holds that got
//! no gradient since `zero_grad` ([`Error::UnusedParameters`](crate::Error::UnusedParameters)) and gradients that
//! reached parameters it does not hold ([`Error::UnregisteredParameters`](crate::Error::UnregisteredParameters), the mark of
//! a layer built inside `forward`). The latter looks at the last `backward` run on the
//! calling thread, so call `backward` and `step` on one thread (as a training loop
//! does). When `step` returns an error nothing has changed.

mod adam;
mod params;
mod sgd;

pub use adam::{Adam, AdamW};
pub use params::{OptimParam, ParamSet};
pub use sgd::Sgd;

use crate::Result;

/// What every optimizer does. Object-safe: `Box<dyn Optimizer>` works.
pub trait Optimizer {
    /// Clears the gradient of every parameter held (PyTorch's `set_to_none`).
    fn zero_grad(&mut self);
    /// Applies one update from the accumulated gradients, or changes nothing and
    /// returns an error.
    fn step(&mut self) -> Result<()>;
    /// The learning rate.
    fn lr(&self) -> f64;
    /// Sets the learning rate (for schedules).
    fn set_lr(&mut self, lr: f64);
    /// The parameters held, in order (what [`crate::amp::GradScaler`] unscales).
    fn parameters(&self) -> Vec<crate::Tensor>;
}

/// Err unless `value` is finite and `>= 0`.
pub(crate) fn check_non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(crate::Error::arg(
            name,
            format!("must be a finite number >= 0, got {value}"),
        ))
    }
}
