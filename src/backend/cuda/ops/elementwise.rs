//! Launches of `kernels/elementwise.cu`: unary (and scalar) ops, binary ops and
//! comparisons over strided, broadcast operands, into a contiguous output.

use super::{BinaryOp, CmpOp, ElementwiseOps, UnaryOp};
use crate::backend::cuda::runtime::kernels::{code_of, KernelId};
use crate::backend::cuda::runtime::launch::{plan, KernelArg};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

impl ElementwiseOps for CudaStorage {
    fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<CudaStorage> {
        let dtype = self.dtype();
        op.check_dtype(dtype)?;
        let n = layout.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let (code, scalar) = (code_of("UnaryCode", op.name())?, op.scalar());
        // Integer kernels take the exact i64 scalar and wrap it into their type, as
        // the CPU does (`unary_int` in kernels/elementwise.cu).
        let scalar_int = op.int_scalar();
        let p = plan("unary", &layout.shape, [&layout.strides])?;
        let [rank, dims] = p.shape_args();
        let kernel = KernelId::for_dtype("unary", dtype)?;
        let dev = self.cuda_device();
        dev.launch_grid_stride(
            kernel,
            n,
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                p.strides_arg(0),
                KernelArg::Ptr(out.ptr()),
                KernelArg::U32(code),
                KernelArg::F64(scalar),
                KernelArg::F64(op.scalar2()),
                KernelArg::I64(scalar_int),
            ],
        )?;
        Ok(out)
    }

    fn binary(
        &self,
        op: BinaryOp,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        op.check_dtype(dtype)?;
        let code = code_of("BinaryCode", op.name())?;
        self.pairwise("binary", code, ll, rhs, rl, dtype)
    }

    fn compare(
        &self,
        op: CmpOp,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
    ) -> Result<CudaStorage> {
        let code = code_of("CmpCode", op.name())?;
        self.pairwise("compare", code, ll, rhs, rl, DType::U8)
    }
}

impl CudaStorage {
    /// The shared launch of binary ops and comparisons: the kernel of family `name`
    /// ("binary" or "compare") for the operands' dtype, running op `code`.
    fn pairwise(
        &self,
        name: &'static str,
        code: u32,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        out_dtype: DType,
    ) -> Result<CudaStorage> {
        if self.dtype() != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: name,
                expected: self.dtype(),
                got: rhs.dtype(),
            });
        }
        if ll.shape != rl.shape {
            return Err(Error::ShapeMismatch {
                op: name,
                lhs: ll.shape.clone(),
                rhs: rl.shape.clone(),
            });
        }
        let kernel = KernelId::for_dtype(name, self.dtype())?;
        let n = ll.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, out_dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let p = plan(name, &ll.shape, [&ll.strides, &rl.strides])?;
        let [rank, dims] = p.shape_args();
        let dev = self.cuda_device();
        dev.launch_grid_stride(
            kernel,
            n,
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(ll.offset)),
                p.strides_arg(0),
                KernelArg::Ptr(rhs.ptr_at(rl.offset)),
                p.strides_arg(1),
                KernelArg::Ptr(out.ptr()),
                KernelArg::U32(code),
            ],
        )?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::cuda::runtime::kernels::assert_distinct_codes;
    use crate::backend::elementwise::{BinaryOp, CmpOp, UnaryOp};

    /// Every op of the host enums has a code in its kernel enum, and no two share one.
    #[test]
    fn every_host_op_has_a_distinct_code() {
        assert_distinct_codes("UnaryCode", &UnaryOp::ALL.map(|o| o.name()));
        assert_distinct_codes("BinaryCode", &BinaryOp::ALL.map(|o| o.name()));
        assert_distinct_codes("CmpCode", &CmpOp::ALL.map(|o| o.name()));
    }
}
