//! Launch of `kernels/linear.cu`: kiln's tiled, batched GEMM over strided operands
//! (tensor cores for f16/bf16).

use super::kernels::{KernelId, COMPUTE_CAP};
use super::launch::{KernelArg, LaunchConfig};
use super::storage::CudaStorage;
use crate::backend::MatmulDims;
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// Output tile of one block (GEMM_BM = GEMM_BN in linear.cu).
const TILE: usize = 64;
/// Output tile of one tensor-core block (TC_BM = TC_BN in linear.cu).
const TC_TILE: usize = 128;
/// Output tile of the large f32 kernel (BIG_BM = BIG_BN in linear.cu).
const BIG_TILE: usize = 128;
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
        let MatmulDims { batch, m, n, k } = dims;
        let sm = self.device().sm_count() as usize;
        // Tensor cores (WMMA) for halves when the PTX targets compute capability >= 8.0.
        let tensor_cores = COMPUTE_CAP >= 80;
        let (kernel, tile) = match dtype {
            // 128x128 tiles when they still give every multiprocessor a block.
            DType::F32 if m.div_ceil(BIG_TILE) * n.div_ceil(BIG_TILE) * batch >= sm => {
                (KernelId::GemmBigF32, BIG_TILE)
            }
            DType::F32 => (KernelId::GemmF32, TILE),
            DType::F64 => (KernelId::GemmF64, TILE),
            DType::F16 if tensor_cores => (KernelId::GemmTcF16, TC_TILE),
            DType::BF16 if tensor_cores => (KernelId::GemmTcBf16, TC_TILE),
            DType::F16 => (KernelId::GemmF16, TILE),
            DType::BF16 => (KernelId::GemmBf16, TILE),
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
        let out = CudaStorage::alloc(self.device(), batch * m * n, dtype)?;
        if out.is_empty() {
            return Ok(out);
        }
        let fits = |v: usize| u32::try_from(v).is_ok();
        if !(fits(m) && fits(n) && fits(k) && fits(batch)) || m.div_ceil(tile) > MAX_GRID_YZ {
            return Err(Error::shape(
                "matmul",
                format!("problem (batch {batch}, {m}x{k} · {k}x{n}) exceeds the CUDA GEMM's grid limits"),
            ));
        }
        let dev = self.device();
        let cfg = LaunchConfig {
            grid: (
                n.div_ceil(tile) as u32,
                m.div_ceil(tile) as u32,
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
