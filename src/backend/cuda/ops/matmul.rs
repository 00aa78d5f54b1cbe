//! Launch of `kernels/matmul.cu`: kiln's tiled, batched GEMM over strided operands
//! (tensor cores for f16/bf16, and for f32 as TF32 when allowed; a warp-tiled SIMT
//! kernel for large f32 products), after cuBLASLt where the device uses it (`blas/`).
//! Products whose 128x128 tiles would not fill the device are split over k; bias and
//! activation (`linear`'s fused epilogue) are applied by the kernels on the way out.

use super::{Activation, MatmulDims, MatmulOps};
use crate::backend::cuda::runtime::blas::{self, Act};
use crate::backend::cuda::runtime::device::CudaDevice;
use crate::backend::cuda::runtime::kernels::defines;
use crate::backend::cuda::runtime::kernels::{code_of, KernelId};
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};

/// Output tile of one block (square: GEMM_BN = GEMM_BM).
const TILE: usize = defines::GEMM_BM;
/// Output tile of the tensor-core and the large f32 kernels (square, and the same for
/// both: TC_BN = TC_BM = BIG_BM = BIG_BN).
const BIG_TILE: usize = defines::TC_BM;
/// Dynamic shared memory of a tensor-core block.
const TC_SHARED_BYTES: u32 = defines::TC_SHARED_BYTES as u32;
/// Dynamic shared memory of a large-f32 block (two stages of two tiles).
const BIG_SHARED_BYTES: u32 = defines::BIG_SHARED_BYTES as u32;
const _: () = assert!(
    defines::GEMM_BN == TILE
        && defines::TC_BN == BIG_TILE
        && defines::BIG_BM == BIG_TILE
        && defines::BIG_BN == BIG_TILE
);
/// Least k a split-K part gets: shorter parts would spend more on their partial's
/// write and read than they save.
const MIN_SPLIT_K: usize = 256;
/// Most split-K parts (workspace = parts × the output, in f32).
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
        let kernels = Kernels::for_device(self.cuda_device());
        self.gemm(ll, rhs, rl, dims, kernels, Epilogue::default())
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
        // kiln's kernels add the bias and apply the activation on the way out.
        if bias.is_some_and(|(b, _)| b.dtype() != self.dtype()) {
            return Ok(None);
        }
        let ep = Epilogue {
            splits: None,
            bias,
            act,
        };
        let kernels = Kernels::for_device(self.cuda_device());
        self.gemm(ll, rhs, rl, dims, kernels, ep).map(Some)
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

/// Which of kiln's GEMM kernels a product may use.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernels {
    /// Tensor cores (mma.sync) for halves.
    pub(crate) tensor_cores: bool,
    /// With `tensor_cores`: f32 products on tensor cores with TF32 inputs.
    pub(crate) tf32: bool,
}

impl Kernels {
    /// Tensor cores when the device has them (compute capability >= 8.0), TF32 when
    /// `set_matmul_allow_tf32(true)` allows it.
    fn for_device(device: &CudaDevice) -> Self {
        Kernels {
            tensor_cores: device.has_tensor_cores(),
            tf32: crate::backend::cuda::runtime::config::matmul_allow_tf32(),
        }
    }
}

/// What a GEMM does besides the product: split-K parts (`None`: the rule of
/// [`split_k`]; forced values serve tests), and the bias (`n` elements from the
/// offset, the product's dtype) and activation applied on the way out.
#[derive(Clone, Copy)]
pub(crate) struct Epilogue<'a> {
    pub(crate) splits: Option<usize>,
    pub(crate) bias: Option<(&'a CudaStorage, usize)>,
    pub(crate) act: Activation,
}

impl Default for Epilogue<'_> {
    /// The plain product.
    fn default() -> Self {
        Epilogue {
            splits: None,
            bias: None,
            act: Activation::None,
        }
    }
}

/// The kernel family a product runs on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Family {
    /// 64x64 tiles, any dtype (`gemm_*`).
    Small,
    /// 128x128 tiles with split-K: the f32 SIMT kernel or the tensor cores.
    Big,
}

impl CudaStorage {
    /// The product on the GPU by kiln's kernels, with the `ep` epilogue.
    pub(crate) fn gemm(
        &self,
        ll: &Layout,
        rhs: &CudaStorage,
        rl: &Layout,
        dims: MatmulDims,
        kernels: Kernels,
        ep: Epilogue,
    ) -> Result<CudaStorage> {
        let dtype = self.dtype();
        for got in [rhs.dtype()]
            .into_iter()
            .chain(ep.bias.map(|(b, _)| b.dtype()))
        {
            if got != dtype {
                return Err(Error::DTypeMismatch {
                    op: "matmul",
                    expected: dtype,
                    got,
                });
            }
        }
        let dev = self.cuda_device();
        let (kernel, splits) = choose(dtype, dims, kernels, ep.splits, dev.sm_count() as usize)?;
        let family = if splits.is_some() {
            Family::Big
        } else {
            Family::Small
        };
        let tile = if family == Family::Big {
            BIG_TILE
        } else {
            TILE
        };
        check_problem(ll, rl, dims, tile)?;
        let MatmulDims { batch, m, n, k } = dims;
        let total = batch * m * n;
        let out = CudaStorage::alloc(dev, total, dtype)?;
        if total == 0 {
            return Ok(out);
        }
        let splits = splits.unwrap_or(1).clamp(1, MAX_SPLITS);
        // f32 partials of the split-K parts, from the caching allocator.
        let part = (splits > 1)
            .then(|| CudaStorage::alloc(dev, splits * total, DType::F32))
            .transpose()?;
        let bias = KernelArg::Ptr(ep.bias.map_or(0, |(b, offset)| b.ptr_at(offset)));
        let act = KernelArg::U32(code_of(
            "ActCode",
            match ep.act {
                Activation::None => "none",
                Activation::Relu => "relu",
                Activation::GeluTanh => "gelu_tanh",
            },
        )?);
        let mut args = vec![
            KernelArg::Ptr(self.ptr_at(ll.offset)),
            KernelArg::Ptr(rhs.ptr_at(rl.offset)),
            KernelArg::Ptr(out.ptr()),
        ];
        if family == Family::Big {
            let part = KernelArg::Ptr(part.as_ref().map_or(0, |p| p.ptr()));
            args.extend([part, bias, KernelArg::U32(splits as u32), act]);
        } else {
            args.extend([bias, act]);
        }
        args.extend([m, n, k, batch].map(|v| KernelArg::U32(v as u32)));
        for l in [ll, rl] {
            args.extend(l.strides.iter().map(|&s| KernelArg::I64(s as i64)));
        }
        let cfg = LaunchConfig {
            grid: (
                n.div_ceil(tile) as u32,
                m.div_ceil(tile) as u32,
                (batch * splits).min(MAX_GRID_YZ) as u32,
            ),
            block: (256, 1, 1),
            shared_bytes: match kernel {
                KernelId::GemmBigF32 => BIG_SHARED_BYTES,
                _ if family == Family::Big => TC_SHARED_BYTES,
                _ => 0,
            },
        };
        dev.launch(kernel, cfg, &args)?;
        if let Some(part) = part {
            let reduce = match dtype {
                DType::F16 => KernelId::GemmSplitkReduceF16,
                DType::BF16 => KernelId::GemmSplitkReduceBf16,
                _ => KernelId::GemmSplitkReduceF32,
            };
            dev.launch_grid_stride(
                reduce,
                total,
                &[
                    KernelArg::Ptr(part.ptr()),
                    KernelArg::Ptr(out.ptr()),
                    bias,
                    KernelArg::U64(total as u64),
                    KernelArg::U32(n as u32),
                    KernelArg::U32(splits as u32),
                    act,
                ],
            )?;
        }
        Ok(out)
    }
}

/// The kernel for a product and, for the 128x128 kernels, its split-K parts (`forced`,
/// or [`split_k`]'s); `None`: a 64x64 kernel. f32 takes the large SIMT kernel when its
/// tiles fill the device or k is long enough to split (else the 64x64 kernel, whose
/// 4x more tiles fill it better); halves always take the tensor cores where allowed.
fn choose(
    dtype: DType,
    dims: MatmulDims,
    kernels: Kernels,
    forced: Option<usize>,
    sm: usize,
) -> Result<(KernelId, Option<usize>)> {
    let MatmulDims { batch, m, n, k } = dims;
    let tiles = batch * m.div_ceil(BIG_TILE) * n.div_ceil(BIG_TILE);
    let splits = forced.unwrap_or_else(|| split_k(tiles, k, sm));
    let tc = kernels.tensor_cores;
    Ok(match dtype {
        DType::F32 if tc && kernels.tf32 => (KernelId::GemmTcTf32, Some(splits)),
        DType::F32 if forced.is_some() || tiles >= sm || splits > 1 => {
            (KernelId::GemmBigF32, Some(splits))
        }
        DType::F16 if tc => (KernelId::GemmTcF16, Some(splits)),
        DType::BF16 if tc => (KernelId::GemmTcBf16, Some(splits)),
        DType::F32 => (KernelId::GemmF32, None),
        DType::F64 => (KernelId::GemmF64, None),
        DType::F16 => (KernelId::GemmF16, None),
        DType::BF16 => (KernelId::GemmBf16, None),
        DType::I64 | DType::U8 => {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype,
            })
        }
    })
}

/// Split-K parts for `tiles` 128x128 output tiles over `sm` multiprocessors:
/// - tiles ≥ sm: every multiprocessor has a tile, no split (e.g. a linear of 4096
///   rows, 1024 in, 4096 out on an H200's 132: the backward dW (4096×1024) and dX
///   (4096×1024), k = 4096, are 32·8 = 256 tiles each, two waves of one block per
///   multiprocessor, the second 124/132 full; the forward 4096×4096 is 1024);
/// - else min(⌈sm/tiles⌉, k/256, 16) parts (at least 1): enough to fill the device
///   while each part keeps ≥ 256 of k.
fn split_k(tiles: usize, k: usize, sm: usize) -> usize {
    if tiles >= sm {
        return 1;
    }
    sm.div_ceil(tiles.max(1))
        .min(k / MIN_SPLIT_K)
        .clamp(1, MAX_SPLITS)
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
    use crate::backend::cuda::runtime::emulator;
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

    /// The f16 and bf16 products of `al` · `bl` by `gemm` (with or without tensor cores;
    /// `splits` forced or not; with `bias_relu`, a bias and ReLU in the epilogue) match
    /// the CPU's, and `kernels` ran.
    fn halves_match_the_cpu(
        dev: &Arc<CudaDevice>,
        (al, bl): (&Layout, &Layout),
        tensor_cores: bool,
        (splits, bias_relu): (Option<usize>, bool),
        kernels: &[&str],
    ) {
        let [batch, m, k] = al.shape[..] else {
            unreachable!("3-D")
        };
        let n = bl.shape[2];
        let dims = MatmulDims { batch, m, n, k };
        let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 25.0;
        let a: Vec<f32> = (0..al.numel()).map(value).collect();
        let b: Vec<f32> = (0..bl.numel()).map(|i| value(i + 7)).collect();
        let bias: Vec<f32> = (0..n).map(|i| value(i + 3)).collect();
        let halves = |v: &[f32], bf: bool| {
            if bf {
                CpuStorage::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect())
            } else {
                CpuStorage::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
            }
        };
        for bf in [false, true] {
            let (ca, cb, cbias) = (halves(&a, bf), halves(&b, bf), halves(&bias, bf));
            let want = ca
                .matmul(al, &cb, bl, dims)
                .unwrap()
                .convert(DType::F32)
                .unwrap();
            let ga = CudaStorage::from_cpu(dev, &ca).unwrap();
            let gb = CudaStorage::from_cpu(dev, &cb).unwrap();
            let gbias = CudaStorage::from_cpu(dev, &cbias).unwrap();
            let kernels = Kernels {
                tensor_cores,
                tf32: false,
            };
            let ep = Epilogue {
                splits,
                bias: bias_relu.then_some((&gbias, 0)),
                act: if bias_relu {
                    Activation::Relu
                } else {
                    Activation::None
                },
            };
            let got = ga.gemm(al, &gb, bl, dims, kernels, ep).unwrap();
            let got = got
                .to_cpu(&Layout::contiguous(&[batch, m, n]))
                .unwrap()
                .convert(DType::F32)
                .unwrap();
            let (CpuStorage::F32(got), CpuStorage::F32(mut want), CpuStorage::F32(bias)) =
                (got, want, cbias.convert(DType::F32).unwrap())
            else {
                unreachable!("converted to f32")
            };
            if bias_relu {
                for (i, w) in want.iter_mut().enumerate() {
                    *w = (*w + bias[i % n]).max(0.0);
                }
            }
            let tol = if bf { 3e-2 } else { 4e-3 };
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * (1.0 + w.abs()),
                    "{al:?} · {bl:?}, bf16 {bf}, element {i}: {g} vs {w}"
                );
            }
        }
        let counts = emulator::launch_counts();
        for &name in kernels {
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
        let (al, bl) = (layout(2, 70, 33, false), layout(2, 33, 65, true));
        let kernels = ["gemm_f16", "gemm_bf16"];
        for bias_relu in [false, true] {
            halves_match_the_cpu(&device(), (&al, &bl), false, (None, bias_relu), &kernels);
        }
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
            let (al, bl) = (layout(batch, m, k, at), layout(batch, k, n, bt));
            let kernels = ["gemm_tc_f16", "gemm_tc_bf16"];
            halves_match_the_cpu(&dev, (&al, &bl), true, (None, false), &kernels);
        }
    }

    /// Split-K on the tensor cores (f32 partials summed by the f16/bf16 reductions) and
    /// the bias + ReLU epilogue, with and without splitting; k tails (200 = 6·32 + 8
    /// split in 3 uneven parts).
    #[test]
    fn the_tensor_core_half_kernels_split_k_and_apply_the_epilogue() {
        let dev = device();
        let (al, bl) = (layout(2, 130, 200, false), layout(2, 200, 70, true));
        let reductions = ["gemm_splitk_reduce_f16", "gemm_splitk_reduce_bf16"];
        for (splits, bias_relu) in [(1, true), (3, false), (3, true)] {
            let ran = if splits > 1 { &reductions[..] } else { &[] };
            halves_match_the_cpu(&dev, (&al, &bl), true, (Some(splits), bias_relu), ran);
        }
    }
}

#[cfg(all(test, feature = "cuda-emulator"))]
#[path = "matmul_tf32_tests.rs"]
mod tf32_tests;

#[cfg(all(test, feature = "cuda-emulator"))]
#[path = "matmul_big_tests.rs"]
mod big_tests;
