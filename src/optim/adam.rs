//! Adam and AdamW, exactly as `torch.optim.Adam` / `torch.optim.AdamW`. They differ only
//! in where weight decay goes: Adam adds it to the gradient (L2), AdamW shrinks the
//! parameter directly (decoupled), so both are one [`AdamState`] with a flag.

use super::{check_non_negative, OptimParam, Optimizer, ParamSet};
use crate::backend::AdamStep;
use crate::{Error, Result, Tensor};

/// Shared state and update of Adam and AdamW.
#[derive(Debug)]
struct AdamState {
    params: ParamSet,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled_weight_decay: bool,
    /// Per parameter: step count, first moment, second moment, max second moment.
    moments: Vec<Option<Moments>>,
}

/// The state of one parameter (tensor handles: cloning shares the memory).
#[derive(Debug, Clone)]
struct Moments {
    step: i32,
    m: Tensor,
    v: Tensor,
    v_max: Option<Tensor>,
}

impl AdamState {
    fn new<P: Into<OptimParam>>(
        params: impl IntoIterator<Item = P>,
        lr: f64,
        weight_decay: f64,
        decoupled: bool,
    ) -> Result<Self> {
        check_non_negative("lr", lr)?;
        let params = ParamSet::new(params)?;
        let moments = (0..params.params().len()).map(|_| None).collect();
        Ok(AdamState {
            params,
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay,
            amsgrad: false,
            decoupled_weight_decay: decoupled,
            moments,
        })
    }

    fn check_hyper_parameters(&self) -> Result<()> {
        check_non_negative("lr", self.lr)?;
        check_non_negative("eps", self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        for (name, beta) in [("betas.0", self.betas.0), ("betas.1", self.betas.1)] {
            if !(0.0..1.0).contains(&beta) {
                return Err(Error::arg(name, format!("must be in [0, 1), got {beta}")));
            }
        }
        Ok(())
    }

    /// Validates every parameter and creates the missing state first, then runs one
    /// fused step per parameter, so an error changes nothing.
    fn step(&mut self) -> Result<()> {
        self.check_hyper_parameters()?;
        self.params.check()?;
        let _guard = crate::no_grad();
        let mut steps = Vec::new();
        for (i, p, g) in self.params.with_grads() {
            p.check_step("adam_step", &g)?;
            let mut state = match &self.moments[i] {
                // State made before `Module::to_device`/`to_dtype` follows the parameter.
                Some(s) => Moments {
                    m: s.m.follow(p)?,
                    v: s.v.follow(p)?,
                    v_max: s.v_max.as_ref().map(|t| t.follow(p)).transpose()?,
                    ..s.clone()
                },
                None => Moments {
                    step: 0,
                    m: p.zeros_like()?,
                    v: p.zeros_like()?,
                    v_max: None,
                },
            };
            // Zeros as the first maximum give max(0, v) = v: PyTorch's first step.
            state.v_max = match (self.amsgrad, state.v_max) {
                (false, _) => None,
                (true, Some(prev)) => Some(prev),
                (true, None) => Some(p.zeros_like()?),
            };
            steps.push((i, p, g, state));
        }
        for (i, p, g, mut state) in steps {
            state.step += 1;
            let step = AdamStep::new(
                self.lr,
                self.betas,
                self.eps,
                self.weight_decay,
                self.decoupled_weight_decay,
                state.step,
            );
            p.adam_step_(&g, (&state.m, &state.v, state.v_max.as_ref()), &step)?;
            self.moments[i] = Some(state);
        }
        Ok(())
    }
}

macro_rules! adam_family {
    ($name:ident, $doc:literal, $default_wd:expr, $decoupled:expr) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name(AdamState);

        impl $name {
            /// The optimizer over `params` (tensors, `(name, tensor)` pairs or
            /// `nn::Parameter`s) with learning rate `lr` and PyTorch's defaults.
            pub fn new<P: Into<OptimParam>>(
                params: impl IntoIterator<Item = P>,
                lr: f64,
            ) -> Result<Self> {
                Ok($name(AdamState::new(params, lr, $default_wd, $decoupled)?))
            }

            /// Coefficients of the running averages of the gradient and its square.
            pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
                self.0.betas = (beta1, beta2);
                self
            }

            /// Added to the denominator for numerical stability (default 1e-8).
            pub fn eps(mut self, eps: f64) -> Self {
                self.0.eps = eps;
                self
            }

            /// Weight decay coefficient.
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.0.weight_decay = weight_decay;
                self
            }

            /// Use the AMSGrad variant (the maximum of past second moments).
            pub fn amsgrad(mut self, amsgrad: bool) -> Self {
                self.0.amsgrad = amsgrad;
                self
            }

            /// Allow parameters that get no gradient.
            pub fn allow_unused(mut self, allow: bool) -> Self {
                self.0.params.set_allow_unused(allow);
                self
            }

            /// Allow gradients that reach parameters this optimizer does not hold.
            pub fn allow_unregistered(mut self, allow: bool) -> Self {
                self.0.params.set_allow_unregistered(allow);
                self
            }
        }

        impl Optimizer for $name {
            fn zero_grad(&mut self) {
                self.0.params.zero_grad();
            }

            fn step(&mut self) -> Result<()> {
                self.0.step()
            }

            fn lr(&self) -> f64 {
                self.0.lr
            }

            fn set_lr(&mut self, lr: f64) {
                self.0.lr = lr;
            }
        }
    };
}

adam_family!(
    Adam,
    "Adam (`torch.optim.Adam`): weight decay is an L2 term in the gradient (default 0).",
    0.0,
    false
);
adam_family!(
    AdamW,
    "AdamW (`torch.optim.AdamW`): decoupled weight decay applied to the parameter (default 0.01).",
    0.01,
    true
);
