//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay,
//! exactly as `torch.optim.SGD`, with parameter groups.

use super::groups::{state_copy, Groups, Hyper, Opt, StateReader};
use super::{GroupHandle, OptimParam, Optimizer, ParamGroup};
use crate::backend::optim::SgdStep;
use crate::{Error, Result, Tensor};

/// The options SGD has, in state-dict order.
const OPTIONS: &[Opt] = &[
    Opt::Lr,
    Opt::Momentum,
    Opt::Dampening,
    Opt::WeightDecay,
    Opt::Nesterov,
];

/// SGD: `Sgd::new(params, lr)?.momentum(0.9).nesterov(true).weight_decay(5e-4)`.
///
/// The builder methods set the option of every group so far and of groups added
/// later that do not set their own ([`Optimizer::add_param_group`]).
#[derive(Debug)]
pub struct Sgd {
    groups: Groups,
    /// Momentum buffer per parameter, created on its first step.
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// SGD over `params` (tensors, `(name, tensor)` pairs or `nn::Parameter`s), the
    /// first group.
    pub fn new<P: Into<OptimParam>>(params: impl IntoIterator<Item = P>, lr: f64) -> Result<Self> {
        let defaults = Hyper::zero().with(Opt::Lr, lr);
        let groups = Groups::new("SGD", params, defaults, OPTIONS, Opt::Momentum)?;
        Ok(Sgd {
            groups,
            buffers: Vec::new(),
        })
    }

    /// Momentum factor (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.groups.set_default(Opt::Momentum, momentum);
        self
    }

    /// Dampening of the momentum (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.groups.set_default(Opt::Dampening, dampening);
        self
    }

    /// Nesterov momentum (needs momentum > 0 and dampening 0, as in PyTorch).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.groups
            .set_default(Opt::Nesterov, f64::from(u8::from(nesterov)));
        self
    }

    /// L2 penalty added to the gradient (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.groups.set_default(Opt::WeightDecay, weight_decay);
        self
    }

    /// Allow parameters that get no gradient (see [`crate::Error::UnusedParameters`]).
    pub fn allow_unused(mut self, allow: bool) -> Self {
        self.groups.params.set_allow_unused(allow);
        self
    }

    /// Allow gradients that reach parameters this optimizer does not hold.
    pub fn allow_unregistered(mut self, allow: bool) -> Self {
        self.groups.params.set_allow_unregistered(allow);
        self
    }

    fn check_hyper_parameters(&self) -> Result<()> {
        self.groups.check()?;
        for g in 0..self.groups.handle().num_groups() {
            let h = self.groups.hyper(g);
            if h.flag(Opt::Nesterov)
                && (h.get(Opt::Momentum) <= 0.0 || h.get(Opt::Dampening) != 0.0)
            {
                return Err(Error::arg(
                    "nesterov",
                    format!(
                        "group {g}: Nesterov momentum requires momentum > 0 and zero dampening"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn zero_grad(&mut self) {
        self.groups.params.zero_grad();
    }

    /// Validates every parameter and creates the missing momentum buffers first,
    /// then runs one fused step per parameter, so an error changes nothing.
    fn step(&mut self) -> Result<()> {
        self.check_hyper_parameters()?;
        self.groups.params.check()?;
        let _guard = crate::no_grad();
        self.buffers.resize(self.groups.params.params().len(), None);
        let mut steps = Vec::new();
        for (i, p, g) in self.groups.params.with_grads() {
            p.check_step("sgd_step", &g)?;
            let h = self.groups.hyper(self.groups.group_of(i));
            // The buffer and whether this is its first step (it then takes `g`).
            let buf = match (h.get(Opt::Momentum) != 0.0, &self.buffers[i]) {
                (false, _) => None,
                // State made before `Module::to_device`/`to_dtype` follows the parameter.
                (true, Some(b)) => Some((b.follow(p)?, false)),
                (true, None) => Some((p.zeros_like()?, true)),
            };
            steps.push((i, p, g, h, buf));
        }
        for (i, p, g, h, buf) in steps {
            let step = SgdStep {
                lr: h.get(Opt::Lr),
                momentum: h.get(Opt::Momentum),
                dampening: h.get(Opt::Dampening),
                weight_decay: h.get(Opt::WeightDecay),
                nesterov: h.flag(Opt::Nesterov),
                first: buf.as_ref().is_some_and(|b| b.1),
            };
            p.sgd_step_(&g, buf.as_ref().map(|b| &b.0), &step)?;
            if let Some((b, _)) = buf {
                self.buffers[i] = Some(b);
            }
        }
        Ok(())
    }

    fn add_param_group(&mut self, group: ParamGroup) -> Result<()> {
        self.groups.add(group)
    }

    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = self.groups.state_dict();
        for (i, buf) in self.buffers.iter().enumerate() {
            if let Some(b) = buf {
                out.push((format!("state.{i}.momentum_buffer"), b.clone()));
            }
        }
        out
    }

    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state);
        let rows = self.groups.read(&mut reader);
        let mut buffers = Vec::new();
        for (i, p) in self.groups.params.params().iter().enumerate() {
            let key = format!("state.{i}.momentum_buffer");
            let buf = if reader.has(&key) {
                reader.tensor(&key, p.tensor.shape())
            } else {
                None
            };
            buffers.push(buf);
        }
        reader.finish()?;
        let buffers = buffers
            .into_iter()
            .zip(self.groups.params.params())
            .map(|(b, p)| b.map(|b| state_copy(&b, &p.tensor)).transpose())
            .collect::<Result<Vec<_>>>()?;
        self.groups.install(rows);
        self.buffers = buffers;
        Ok(())
    }

    fn group_handle(&self) -> GroupHandle {
        self.groups.handle()
    }

    fn parameters(&self) -> Vec<Tensor> {
        self.groups
            .params
            .params()
            .iter()
            .map(|p| p.tensor.clone())
            .collect()
    }
}
