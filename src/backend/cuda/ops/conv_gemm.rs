//! How `conv.rs` runs a convolution pass (conv.cuh's problems) on the device: which
//! implicit GEMM (the SIMT kernels of `kernels/conv.cu`, or the tensor-core ones of
//! `kernels/conv_tc.cu`), its tile grid and launch, the geometry the kernels read
//! (three `Dims`, checked to fit their 32-bit indices), operands made row-major or
//! channels-last, and the batch chunks of the weight gradient.

use super::ConvParams;
use crate::backend::cuda::runtime::device::CudaDevice;
use crate::backend::cuda::runtime::kernels::defines;
use crate::backend::cuda::runtime::kernels::KernelId;
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig};
use crate::backend::cuda::CudaStorage;
use crate::backend::BackendStorage;
use crate::shape::Layout;
use crate::{DType, Error, Result};
use std::sync::Arc;

/// Output tile of one SIMT implicit-GEMM block (CONV_BM = CONV_BN in conv.cu).
const TILE: usize = defines::CONV_BM;
/// Columns of a tensor-core block tile (CTC_BN in conv_tc.cu); its rows are 64 or 128.
const TC_COLS: usize = defines::CTC_BN;
/// Bytes of K per tile row and stage of a tensor-core block (CTC_SLICE_BYTES).
const TC_SLICE_BYTES: usize = defines::CTC_SLICE_BYTES;
/// Most blocks in grid y and z (the kernels loop over z beyond it).
const MAX_GRID_YZ: usize = 65_535;
/// Most batch chunks of the weight gradient: each costs a partial gradient in memory
/// and a term in the final sum, so past the point where the GPU is full they only cost.
pub(super) const MAX_CHUNKS: usize = 32;

/// The three implicit GEMMs of a convolution (conv.cuh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    Forward,
    /// The forward on channels-last operands (see [`channels_last`]); tensor cores only.
    ForwardNhwc,
    BackwardInput,
    /// The input gradient on a channels-last gradient (see [`channels_last`]); tensor
    /// cores only.
    BackwardInputNhwc,
    BackwardWeight,
}

impl Pass {
    /// The pass on channels-last operands (the forward and the input gradient have one).
    pub(super) fn channels_last(self) -> Pass {
        match self {
            Pass::Forward | Pass::ForwardNhwc => Pass::ForwardNhwc,
            Pass::BackwardInput | Pass::BackwardInputNhwc => Pass::BackwardInputNhwc,
            Pass::BackwardWeight => Pass::BackwardWeight,
        }
    }
}

/// The implicit GEMM that runs a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Gemm {
    /// conv.cu: exact FMAs on CUDA cores, 64x64 tiles.
    Simt,
    /// conv_tc.cu: mma.sync with f32 accumulation, `rows` x 128 tiles (rows 64 or 128).
    TensorCores { rows: usize },
}

/// Whether a convolution of `x` runs on tensor cores: its device has them (compute
/// capability >= 8.0: mma.sync), and the dtype is a half, or f32 with
/// `kiln::cuda::conv_allow_tf32` (TF32, like cuDNN's default). f64, exact f32 and
/// older GPUs take the SIMT kernels.
pub(super) fn tensor_cores_for(x: &CudaStorage) -> bool {
    x.cuda_device().has_tensor_cores()
        && match x.dtype() {
            DType::F16 | DType::BF16 => true,
            DType::F32 => crate::backend::cuda::runtime::config::conv_allow_tf32(),
            DType::F64 | DType::I64 | DType::U8 => false,
        }
}

impl Gemm {
    /// The GEMM of a pass with `m` rows per group. Tensor-core tiles have 64 rows when
    /// the GEMM has no more (layers with <= 64 channels: 128 would leave half of every
    /// tile empty), else 128 (each gathered B element feeds twice the MMAs).
    pub(super) fn choose(tensor_cores: bool, m: usize) -> Gemm {
        match tensor_cores {
            true if m <= 64 => Gemm::TensorCores { rows: 64 },
            true => Gemm::TensorCores { rows: 128 },
            false => Gemm::Simt,
        }
    }

    /// `(rows, columns)` of a block's tile of C.
    fn tile(self) -> (usize, usize) {
        match self {
            Gemm::Simt => (TILE, TILE),
            Gemm::TensorCores { rows } => (rows, TC_COLS),
        }
    }

    /// The kernel of `pass` in `dtype`.
    pub(super) fn kernel(self, pass: Pass, dtype: DType) -> Result<KernelId> {
        use KernelId as K;
        let family = match pass {
            Pass::Forward | Pass::ForwardNhwc => "conv_fwd",
            Pass::BackwardInput | Pass::BackwardInputNhwc => "conv_bwd_input",
            Pass::BackwardWeight => "conv_bwd_weight",
        };
        if self == Gemm::Simt {
            // `channels_last` never picks SIMT: its NC(D)HW kernels would misread the
            // converted operands.
            if matches!(pass, Pass::ForwardNhwc | Pass::BackwardInputNhwc) {
                return Err(Error::UnsupportedDType { op: family, dtype });
            }
            return KernelId::for_dtype(family, dtype);
        }
        Ok(match (pass, dtype) {
            (Pass::ForwardNhwc, DType::F32) => K::ConvTcFwdNhwcTf32,
            (Pass::ForwardNhwc, DType::F16) => K::ConvTcFwdNhwcF16,
            (Pass::ForwardNhwc, DType::BF16) => K::ConvTcFwdNhwcBf16,
            (Pass::Forward, DType::F32) => K::ConvTcFwdTf32,
            (Pass::Forward, DType::F16) => K::ConvTcFwdF16,
            (Pass::Forward, DType::BF16) => K::ConvTcFwdBf16,
            (Pass::BackwardInputNhwc, DType::F32) => K::ConvTcBwdInputNhwcTf32,
            (Pass::BackwardInputNhwc, DType::F16) => K::ConvTcBwdInputNhwcF16,
            (Pass::BackwardInputNhwc, DType::BF16) => K::ConvTcBwdInputNhwcBf16,
            (Pass::BackwardInput, DType::F32) => K::ConvTcBwdInputTf32,
            (Pass::BackwardInput, DType::F16) => K::ConvTcBwdInputF16,
            (Pass::BackwardInput, DType::BF16) => K::ConvTcBwdInputBf16,
            (Pass::BackwardWeight, DType::F32) => K::ConvTcBwdWeightTf32,
            (Pass::BackwardWeight, DType::F16) => K::ConvTcBwdWeightF16,
            (Pass::BackwardWeight, DType::BF16) => K::ConvTcBwdWeightBf16,
            _ => return Err(Error::UnsupportedDType { op: family, dtype }),
        })
    }

    /// The launch of `m` x `n` per group over `z` groups (x batch chunks, x stride
    /// phases): a block of 256 threads per tile; tensor-core blocks take the dynamic
    /// shared memory of two stages of their tiles (conv_tc.cu).
    pub(super) fn config(
        self,
        op: &'static str,
        m: usize,
        n: usize,
        z: usize,
    ) -> Result<LaunchConfig> {
        let (rows, cols) = self.tile();
        let (gx, gy) = (n.div_ceil(cols), m.div_ceil(rows));
        if gy > MAX_GRID_YZ || u32::try_from(gx).is_err() {
            return Err(Error::shape(
                op,
                format!("a {m}x{n} tile grid exceeds the CUDA grid limits"),
            ));
        }
        let (threads, shared_bytes) = match self {
            Gemm::Simt => (defines::CONV_THREADS, 0),
            Gemm::TensorCores { rows } => (
                defines::CTC_THREADS,
                (2 * (rows + TC_COLS) * TC_SLICE_BYTES) as u32,
            ),
        };
        Ok(LaunchConfig {
            grid: (gx as u32, gy as u32, z.clamp(1, MAX_GRID_YZ) as u32),
            block: (threads as u32, 1, 1),
            shared_bytes,
        })
    }

    /// Launches `pass` with the pass's arguments `args`, then the tile rows that the
    /// tensor-core kernels take last.
    pub(super) fn launch(
        self,
        dev: &Arc<CudaDevice>,
        pass: Pass,
        dtype: DType,
        cfg: LaunchConfig,
        args: &[KernelArg],
    ) -> Result<()> {
        let kernel = self.kernel(pass, dtype)?;
        match self {
            Gemm::Simt => dev.launch(kernel, cfg, args),
            Gemm::TensorCores { rows } => {
                let mut all = args.to_vec();
                all.push(KernelArg::I32(rows as i32));
                dev.launch(kernel, cfg, &all)
            }
        }
    }
}

/// Whether a pass of `p` in `dtype` by `gemm` whose K runs over `channels` per group
/// runs channels-last: on tensor cores, not depthwise, and with `channels` a multiple
/// of one 16-byte chunk (8 halves, 4 floats). The forward (`conv_tc_fwd_nhwc_*`,
/// `channels` = c_in / groups) orders K (taps, ci), so every chunk of the unfolded
/// input is consecutive channels of one input pixel and both operands (x and W
/// converted) arrive by whole-chunk cp.async copies. The input gradient
/// (`conv_tc_bwd_input_nhwc_*`, `channels` = c_out / groups) orders each stride
/// phase's K (phase taps, co), so every chunk of B is consecutive channels of one pixel
/// of gy (converted); A, W read transposed, stays gathered. The price is one
/// conversion per converted operand and call (from the caching allocator, freed
/// after); the gather it saves reads every element once per tap, one element per
/// load. The stem (3 channels) and other odd channel counts keep the NC(D)HW gather.
pub(super) fn channels_last(p: &ConvParams, gemm: Gemm, dtype: DType, channels: usize) -> bool {
    let chunk = 16 / dtype.size_in_bytes();
    matches!(gemm, Gemm::TensorCores { .. }) && !is_depthwise(p) && channels.is_multiple_of(chunk)
}

/// A copy of `s` seen through `l`, an (N, C, spatial..)-ordered layout of rank 3 to 5,
/// in (N, spatial.., C) order: x or gy to N(D)HWC, and W (co, ci, k..) to (co, k.., ci).
pub(super) fn to_channels_last(
    op: &'static str,
    s: &CudaStorage,
    l: &Layout,
) -> Result<CudaStorage> {
    let rank = l.shape.len();
    if !(3..=5).contains(&rank) || l.strides.len() != rank {
        return Err(Error::shape(
            op,
            format!("expected a layout of rank 3 to 5, got {:?}", l.shape),
        ));
    }
    let order: Vec<usize> = [0].into_iter().chain(2..rank).chain([1]).collect();
    let channels_last = Layout {
        shape: order.iter().map(|&d| l.shape[d]).collect(),
        strides: order.iter().map(|&d| l.strides[d]).collect(),
        offset: l.offset,
    };
    s.copy_as(&channels_last, s.dtype())
}

/// `Err(DTypeMismatch)` unless `got` is the op's dtype.
pub(super) fn same_dtype(op: &'static str, expected: DType, got: DType) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::DTypeMismatch { op, expected, got })
    }
}

/// True for a depthwise convolution (one input and one output channel per group),
/// which the direct kernels serve: there is no channel reduction to tile.
pub(super) fn is_depthwise(p: &ConvParams) -> bool {
    p.groups == p.c_in && p.groups == p.c_out
}

/// The geometry as the kernels' three `Dims` (`conv_geom` in conv.cuh), after checking
/// that every size, and every product the kernels index in 32 bits (tile rows and
/// columns, input rows reached through padding, stride and dilation), fits an `int`.
pub(super) fn geometry(op: &'static str, p: &ConvParams) -> Result<[KernelArg; 3]> {
    // The furthest input row an output row reaches along an axis, and past it.
    let reach = |a: usize| {
        p.output[a]
            .checked_mul(p.stride[a])
            .zip(p.kernel[a].checked_mul(p.dilation[a]))
            .and_then(|(o, k)| {
                o.checked_add(k)?
                    .checked_add(p.pad[a])?
                    .checked_add(p.input[a])
            })
    };
    let phases = p
        .stride
        .iter()
        .try_fold(p.groups, |acc, &s| acc.checked_mul(s));
    // Sizes of existing tensors cannot overflow; the reach through padding can.
    let checked = [
        Some(p.n),
        p.n.checked_mul(p.out_spatial()),
        p.n.checked_mul(p.in_spatial()),
        Some(p.col_rows()),
        p.c_out_per_group().checked_mul(p.taps()),
        p.groups.checked_mul(MAX_CHUNKS),
        phases,
        reach(0),
        reach(1),
        reach(2),
        Some(p.c_in.max(p.c_out)),
    ];
    if checked
        .iter()
        .any(|v| v.is_none_or(|v| i32::try_from(v).is_err()))
    {
        return Err(Error::shape(
            op,
            format!("{p:?} exceeds the CUDA conv kernels' 32-bit tile indices"),
        ));
    }
    let dims = |v: [usize; 8]| KernelArg::Dims(v.map(|x| x as u64));
    let ([d, h, w], [kd, kh, kw]) = (p.input, p.kernel);
    let ([sd, sh, sw], [pd, ph, pw], [dd, dh, dw]) = (p.stride, p.pad, p.dilation);
    let [od, oh, ow] = p.output;
    Ok([
        dims([p.n, p.c_in, h, w, p.c_out, kh, kw, p.groups]),
        dims([sh, sw, ph, pw, dh, dw, oh, ow]),
        dims([d, kd, sd, pd, dd, od, 0, 0]),
    ])
}

/// The kernel argument of an optional operand: its address, or null.
pub(super) fn optional_arg(d: &Option<Dense>) -> KernelArg {
    d.as_ref().map_or(KernelArg::Ptr(0), Dense::arg)
}

/// An operand in row-major order: the storage itself when its layout is contiguous,
/// else a contiguous copy (the tensor layer passes contiguous operands; this keeps a
/// strided one correct rather than misread).
pub(super) enum Dense<'a> {
    /// Contiguous storage and the offset of its first element.
    Borrowed(&'a CudaStorage, usize),
    /// A contiguous copy.
    Owned(CudaStorage),
}

impl<'a> Dense<'a> {
    /// `s` viewed through `l`, copied only when not contiguous.
    pub(super) fn new(s: &'a CudaStorage, l: &Layout) -> Result<Self> {
        Ok(if l.is_contiguous() {
            Dense::Borrowed(s, l.offset)
        } else {
            Dense::Owned(s.copy_as(l, s.dtype())?)
        })
    }

    /// The device address of the first element, as a kernel argument.
    pub(super) fn arg(&self) -> KernelArg {
        KernelArg::Ptr(match self {
            Dense::Borrowed(s, offset) => s.ptr_at(*offset),
            Dense::Owned(s) => s.ptr(),
        })
    }

    /// An optional operand (a bias), copied only when not contiguous.
    pub(super) fn optional(s: Option<(&'a CudaStorage, &Layout)>) -> Result<Option<Self>> {
        s.map(|(s, l)| Dense::new(s, l)).transpose()
    }
}

/// How the weight gradient splits the batch: `(images per chunk, chunks)`. Enough
/// chunks to give every multiprocessor two blocks of `gemm` when the tile grid alone
/// does not, at most [`MAX_CHUNKS`] and at most one per image; every chunk holds an
/// image unless the batch is empty.
pub(super) fn batch_chunks(p: &ConvParams, gemm: Gemm, sm_count: usize) -> (usize, usize) {
    let (rows, cols) = gemm.tile();
    let tiles = p.c_out_per_group().div_ceil(rows) * p.col_rows().div_ceil(cols) * p.groups;
    let wanted = (2 * sm_count)
        .div_ceil(tiles.max(1))
        .clamp(1, MAX_CHUNKS.min(p.n.max(1)));
    let per = p.n.div_ceil(wanted).max(1);
    (per, p.n.div_ceil(per).max(1))
}
