//! Adam and AdamW, exactly as `torch.optim.Adam` / `torch.optim.AdamW`. They differ only
//! in where weight decay goes: Adam adds it to the gradient (L2), AdamW shrinks the
//! parameter directly (decoupled), so both are one [`AdamState`] with a flag.

use super::groups::{cpu_tensor, state_copy, Groups, Hyper, Opt, StateReader};
use super::{GroupHandle, OptimParam, Optimizer, ParamGroup};
use crate::backend::optim::AdamStep;
use crate::{Result, Tensor};

/// The options Adam and AdamW have, in state-dict order.
const OPTIONS: &[Opt] = &[
    Opt::Lr,
    Opt::Beta1,
    Opt::Beta2,
    Opt::Eps,
    Opt::WeightDecay,
    Opt::Amsgrad,
];

/// Shared state and update of Adam and AdamW.
#[derive(Debug)]
struct AdamState {
    groups: Groups,
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
        name: &'static str,
        params: impl IntoIterator<Item = P>,
        lr: f64,
        weight_decay: f64,
        decoupled: bool,
    ) -> Result<Self> {
        let defaults = Hyper::zero()
            .with(Opt::Lr, lr)
            .with(Opt::Beta1, 0.9)
            .with(Opt::Beta2, 0.999)
            .with(Opt::Eps, 1e-8)
            .with(Opt::WeightDecay, weight_decay);
        Ok(AdamState {
            groups: Groups::new(name, params, defaults, OPTIONS, Opt::Beta1)?,
            decoupled_weight_decay: decoupled,
            moments: Vec::new(),
        })
    }

    /// Validates every parameter and creates the missing state first, then runs one
    /// fused step per parameter, so an error changes nothing.
    fn step(&mut self) -> Result<()> {
        self.groups.check()?;
        self.groups.params.check()?;
        let _guard = crate::no_grad();
        self.moments.resize(self.groups.params.params().len(), None);
        let mut steps = Vec::new();
        for (i, p, g) in self.groups.params.with_grads() {
            p.check_step("adam_step", &g)?;
            let h = self.groups.hyper(self.groups.group_of(i));
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
            state.v_max = match (h.flag(Opt::Amsgrad), state.v_max) {
                (false, _) => None,
                (true, Some(prev)) => Some(prev),
                (true, None) => Some(p.zeros_like()?),
            };
            steps.push((i, p, g, h, state));
        }
        for (i, p, g, h, mut state) in steps {
            state.step += 1;
            let step = AdamStep::new(
                h.get(Opt::Lr),
                (h.get(Opt::Beta1), h.get(Opt::Beta2)),
                h.get(Opt::Eps),
                h.get(Opt::WeightDecay),
                self.decoupled_weight_decay,
                state.step,
            );
            p.adam_step_(&g, (&state.m, &state.v, state.v_max.as_ref()), &step)?;
            self.moments[i] = Some(state);
        }
        Ok(())
    }

    fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut out = self.groups.state_dict();
        for (i, s) in self.moments.iter().enumerate() {
            let Some(s) = s else { continue };
            out.push((
                format!("state.{i}.step"),
                cpu_tensor(vec![i64::from(s.step)], &[]),
            ));
            out.push((format!("state.{i}.exp_avg"), s.m.clone()));
            out.push((format!("state.{i}.exp_avg_sq"), s.v.clone()));
            if let Some(v_max) = &s.v_max {
                out.push((format!("state.{i}.max_exp_avg_sq"), v_max.clone()));
            }
        }
        out
    }

    fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let mut reader = StateReader::new(state);
        let rows = self.groups.read(&mut reader);
        let mut read = Vec::new();
        for (i, p) in self.groups.params.params().iter().enumerate() {
            let key = |name: &str| format!("state.{i}.{name}");
            let names = ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
            if !names.iter().any(|n| reader.has(&key(n))) {
                read.push(None);
                continue;
            }
            let shape = p.tensor.shape();
            let step = reader.values(&key("step"), &[]);
            let m = reader.tensor(&key("exp_avg"), shape);
            let v = reader.tensor(&key("exp_avg_sq"), shape);
            let v_max = match reader.has(&key("max_exp_avg_sq")) {
                true => reader.tensor(&key("max_exp_avg_sq"), shape).map(Some),
                false => Some(None),
            };
            let step = step.and_then(|s| {
                let ok = s[0] >= 0.0 && s[0] <= f64::from(i32::MAX) && s[0].fract() == 0.0;
                if !ok {
                    reader.problem(format!("`{}` is not a step count: {}", key("step"), s[0]));
                }
                // Integral and within [0, i32::MAX] (checked): exact.
                #[allow(clippy::cast_possible_truncation)]
                let count = s[0] as i32;
                ok.then_some(count)
            });
            read.push(match (step, m, v, v_max) {
                (Some(step), Some(m), Some(v), Some(v_max)) => Some((step, m, v, v_max)),
                _ => None,
            });
        }
        reader.finish()?;
        let mut moments = Vec::with_capacity(read.len());
        for (r, p) in read.into_iter().zip(self.groups.params.params()) {
            let p = &p.tensor;
            moments.push(match r {
                None => None,
                Some((step, m, v, v_max)) => Some(Moments {
                    step,
                    m: state_copy(&m, p)?,
                    v: state_copy(&v, p)?,
                    v_max: v_max.map(|t| state_copy(&t, p)).transpose()?,
                }),
            });
        }
        self.groups.install(rows);
        self.moments = moments;
        Ok(())
    }
}

macro_rules! adam_family {
    ($name:ident, $doc:literal, $default_wd:expr, $decoupled:expr) => {
        #[doc = $doc]
        ///
        /// The builder methods set the option of every group so far and of groups
        /// added later that do not set their own ([`Optimizer::add_param_group`]).
        #[derive(Debug)]
        pub struct $name(AdamState);

        impl $name {
            /// The optimizer over `params` (tensors, `(name, tensor)` pairs or
            /// `nn::Parameter`s) with learning rate `lr` and PyTorch's defaults.
            pub fn new<P: Into<OptimParam>>(
                params: impl IntoIterator<Item = P>,
                lr: f64,
            ) -> Result<Self> {
                Ok($name(AdamState::new(
                    stringify!($name),
                    params,
                    lr,
                    $default_wd,
                    $decoupled,
                )?))
            }

            /// Coefficients of the running averages of the gradient and its square.
            pub fn betas(mut self, beta1: f64, beta2: f64) -> Self {
                self.0.groups.set_default(Opt::Beta1, beta1);
                self.0.groups.set_default(Opt::Beta2, beta2);
                self
            }

            /// Added to the denominator for numerical stability (default 1e-8).
            pub fn eps(mut self, eps: f64) -> Self {
                self.0.groups.set_default(Opt::Eps, eps);
                self
            }

            /// Weight decay coefficient.
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.0.groups.set_default(Opt::WeightDecay, weight_decay);
                self
            }

            /// Use the AMSGrad variant (the maximum of past second moments).
            pub fn amsgrad(mut self, amsgrad: bool) -> Self {
                self.0
                    .groups
                    .set_default(Opt::Amsgrad, f64::from(u8::from(amsgrad)));
                self
            }

            /// Allow parameters that get no gradient.
            pub fn allow_unused(mut self, allow: bool) -> Self {
                self.0.groups.params.set_allow_unused(allow);
                self
            }

            /// Allow gradients that reach parameters this optimizer does not hold.
            pub fn allow_unregistered(mut self, allow: bool) -> Self {
                self.0.groups.params.set_allow_unregistered(allow);
                self
            }
        }

        impl Optimizer for $name {
            fn zero_grad(&mut self) {
                self.0.groups.params.zero_grad();
            }

            fn step(&mut self) -> Result<()> {
                self.0.step()
            }

            fn add_param_group(&mut self, group: ParamGroup) -> Result<()> {
                self.0.groups.add(group)
            }

            fn state_dict(&self) -> Vec<(String, Tensor)> {
                self.0.state_dict()
            }

            fn load_state_dict(&mut self, state: &[(String, Tensor)]) -> Result<()> {
                self.0.load_state_dict(state)
            }

            fn group_handle(&self) -> GroupHandle {
                self.0.groups.handle()
            }

            fn parameters(&self) -> Vec<Tensor> {
                self.0
                    .groups
                    .params
                    .params()
                    .iter()
                    .map(|p| p.tensor.clone())
                    .collect()
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
