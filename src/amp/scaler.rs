//! [`GradScaler`]: loss scaling for F16 training, like `torch.amp.GradScaler`.

use crate::optim::{GroupHandle, Optimizer};
use crate::tensor::StorageLocks;
use crate::{DType, Device, Error, Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

/// Where an optimizer is in the scaler's iteration (since the last `update`).
#[derive(Debug)]
struct OptimizerRecord {
    /// The optimizer's identity: its group table, which it keeps wherever it is moved
    /// (PyTorch keys this state by `id(optimizer)`). Holding the handle keeps the
    /// table alive, so no other optimizer can take its place until `update`.
    optimizer: GroupHandle,
    /// One `found_inf` flag (a one-element f32 tensor) per device holding gradients.
    found_inf: Vec<Tensor>,
    /// After `step`: whether an inf/NaN was found (and the step skipped).
    stepped: Option<bool>,
}

/// Scales the loss so that small F16 gradients do not flush to zero, then unscales
/// the gradients before the optimizer uses them and skips the steps whose gradients
/// overflowed, adapting the scale as `torch.amp.GradScaler` does:
///
/// ```no_run
/// # use kiln::prelude::*;
/// # fn f(net: &nn::Linear, opt: &mut kiln::optim::Sgd, x: &Tensor, y: &Tensor) -> kiln::Result<()> {
/// let mut scaler = kiln::amp::GradScaler::new();
/// let loss = {
///     let _ac = kiln::autocast(DType::F16)?;
///     F::cross_entropy(&net.forward(x)?, y)?
/// };
/// scaler.scale(&loss)?.backward()?;
/// scaler.unscale_(opt)?;                      // optional: before clipping
/// let stepped: bool = scaler.step(opt)?;      // false: an inf/NaN gradient, step skipped
/// scaler.update();                            // halves the scale after a skipped step
/// # Ok(()) }
/// ```
///
/// The scale starts at `init_scale` (65536). `update` multiplies it by
/// `backoff_factor` (0.5) after an iteration that found an inf/NaN gradient, and by
/// `growth_factor` (2) after `growth_interval` (2000) consecutive good ones. The
/// scale is kept in f32, as PyTorch keeps it in a float tensor.
///
/// The inf/NaN check runs on the gradients' devices: one fused pass per gradient
/// that unscales it and sets a flag per device (PyTorch's
/// `_amp_foreach_non_finite_check_and_unscale_`); `step` then reads the one flag of
/// each device (the only host synchronization, as in PyTorch).
#[derive(Debug)]
pub struct GradScaler {
    enabled: bool,
    scale: f32,
    growth_factor: f64,
    backoff_factor: f64,
    growth_interval: u32,
    growth_tracker: u32,
    records: Vec<OptimizerRecord>,
    /// Whether `scale` was called since the last `update`: the gradients `unscale_`
    /// divides are scaled ones only then.
    scaled: AtomicBool,
}

/// What [`GradScaler::state_dict`] returns and [`GradScaler::load_state_dict`] takes:
/// PyTorch's `state_dict` keys, as fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradScalerState {
    /// The current scale.
    pub scale: f64,
    /// `growth_factor`.
    pub growth_factor: f64,
    /// `backoff_factor`.
    pub backoff_factor: f64,
    /// `growth_interval`.
    pub growth_interval: u32,
    /// Consecutive iterations without inf/NaN since the scale last changed.
    pub growth_tracker: u32,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self::new()
    }
}

impl GradScaler {
    /// A scaler with PyTorch's defaults: scale 65536, growth factor 2, backoff
    /// factor 0.5, growth interval 2000.
    pub fn new() -> GradScaler {
        GradScaler {
            enabled: true,
            scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            growth_tracker: 0,
            records: Vec::new(),
            scaled: AtomicBool::new(false),
        }
    }

    /// The initial scale: > 0 and finite once stored in f32, as the scale is kept: a
    /// normal f32 (`1.2e-38 ..= 3.4e38`), whose reciprocal (what `unscale_`
    /// multiplies by) is finite too. A value that rounds to 0, a subnormal or
    /// infinity in f32 is an `Err` naming `init_scale`.
    pub fn init_scale(mut self, init_scale: f64) -> Result<Self> {
        self.scale = scale_of(init_scale)?;
        Ok(self)
    }

    /// The factor the scale grows by after `growth_interval` good steps: finite and
    /// > 1.
    pub fn growth_factor(mut self, growth_factor: f64) -> Result<Self> {
        check_growth_factor(growth_factor)?;
        self.growth_factor = growth_factor;
        Ok(self)
    }

    /// The factor the scale shrinks by after a skipped step: in (0, 1).
    pub fn backoff_factor(mut self, backoff_factor: f64) -> Result<Self> {
        check_backoff_factor(backoff_factor)?;
        self.backoff_factor = backoff_factor;
        Ok(self)
    }

    /// How many consecutive good steps make the scale grow: > 0.
    pub fn growth_interval(mut self, growth_interval: u32) -> Result<Self> {
        check_growth_interval(growth_interval)?;
        self.growth_interval = growth_interval;
        Ok(self)
    }

    /// `false` makes every method a pass-through (`GradScaler(enabled=False)`):
    /// `scale` returns the loss, `step` always steps, `get_scale` is 1.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Whether the scaler is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The current scale (1 when disabled).
    pub fn get_scale(&self) -> f64 {
        if self.enabled {
            f64::from(self.scale)
        } else {
            1.0
        }
    }

    /// `loss · scale` (the loss itself when disabled), recorded in the graph so that
    /// its `backward` yields scaled gradients. Err for a non-float loss.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        if !loss.dtype().is_float() {
            return Err(Error::arg(
                "outputs",
                format!(
                    "GradScaler::scale needs a float tensor, got {:?}",
                    loss.dtype()
                ),
            ));
        }
        if !self.enabled {
            return Ok(loss.clone());
        }
        let scaled = loss.mul_scalar(f64::from(self.scale))?;
        self.scaled.store(true, Ordering::Relaxed);
        Ok(scaled)
    }

    /// Divides the gradients of `opt`'s parameters by the scale, in place of the old
    /// gradients, and records per device whether one holds an inf or NaN (on the
    /// device: no host synchronization). Call it before clipping gradients; `step`
    /// then does not unscale again. A second call for the same optimizer before
    /// `update` is an `Err`, as in PyTorch, as is a call after `step`, and a call
    /// without a [`GradScaler::scale`] since the last `update` (the gradients are not
    /// scaled ones: PyTorch's "did not use scaler.scale(loss or outputs)"). F16
    /// gradients are an `Err` (PyTorch's "Attempting to unscale FP16 gradients": keep
    /// the master weights in f32). Nothing changes when it returns an error.
    pub fn unscale_<O: Optimizer + ?Sized>(&mut self, opt: &mut O) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        self.check_scaled()?;
        let handle = opt.group_handle();
        if let Some(r) = self.records.iter().find(|r| r.optimizer.same(&handle)) {
            let msg = if r.stepped.is_some() {
                "unscale_() is being called after step(); call update() first"
            } else {
                "unscale_() has already been called on this optimizer since the last update()"
            };
            return Err(Error::arg("optimizer", msg));
        }
        let with_grads: Vec<(Tensor, Tensor)> = opt
            .parameters()
            .into_iter()
            .filter_map(|p| p.grad().map(|g| (p, g)))
            .collect();
        if let Some((_, g)) = with_grads.iter().find(|(_, g)| g.dtype() == DType::F16) {
            return Err(Error::arg(
                "optimizer",
                format!(
                    "attempting to unscale F16 gradients (shape {:?}): keep the parameters in \
                     f32 and let autocast lower the compute",
                    g.shape()
                ),
            ));
        }
        let inv_scale = f64::from((1.0 / f64::from(self.scale)) as f32);
        let mut flags: Vec<(Device, Tensor)> = Vec::new();
        let mut unscaled = Vec::with_capacity(with_grads.len());
        for (p, g) in &with_grads {
            let dev = g.device();
            let flag = match flags.iter().find(|(d, _)| *d == dev) {
                Some((_, f)) => f.clone(),
                None => {
                    let f = Tensor::zeros(&[1], DType::F32, &dev)?;
                    flags.push((dev, f.clone()));
                    f
                }
            };
            unscaled.push((p, unscale_grad(g, &flag, inv_scale)?));
        }
        for (p, g) in unscaled {
            p.set_grad(Some(g));
        }
        self.records.push(OptimizerRecord {
            optimizer: handle,
            found_inf: flags.into_iter().map(|(_, f)| f).collect(),
            stepped: None,
        });
        Ok(())
    }

    /// Unscales `opt`'s gradients (unless [`GradScaler::unscale_`] already did), then
    /// runs `opt.step()` unless a gradient holds an inf or NaN. Returns whether the
    /// optimizer stepped. Reads one flag per device (the one host synchronization).
    /// A second `step` for the same optimizer before `update` is an `Err`, as is a
    /// `step` without a [`GradScaler::scale`] since the last `update` or one where no
    /// parameter of `opt` has a gradient (PyTorch's "No inf checks were recorded").
    pub fn step<O: Optimizer + ?Sized>(&mut self, opt: &mut O) -> Result<bool> {
        if !self.enabled {
            opt.step()?;
            return Ok(true);
        }
        let handle = opt.group_handle();
        if !self.records.iter().any(|r| r.optimizer.same(&handle)) {
            self.unscale_(opt)?;
        }
        let Some(record) = self.records.iter_mut().find(|r| r.optimizer.same(&handle)) else {
            return Err(Error::arg("optimizer", "unscale_ recorded no state"));
        };
        if record.stepped.is_some() {
            return Err(Error::arg(
                "optimizer",
                "step() has already been called since the last update()",
            ));
        }
        if record.found_inf.is_empty() {
            return Err(Error::arg(
                "optimizer",
                "no inf checks were recorded: none of its parameters has a gradient",
            ));
        }
        let found = any_found(&record.found_inf)?;
        if !found {
            opt.step()?;
        }
        record.stepped = Some(found);
        Ok(!found)
    }

    /// Adapts the scale for the next iteration, as PyTorch's
    /// `_amp_update_scale_`: × `backoff_factor` if any optimizer of this iteration
    /// found an inf/NaN gradient (the growth count restarts); otherwise the count of
    /// good iterations grows, and at `growth_interval` the scale is multiplied by
    /// `growth_factor` (kept unless that overflows f32) and the count restarts.
    /// Without an `unscale_` or `step` since the last `update` nothing changes. An
    /// optimizer that was unscaled but not stepped has its flags read here; a flag
    /// that cannot be read (a failing device) counts as an inf, so the scale backs
    /// off rather than grows. The scale never shrinks below the smallest normal f32
    /// (where PyTorch's would reach 0 and then unscale every gradient to inf).
    pub fn update(&mut self) {
        self.scaled.store(false, Ordering::Relaxed);
        if !self.enabled || self.records.is_empty() {
            return;
        }
        let found = self.records.iter().any(|r| match r.stepped {
            Some(found) => found,
            None => any_found(&r.found_inf).unwrap_or(true),
        });
        self.records.clear();
        if found {
            if let Ok(backed_off) = scale_of(f64::from(self.scale) * self.backoff_factor) {
                self.scale = backed_off;
            }
            self.growth_tracker = 0;
        } else {
            let successful = self.growth_tracker + 1;
            if successful >= self.growth_interval {
                let grown = (f64::from(self.scale) * self.growth_factor) as f32;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.growth_tracker = 0;
            } else {
                self.growth_tracker = successful;
            }
        }
    }

    /// The scale, the factors, the interval and the growth count (PyTorch's
    /// `state_dict`), for checkpoints.
    pub fn state_dict(&self) -> GradScalerState {
        GradScalerState {
            scale: self.get_scale(),
            growth_factor: self.growth_factor,
            backoff_factor: self.backoff_factor,
            growth_interval: self.growth_interval,
            growth_tracker: self.growth_tracker,
        }
    }

    /// Restores a [`GradScaler::state_dict`]; every field is validated as the
    /// setters validate it (and `growth_tracker` must be below `growth_interval`),
    /// and nothing changes when one is invalid.
    pub fn load_state_dict(&mut self, state: &GradScalerState) -> Result<()> {
        let loaded = GradScaler::new()
            .init_scale(state.scale)?
            .growth_factor(state.growth_factor)?
            .backoff_factor(state.backoff_factor)?
            .growth_interval(state.growth_interval)?;
        if state.growth_tracker >= state.growth_interval {
            return Err(Error::arg(
                "growth_tracker",
                format!(
                    "counts good iterations since the scale last changed, so it must be \
                     below growth_interval ({}), got {}",
                    state.growth_interval, state.growth_tracker
                ),
            ));
        }
        self.scale = loaded.scale;
        self.growth_factor = loaded.growth_factor;
        self.backoff_factor = loaded.backoff_factor;
        self.growth_interval = loaded.growth_interval;
        self.growth_tracker = state.growth_tracker;
        Ok(())
    }
}

fn check_growth_factor(v: f64) -> Result<()> {
    if v.is_finite() && v > 1.0 {
        Ok(())
    } else {
        Err(Error::arg(
            "growth_factor",
            format!("must be finite and > 1, got {v}"),
        ))
    }
}

fn check_backoff_factor(v: f64) -> Result<()> {
    if v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(Error::arg(
            "backoff_factor",
            format!("must be in (0, 1), got {v}"),
        ))
    }
}

fn check_growth_interval(v: u32) -> Result<()> {
    if v > 0 {
        Ok(())
    } else {
        Err(Error::arg("growth_interval", "must be > 0, got 0"))
    }
}

/// `scale` as the scaler keeps it (f32), if that is a normal number; else an `Err`
/// naming `init_scale`.
fn scale_of(scale: f64) -> Result<f32> {
    // Rounding to the nearest f32 is the conversion the check is about.
    #[allow(clippy::cast_possible_truncation)]
    let kept = scale as f32;
    if kept.is_normal() && kept > 0.0 {
        Ok(kept)
    } else {
        Err(Error::arg(
            "init_scale",
            format!(
                "must be a positive normal f32 ({:e} to {:e}) as the scale is kept, got \
                 {scale} (in f32: {kept})",
                f32::MIN_POSITIVE,
                f32::MAX
            ),
        ))
    }
}

impl GradScaler {
    /// Err unless [`GradScaler::scale`] was called since the last `update`.
    fn check_scaled(&self) -> Result<()> {
        if self.scaled.load(Ordering::Relaxed) {
            return Ok(());
        }
        Err(Error::arg(
            "optimizer",
            "no GradScaler::scale since the last update(): its gradients are not scaled \
             ones (use scaler.scale(&loss)?.backward() in every iteration)",
        ))
    }
}

/// Whether any device's flag is set: one read per device.
fn any_found(flags: &[Tensor]) -> Result<bool> {
    let mut found = false;
    for f in flags {
        found |= f.item::<f32>()? != 0.0;
    }
    Ok(found)
}

/// `g · inv_scale` in a new contiguous tensor (one fused pass), setting `found_inf`
/// when `g` holds an inf or NaN.
fn unscale_grad(g: &Tensor, found_inf: &Tensor, inv_scale: f64) -> Result<Tensor> {
    let mut locks = StorageLocks::new("amp_unscale", &[found_inf], &[g])?;
    let (mut written, read) = locks.split();
    let out = read[0].amp_unscale(g.layout(), written[0], inv_scale)?;
    Ok(Tensor::from_storage(out, g.shape()))
}
