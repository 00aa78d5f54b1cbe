//! Launch of `kernels/linear.cu`: kiln's tiled, batched GEMM over strided operands.

use super::kernels::KernelId;
use super::launch::{KernelArg, LaunchConfig};
use super::storage::CudaStorage;
use crate::backend::MatmulDims;
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// Output tile of one block (GEMM_BM = GEMM_BN in linear.cu).
const TILE: usize = 64;
/// Most blocks in grid y and z.
const MAX_GRID_YZ: usize = 65_535;

impl CudaStorage {
    pub(crate) fn matmul(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
    ) -> Result<CudaStorage> {
        self.check_same_device("matmul", rhs)?;
        let dtype = self.dtype();
        if dtype != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                expected: dtype,
                got: rhs.dtype(),
            });
        }
        let kernel = match dtype {
            DType::F32 => KernelId::GemmF32,
            DType::F64 => KernelId::GemmF64,
            DType::F16 => KernelId::GemmF16,
            DType::BF16 => KernelId::GemmBf16,
            DType::I64 | DType::U8 => {
                return Err(Error::UnsupportedDType {
                    op: "matmul",
                    dtype,
                })
            }
        };
        if ll.shape.len() != 3 || rl.shape.len() != 3 {
            return Err(Error::shape(
                "matmul",
                "the backend takes 3-D (batch, rows, cols) layouts",
            ));
        }
        let MatmulDims { batch, m, n, k } = dims;
        let out = CudaStorage::alloc(self.device(), batch * m * n, dtype)?;
        if out.is_empty() {
            return Ok(out);
        }
        let fits = |v: usize| u32::try_from(v).is_ok();
        if !(fits(m) && fits(n) && fits(k) && fits(batch)) || m.div_ceil(TILE) > MAX_GRID_YZ {
            return Err(Error::shape(
                "matmul",
                format!("problem (batch {batch}, {m}x{k} · {k}x{n}) exceeds the CUDA GEMM's grid limits"),
            ));
        }
        let dev = self.device();
        let cfg = LaunchConfig {
            grid: (
                n.div_ceil(TILE) as u32,
                m.div_ceil(TILE) as u32,
                batch.min(MAX_GRID_YZ) as u32,
            ),
            block: (256, 1, 1),
            shared_bytes: 0,
        };
        let stride = |l: &Layout, d: usize| KernelArg::I64(l.strides[d] as i64);
        dev.launch(
            kernel,
            cfg,
            &[
                KernelArg::Ptr(self.ptr_at(ll.offset)),
                KernelArg::Ptr(rhs.ptr_at(rl.offset)),
                KernelArg::Ptr(out.ptr()),
                KernelArg::U32(m as u32),
                KernelArg::U32(n as u32),
                KernelArg::U32(k as u32),
                KernelArg::U32(batch as u32),
                stride(ll, 0),
                stride(ll, 1),
                stride(ll, 2),
                stride(rl, 0),
                stride(rl, 1),
                stride(rl, 2),
            ],
        )?;
        Ok(out)
    }
}
