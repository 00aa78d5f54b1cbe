//! In-place fused optimizer steps on a parameter and its state (the `optim` family
//! of the backends), for `src/optim/`. Not recorded by autograd.

use super::{StorageLocks, Tensor};
use crate::backend::optim::{AdamStep, SgdStep};
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
        let mut written = vec![self];
        written.extend(buf);
        // The step reads the gradient while it writes the parameter and the buffer.
        let grad = grad.apart_from(&written)?;
        let mut locks = StorageLocks::new("sgd_step", &written, &[&grad])?;
        let (mut w, r) = locks.split();
        let mut w = w.iter_mut();
        let (Some(param), buf) = (w.next(), w.next()) else {
            return Err(Error::arg("self", "sgd_step: the parameter was not locked"));
        };
        param.sgd_step(
            self.layout(),
            r[0],
            grad.layout(),
            buf.map(|b| &mut **b),
            step,
        )
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
        let mut written = vec![self, m, v];
        written.extend(v_max);
        // The step reads the gradient while it writes the parameter and its moments.
        let grad = grad.apart_from(&written)?;
        let mut locks = StorageLocks::new("adam_step", &written, &[&grad])?;
        let (mut w, r) = locks.split();
        let mut w = w.iter_mut();
        let (Some(param), Some(m), Some(v), v_max) = (w.next(), w.next(), w.next(), w.next())
        else {
            return Err(Error::arg("self", "adam_step: the state was not locked"));
        };
        param.adam_step(
            self.layout(),
            r[0],
            grad.layout(),
            m,
            v,
            v_max.map(|s| &mut **s),
            step,
        )
    }
}
