//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay,
//! exactly as `torch.optim.SGD`.

use super::{check_non_negative, OptimParam, Optimizer, ParamSet};
use crate::backend::SgdStep;
use crate::{Error, Result, Tensor};

/// SGD: `Sgd::new(params, lr)?.momentum(0.9).nesterov(true).weight_decay(5e-4)`.
#[derive(Debug)]
pub struct Sgd {
    params: ParamSet,
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
    /// Momentum buffer per parameter, created on its first step.
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    /// SGD over `params` (tensors, `(name, tensor)` pairs or `nn::Parameter`s).
    pub fn new<P: Into<OptimParam>>(params: impl IntoIterator<Item = P>, lr: f64) -> Result<Self> {
        check_non_negative("lr", lr)?;
        let params = ParamSet::new(params)?;
        let buffers = vec![None; params.params().len()];
        Ok(Sgd {
            params,
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            buffers,
        })
    }

    /// Momentum factor (default 0).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Dampening of the momentum (default 0).
    pub fn dampening(mut self, dampening: f64) -> Self {
        self.dampening = dampening;
        self
    }

    /// Nesterov momentum (needs momentum > 0 and dampening 0, as in PyTorch).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// L2 penalty added to the gradient (default 0).
    pub fn weight_decay(mut self, weight_decay: f64) -> Self {
        self.weight_decay = weight_decay;
        self
    }

    /// Allow parameters that get no gradient (see [`crate::Error::UnusedParameters`]).
    pub fn allow_unused(mut self, allow: bool) -> Self {
        self.params.set_allow_unused(allow);
        self
    }

    /// Allow gradients that reach parameters this optimizer does not hold.
    pub fn allow_unregistered(mut self, allow: bool) -> Self {
        self.params.set_allow_unregistered(allow);
        self
    }

    fn check_hyper_parameters(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_non_negative("momentum", self.momentum)?;
        check_non_negative("dampening", self.dampening)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::arg(
                "nesterov",
                "Nesterov momentum requires momentum > 0 and zero dampening",
            ));
        }
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn zero_grad(&mut self) {
        self.params.zero_grad();
    }

    /// Validates every parameter and creates the missing momentum buffers first,
    /// then runs one fused step per parameter, so an error changes nothing.
    fn step(&mut self) -> Result<()> {
        self.check_hyper_parameters()?;
        self.params.check()?;
        let _guard = crate::no_grad();
        let mut steps = Vec::new();
        for (i, p, g) in self.params.with_grads() {
            p.check_step("sgd_step", &g)?;
            // The buffer and whether this is its first step (it then takes `g`).
            let buf = match (self.momentum != 0.0, &self.buffers[i]) {
                (false, _) => None,
                // State made before `Module::to_device`/`to_dtype` follows the parameter.
                (true, Some(b)) => Some((b.follow(p)?, false)),
                (true, None) => Some((p.zeros_like()?, true)),
            };
            steps.push((i, p, g, buf));
        }
        for (i, p, g, buf) in steps {
            let step = SgdStep {
                lr: self.lr,
                momentum: self.momentum,
                dampening: self.dampening,
                weight_decay: self.weight_decay,
                nesterov: self.nesterov,
                first: buf.as_ref().is_some_and(|b| b.1),
            };
            p.sgd_step_(&g, buf.as_ref().map(|b| &b.0), &step)?;
            if let Some((b, _)) = buf {
                self.buffers[i] = Some(b);
            }
        }
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
}
