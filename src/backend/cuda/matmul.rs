//! Launch of `kernels/linear.cu`: kiln's tiled, batched GEMM over strided operands
//! (tensor cores for f16/bf16), after cuBLASLt where the device uses it (`blas/`).

use super::blas::{self, Act};
use super::kernels::{KernelId, COMPUTE_CAP};
use super::launch::{KernelArg, LaunchConfig};
use super::storage::CudaStorage;
use crate::backend::{Activation, MatmulDims, MatmulOps};
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

impl MatmulOps for CudaStorage {
    fn matmul(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
    ) -> Result<CudaStorage> {
        if let Some(out) = blas::matmul(self, ll, rhs, rl, dims, None, Act::None)? {
            return Ok(out);
        }
        // Tensor cores (WMMA) for halves when the PTX targets compute capability >= 8.0.
        self.gemm(ll, rhs, rl, dims, COMPUTE_CAP >= 80)
    }

    fn matmul_epilogue(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
        bias: Option<(&CudaStorage, usize)>,
        act: Activation,
    ) -> Result<Option<CudaStorage>> {
        let act = match act {
            Activation::None => Act::None,
            Activation::Relu => Act::Relu,
            Activation::GeluTanh => Act::GeluTanh,
        };
        blas::matmul(self, ll, rhs, rl, dims, bias, act)
    }

    fn matmul_bias_grad(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
    ) -> Result<Option<(CudaStorage, CudaStorage)>> {
        blas::matmul_bias_grad(self, ll, rhs, rl, dims)
    }
}

impl CudaStorage {
    /// The product on the GPU, with or without the tensor-core kernels for halves.
    pub(crate) fn gemm(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        if dtype != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                expected: dtype,
                got: rhs.dtype(),
            });
        }
        let MatmulDims { batch, m, n, k } = dims;
        let sm = self.cuda_device().sm_count() as usize;
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
        let out = CudaStorage::alloc(self.cuda_device(), batch * m * n, dtype)?;
        if batch * m * n == 0 {
            return Ok(out);
        }
        let fits = |v: usize| u32::try_from(v).is_ok();
        if !(fits(m) && fits(n) && fits(k) && fits(batch)) || m.div_ceil(tile) > MAX_GRID_YZ {
            return Err(Error::shape(
                "matmul",
                format!("problem (batch {batch}, {m}x{k} · {k}x{n}) exceeds the CUDA GEMM's grid limits"),
            ));
        }
        let dev = self.cuda_device();
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

/// The tiled f16/bf16 kernels serve GPUs below compute capability 8.0, so a build for
/// 8.0 never launches them: run them here on the emulated device, against the CPU.
#[cfg(all(test, feature = "cuda-emulator"))]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuStorage;
    use crate::backend::cuda::device::CudaDevice;
    use crate::backend::cuda::emulator;
    use crate::backend::BackendStorage;
    use half::{bf16, f16};
    use std::sync::Arc;

    #[test]
    fn the_non_tensor_core_half_kernels_match_the_cpu() {
        let (exec, mem) = emulator::open();
        let dev = Arc::new(CudaDevice::new(0, Box::new(exec), Box::new(mem)));
        // (batch 2, 70 x 33) · (33 x 65): partial tiles; B transposed (strided).
        let dims = MatmulDims {
            batch: 2,
            m: 70,
            n: 65,
            k: 33,
        };
        let al = Layout::contiguous(&[2, 70, 33]);
        let bl = Layout {
            shape: vec![2, 33, 65],
            strides: vec![65 * 33, 1, 33],
            offset: 0,
        };
        let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 25.0;
        let a: Vec<f32> = (0..al.numel()).map(value).collect();
        let b: Vec<f32> = (0..2 * 65 * 33).map(|i| value(i + 7)).collect();
        let halves = |v: &[f32], bf: bool| {
            if bf {
                CpuStorage::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect())
            } else {
                CpuStorage::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
            }
        };
        for bf in [false, true] {
            let (ca, cb) = (halves(&a, bf), halves(&b, bf));
            let want = ca
                .matmul(&al, &cb, &bl, dims)
                .unwrap()
                .convert(DType::F32)
                .unwrap();
            let ga = CudaStorage::from_cpu(&dev, &ca).unwrap();
            let gb = CudaStorage::from_cpu(&dev, &cb).unwrap();
            let got = ga.gemm(&al, &gb, &bl, dims, false).unwrap();
            let got = got
                .to_cpu(&Layout::contiguous(&[2, 70, 65]))
                .unwrap()
                .convert(DType::F32)
                .unwrap();
            let (CpuStorage::F32(got), CpuStorage::F32(want)) = (got, want) else {
                unreachable!("converted to f32")
            };
            let tol = if bf { 3e-2 } else { 4e-3 };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * (1.0 + w.abs()),
                    "bf16 {bf}, element {i}: {g} vs {w}"
                );
            }
        }
        let counts = emulator::launch_counts();
        for name in ["gemm_f16", "gemm_bf16"] {
            assert!(
                counts.iter().any(|&(k, n)| k == name && n > 0),
                "{name} ran"
            );
        }
    }
}
