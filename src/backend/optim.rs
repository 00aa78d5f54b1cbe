//! Fused optimizer steps: one pass over a parameter, its gradient and its state that
//! reads each once and writes the parameter and the state in place, with
//! `torch.optim`'s update rules (`src/optim/` holds the optimizers that call them).

use super::{dispatch, Storage};
use crate::shape::Layout;
use crate::{DType, Error, Result};

// The family's two implementations (docs/ARCHITECTURE.md, "One op family").
#[path = "cpu/optim.rs"]
mod cpu;
#[path = "cuda/ops/optim.rs"]
mod cuda;

/// The hyper-parameters of one SGD step (`torch.optim.SGD`'s single-tensor rule):
///
/// ```text
/// g = grad + weight_decay·p
/// buf = first ? g : momentum·buf + (1 - dampening)·g     (with a momentum buffer)
/// g = nesterov ? g + momentum·buf : buf                  (with a momentum buffer)
/// p = p - lr·g
/// ```
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgdStep {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (used only with a momentum buffer).
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// The buffer's first step: it is set to the gradient, not blended into.
    pub first: bool,
}

/// The hyper-parameters of one Adam / AdamW step (`torch.optim.Adam(W)`'s
/// single-tensor rule), with the bias corrections of step `t` already folded in:
///
/// ```text
/// p = p·(1 - lr·wd)   (decoupled)   or   g = grad + wd·p   (L2)
/// m = β1·m + (1-β1)·g;   v = β2·v + (1-β2)·g²;   v_max = max(v_max, v)  (amsgrad)
/// p = p - (m / (sqrt(v or v_max) / bias2_sqrt + eps))·step_size
/// ```
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Weight decay coefficient.
    pub weight_decay: f64,
    /// AdamW's decoupled decay (shrinks `p`) instead of Adam's L2 term (added to `g`).
    pub decoupled: bool,
    /// `lr / (1 - β1^t)`.
    pub step_size: f64,
    /// `sqrt(1 - β2^t)`.
    pub bias2_sqrt: f64,
}

impl AdamStep {
    /// The step with `t`'s bias corrections (`t` ≥ 1), computed in f64 as PyTorch does
    /// with Python floats.
    pub(crate) fn new(
        lr: f64,
        (beta1, beta2): (f64, f64),
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
        t: i32,
    ) -> AdamStep {
        AdamStep {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled,
            step_size: lr / (1.0 - beta1.powi(t)),
            bias2_sqrt: (1.0 - beta2.powi(t)).sqrt(),
        }
    }
}

/// The fused optimizer primitives of a backend. `self` is the parameter's storage,
/// updated in place at `layout` (any strides without overlap); the gradient is read
/// at `grad_layout` (one shape); every state buffer is contiguous, holds exactly
/// `layout.numel()` elements of the parameter's dtype in row-major order of
/// `layout`, and is updated in place. Float dtypes only; f16/bf16 compute in f32.
pub(crate) trait OptimOps: Sized {
    /// One SGD step; `momentum_buf` present iff momentum is used.
    fn sgd_step(
        &mut self,
        layout: &Layout,
        grad: &Self,
        grad_layout: &Layout,
        momentum_buf: Option<&mut Self>,
        step: &SgdStep,
    ) -> Result<()>;

    /// One Adam / AdamW step; `v_max` present iff AMSGrad is used.
    #[allow(clippy::too_many_arguments)] // the parameter, its gradient and three states
    fn adam_step(
        &mut self,
        layout: &Layout,
        grad: &Self,
        grad_layout: &Layout,
        m: &mut Self,
        v: &mut Self,
        v_max: Option<&mut Self>,
        step: &AdamStep,
    ) -> Result<()>;
}

/// Err unless the operands of a fused step fit together: a float parameter, a
/// gradient of its shape and dtype, and state buffers (given as dtype and length)
/// of its dtype holding one element per parameter element. Both backends call it
/// before touching memory: a short buffer would be written out of bounds.
pub(crate) fn check_step_operands(
    op: &'static str,
    layout: &Layout,
    dtype: DType,
    grad_layout: &Layout,
    grad_dtype: DType,
    states: &[(DType, usize)],
) -> Result<()> {
    if !dtype.is_float() {
        return Err(Error::UnsupportedDType { op, dtype });
    }
    if grad_layout.shape != layout.shape {
        return Err(Error::ShapeMismatch {
            op,
            lhs: layout.shape.clone(),
            rhs: grad_layout.shape.clone(),
        });
    }
    for got in std::iter::once(grad_dtype).chain(states.iter().map(|s| s.0)) {
        if got != dtype {
            return Err(Error::DTypeMismatch {
                op,
                expected: dtype,
                got,
            });
        }
    }
    let n = layout.numel();
    if let Some(&(_, len)) = states.iter().find(|s| s.1 != n) {
        return Err(Error::shape(
            op,
            format!("a state buffer holds {len} elements for a parameter of {n}"),
        ));
    }
    Ok(())
}

impl Storage {
    /// See [`OptimOps::sgd_step`].
    pub(crate) fn sgd_step(
        &mut self,
        layout: &Layout,
        grad: &Storage,
        grad_layout: &Layout,
        momentum_buf: Option<&mut Storage>,
        step: &SgdStep,
    ) -> Result<()> {
        dispatch!("sgd_step", (self, grad, momentum_buf), |(p, g, b)| p
            .sgd_step(layout, g, grad_layout, b, step))
    }

    /// See [`OptimOps::adam_step`].
    #[allow(clippy::too_many_arguments)] // the parameter, its gradient and three states
    pub(crate) fn adam_step(
        &mut self,
        layout: &Layout,
        grad: &Storage,
        grad_layout: &Layout,
        m: &mut Storage,
        v: &mut Storage,
        v_max: Option<&mut Storage>,
        step: &AdamStep,
    ) -> Result<()> {
        dispatch!("adam_step", (self, grad, m, v, v_max), |(
            p,
            g,
            m,
            v,
            vm,
        )| p
            .adam_step(layout, g, grad_layout, m, v, vm, step))
    }
}
