//! Launches of `kernels/elementwise.cu`: unary (and scalar) ops, binary ops and
//! comparisons over strided, broadcast operands, into a contiguous output.

use super::kernels::{op_code, KernelId};
use super::launch::{plan, KernelArg, LaunchConfig};
use super::storage::{CudaStorage, THREADS};
use crate::backend::{BinaryOp, CmpOp, UnaryOp};
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// `UnaryCode` in elementwise.cu, and the scalar operand.
fn unary_code(op: UnaryOp) -> (u32, f64) {
    let (name, scalar) = match op {
        UnaryOp::Neg => ("neg", 0.0),
        UnaryOp::Exp => ("exp", 0.0),
        UnaryOp::Log => ("log", 0.0),
        UnaryOp::Sqrt => ("sqrt", 0.0),
        UnaryOp::Relu => ("relu", 0.0),
        UnaryOp::Sigmoid => ("sigmoid", 0.0),
        UnaryOp::Tanh => ("tanh", 0.0),
        UnaryOp::Abs => ("abs", 0.0),
        UnaryOp::AddScalar(s) => ("add_scalar", s),
        UnaryOp::MulScalar(s) => ("mul_scalar", s),
        UnaryOp::DivScalar(s) => ("div_scalar", s),
        UnaryOp::PowScalar(s) => ("pow_scalar", s),
        UnaryOp::Gelu => ("gelu", 0.0),
        UnaryOp::GeluGrad => ("gelu_grad", 0.0),
        UnaryOp::GeluTanh => ("gelu_tanh", 0.0),
        UnaryOp::GeluTanhGrad => ("gelu_tanh_grad", 0.0),
    };
    (code("UnaryCode", name), scalar)
}

/// `BinaryCode` in elementwise.cu.
fn binary_code(op: BinaryOp) -> u32 {
    let name = match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
    };
    code("BinaryCode", name)
}

/// `CmpCode` in elementwise.cu.
fn cmp_code(op: CmpOp) -> u32 {
    let name = match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Lt => "lt",
        CmpOp::Le => "le",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
    };
    code("CmpCode", name)
}

/// The op code elementwise.cu declares for `op` in `table` (kernels.rs tests that every
/// op has one).
fn code(table: &str, op: &str) -> u32 {
    op_code(table, op).expect("elementwise.cu declares a code for every op")
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

impl CudaStorage {
    pub(crate) fn unary(&self, op: UnaryOp, layout: &Layout) -> Result<CudaStorage> {
        let dtype = self.dtype();
        if !dtype.is_float() && !op.allows_integers() {
            return Err(Error::UnsupportedDType {
                op: crate::backend::cpu::unary_name(op),
                dtype,
            });
        }
        let n = layout.numel();
        let out = CudaStorage::alloc(self.device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let (code, scalar) = unary_code(op);
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
        let dev = self.device();
        dev.launch(
            kernel,
            LaunchConfig::grid_stride(n as u64, THREADS, dev.sm_count() * 16),
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

    pub(crate) fn binary(
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

    pub(crate) fn compare(
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
        self.check_same_device(name, rhs)?;
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
        let out = CudaStorage::alloc(self.device(), n, out_dtype)?;
        if n == 0 {
            return Ok(out);
        }
        let p = plan(name, &ll.shape, [&ll.strides, &rl.strides])?;
        let [rank, dims] = p.shape_args();
        let dev = self.device();
        dev.launch(
            kernel,
            LaunchConfig::grid_stride(n as u64, THREADS, dev.sm_count() * 16),
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
