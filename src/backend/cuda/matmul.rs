//! Launch of `kernels/linear.cu`: kiln's tiled, batched GEMM over strided operands
//! (tensor cores for f16/bf16, and for f32 as TF32 when allowed; large f32 products
//! split over k when their tiles would not fill the device, with bias and ReLU fused
//! into the epilogue for `linear`), after cuBLASLt where the device uses it (`blas/`).

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
/// Dynamic shared memory of a tensor-core block (TC_SHARED_BYTES in linear.cu).
const TC_SHARED_BYTES: u32 = 3 * (128 + 128) * 64;
/// Output tile of the large f32 kernel (BIG_BM = BIG_BN in linear.cu).
const BIG_TILE: usize = 128;
/// k per pipeline step of the large f32 kernel (BIG_BK in linear.cu).
const BIG_BK: usize = 8;
/// Dynamic shared memory of a large-f32 block (BIG_SHARED_BYTES in linear.cu: two
/// stages of two 8 x 132 f32 tiles).
const BIG_SHARED_BYTES: u32 = 2 * 2 * 8 * 132 * 4;
/// Fewest k steps (of BIG_BK) a split-K part gets: shorter parts would spend more on
/// their partial's write and read than they save.
const MIN_SPLIT_STEPS: usize = 32;
/// Most split-K parts (workspace = parts × the output).
const MAX_SPLITS: usize = 16;
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
        // Tensor cores (mma.sync) for halves when the PTX targets compute capability
        // >= 8.0, and for f32 as TF32 when `set_matmul_allow_tf32(true)` allows it.
        self.gemm(
            ll,
            rhs,
            rl,
            dims,
            COMPUTE_CAP >= 80,
            crate::cuda::matmul_allow_tf32(),
        )
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
        let blas_act = match act {
            Activation::None => Act::None,
            Activation::Relu => Act::Relu,
            Activation::GeluTanh => Act::GeluTanh,
        };
        if let Some(out) = blas::matmul(self, ll, rhs, rl, dims, bias, blas_act)? {
            return Ok(Some(out));
        }
        // kiln's large f32 kernel adds the bias and applies ReLU in its epilogue; other
        // kernels and GELU leave it to the caller's separate ops.
        let relu = match act {
            Activation::None => false,
            Activation::Relu => true,
            Activation::GeluTanh => return Ok(None),
        };
        let tf32 = COMPUTE_CAP >= 80 && crate::cuda::matmul_allow_tf32();
        let sm = self.cuda_device().sm_count() as usize;
        match (self.dtype(), big_f32_splits(dims, sm)) {
            (DType::F32, Some(splits))
                if !tf32 && bias.is_none_or(|(b, _)| b.dtype() == DType::F32) =>
            {
                let ep = BigEpilogue { splits, bias, relu };
                self.gemm_big_f32(ll, rhs, rl, dims, ep).map(Some)
            }
            _ => Ok(None),
        }
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
    /// The product on the GPU, with or without the tensor-core kernels for halves;
    /// `tf32` (with `tensor_cores`) runs f32 products on tensor cores with TF32 inputs.
    pub(crate) fn gemm(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
        tensor_cores: bool,
        tf32: bool,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        if dtype != rhs.dtype() {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                expected: dtype,
                got: rhs.dtype(),
            });
        }
        let sm = self.cuda_device().sm_count() as usize;
        let (kernel, tile) = match dtype {
            DType::F32 if tensor_cores && tf32 => (KernelId::GemmTcTf32, TC_TILE),
            DType::F32 => match big_f32_splits(dims, sm) {
                Some(splits) => {
                    let ep = BigEpilogue {
                        splits,
                        bias: None,
                        relu: false,
                    };
                    return self.gemm_big_f32(ll, rhs, rl, dims, ep);
                }
                None => (KernelId::GemmF32, TILE),
            },
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
        check_problem(ll, rl, dims, tile)?;
        let MatmulDims { batch, m, n, k } = dims;
        let out = CudaStorage::alloc(self.cuda_device(), batch * m * n, dtype)?;
        if batch * m * n == 0 {
            return Ok(out);
        }
        let dev = self.cuda_device();
        let cfg = LaunchConfig {
            grid: (
                n.div_ceil(tile) as u32,
                m.div_ceil(tile) as u32,
                batch.min(MAX_GRID_YZ) as u32,
            ),
            block: (256, 1, 1),
            shared_bytes: if matches!(
                kernel,
                KernelId::GemmTcF16 | KernelId::GemmTcBf16 | KernelId::GemmTcTf32
            ) {
                TC_SHARED_BYTES
            } else {
                0
            },
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

    /// An f32 product by the large SIMT kernel (`gemm_big_f32`), split over k into
    /// `ep.splits` parts (partials in a workspace from the caching allocator, summed in
    /// a fixed order by `gemm_splitk_reduce_f32`), with the bias and ReLU applied on
    /// the way out.
    pub(crate) fn gemm_big_f32(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
        ep: BigEpilogue,
    ) -> Result<CudaStorage> {
        for got in [self.dtype(), rhs.dtype()] {
            if got != DType::F32 {
                return Err(Error::DTypeMismatch {
                    op: "matmul",
                    expected: DType::F32,
                    got,
                });
            }
        }
        check_problem(ll, rl, dims, BIG_TILE)?;
        let MatmulDims { batch, m, n, k } = dims;
        let dev = self.cuda_device();
        let total = batch * m * n;
        let out = CudaStorage::alloc(dev, total, DType::F32)?;
        if total == 0 {
            return Ok(out);
        }
        let splits = ep.splits.clamp(1, MAX_SPLITS);
        let part = (splits > 1)
            .then(|| CudaStorage::alloc(dev, splits * total, DType::F32))
            .transpose()?;
        let bias = KernelArg::Ptr(ep.bias.map_or(0, |(b, offset)| b.ptr_at(offset)));
        let relu = KernelArg::U32(ep.relu.into());
        let cfg = LaunchConfig {
            grid: (
                n.div_ceil(BIG_TILE) as u32,
                m.div_ceil(BIG_TILE) as u32,
                (batch * splits).min(MAX_GRID_YZ) as u32,
            ),
            block: (256, 1, 1),
            shared_bytes: BIG_SHARED_BYTES,
        };
        let stride = |l: &Layout, d: usize| KernelArg::I64(l.strides[d] as i64);
        dev.launch(
            KernelId::GemmBigF32,
            cfg,
            &[
                KernelArg::Ptr(self.ptr_at(ll.offset)),
                KernelArg::Ptr(rhs.ptr_at(rl.offset)),
                KernelArg::Ptr(part.as_ref().unwrap_or(&out).ptr()),
                bias,
                KernelArg::U32(m as u32),
                KernelArg::U32(n as u32),
                KernelArg::U32(k as u32),
                KernelArg::U32(batch as u32),
                KernelArg::U32(splits as u32),
                relu,
                stride(ll, 0),
                stride(ll, 1),
                stride(ll, 2),
                stride(rl, 0),
                stride(rl, 1),
                stride(rl, 2),
            ],
        )?;
        if let Some(part) = part {
            dev.launch(
                KernelId::GemmSplitkReduceF32,
                LaunchConfig::elementwise(total as u64, dev.sm_count()),
                &[
                    KernelArg::Ptr(part.ptr()),
                    KernelArg::Ptr(out.ptr()),
                    bias,
                    KernelArg::U64(total as u64),
                    KernelArg::U32(n as u32),
                    KernelArg::U32(splits as u32),
                    relu,
                ],
            )?;
        }
        Ok(out)
    }
}

/// The large f32 kernel's epilogue: split-K parts (1: none), and the bias (`n` f32
/// elements from the offset) and ReLU it applies.
#[derive(Clone, Copy)]
pub(crate) struct BigEpilogue<'a> {
    pub(crate) splits: usize,
    pub(crate) bias: Option<(&'a CudaStorage, usize)>,
    pub(crate) relu: bool,
}

/// Whether an f32 product runs on the large 128x128 kernel, and in how many split-K
/// parts; `None`: the 64x64 kernel. The rule, for `sm` multiprocessors and
/// T = batch · ⌈m/128⌉ · ⌈n/128⌉ output tiles:
/// - T ≥ sm: every multiprocessor gets a tile, no split (e.g. both backward GEMMs of
///   a 4096×1024×4096 linear: dW 1024×4096 is 8·32 = 256 tiles, dX 4096×1024 is 256
///   too, ≥ 132 on an H200);
/// - else split k into S = min(⌈sm/T⌉, steps/32, 16) parts (steps = ⌈k/8⌉), so the
///   grid fills the multiprocessors while each part keeps ≥ 256 of k;
/// - S = 1 there (k too short to split): the 64x64 kernel, whose 4x more tiles fill
///   the device better than an under-filled 128x128 grid.
fn big_f32_splits(dims: MatmulDims, sm: usize) -> Option<usize> {
    let MatmulDims { batch, m, n, k } = dims;
    let tiles = batch * m.div_ceil(BIG_TILE) * n.div_ceil(BIG_TILE);
    if tiles >= sm {
        return Some(1);
    }
    let splits = sm
        .div_ceil(tiles.max(1))
        .min(k.div_ceil(BIG_BK) / MIN_SPLIT_STEPS)
        .min(MAX_SPLITS);
    (splits > 1).then_some(splits)
}

/// The checks every GEMM launch makes: 3-D layouts, and sizes the grid (tiles of
/// `tile`) and the kernels' 32-bit sizes can take.
fn check_problem(ll: &Layout, rl: &Layout, dims: MatmulDims, tile: usize) -> Result<()> {
    if ll.shape.len() != 3 || rl.shape.len() != 3 {
        return Err(Error::shape(
            "matmul",
            "the backend takes 3-D (batch, rows, cols) layouts",
        ));
    }
    let MatmulDims { batch, m, n, k } = dims;
    let fits = |v: usize| u32::try_from(v).is_ok();
    if !(fits(m) && fits(n) && fits(k) && fits(batch)) || m.div_ceil(tile) > MAX_GRID_YZ {
        return Err(Error::shape(
            "matmul",
            format!(
                "problem (batch {batch}, {m}x{k} · {k}x{n}) exceeds the CUDA GEMM's grid limits"
            ),
        ));
    }
    Ok(())
}

/// The tiled f16/bf16 kernels serve GPUs below compute capability 8.0, so a build for
/// 8.0 never launches them: run them here on the emulated device, against the CPU; and
/// the tensor-core kernels' transposed-operand paths, which need aligned shapes.
#[cfg(all(test, feature = "cuda-emulator"))]
mod tests {
    use super::*;
    use crate::backend::cpu::CpuStorage;
    use crate::backend::cuda::device::CudaDevice;
    use crate::backend::cuda::emulator;
    use crate::backend::BackendStorage;
    use half::{bf16, f16};
    use std::sync::Arc;

    /// A (batch, rows, cols) operand, row-major or stored transposed.
    fn layout(batch: usize, rows: usize, cols: usize, transposed: bool) -> Layout {
        Layout {
            shape: vec![batch, rows, cols],
            strides: if transposed {
                vec![rows * cols, 1, rows]
            } else {
                vec![rows * cols, cols, 1]
            },
            offset: 0,
        }
    }

    /// The f16 and bf16 products of `al` · `bl` by `gemm` (with or without tensor cores)
    /// match the CPU's, and `kernels` ran.
    fn halves_match_the_cpu(
        dev: &Arc<CudaDevice>,
        al: &Layout,
        bl: &Layout,
        tensor_cores: bool,
        kernels: [&str; 2],
    ) {
        let [batch, m, k] = al.shape[..] else {
            unreachable!("3-D")
        };
        let n = bl.shape[2];
        let dims = MatmulDims { batch, m, n, k };
        let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 25.0;
        let a: Vec<f32> = (0..al.numel()).map(value).collect();
        let b: Vec<f32> = (0..bl.numel()).map(|i| value(i + 7)).collect();
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
                .matmul(al, &cb, bl, dims)
                .unwrap()
                .convert(DType::F32)
                .unwrap();
            let ga = CudaStorage::from_cpu(dev, &ca).unwrap();
            let gb = CudaStorage::from_cpu(dev, &cb).unwrap();
            let got = ga.gemm(al, &gb, bl, dims, tensor_cores, false).unwrap();
            let got = got
                .to_cpu(&Layout::contiguous(&[batch, m, n]))
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
                    "{al:?} · {bl:?}, bf16 {bf}, element {i}: {g} vs {w}"
                );
            }
        }
        let counts = emulator::launch_counts();
        for name in kernels {
            assert!(
                counts.iter().any(|&(k, n)| k == name && n > 0),
                "{name} ran"
            );
        }
    }

    fn device() -> Arc<CudaDevice> {
        let (exec, mem) = emulator::open();
        Arc::new(CudaDevice::new(0, Box::new(exec), Box::new(mem)))
    }

    #[test]
    fn the_non_tensor_core_half_kernels_match_the_cpu() {
        // (batch 2, 70 x 33) · (33 x 65): partial tiles; B transposed (strided).
        halves_match_the_cpu(
            &device(),
            &layout(2, 70, 33, false),
            &layout(2, 33, 65, true),
            false,
            ["gemm_f16", "gemm_bf16"],
        );
    }

    /// Transposed views (A m-contiguous, B k-contiguous) staged transposed and read by
    /// the opposite ldmatrix: aligned (whole 16-byte chunks) and misaligned (element
    /// loads), mixed with the plain layouts, partial tiles and k tails.
    #[test]
    fn the_tensor_core_half_kernels_match_the_cpu_for_transposed_operands() {
        let dev = device();
        // (batch, m, k, n, A transposed, B transposed)
        for (batch, m, k, n, at, bt) in [
            (2, 136, 72, 264, true, true),
            (1, 130, 70, 65, true, true),
            (1, 136, 72, 130, false, true),
            (2, 129, 40, 136, true, false),
        ] {
            halves_match_the_cpu(
                &dev,
                &layout(batch, m, k, at),
                &layout(batch, k, n, bt),
                true,
                ["gemm_tc_f16", "gemm_tc_bf16"],
            );
        }
    }
}

#[cfg(all(test, feature = "cuda-emulator"))]
#[path = "matmul_tf32_tests.rs"]
mod tf32_tests;

#[cfg(all(test, feature = "cuda-emulator"))]
#[path = "matmul_big_tests.rs"]
mod big_tests;
