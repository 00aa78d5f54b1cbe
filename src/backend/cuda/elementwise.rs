//! Launches of `kernels/elementwise.cu`: unary (and scalar) ops, binary ops and
//! comparisons over strided, broadcast operands, into a contiguous output.

use super::kernels::KernelId;
use super::launch::{plan, KernelArg, LaunchConfig};
use super::storage::CudaStorage;
use crate::backend::{BinaryOp, CmpOp, ElementwiseOps, UnaryOp};
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// `UnaryCode` in elementwise.cu.
fn unary_code(op: UnaryOp) -> u32 {
    match op {
        UnaryOp::Neg => 0,
        UnaryOp::Exp => 1,
        UnaryOp::Log => 2,
        UnaryOp::Sqrt => 3,
        UnaryOp::Relu => 4,
        UnaryOp::Sigmoid => 5,
        UnaryOp::Tanh => 6,
        UnaryOp::Abs => 7,
        UnaryOp::AddScalar(_) => 8,
        UnaryOp::MulScalar(_) => 9,
        UnaryOp::DivScalar(_) => 10,
        UnaryOp::PowScalar(_) => 11,
        UnaryOp::Gelu => 12,
        UnaryOp::GeluGrad => 13,
        UnaryOp::GeluTanh => 14,
        UnaryOp::GeluTanhGrad => 15,
    }
}

/// `BinaryCode` in elementwise.cu.
fn binary_code(op: BinaryOp) -> u32 {
    match op {
        BinaryOp::Add => 0,
        BinaryOp::Sub => 1,
        BinaryOp::Mul => 2,
        BinaryOp::Div => 3,
        BinaryOp::Maximum => 4,
        BinaryOp::Minimum => 5,
    }
}

/// `CmpCode` in elementwise.cu.
fn cmp_code(op: CmpOp) -> u32 {
    match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Gt => 4,
        CmpOp::Ge => 5,
    }
}

fn per_dtype(dtype: DType, ids: [KernelId; 6]) -> KernelId {
    match dtype {
        DType::F32 => ids[0],
        DType::F64 => ids[1],
        DType::F16 => ids[2],
        DType::BF16 => ids[3],
        DType::I64 => ids[4],
        DType::U8 => ids[5],
    }
}

impl ElementwiseOps for CudaStorage {
    fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<CudaStorage> {
        let dtype = self.dtype();
        if !dtype.is_float() && !op.allows_integers() {
            return Err(Error::UnsupportedDType {
                op: op.name(),
                dtype,
            });
        }
        let n = layout.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let (code, scalar) = (unary_code(op), op.scalar());
        // Integer kernels take the scalar already converted as the CPU converts it.
        let scalar_int = match dtype {
            DType::U8 => i64::from(scalar as u8),
            _ => scalar as i64,
        };
        let p = plan("unary", &layout.shape, [&layout.strides])?;
        let [rank, dims] = p.shape_args();
        use KernelId::*;
        let kernel = per_dtype(
            dtype,
            [UnaryF32, UnaryF64, UnaryF16, UnaryBf16, UnaryI64, UnaryU8],
        );
        let dev = self.cuda_device();
        dev.launch(
            kernel,
            LaunchConfig::elementwise(n as u64, dev.sm_count()),
            &[
                KernelArg::U64(n as u64),
                rank,
                dims,
                KernelArg::Ptr(self.ptr_at(layout.offset)),
                p.strides_arg(0),
                KernelArg::Ptr(out.ptr()),
                KernelArg::U32(code),
                KernelArg::F64(scalar),
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
        if op == BinaryOp::Div && !dtype.is_float() {
            return Err(Error::UnsupportedDType { op: "div", dtype });
        }
        use KernelId::*;
        let kernel = per_dtype(
            dtype,
            [
                BinaryF32, BinaryF64, BinaryF16, BinaryBf16, BinaryI64, BinaryU8,
            ],
        );
        self.pairwise("binary", kernel, binary_code(op), ll, rhs, rl, dtype)
    }

    fn compare(
        &self,
        op: CmpOp,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
    ) -> Result<CudaStorage> {
        use KernelId::*;
        let kernel = per_dtype(
            self.dtype(),
            [
                CompareF32,
                CompareF64,
                CompareF16,
                CompareBf16,
                CompareI64,
                CompareU8,
            ],
        );
        self.pairwise("compare", kernel, cmp_code(op), ll, rhs, rl, DType::U8)
    }
}

impl CudaStorage {
    /// The shared launch of binary ops and comparisons.
    #[allow(clippy::too_many_arguments)]
    fn pairwise(
        &self,
        name: &'static str,
        kernel: KernelId,
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
        let n = ll.numel();
        let out = CudaStorage::alloc(self.cuda_device(), n, out_dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let p = plan(name, &ll.shape, [&ll.strides, &rl.strides])?;
        let [rank, dims] = p.shape_args();
        let dev = self.cuda_device();
        dev.launch(
            kernel,
            LaunchConfig::elementwise(n as u64, dev.sm_count()),
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
