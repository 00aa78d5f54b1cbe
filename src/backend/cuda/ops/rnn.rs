//! The fused recurrent step on CUDA: one launch of `kernels/rnn.cu` per step and
//! direction, forward and backward, a thread per (sequence, unit).

use super::{CellGrads, CellLayouts, CellOp, CellParams, RnnOps};
use crate::backend::cuda::runtime::kernels::{code_of, KernelId};
use crate::backend::cuda::runtime::launch::KernelArg;
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{Error, Result};

fn check_dtypes(op: &'static str, gi: &CudaStorage, others: &[&CudaStorage]) -> Result<()> {
    for o in others {
        if o.dtype() != gi.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                expected: gi.dtype(),
                got: o.dtype(),
            });
        }
    }
    Ok(())
}

impl RnnOps for CudaStorage {
    fn rnn_cell_forward(
        &self,
        gh: &Self,
        s: &Self,
        l: &CellLayouts,
        p: &CellParams,
    ) -> Result<(Self, Self)> {
        check_dtypes("rnn_cell", self, &[gh, s])?;
        let dev = self.cuda_device();
        let items = p.rows * p.hidden;
        let out = CudaStorage::alloc(dev, items * p.op.out_width(), self.dtype())?;
        let saved = CudaStorage::alloc(dev, items * p.op.saved(), self.dtype())?;
        if items == 0 {
            return Ok((out, saved));
        }
        // The copies of strided operands live until the launch is queued.
        let (gi_ptr, _gi_copy) = self.contiguous_ptr(l.gi)?;
        let (gh_ptr, _gh_copy) = gh.contiguous_ptr(l.gh)?;
        let (s_ptr, _s_copy) = state_ptr(s, l.s, p)?;
        let args = [
            KernelArg::U64(p.rows as u64),
            KernelArg::U64(p.hidden as u64),
            KernelArg::U32(code_of("RnnCellCode", p.op.name())?),
            KernelArg::Ptr(gi_ptr),
            KernelArg::Ptr(gh_ptr),
            KernelArg::Ptr(s_ptr),
            KernelArg::Ptr(out.ptr()),
            KernelArg::Ptr(saved.ptr()),
        ];
        dev.launch_grid_stride(
            KernelId::for_dtype("rnn_cell_fwd", self.dtype())?,
            items,
            &args,
        )?;
        Ok((out, saved))
    }

    fn rnn_cell_backward(
        &self,
        s: &Self,
        dout: &Self,
        sl: &Layout,
        dl: &Layout,
        p: &CellParams,
    ) -> Result<CellGrads<Self>> {
        check_dtypes("rnn_cell_backward", self, &[s, dout])?;
        let (dev, dtype) = (self.cuda_device(), self.dtype());
        let (items, width) = (p.rows * p.hidden, p.rows * p.hidden * p.op.gates());
        let dgi = CudaStorage::alloc(dev, width, dtype)?;
        let dgh = (p.op == CellOp::Gru)
            .then(|| CudaStorage::alloc(dev, width, dtype))
            .transpose()?;
        let ds =
            p.op.has_state()
                .then(|| CudaStorage::alloc(dev, items, dtype))
                .transpose()?;
        if items == 0 {
            return Ok((dgi, dgh, ds));
        }
        let (s_ptr, _s_copy) = state_ptr(s, sl, p)?;
        let (d_ptr, _d_copy) = dout.contiguous_ptr(dl)?;
        // The kernel writes only the gradients the op has; absent ones alias dgi.
        let args = [
            KernelArg::U64(p.rows as u64),
            KernelArg::U64(p.hidden as u64),
            KernelArg::U32(code_of("RnnCellCode", p.op.name())?),
            KernelArg::Ptr(self.ptr()),
            KernelArg::Ptr(s_ptr),
            KernelArg::Ptr(d_ptr),
            KernelArg::Ptr(dgi.ptr()),
            KernelArg::Ptr(dgh.as_ref().unwrap_or(&dgi).ptr()),
            KernelArg::Ptr(ds.as_ref().unwrap_or(&dgi).ptr()),
        ];
        dev.launch_grid_stride(KernelId::for_dtype("rnn_cell_bwd", dtype)?, items, &args)?;
        Ok((dgi, dgh, ds))
    }
}

/// The state operand's address (a contiguous copy if strided); the RNN's stand-in is
/// not read, so it is passed as it is.
fn state_ptr(s: &CudaStorage, l: &Layout, p: &CellParams) -> Result<(u64, Option<CudaStorage>)> {
    if p.op.has_state() {
        s.contiguous_ptr(l)
    } else {
        Ok((s.ptr(), None))
    }
}

#[cfg(test)]
mod tests {
    use super::CellOp;
    use crate::backend::cuda::runtime::kernels::assert_distinct_codes;

    /// Every op of the host enum has a code in the kernel enum, and no two share one.
    #[test]
    fn every_cell_op_has_a_distinct_code() {
        assert_distinct_codes("RnnCellCode", &CellOp::ALL.map(CellOp::name));
    }
}
