//! Learning-rate schedules, as `torch.optim.lr_scheduler` computes them.
//!
//! A scheduler is built from an optimizer (`StepLr::new(&opt, 30, 0.1)?`), which it
//! reads and, like PyTorch's, adjusts right away (a [`LinearLr`] starts from
//! `start_factor · lr`; a [`OneCycleLr`] from `max_lr / 25`). Call
//! [`LrScheduler::step`] once per optimizer step (or epoch), after `opt.step()`.
//! Every group's lr follows PyTorch's recursive ("chainable") form step by step —
//! the same floating-point operations in the same order — so trajectories agree with
//! PyTorch's to the last bits, and schedulers built on one optimizer compose as in
//! PyTorch. PyTorch's `initial_lr` is kept per group: the first scheduler built on an
//! optimizer records each group's lr there, and later ones start from it.
//!
//! To resume training with its schedule, save [`LrScheduler::state_dict`] beside the
//! optimizer's (both are named CPU tensors for [`crate::save_tensors`]); the resumed
//! run builds both with the same arguments, loads the optimizer's state, then the
//! scheduler's ([`LrScheduler::load_state_dict`], strict and atomic), and its next
//! step continues bit for bit where the saved run stopped — PyTorch's recipe.
//!
//! ```
//! use kiln::optim::lr_scheduler::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
//! use kiln::optim::{AdamW, Optimizer};
//! use kiln::{DType, Device, Tensor};
//! # fn main() -> kiln::Result<()> {
//! let w = Tensor::zeros(&[3], DType::F32, &Device::Cpu)?.requires_grad();
//! let mut opt = AdamW::new([w.clone()], 1e-3)?;
//! let warm = LinearLr::new(&opt, 0.1, 1.0, 5)?;
//! let cos = CosineAnnealingLr::new(&opt, 20)?;
//! let mut sched = SequentialLr::new(&opt, vec![Box::new(warm), Box::new(cos)], &[5])?;
//! assert!((opt.lr() - 1e-4).abs() < 1e-12);           // warm-up starts at 0.1 · lr
//! for _ in 0..25 {
//!     w.sum_all()?.backward()?;
//!     opt.step()?;
//!     opt.zero_grad();
//!     sched.step(&mut opt)?;
//! }
//! assert!(sched.last_lr()[0] < 1e-4);
//! # Ok(())
//! # }
//! ```

use super::groups::{cpu_tensor, GroupHandle, Opt, StateReader};
use super::Optimizer;
use crate::{Error, Result, Tensor, WithDType};
use sealed::{exhausted, Core, Schedule};

mod sealed {
    use super::{GroupHandle, LrScheduler, Result};

    /// The state PyTorch's `LRScheduler` keeps.
    #[derive(Debug)]
    pub struct Core {
        pub handle: GroupHandle,
        pub base_lrs: Vec<f64>,
        pub last_epoch: i64,
        pub step_count: u64,
        pub is_initial: bool,
        pub last_lr: Vec<f64>,
    }

    impl Core {
        /// PyTorch's `LRScheduler.__init__` up to the initial step: every group's
        /// `initial_lr` is set if unset, and the base lrs are the initial lrs.
        pub fn new(handle: GroupHandle) -> Core {
            Core {
                base_lrs: handle.initial_lrs(),
                handle,
                last_epoch: -1,
                step_count: 0,
                is_initial: false,
                last_lr: Vec::new(),
            }
        }
    }

    /// The mechanics of PyTorch's `LRScheduler`; sealed, so the public trait can
    /// change without breaking anyone.
    pub trait Schedule {
        fn core(&self) -> &Core;
        fn core_mut(&mut self) -> &mut Core;

        /// The name its state dict carries (PyTorch's class name), so that a state is
        /// only loaded into a scheduler of its kind.
        fn kind(&self) -> &'static str;

        /// The constructor's arguments the schedule follows, by PyTorch's names: its
        /// state dict holds them, and a state is only loaded into a scheduler built
        /// with the same ones (PyTorch would silently take the saved ones).
        fn config(&self) -> Vec<(&'static str, Vec<f64>)>;

        /// The schedulers this one runs (`SequentialLR`'s), whose states its state
        /// dict holds.
        fn children(&self) -> &[Box<dyn LrScheduler + Send>] {
            &[]
        }
        fn children_mut(&mut self) -> &mut [Box<dyn LrScheduler + Send>] {
            &mut []
        }

        /// PyTorch's `get_lr`: the recursive form, from the groups' current lrs.
        fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>>;

        /// PyTorch's `_get_closed_form_lr`, where the scheduler has one.
        fn closed_form(&self) -> Option<Vec<f64>> {
            None
        }

        /// `SequentialLR.recursive_undo` (on schedulers that have stepped, so the
        /// count stays at least -1).
        fn undo(&mut self) {
            let c = self.core_mut();
            c.last_epoch = c.last_epoch.saturating_sub(1);
        }

        /// `_initial_step`.
        fn initial_step(&mut self, h: &GroupHandle) -> Result<()> {
            self.core_mut().step_count = 0;
            self.core_mut().is_initial = true;
            let result = self.advance(h);
            self.core_mut().is_initial = false;
            result
        }

        /// `step()`. Err naming `last_epoch` when a count would overflow (a state
        /// loaded at `i64::MAX` steps), and then nothing changes.
        fn advance(&mut self, h: &GroupHandle) -> Result<()> {
            let before = self.core().step_count;
            self.core_mut().step_count = before.checked_add(1).ok_or_else(exhausted)?;
            let result = self.update_lr(h, None);
            if result.is_err() {
                self.core_mut().step_count = before;
            }
            result
        }

        /// `_update_lr(epoch)`.
        fn update_lr(&mut self, h: &GroupHandle, epoch: Option<i64>) -> Result<()> {
            let values = match epoch {
                None => {
                    let before = self.core().last_epoch;
                    self.core_mut().last_epoch = before.checked_add(1).ok_or_else(exhausted)?;
                    match self.get_lr(h) {
                        Ok(v) => v,
                        Err(e) => {
                            self.core_mut().last_epoch = before;
                            return Err(e);
                        }
                    }
                }
                Some(e) => {
                    self.core_mut().last_epoch = e;
                    match self.closed_form() {
                        Some(v) => v,
                        None => self.get_lr(h)?,
                    }
                }
            };
            h.set_lrs(&values);
            self.core_mut().last_lr = h.lrs();
            Ok(())
        }
    }

    /// The error of a step past the largest count a schedule can hold.
    pub fn exhausted() -> crate::Error {
        crate::Error::arg(
            "last_epoch",
            "the schedule has stepped i64::MAX times and cannot count further",
        )
    }
}

/// A learning-rate schedule over an optimizer's parameter groups. Object-safe
/// (`Box<dyn LrScheduler>`, as [`SequentialLr`] holds them); implemented by the
/// schedulers of this module.
pub trait LrScheduler: Schedule {
    /// Advances the schedule by one step and sets every group's lr of `opt`, which
    /// must be the optimizer the scheduler was built from (with as many groups): an
    /// `Err` naming `opt` otherwise, and an `Err` naming `total_steps` when a
    /// [`OneCycleLr`] is stepped past its end.
    fn step(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        let h = opt.group_handle();
        let core = self.core();
        if !h.same(&core.handle) {
            return Err(Error::arg(
                "opt",
                "is not the optimizer this scheduler was built from",
            ));
        }
        if h.num_groups() != core.base_lrs.len() {
            return Err(Error::arg(
                "opt",
                format!(
                    "has {} parameter groups, but the scheduler was built for {}",
                    h.num_groups(),
                    core.base_lrs.len()
                ),
            ));
        }
        self.advance(&h)
    }

    /// The lr of every group after the last step (PyTorch's `get_last_lr`).
    fn last_lr(&self) -> Vec<f64> {
        self.core().last_lr.clone()
    }

    /// How many times the schedule has stepped (PyTorch's `last_epoch`).
    fn last_epoch(&self) -> i64 {
        self.core().last_epoch
    }

    /// The state to resume the schedule from, as named CPU tensors for
    /// [`crate::save_tensors`]: what PyTorch's `state_dict` holds — `last_epoch` and
    /// `_step_count` (0-d I64), `base_lrs` and `_last_lr` (F64, one per group) — and
    /// `kind`, the scheduler's PyTorch class name as U8 bytes, and the constructor's
    /// arguments as F64 vectors under PyTorch's names (`step_size`, `gamma`,
    /// `milestones`, `T_max`, `eta_min`, `start_factor`, `end_factor`,
    /// `total_iters`, `total_steps`, `max_lrs`; a [`LambdaLr`]'s closure cannot be
    /// saved). A [`SequentialLr`] adds the state of its scheduler `i` under
    /// `schedulers.<i>.`. A resumed run builds its scheduler with the same
    /// arguments and then loads:
    ///
    /// ```
    /// use kiln::optim::lr_scheduler::{CosineAnnealingLr, LrScheduler};
    /// use kiln::optim::{Optimizer, Sgd};
    /// use kiln::{DType, Device, Tensor};
    /// # fn main() -> kiln::Result<()> {
    /// let w = Tensor::zeros(&[3], DType::F32, &Device::Cpu)?.requires_grad();
    /// let mut opt = Sgd::new([w.clone()], 0.1)?;
    /// let mut sched = CosineAnnealingLr::new(&opt, 10)?;
    /// for _ in 0..4 {
    ///     sched.step(&mut opt)?; // after opt.step()
    /// }
    /// let (opt_state, sched_state) = (opt.state_dict(), sched.state_dict());
    ///
    /// // Resuming (in a fresh process, from kiln::load_tensors): the same
    /// // constructors, then both states.
    /// let mut opt2 = Sgd::new([w.clone()], 0.1)?;
    /// let mut sched2 = CosineAnnealingLr::new(&opt2, 10)?;
    /// opt2.load_state_dict(&opt_state)?;
    /// sched2.load_state_dict(&sched_state)?;
    /// sched.step(&mut opt)?;
    /// sched2.step(&mut opt2)?;
    /// assert_eq!(sched2.last_lr(), sched.last_lr()); // bit for bit
    /// assert_eq!(sched2.last_epoch(), 5);
    /// # Ok(())
    /// # }
    /// ```
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        write_state(self, "", &mut out);
        out
    }

    /// Restores a [`LrScheduler::state_dict`] of a scheduler of the same kind built
    /// with the same arguments for as many parameter groups (for a [`SequentialLr`],
    /// of the same schedulers), as PyTorch's `load_state_dict` does: the next
    /// [`LrScheduler::step`] continues where the saved schedule stopped. The
    /// optimizer's lrs are not touched: load its own state for them. Strict and
    /// atomic: a missing, unexpected or duplicated key, a wrong dtype or shape (such
    /// as `base_lrs` for another number of groups), a value out of range, the state
    /// of another kind of scheduler or of one built with other arguments is an `Err`
    /// naming `state` that says which keys and why, and then nothing has changed.
    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state);
        let saved = read_state(self, &mut reader, "");
        reader.finish_as(|msg| Error::arg("state", msg))?;
        // Every unread value was recorded as a problem, so this only guards the logic.
        let saved = saved.ok_or_else(|| Error::arg("state", "could not be read"))?;
        install(self, saved);
        Ok(())
    }
}

/// What a state dict holds for one scheduler and, in order, for its children: read
/// and checked in full before any of it is installed.
struct Saved {
    last_epoch: i64,
    step_count: u64,
    base_lrs: Vec<f64>,
    last_lr: Vec<f64>,
    children: Vec<Saved>,
}

/// Appends the state of `s` and its children, every key prefixed by `prefix`.
fn write_state<S: Schedule + ?Sized>(s: &S, prefix: &str, out: &mut Vec<(String, Tensor)>) {
    let c = s.core();
    let kind = s.kind().as_bytes().to_vec();
    let key = |name: &str| format!("{prefix}{name}");
    let vector = |v: &[f64]| cpu_tensor(v.to_vec(), &[v.len()]);
    out.push((key("kind"), cpu_tensor(kind.clone(), &[kind.len()])));
    out.push((key("last_epoch"), cpu_tensor(vec![c.last_epoch], &[])));
    let steps = i64::try_from(c.step_count).unwrap_or(i64::MAX);
    out.push((key("_step_count"), cpu_tensor(vec![steps], &[])));
    out.push((key("base_lrs"), vector(&c.base_lrs)));
    out.push((key("_last_lr"), vector(&c.last_lr)));
    for (name, values) in s.config() {
        out.push((key(name), vector(&values)));
    }
    for (i, child) in s.children().iter().enumerate() {
        write_state(&**child, &key(&format!("schedulers.{i}.")), out);
    }
}

/// Reads and checks the state of `s` and its children (keys prefixed by `prefix`)
/// from `r`, which records every problem; None when there was one.
fn read_state<S: Schedule + ?Sized>(s: &S, r: &mut StateReader<'_>, prefix: &str) -> Option<Saved> {
    let key = |name: &str| format!("{prefix}{name}");
    let groups = s.core().base_lrs.len();
    let kind = read_kind(r, &key("kind"), s.kind());
    let last_epoch = read_count(r, &key("last_epoch"), -1);
    let step_count = read_count(r, &key("_step_count"), 0);
    let base_lrs = read_lrs(r, &key("base_lrs"), groups);
    let last_lr = read_lrs(r, &key("_last_lr"), groups);
    // Collected rather than short-circuited, so that every key is read and every
    // problem reported.
    let config: Vec<bool> = (s.config().into_iter())
        .map(|(name, want)| read_config(r, &key(name), &want))
        .collect();
    let children: Vec<Option<Saved>> = (s.children().iter().enumerate())
        .map(|(i, child)| read_state(&**child, r, &key(&format!("schedulers.{i}."))))
        .collect();
    if !(kind && config.iter().all(|&ok| ok)) {
        return None;
    }
    Some(Saved {
        last_epoch: last_epoch?,
        step_count: u64::try_from(step_count?).ok()?,
        base_lrs: base_lrs?,
        last_lr: last_lr?,
        children: children.into_iter().collect::<Option<_>>()?,
    })
}

/// Installs a state read by [`read_state`] (cannot fail).
fn install<S: Schedule + ?Sized>(s: &mut S, saved: Saved) {
    let c = s.core_mut();
    c.last_epoch = saved.last_epoch;
    c.step_count = saved.step_count;
    c.base_lrs = saved.base_lrs;
    c.last_lr = saved.last_lr;
    for (child, saved) in s.children_mut().iter_mut().zip(saved.children) {
        install(&mut **child, saved);
    }
}

/// The values under `key` if it holds a `T` tensor of `shape`.
fn read_exact<T: WithDType>(r: &mut StateReader<'_>, key: &str, shape: &[usize]) -> Option<Vec<T>> {
    let t = r.tensor(key, shape)?;
    if t.dtype() != T::DTYPE {
        r.problem(format!(
            "`{key}` has dtype {:?}, expected {:?}",
            t.dtype(),
            T::DTYPE
        ));
        return None;
    }
    t.to_vec::<T>()
        .map_err(|e| r.problem(format!("`{key}`: {e}")))
        .ok()
}

/// The 0-d I64 under `key` if it is at least `min`.
fn read_count(r: &mut StateReader<'_>, key: &str, min: i64) -> Option<i64> {
    let v = read_exact::<i64>(r, key, &[])?[0];
    if v < min {
        r.problem(format!("`{key}` must be at least {min}, got {v}"));
        return None;
    }
    Some(v)
}

/// The F64 lr of each of `groups` groups under `key`, each finite and >= 0.
fn read_lrs(r: &mut StateReader<'_>, key: &str, groups: usize) -> Option<Vec<f64>> {
    let lrs = read_exact::<f64>(r, key, &[groups])?;
    if let Some(bad) = lrs.iter().find(|lr| !(lr.is_finite() && **lr >= 0.0)) {
        r.problem(format!("`{key}` holds {bad}, not an lr (finite, >= 0)"));
        return None;
    }
    Some(lrs)
}

/// The values under `key` if it holds a vector (of any length) of `T`.
fn read_vector<T: WithDType>(r: &mut StateReader<'_>, key: &str) -> Option<Vec<T>> {
    let t = r.take(key)?;
    let values = (t.dtype() == T::DTYPE && t.rank() == 1)
        .then(|| t.to_vec::<T>().ok())
        .flatten();
    if values.is_none() {
        r.problem(format!("`{key}` must be a vector of {:?}", T::DTYPE));
    }
    values
}

/// True when `key` holds the F64 values `want` (a constructor argument).
fn read_config(r: &mut StateReader<'_>, key: &str, want: &[f64]) -> bool {
    let Some(got) = read_vector::<f64>(r, key) else {
        return false;
    };
    if got != want {
        r.problem(format!(
            "`{key}` is {got:?} in the state but {want:?} in this scheduler: \
             build it with the saved run's arguments"
        ));
        return false;
    }
    true
}

/// True when `key` names (in U8 bytes) the scheduler kind `want`.
fn read_kind(r: &mut StateReader<'_>, key: &str, want: &str) -> bool {
    let Some(bytes) = read_vector::<u8>(r, key) else {
        return false;
    };
    let got = String::from_utf8_lossy(&bytes);
    if got != want {
        r.problem(format!(
            "`{key}` is {got}: the state of another kind of scheduler than this {want}"
        ));
        return false;
    }
    true
}

/// Builds the core of a scheduler on `opt` and runs its initial step.
fn start<S: Schedule>(opt: &dyn Optimizer, build: impl FnOnce(Core) -> S) -> Result<S> {
    let h = opt.group_handle();
    let mut s = build(Core::new(h.clone()));
    s.initial_step(&h)?;
    Ok(s)
}

/// Err unless `gamma` is finite and >= 0.
fn check_gamma(gamma: f64) -> Result<()> {
    super::check_non_negative("gamma", gamma)
}

/// A step count given as `usize`, as the schedule counts steps (`i64`, PyTorch's
/// `last_epoch`): Err naming `name` when it is below `min` or beyond `i64::MAX`,
/// where an `as` would wrap it negative.
fn step_count(name: &'static str, value: usize, min: i64) -> Result<i64> {
    match i64::try_from(value) {
        Ok(v) if v >= min => Ok(v),
        _ => Err(Error::arg(
            name,
            format!("must be in [{min}, {}], got {value}", i64::MAX),
        )),
    }
}

macro_rules! schedule_core {
    ($kind:literal) => {
        fn kind(&self) -> &'static str {
            $kind
        }
        fn core(&self) -> &Core {
            &self.core
        }
        fn core_mut(&mut self) -> &mut Core {
            &mut self.core
        }
    };
}

/// Multiplies every group's lr by `gamma` every `step_size` steps (`StepLR`).
#[derive(Debug)]
pub struct StepLr {
    core: Core,
    step_size: i64,
    gamma: f64,
}

impl StepLr {
    /// Err naming `step_size` when it is 0 or beyond `i64::MAX`, `gamma` when
    /// negative or not finite.
    pub fn new(opt: &dyn Optimizer, step_size: usize, gamma: f64) -> Result<StepLr> {
        let step_size = step_count("step_size", step_size, 1)?;
        check_gamma(gamma)?;
        start(opt, |core| StepLr {
            core,
            step_size,
            gamma,
        })
    }
}

impl Schedule for StepLr {
    schedule_core!("StepLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![
            ("step_size", vec![self.step_size as f64]),
            ("gamma", vec![self.gamma]),
        ]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        let e = self.core.last_epoch;
        if e == 0 || e % self.step_size != 0 {
            return Ok(h.lrs());
        }
        Ok(h.lrs().into_iter().map(|lr| lr * self.gamma).collect())
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let k = self.core.last_epoch.div_euclid(self.step_size);
        Some(scaled(&self.core.base_lrs, self.gamma.powf(k as f64)))
    }
}
impl LrScheduler for StepLr {}

fn as_f64(values: &[i64]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

/// Milestones as the schedule counts steps; Err naming `milestones` for one beyond
/// `i64::MAX`.
fn milestones_of(milestones: &[usize]) -> Result<Vec<i64>> {
    milestones
        .iter()
        .map(|&m| step_count("milestones", m, 0))
        .collect()
}

fn scaled(lrs: &[f64], factor: f64) -> Vec<f64> {
    lrs.iter().map(|lr| lr * factor).collect()
}

/// Multiplies every group's lr by `gamma` at each milestone (`MultiStepLR`; a
/// milestone listed twice multiplies by `gamma²`).
#[derive(Debug)]
pub struct MultiStepLr {
    core: Core,
    milestones: Vec<i64>,
    gamma: f64,
}

impl MultiStepLr {
    /// Err naming `gamma` when negative or not finite, `milestones` for one beyond
    /// `i64::MAX`.
    pub fn new(opt: &dyn Optimizer, milestones: &[usize], gamma: f64) -> Result<MultiStepLr> {
        check_gamma(gamma)?;
        let mut milestones = milestones_of(milestones)?;
        milestones.sort_unstable();
        start(opt, |core| MultiStepLr {
            core,
            milestones,
            gamma,
        })
    }
}

impl Schedule for MultiStepLr {
    schedule_core!("MultiStepLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![
            ("milestones", as_f64(&self.milestones)),
            ("gamma", vec![self.gamma]),
        ]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        let e = self.core.last_epoch;
        let count = self.milestones.iter().filter(|&&m| m == e).count();
        if count == 0 {
            return Ok(h.lrs());
        }
        Ok(scaled(&h.lrs(), self.gamma.powf(count as f64)))
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let e = self.core.last_epoch;
        let k = self.milestones.partition_point(|&m| m <= e);
        Some(scaled(&self.core.base_lrs, self.gamma.powf(k as f64)))
    }
}
impl LrScheduler for MultiStepLr {}

/// Multiplies every group's lr by `gamma` every step (`ExponentialLR`).
#[derive(Debug)]
pub struct ExponentialLr {
    core: Core,
    gamma: f64,
}

impl ExponentialLr {
    /// Err naming `gamma` when negative or not finite.
    pub fn new(opt: &dyn Optimizer, gamma: f64) -> Result<ExponentialLr> {
        check_gamma(gamma)?;
        start(opt, |core| ExponentialLr { core, gamma })
    }
}

impl Schedule for ExponentialLr {
    schedule_core!("ExponentialLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![("gamma", vec![self.gamma])]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        if self.core.is_initial {
            return Ok(h.lrs());
        }
        Ok(scaled(&h.lrs(), self.gamma))
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let e = self.core.last_epoch as f64;
        Some(scaled(&self.core.base_lrs, self.gamma.powf(e)))
    }
}
impl LrScheduler for ExponentialLr {}

/// Cosine annealing from each group's base lr to `eta_min` over `t_max` steps
/// (`CosineAnnealingLR`; past `t_max` the cosine continues, as PyTorch's does).
#[derive(Debug)]
pub struct CosineAnnealingLr {
    core: Core,
    t_max: i64,
    eta_min: f64,
}

impl CosineAnnealingLr {
    /// Err naming `T_max` when it is 0 or beyond `i64::MAX`. `eta_min` is 0 unless
    /// set.
    pub fn new(opt: &dyn Optimizer, t_max: usize) -> Result<CosineAnnealingLr> {
        let t_max = step_count("T_max", t_max, 1)?;
        start(opt, |core| CosineAnnealingLr {
            core,
            t_max,
            eta_min: 0.0,
        })
    }

    /// The lowest lr (default 0). The initial step does not depend on it, so it may
    /// be set after `new`.
    pub fn eta_min(mut self, eta_min: f64) -> Self {
        self.eta_min = eta_min;
        self
    }
}

impl Schedule for CosineAnnealingLr {
    schedule_core!("CosineAnnealingLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![
            ("T_max", vec![self.t_max as f64]),
            ("eta_min", vec![self.eta_min]),
        ]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        use std::f64::consts::PI;
        let (e, t, eta) = (self.core.last_epoch, self.t_max as f64, self.eta_min);
        let lrs = h.lrs();
        let base = &self.core.base_lrs;
        Ok(if self.core.is_initial {
            lrs
        } else if self.core.step_count == 1 && e > 0 {
            base.iter()
                .map(|b| eta + (b - eta) * (1.0 + (e as f64 * PI / t).cos()) / 2.0)
                .collect()
        } else if (i128::from(e) - 1 - i128::from(self.t_max))
            .rem_euclid(2 * i128::from(self.t_max))
            == 0
        {
            lrs.iter()
                .zip(base)
                .map(|(lr, b)| lr + (b - eta) * (1.0 - (PI / t).cos()) / 2.0)
                .collect()
        } else {
            let e = e as f64;
            lrs.iter()
                .map(|lr| {
                    (1.0 + (PI * e / t).cos()) / (1.0 + (PI * (e - 1.0) / t).cos()) * (lr - eta)
                        + eta
                })
                .collect()
        })
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        use std::f64::consts::PI;
        let (e, t, eta) = (self.core.last_epoch as f64, self.t_max as f64, self.eta_min);
        Some(
            self.core
                .base_lrs
                .iter()
                .map(|b| eta + (b - eta) * (1.0 + (PI * e / t).cos()) / 2.0)
                .collect(),
        )
    }
}
impl LrScheduler for CosineAnnealingLr {}

/// Scales every group's lr linearly from `start_factor` to `end_factor` over
/// `total_iters` steps, then keeps it (`LinearLR`): a warm-up.
#[derive(Debug)]
pub struct LinearLr {
    core: Core,
    start_factor: f64,
    end_factor: f64,
    total_iters: i64,
}

impl LinearLr {
    /// Err naming `start_factor` outside (0, 1], `end_factor` outside [0, 1], or
    /// `total_iters` of 0. Sets every group's lr to `start_factor · lr` at once.
    pub fn new(
        opt: &dyn Optimizer,
        start_factor: f64,
        end_factor: f64,
        total_iters: usize,
    ) -> Result<LinearLr> {
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(Error::arg(
                "start_factor",
                format!("must be in (0, 1], got {start_factor}"),
            ));
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return Err(Error::arg(
                "end_factor",
                format!("must be in [0, 1], got {end_factor}"),
            ));
        }
        let total_iters = step_count("total_iters", total_iters, 1)?;
        start(opt, |core| LinearLr {
            core,
            start_factor,
            end_factor,
            total_iters,
        })
    }
}

impl Schedule for LinearLr {
    schedule_core!("LinearLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![
            ("start_factor", vec![self.start_factor]),
            ("end_factor", vec![self.end_factor]),
            ("total_iters", vec![self.total_iters as f64]),
        ]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        let e = self.core.last_epoch;
        let (s, f, n) = (self.start_factor, self.end_factor, self.total_iters as f64);
        if e == 0 {
            return Ok(scaled(&h.lrs(), s));
        }
        if self.core.is_initial || e > self.total_iters {
            return Ok(h.lrs());
        }
        let factor = 1.0 + (f - s) / (n * s + (e - 1) as f64 * (f - s));
        Ok(scaled(&h.lrs(), factor))
    }
    fn closed_form(&self) -> Option<Vec<f64>> {
        let e = self.core.last_epoch.min(self.total_iters) as f64;
        let (s, f, n) = (self.start_factor, self.end_factor, self.total_iters as f64);
        Some(
            self.core
                .base_lrs
                .iter()
                .map(|b| b * (s + (f - s) * e / n))
                .collect(),
        )
    }
}
impl LrScheduler for LinearLr {}

/// Every group's lr is its base lr times `lr_lambda(step)` (`LambdaLR`).
pub struct LambdaLr {
    core: Core,
    lr_lambda: Box<dyn Fn(usize) -> f64 + Send>,
}

impl std::fmt::Debug for LambdaLr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaLr")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

impl LambdaLr {
    /// The schedule `lr = base_lr · lr_lambda(step)`; step 0 is applied at once.
    pub fn new(
        opt: &dyn Optimizer,
        lr_lambda: impl Fn(usize) -> f64 + Send + 'static,
    ) -> Result<LambdaLr> {
        start(opt, |core| LambdaLr {
            core,
            lr_lambda: Box::new(lr_lambda),
        })
    }
}

impl Schedule for LambdaLr {
    schedule_core!("LambdaLR");
    /// The closure cannot be saved or compared (PyTorch saves none either).
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        Vec::new()
    }
    fn get_lr(&mut self, _: &GroupHandle) -> Result<Vec<f64>> {
        // last_epoch >= 0 here; a count beyond usize (32-bit targets) saturates.
        let step = usize::try_from(self.core.last_epoch).unwrap_or(usize::MAX);
        let factor = (self.lr_lambda)(step);
        Ok(scaled(&self.core.base_lrs, factor))
    }
}
impl LrScheduler for LambdaLr {}

/// The one-cycle policy (`OneCycleLR` with PyTorch's defaults: `pct_start` 0.3,
/// cosine annealing, `div_factor` 25, `final_div_factor` 1e4, two phases, momentum
/// cycled between 0.85 and 0.95): the lr rises from `max_lr / 25` to `max_lr` over
/// the first 30% of `total_steps`, then falls to `max_lr / 25 / 1e4`, while the
/// momentum (SGD's `momentum`, Adam's `β1`) falls from 0.95 to 0.85 and rises back.
/// Building it sets every group's lr, `initial_lr` and momentum, as PyTorch does.
#[derive(Debug)]
pub struct OneCycleLr {
    core: Core,
    total_steps: i64,
    max_lrs: Vec<f64>,
    min_lrs: Vec<f64>,
    momentum: Opt,
}

impl OneCycleLr {
    const PCT_START: f64 = 0.3;
    const DIV_FACTOR: f64 = 25.0;
    const FINAL_DIV_FACTOR: f64 = 1e4;
    const BASE_MOMENTUM: f64 = 0.85;
    const MAX_MOMENTUM: f64 = 0.95;

    /// Err naming `max_lr` unless it is finite and > 0, `total_steps` when it is 0.
    pub fn new(opt: &dyn Optimizer, max_lr: f64, total_steps: usize) -> Result<OneCycleLr> {
        if !(max_lr.is_finite() && max_lr > 0.0) {
            return Err(Error::arg(
                "max_lr",
                format!("must be a finite number > 0, got {max_lr}"),
            ));
        }
        let total_steps = step_count("total_steps", total_steps, 1)?;
        let h = opt.group_handle();
        let n = h.num_groups();
        let initial = max_lr / Self::DIV_FACTOR;
        h.set_initial_lrs(&vec![initial; n]);
        let momentum = h.momentum_opt();
        for g in 0..n {
            h.set(g, momentum, Self::MAX_MOMENTUM)?;
        }
        start(opt, |core| OneCycleLr {
            core,
            total_steps,
            max_lrs: vec![max_lr; n],
            min_lrs: vec![initial / Self::FINAL_DIV_FACTOR; n],
            momentum,
        })
    }

    fn anneal(start: f64, end: f64, pct: f64) -> f64 {
        let cos_out = (std::f64::consts::PI * pct).cos() + 1.0;
        end + (start - end) / 2.0 * cos_out
    }
}

impl Schedule for OneCycleLr {
    schedule_core!("OneCycleLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![
            ("total_steps", vec![self.total_steps as f64]),
            ("max_lrs", self.max_lrs.clone()),
        ]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        let step = self.core.last_epoch;
        if step > self.total_steps {
            return Err(Error::arg(
                "total_steps",
                format!(
                    "the schedule was stepped {step} times, but total_steps is {}",
                    self.total_steps
                ),
            ));
        }
        let step = step as f64;
        let total = self.total_steps as f64;
        let end1 = Self::PCT_START * total - 1.0;
        let end2 = total - 1.0;
        let mut lrs = Vec::with_capacity(self.max_lrs.len());
        for g in 0..self.max_lrs.len() {
            let (initial, max, min) = (self.core.base_lrs[g], self.max_lrs[g], self.min_lrs[g]);
            let (lr, m) = if step <= end1 {
                let pct = step / end1;
                (
                    Self::anneal(initial, max, pct),
                    Self::anneal(Self::MAX_MOMENTUM, Self::BASE_MOMENTUM, pct),
                )
            } else {
                let pct = (step - end1) / (end2 - end1);
                (
                    Self::anneal(max, min, pct),
                    Self::anneal(Self::BASE_MOMENTUM, Self::MAX_MOMENTUM, pct),
                )
            };
            h.set(g, self.momentum, m)?;
            lrs.push(lr);
        }
        Ok(lrs)
    }
}
impl LrScheduler for OneCycleLr {}

/// Runs schedulers one after another, switching at `milestones` (`SequentialLR`):
/// a warm-up ([`LinearLr`]) then a decay ([`CosineAnnealingLr`]) is
/// `SequentialLr::new(&opt, vec![Box::new(warm), Box::new(cos)], &[warm_steps])`.
/// Each scheduler after the first starts at its milestone from its closed form at
/// step 0 (the base lrs), as PyTorch's does.
pub struct SequentialLr {
    core: Core,
    schedulers: Vec<Box<dyn LrScheduler + Send>>,
    milestones: Vec<i64>,
}

impl std::fmt::Debug for SequentialLr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialLr")
            .field("core", &self.core)
            .field("milestones", &self.milestones)
            .finish_non_exhaustive()
    }
}

impl SequentialLr {
    /// Err naming `schedulers` when there are none or one was built on another
    /// optimizer, `milestones` unless there is one fewer than schedulers and they
    /// increase strictly.
    pub fn new(
        opt: &dyn Optimizer,
        schedulers: Vec<Box<dyn LrScheduler + Send>>,
        milestones: &[usize],
    ) -> Result<SequentialLr> {
        let h = opt.group_handle();
        if schedulers.is_empty() {
            return Err(Error::arg("schedulers", "expects at least one scheduler"));
        }
        if let Some(i) = schedulers.iter().position(|s| !s.core().handle.same(&h)) {
            return Err(Error::arg(
                "schedulers",
                format!("scheduler {i} was built on another optimizer"),
            ));
        }
        if milestones.len() + 1 != schedulers.len() {
            return Err(Error::arg(
                "milestones",
                format!(
                    "needs one fewer milestone than schedulers: got {} schedulers and {} milestones",
                    schedulers.len(),
                    milestones.len()
                ),
            ));
        }
        if milestones.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::arg(
                "milestones",
                format!("must increase strictly, got {milestones:?}"),
            ));
        }
        let mut s = SequentialLr {
            core: Core::new(h.clone()),
            schedulers,
            milestones: milestones_of(milestones)?,
        };
        s.core.last_epoch = 0;
        // Back to the initial lrs, every scheduler's initial step undone, then the
        // first scheduler's initial step again (PyTorch's SequentialLR.__init__).
        h.set_lrs(&h.initial_lrs());
        s.undo();
        let idx = s.milestones.partition_point(|&m| m == 0);
        s.schedulers[idx].initial_step(&h)?;
        s.core.last_lr = s.schedulers[idx].last_lr();
        Ok(s)
    }
}

impl Schedule for SequentialLr {
    schedule_core!("SequentialLR");
    fn config(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![("milestones", as_f64(&self.milestones))]
    }
    fn get_lr(&mut self, h: &GroupHandle) -> Result<Vec<f64>> {
        Ok(h.lrs())
    }
    fn children(&self) -> &[Box<dyn LrScheduler + Send>] {
        &self.schedulers
    }
    fn children_mut(&mut self) -> &mut [Box<dyn LrScheduler + Send>] {
        &mut self.schedulers
    }
    fn undo(&mut self) {
        self.schedulers.iter_mut().for_each(|s| s.undo());
    }
    fn advance(&mut self, h: &GroupHandle) -> Result<()> {
        let e = self.core.last_epoch.checked_add(1).ok_or_else(exhausted)?;
        let idx = self.milestones.partition_point(|&m| m <= e);
        let s = &mut self.schedulers[idx];
        if idx > 0 && self.milestones[idx - 1] == e {
            s.update_lr(h, Some(0))?;
        } else {
            s.advance(h)?;
        }
        self.core.last_epoch = e;
        self.core.last_lr = s.last_lr();
        Ok(())
    }
}
impl LrScheduler for SequentialLr {}
