//! Optimizers: [`Sgd`], [`Adam`], [`AdamW`], with PyTorch's `torch.optim` update rules.
//!
//! An optimizer holds the parameters it updates. Before changing anything, `step`
//! checks the seed's pitfalls (see [`ParamSet::check`]): a parameter it holds that got
//! no gradient since `zero_grad` ([`Error::UnusedParameters`](crate::Error::UnusedParameters)) and gradients that
//! reached parameters it does not hold ([`Error::UnregisteredParameters`](crate::Error::UnregisteredParameters), the mark of
//! a layer built inside `forward`). The latter looks at the last `backward` run on the
//! calling thread, so call `backward` and `step` on one thread (as a training loop
//! does). When `step` returns an error nothing has changed.
//!
//! Parameters come in groups ([`ParamGroup`], PyTorch's `param_groups`), each with
//! its own options; [`lr_scheduler`] changes the groups' learning rates over time;
//! [`Optimizer::state_dict`] / [`Optimizer::load_state_dict`] save and restore the
//! state (moments, step counts, every group's options) to resume training.

// Counts, sizes and indices here come from users and files: every conversion between
// integer types is checked or provably in range (issue 28's class of wrapping casts).
#![deny(
    clippy::cast_possible_wrap,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

mod adam;
mod groups;
pub mod lr_scheduler;
mod params;
mod sgd;

pub use adam::{Adam, AdamW};
pub use groups::{GroupHandle, ParamGroup};
pub use params::{OptimParam, ParamSet};
pub use sgd::Sgd;

use crate::{Result, Tensor};

/// What every optimizer does. Object-safe: `Box<dyn Optimizer>` works.
pub trait Optimizer {
    /// Clears the gradient of every parameter held (PyTorch's `set_to_none`).
    fn zero_grad(&mut self);

    /// Applies one update from the accumulated gradients, or changes nothing and
    /// returns an error.
    fn step(&mut self) -> Result<()>;

    /// Adds a group of parameters with its own options (those it does not set are
    /// the optimizer's). Err, changing nothing, for a parameter already held (in any
    /// group), an empty group, a bad option value, or an option this optimizer lacks.
    fn add_param_group(&mut self, group: ParamGroup) -> Result<()>;

    /// The state to resume from: per parameter `i` (in the order the groups list
    /// them) its buffers as `state.<i>.<name>` (Adam: `step`, `exp_avg`,
    /// `exp_avg_sq`, `max_exp_avg_sq`; SGD: `momentum_buffer`) once it has any, and
    /// per group `g` its options as 0-d f64 CPU tensors `param_groups.<g>.<option>`,
    /// PyTorch's `param_groups.<g>.initial_lr` once a scheduler has set it, and its
    /// parameters' indices `param_groups.<g>.params`. The moment tensors are
    /// the optimizer's own (later steps change them, as in PyTorch): save them or
    /// copy them before stepping again.
    fn state_dict(&self) -> Vec<(String, Tensor)>;

    /// Restores a [`Optimizer::state_dict`] of an optimizer with the same groups.
    /// Strict and atomic: a missing, unexpected, duplicated or mis-shaped key is an
    /// `Err` naming it, and then nothing has changed. State tensors are copied to
    /// each parameter's device and dtype. `initial_lr` is optional: a state without
    /// it (saved before any scheduler was built) keeps each group's own.
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()>;

    /// The shared table of the groups' options, through which the schedulers of
    /// [`lr_scheduler`] built from `&opt` adjust them.
    fn group_handle(&self) -> GroupHandle;

    /// How many parameter groups there are.
    fn num_groups(&self) -> usize {
        self.group_handle().num_groups()
    }

    /// The learning rate of the first group.
    fn lr(&self) -> f64 {
        self.group_handle().lrs()[0]
    }

    /// Sets every group's learning rate (checked by the next `step`).
    fn set_lr(&mut self, lr: f64) {
        let h = self.group_handle();
        h.set_lrs(&vec![lr; h.num_groups()]);
    }

    /// The learning rate of group `group`; Err naming `group` when there is none.
    fn group_lr(&self, group: usize) -> Result<f64> {
        self.group_handle().get(group, groups::Opt::Lr)
    }

    /// The momentum of group `group` that [`lr_scheduler::OneCycleLr`] cycles: SGD's
    /// `momentum`, Adam's and AdamW's `β1`. Err naming `group` when there is none.
    fn group_momentum(&self, group: usize) -> Result<f64> {
        let h = self.group_handle();
        h.get(group, h.momentum_opt())
    }

    /// Sets the learning rate of group `group`; Err naming `group` when there is
    /// none, or `lr` when it is negative or not finite.
    fn set_group_lr(&mut self, group: usize, lr: f64) -> Result<()> {
        self.group_handle().set(group, groups::Opt::Lr, lr)
    }

    /// The parameters held, every group's, in order (what [`crate::amp::GradScaler`]
    /// unscales).
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
