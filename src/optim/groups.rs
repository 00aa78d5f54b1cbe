//! Parameter groups: each group of an optimizer's parameters has its own
//! hyper-parameters (PyTorch's `param_groups`), which default to the optimizer's.
//!
//! The resolved options of every group live in one table shared with the learning-rate
//! schedulers built from the optimizer ([`GroupHandle`]), so a scheduler can set the
//! learning rates it starts from when it is built from `&opt`, as PyTorch's do.

use super::{check_non_negative, OptimParam, ParamSet};
use crate::{DType, Device, Error, Result, Tensor};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A hyper-parameter of a group. Booleans are stored as 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Opt {
    Lr,
    WeightDecay,
    Momentum,
    Dampening,
    Nesterov,
    Beta1,
    Beta2,
    Eps,
    Amsgrad,
}

impl Opt {
    const COUNT: usize = 9;

    /// The name in error messages and state dicts (PyTorch's key, `betas` split in two).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Opt::Lr => "lr",
            Opt::WeightDecay => "weight_decay",
            Opt::Momentum => "momentum",
            Opt::Dampening => "dampening",
            Opt::Nesterov => "nesterov",
            Opt::Beta1 => "betas.0",
            Opt::Beta2 => "betas.1",
            Opt::Eps => "eps",
            Opt::Amsgrad => "amsgrad",
        }
    }

    /// Err unless `value` is allowed for this option.
    pub(crate) fn check(self, value: f64) -> Result<()> {
        match self {
            Opt::Beta1 | Opt::Beta2 if !(0.0..1.0).contains(&value) => Err(Error::arg(
                self.name(),
                format!("must be in [0, 1), got {value}"),
            )),
            Opt::Nesterov | Opt::Amsgrad if value != 0.0 && value != 1.0 => Err(Error::arg(
                self.name(),
                format!("is a flag (0 or 1), got {value}"),
            )),
            _ => check_non_negative(self.name(), value),
        }
    }
}

/// The hyper-parameters of one group, indexed by [`Opt`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Hyper([f64; Opt::COUNT]);

impl Hyper {
    /// All zero (false): each optimizer sets its defaults.
    pub(crate) fn zero() -> Hyper {
        Hyper([0.0; Opt::COUNT])
    }

    pub(crate) fn get(&self, opt: Opt) -> f64 {
        self.0[opt as usize]
    }

    pub(crate) fn flag(&self, opt: Opt) -> bool {
        self.get(opt) != 0.0
    }

    pub(crate) fn with(mut self, opt: Opt, value: f64) -> Hyper {
        self.0[opt as usize] = value;
        self
    }
}

/// One group's row of the shared table: its options and PyTorch's `initial_lr` (set
/// by the first scheduler built on the optimizer).
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) hyper: Hyper,
    pub(crate) initial_lr: Option<f64>,
}

#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
    /// The option a one-cycle schedule cycles: SGD's momentum, Adam's β1.
    pub(crate) momentum: Opt,
}

/// A shared handle on an optimizer's per-group hyper-parameters: what the
/// learning-rate schedulers of [`crate::optim::lr_scheduler`] read and set. Cloning
/// it shares the table. Opaque: use the [`crate::optim::Optimizer`] methods.
#[derive(Debug, Clone)]
pub struct GroupHandle(pub(crate) Arc<Mutex<Table>>);

impl GroupHandle {
    /// True when both handles are on the same optimizer's table.
    pub(crate) fn same(&self, other: &GroupHandle) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn num_groups(&self) -> usize {
        self.0.lock().rows.len()
    }

    pub(crate) fn lrs(&self) -> Vec<f64> {
        self.0
            .lock()
            .rows
            .iter()
            .map(|r| r.hyper.get(Opt::Lr))
            .collect()
    }

    /// Sets every group's lr (one value per group: the caller checked the count).
    pub(crate) fn set_lrs(&self, lrs: &[f64]) {
        let mut t = self.0.lock();
        for (row, &lr) in t.rows.iter_mut().zip(lrs) {
            row.hyper = row.hyper.with(Opt::Lr, lr);
        }
    }

    pub(crate) fn get(&self, group: usize, opt: Opt) -> Result<f64> {
        let t = self.0.lock();
        let row = row_of(&t, group)?;
        Ok(row.hyper.get(opt))
    }

    /// Sets `opt` of `group` after checking the value.
    pub(crate) fn set(&self, group: usize, opt: Opt, value: f64) -> Result<()> {
        opt.check(value)?;
        let mut t = self.0.lock();
        row_of(&t, group)?;
        t.rows[group].hyper = t.rows[group].hyper.with(opt, value);
        Ok(())
    }

    /// The option a one-cycle schedule cycles (SGD's momentum, Adam's β1).
    pub(crate) fn momentum_opt(&self) -> Opt {
        self.0.lock().momentum
    }

    /// PyTorch's `group.setdefault("initial_lr", group["lr"])` for every group, then
    /// the initial lrs.
    pub(crate) fn initial_lrs(&self) -> Vec<f64> {
        let mut t = self.0.lock();
        t.rows
            .iter_mut()
            .map(|r| *r.initial_lr.get_or_insert(r.hyper.get(Opt::Lr)))
            .collect()
    }

    /// Overwrites every group's `initial_lr` (the one-cycle schedule does).
    pub(crate) fn set_initial_lrs(&self, lrs: &[f64]) {
        let mut t = self.0.lock();
        for (row, &lr) in t.rows.iter_mut().zip(lrs) {
            row.initial_lr = Some(lr);
        }
    }
}

fn row_of(t: &Table, group: usize) -> Result<&Row> {
    t.rows.get(group).ok_or_else(|| {
        Error::arg(
            "group",
            format!(
                "group {group} does not exist: the optimizer has {} groups",
                t.rows.len()
            ),
        )
    })
}

/// A group of parameters with its own options, for
/// [`Optimizer::add_param_group`](crate::optim::Optimizer::add_param_group):
/// `ParamGroup::new(params).lr(1e-4).weight_decay(0.0)`. Options it does not set are
/// the optimizer's; setting one the optimizer does not have (momentum for Adam) is
/// an error when the group is added.
#[derive(Debug, Clone)]
pub struct ParamGroup {
    params: Vec<OptimParam>,
    overrides: Vec<(Opt, f64)>,
}

impl ParamGroup {
    /// A group of `params` (tensors, `(name, tensor)` pairs or `nn::Parameter`s).
    pub fn new<P: Into<OptimParam>>(params: impl IntoIterator<Item = P>) -> ParamGroup {
        ParamGroup {
            params: params.into_iter().map(Into::into).collect(),
            overrides: Vec::new(),
        }
    }

    fn set(mut self, opt: Opt, value: f64) -> Self {
        self.overrides.retain(|(o, _)| *o != opt);
        self.overrides.push((opt, value));
        self
    }

    /// The group's learning rate.
    pub fn lr(self, lr: f64) -> Self {
        self.set(Opt::Lr, lr)
    }

    /// The group's weight decay.
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        self.set(Opt::WeightDecay, weight_decay)
    }

    /// The group's momentum (SGD).
    pub fn momentum(self, momentum: f64) -> Self {
        self.set(Opt::Momentum, momentum)
    }

    /// The group's dampening (SGD).
    pub fn dampening(self, dampening: f64) -> Self {
        self.set(Opt::Dampening, dampening)
    }

    /// Nesterov momentum for the group (SGD).
    pub fn nesterov(self, nesterov: bool) -> Self {
        self.set(Opt::Nesterov, f64::from(u8::from(nesterov)))
    }

    /// The group's betas (Adam, AdamW).
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        self.set(Opt::Beta1, beta1).set(Opt::Beta2, beta2)
    }

    /// The group's eps (Adam, AdamW).
    pub fn eps(self, eps: f64) -> Self {
        self.set(Opt::Eps, eps)
    }

    /// AMSGrad for the group (Adam, AdamW).
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        self.set(Opt::Amsgrad, f64::from(u8::from(amsgrad)))
    }
}

/// The parameters and groups of one optimizer: what Sgd, Adam and AdamW share.
#[derive(Debug)]
pub(crate) struct Groups {
    pub(crate) params: ParamSet,
    /// The group of each parameter (in `params` order).
    group_of: Vec<usize>,
    /// The options a new group starts from (the builder methods set them).
    defaults: Hyper,
    /// The options this optimizer has, in state-dict order.
    supported: &'static [Opt],
    optimizer: &'static str,
    table: GroupHandle,
}

impl Groups {
    /// One group of `params` with `defaults` (lr checked).
    pub(crate) fn new<P: Into<OptimParam>>(
        optimizer: &'static str,
        params: impl IntoIterator<Item = P>,
        defaults: Hyper,
        supported: &'static [Opt],
        momentum: Opt,
    ) -> Result<Groups> {
        Opt::Lr.check(defaults.get(Opt::Lr))?;
        let params = ParamSet::new(params)?;
        let n = params.params().len();
        let table = Table {
            rows: vec![Row {
                hyper: defaults,
                initial_lr: None,
            }],
            momentum,
        };
        Ok(Groups {
            params,
            group_of: vec![0; n],
            defaults,
            supported,
            optimizer,
            table: GroupHandle(Arc::new(Mutex::new(table))),
        })
    }

    pub(crate) fn handle(&self) -> GroupHandle {
        self.table.clone()
    }

    /// Sets a default option and that option of every existing group (the builder
    /// methods, called before groups are added).
    pub(crate) fn set_default(&mut self, opt: Opt, value: f64) {
        self.defaults = self.defaults.with(opt, value);
        for row in &mut self.table.0.lock().rows {
            row.hyper = row.hyper.with(opt, value);
        }
    }

    /// The options of `group`.
    pub(crate) fn hyper(&self, group: usize) -> Hyper {
        self.table.0.lock().rows[group].hyper
    }

    /// The group of parameter `i`.
    pub(crate) fn group_of(&self, i: usize) -> usize {
        self.group_of[i]
    }

    /// Checks every group's options (before a step).
    pub(crate) fn check(&self) -> Result<()> {
        let t = self.table.0.lock();
        for row in &t.rows {
            for &opt in self.supported {
                opt.check(row.hyper.get(opt))?;
            }
        }
        Ok(())
    }

    /// Adds a group: its parameters checked as the constructor's and against every
    /// group's (a parameter may be in one group only), its options against the ones
    /// this optimizer has. Nothing changes on error.
    pub(crate) fn add(&mut self, group: ParamGroup) -> Result<()> {
        let mut hyper = self.defaults;
        for &(opt, value) in &group.overrides {
            if !self.supported.contains(&opt) {
                return Err(Error::arg(
                    opt.name(),
                    format!("{} has no option `{}`", self.optimizer, opt.name()),
                ));
            }
            opt.check(value)?;
            hyper = hyper.with(opt, value);
        }
        let index = self.table.0.lock().rows.len();
        let added = self.params.add(group.params)?;
        self.group_of.extend(std::iter::repeat_n(index, added));
        self.table.0.lock().rows.push(Row {
            hyper,
            initial_lr: None,
        });
        Ok(())
    }

    /// `param_groups.<g>.<option>` (0-d f64 on the CPU) and `param_groups.<g>.params`
    /// (the group's parameter indices, I64) for every group.
    pub(crate) fn state_dict(&self) -> Vec<(String, Tensor)> {
        let t = self.table.0.lock();
        let mut out = Vec::new();
        for (g, row) in t.rows.iter().enumerate() {
            // Indices into a Vec are below isize::MAX: exact in i64.
            #[allow(clippy::cast_possible_wrap)]
            let members: Vec<i64> = (0..self.group_of.len())
                .filter(|&i| self.group_of[i] == g)
                .map(|i| i as i64)
                .collect();
            let n = members.len();
            out.push((
                format!("param_groups.{g}.params"),
                cpu_tensor(members, &[n]),
            ));
            for &opt in self.supported {
                out.push((
                    format!("param_groups.{g}.{}", opt.name()),
                    cpu_tensor(vec![row.hyper.get(opt)], &[]),
                ));
            }
            if let Some(lr) = row.initial_lr {
                out.push((initial_lr_key(g), cpu_tensor(vec![lr], &[])));
            }
        }
        out
    }

    /// Reads every group's options and `initial_lr` from `state` (checked), without
    /// changing anything. A state without `initial_lr` (saved before any scheduler was
    /// built, or by a kiln that did not save it) keeps the group's own.
    pub(crate) fn read(&self, state: &mut StateReader<'_>) -> Vec<Row> {
        let rows = self.table.0.lock().rows.clone();
        let mut out = Vec::with_capacity(rows.len());
        for (g, row) in rows.iter().enumerate() {
            let key = format!("param_groups.{g}.params");
            let want: Vec<f64> = (0..self.group_of.len())
                .filter(|&i| self.group_of[i] == g)
                .map(|i| i as f64)
                .collect();
            if let Some(got) = state.values(&key, &[want.len()]) {
                if got != want {
                    state.problem(format!(
                        "`{key}` lists parameters {got:?}, but this optimizer's group {g} holds {want:?}"
                    ));
                }
            }
            let mut hyper = row.hyper;
            for &opt in self.supported {
                let key = format!("param_groups.{g}.{}", opt.name());
                if let Some(v) = state.values(&key, &[]) {
                    match opt.check(v[0]) {
                        Ok(()) => hyper = hyper.with(opt, v[0]),
                        Err(e) => state.problem(format!("`{key}`: {e}")),
                    }
                }
            }
            let initial_lr = read_initial_lr(state, g).or(row.initial_lr);
            out.push(Row { hyper, initial_lr });
        }
        out
    }

    /// Installs the rows read by [`Groups::read`].
    pub(crate) fn install(&self, rows: Vec<Row>) {
        self.table.0.lock().rows = rows;
    }
}

fn initial_lr_key(group: usize) -> String {
    format!("param_groups.{group}.initial_lr")
}

/// The group's `initial_lr` when `state` has one (checked as an lr).
fn read_initial_lr(state: &mut StateReader<'_>, group: usize) -> Option<f64> {
    let key = initial_lr_key(group);
    if !state.has(&key) {
        return None;
    }
    let v = state.values(&key, &[])?[0];
    match Opt::Lr.check(v) {
        Ok(()) => Some(v),
        Err(e) => {
            state.problem(format!("`{key}`: {e}"));
            None
        }
    }
}

/// A CPU tensor from host values (cannot fail for a matching shape).
pub(crate) fn cpu_tensor<T: crate::WithDType>(values: Vec<T>, shape: &[usize]) -> Tensor {
    Tensor::from_vec(values, shape, &Device::Cpu).expect("a CPU tensor of matching shape")
}

/// Reads an optimizer state dict strictly: every key read is marked, every problem
/// (missing, mis-shaped, duplicated, unexpected) collected, and [`StateReader::finish`]
/// reports them all at once, naming the keys.
pub(crate) struct StateReader<'a> {
    given: HashMap<&'a str, &'a Tensor>,
    used: HashSet<String>,
    problems: Vec<String>,
    missing: Vec<String>,
}

impl<'a> StateReader<'a> {
    pub(crate) fn new(state: &'a [(String, Tensor)]) -> StateReader<'a> {
        let mut given = HashMap::with_capacity(state.len());
        let mut problems = Vec::new();
        for (name, t) in state {
            if given.insert(name.as_str(), t).is_some() {
                problems.push(format!("key `{name}` appears twice"));
            }
        }
        StateReader {
            given,
            used: HashSet::new(),
            problems,
            missing: Vec::new(),
        }
    }

    pub(crate) fn problem(&mut self, msg: String) {
        self.problems.push(msg);
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.given.contains_key(key)
    }

    /// The tensor under `key` if it has `shape` (a missing key or another shape is
    /// recorded as a problem).
    pub(crate) fn tensor(&mut self, key: &str, shape: &[usize]) -> Option<Tensor> {
        let t = self.take(key)?;
        if t.shape() != shape {
            self.problems.push(format!(
                "`{key}` has shape {:?}, expected {shape:?}",
                t.shape()
            ));
            return None;
        }
        if !t.dtype().is_float() && !matches!(t.dtype(), DType::I64 | DType::U8) {
            self.problems
                .push(format!("`{key}` has unsupported dtype {:?}", t.dtype()));
            return None;
        }
        Some(t)
    }

    /// The tensor under `key`, of any shape and dtype, marked as read (a missing key
    /// is recorded as a problem).
    pub(crate) fn take(&mut self, key: &str) -> Option<Tensor> {
        let Some(t) = self.given.get(key).copied() else {
            self.missing.push(key.to_owned());
            return None;
        };
        self.used.insert(key.to_owned());
        Some(t.clone())
    }

    /// The values under `key` as f64 on the host (a small tensor: options, indices).
    pub(crate) fn values(&mut self, key: &str, shape: &[usize]) -> Option<Vec<f64>> {
        let t = self.tensor(key, shape)?;
        match t.to_dtype(DType::F64).and_then(|t| t.to_vec::<f64>()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(format!("`{key}`: {e}"));
                None
            }
        }
    }

    /// Ok when every key was read and none had a problem; else the error naming them.
    pub(crate) fn finish(self) -> Result<()> {
        self.finish_as(|msg| Error::Checkpoint {
            path: "optimizer state_dict".into(),
            msg,
        })
    }

    /// [`StateReader::finish`] with the error `err` makes of the problems' message
    /// (a scheduler's state reports an invalid argument, not a checkpoint).
    pub(crate) fn finish_as(self, err: impl FnOnce(String) -> Error) -> Result<()> {
        let mut problems = self.problems;
        if !self.missing.is_empty() {
            problems.push(format!("missing keys: {}", quoted(&self.missing)));
        }
        let mut unexpected: Vec<String> = self
            .given
            .keys()
            .filter(|k| !self.used.contains(**k))
            .map(|k| (*k).to_owned())
            .collect();
        unexpected.sort_unstable();
        if !unexpected.is_empty() {
            problems.push(format!("unexpected keys: {}", quoted(&unexpected)));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(err(problems.join("; ")))
        }
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A state tensor loaded for parameter `p`: a fresh contiguous copy on `p`'s device
/// in `p`'s dtype, so the optimizer never writes into the caller's tensors.
pub(crate) fn state_copy(src: &Tensor, p: &Tensor) -> Result<Tensor> {
    let dst = p.zeros_like()?;
    let src = src.to_device(&p.device())?.to_dtype(p.dtype())?;
    dst.copy_(&src)?;
    Ok(dst)
}
