//! In-place fused optimizer steps on a parameter and its state (the `optim` family
//! of the backends), for `src/optim/`. Not recorded by autograd.

use super::Tensor;
use crate::backend::{AdamStep, SgdStep};
use crate::{Error, Result};

impl Tensor {
    /// Err unless `grad` can update this tensor in place: a float tensor that is not
    /// a broadcast view, and a gradient of its shape, dtype and device. Optimizers
    /// call it for every parameter before updating any, so a failing `step` changes
    /// nothing.
    pub(crate) fn check_step(&self, op: &'static str, grad: &Tensor) -> Result<()> {
        self.check_float(op)?;
        self.check_writable(op)?;
        self.check_same_device(op, grad)?;
        self.check_same_dtype(op, grad)?;
        if grad.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().to_vec(),
                rhs: grad.shape().to_vec(),
            });
        }
        Ok(())
    }

    /// The gradient as an operand that does not share this tensor's storage: the
    /// step holds this storage's write lock while it reads the gradient.
    fn separate_grad(&self, grad: &Tensor) -> Result<Tensor> {
        if self.same_storage(grad) {
            grad.contiguous_copy()
        } else {
            Ok(grad.clone())
        }
    }

    /// One fused SGD step on this parameter from `grad`, with the momentum buffer
    /// `buf` (a contiguous tensor of this shape and dtype created by the optimizer)
    /// when momentum is used.
    pub(crate) fn sgd_step_(
        &self,
        grad: &Tensor,
        buf: Option<&Tensor>,
        step: &SgdStep,
    ) -> Result<()> {
        self.check_step("sgd_step", grad)?;
        let grad = self.separate_grad(grad)?;
        let g = grad.storage();
        let mut buf = buf.map(|b| b.storage_mut());
        self.storage_mut()
            .sgd_step(self.layout(), &g, grad.layout(), buf.as_deref_mut(), step)
    }

    /// One fused Adam / AdamW step on this parameter from `grad`, with the moments
    /// `m`, `v` and, for AMSGrad, `v_max` (contiguous tensors of this shape and dtype
    /// created by the optimizer).
    pub(crate) fn adam_step_(
        &self,
        grad: &Tensor,
        (m, v, v_max): (&Tensor, &Tensor, Option<&Tensor>),
        step: &AdamStep,
    ) -> Result<()> {
        self.check_step("adam_step", grad)?;
        let grad = self.separate_grad(grad)?;
        let g = grad.storage();
        let mut v_max = v_max.map(|s| s.storage_mut());
        self.storage_mut().adam_step(
            self.layout(),
            &g,
            grad.layout(),
            &mut m.storage_mut(),
            &mut v.storage_mut(),
            v_max.as_deref_mut(),
            step,
        )
    }
}
