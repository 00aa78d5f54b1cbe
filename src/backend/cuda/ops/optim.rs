//! Fused optimizer steps on CUDA: one launch of `kernels/optim.cu` per parameter
//! updates the parameter and its state in place.

use super::{check_step_operands, AdamStep, OptimOps, SgdStep};
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{plan, KernelArg};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::Result;

/// The leading arguments of both kernels: the element count, the merged shape, the
/// parameter and the gradient with their strides; `None` for an empty parameter.
fn strided_args(
    op: &'static str,
    p: &CudaStorage,
    layout: &Layout,
    g: &CudaStorage,
    grad_layout: &Layout,
) -> Result<Option<[KernelArg; 7]>> {
    let n = layout.numel();
    if n == 0 {
        return Ok(None);
    }
    let pl = plan(op, &layout.shape, [&layout.strides, &grad_layout.strides])?;
    let [rank, dims] = pl.shape_args();
    Ok(Some([
        KernelArg::U64(n as u64),
        rank,
        dims,
        KernelArg::Ptr(p.ptr_at(layout.offset)),
        pl.strides_arg(0),
        KernelArg::Ptr(g.ptr_at(grad_layout.offset)),
        pl.strides_arg(1),
    ]))
}

/// The device address of an optional state buffer (null when absent: the kernel
/// skips it).
fn optional_ptr(s: Option<&mut CudaStorage>) -> KernelArg {
    KernelArg::Ptr(s.map_or(0, |s| s.ptr()))
}

impl OptimOps for CudaStorage {
    fn sgd_step(
        &mut self,
        layout: &Layout,
        grad: &CudaStorage,
        grad_layout: &Layout,
        momentum_buf: Option<&mut CudaStorage>,
        step: &SgdStep,
    ) -> Result<()> {
        const OP: &str = "sgd_step";
        let states: Vec<_> = momentum_buf.iter().map(|b| (b.dtype(), b.len())).collect();
        check_step_operands(OP, layout, self.dtype(), grad_layout, grad.dtype(), &states)?;
        let kernel = KernelId::for_dtype("sgd", self.dtype())?;
        let Some(head) = strided_args(OP, self, layout, grad, grad_layout)? else {
            return Ok(());
        };
        let mut args = head.to_vec();
        args.extend([
            optional_ptr(momentum_buf),
            KernelArg::F64(step.lr),
            KernelArg::F64(step.momentum),
            KernelArg::F64(step.dampening),
            KernelArg::F64(step.weight_decay),
            KernelArg::I32(step.nesterov.into()),
            KernelArg::I32(step.first.into()),
        ]);
        self.cuda_device()
            .launch_grid_stride(kernel, layout.numel(), &args)
    }

    fn adam_step(
        &mut self,
        layout: &Layout,
        grad: &CudaStorage,
        grad_layout: &Layout,
        m: &mut CudaStorage,
        v: &mut CudaStorage,
        v_max: Option<&mut CudaStorage>,
        step: &AdamStep,
    ) -> Result<()> {
        const OP: &str = "adam_step";
        let mut states = vec![(m.dtype(), m.len()), (v.dtype(), v.len())];
        states.extend(v_max.iter().map(|s| (s.dtype(), s.len())));
        check_step_operands(OP, layout, self.dtype(), grad_layout, grad.dtype(), &states)?;
        let kernel = KernelId::for_dtype("adam", self.dtype())?;
        let Some(head) = strided_args(OP, self, layout, grad, grad_layout)? else {
            return Ok(());
        };
        let mut args = head.to_vec();
        args.extend([
            KernelArg::Ptr(m.ptr()),
            KernelArg::Ptr(v.ptr()),
            optional_ptr(v_max),
            KernelArg::F64(step.lr),
            KernelArg::F64(step.beta1),
            KernelArg::F64(step.beta2),
            KernelArg::F64(step.eps),
            KernelArg::F64(step.weight_decay),
            KernelArg::I32(step.decoupled.into()),
            KernelArg::F64(step.step_size),
            KernelArg::F64(step.bias2_sqrt),
        ]);
        self.cuda_device()
            .launch_grid_stride(kernel, layout.numel(), &args)
    }
}
