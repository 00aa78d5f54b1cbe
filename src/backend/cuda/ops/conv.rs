//! Launch of `kernels/conv.cu` and `kernels/conv_tc.cu`: 2-D convolution on the
//! device — implicit GEMMs per channel group for the forward pass and both gradients
//! (the weight gradient split over chunks of the batch into partial buffers, then
//! summed in order: deterministic), on tensor cores (mma.sync) for halves and for f32
//! as TF32 when `kiln::cuda::conv_allow_tf32` allows it, else on CUDA cores; the
//! tensor-core forward and input gradient channels-last when the channels allow it
//! (`channels_last`);
//! and direct kernels for depthwise convolutions (groups == c_in == c_out).

use super::{Conv2dParams, ConvOps};
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
const MAX_CHUNKS: usize = 32;

/// The three implicit GEMMs of a convolution (conv.cuh).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Forward,
    /// The forward on channels-last operands (see [`channels_last`]); tensor cores only.
    ForwardNhwc,
    BackwardInput,
    /// The input gradient on a channels-last gradient (see [`channels_last`]); tensor
    /// cores only.
    BackwardInputNhwc,
    BackwardWeight,
}

/// The implicit GEMM that runs a pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gemm {
    /// conv.cu: exact FMAs on CUDA cores, 64x64 tiles.
    Simt,
    /// conv_tc.cu: mma.sync with f32 accumulation, `rows` x 128 tiles (rows 64 or 128).
    TensorCores { rows: usize },
}

/// Whether a convolution of `x` runs on tensor cores: its device has them (compute
/// capability >= 8.0: mma.sync), and the dtype is a half, or f32 with
/// `kiln::cuda::conv_allow_tf32` (TF32, like cuDNN's default). f64, exact f32 and
/// older GPUs take the SIMT kernels.
fn tensor_cores_for(x: &CudaStorage) -> bool {
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
    fn choose(tensor_cores: bool, m: usize) -> Gemm {
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
    fn kernel(self, pass: Pass, dtype: DType) -> Result<KernelId> {
        use KernelId as K;
        let family = match pass {
            Pass::Forward | Pass::ForwardNhwc => "conv2d_fwd",
            Pass::BackwardInput | Pass::BackwardInputNhwc => "conv2d_bwd_input",
            Pass::BackwardWeight => "conv2d_bwd_weight",
        };
        if self == Gemm::Simt {
            // `channels_last` never picks SIMT: its NCHW kernels would misread the
            // converted operands.
            if matches!(pass, Pass::ForwardNhwc | Pass::BackwardInputNhwc) {
                return Err(Error::UnsupportedDType { op: family, dtype });
            }
            return KernelId::for_dtype(family, dtype);
        }
        Ok(match (pass, dtype) {
            (Pass::ForwardNhwc, DType::F32) => K::Conv2dTcFwdNhwcTf32,
            (Pass::ForwardNhwc, DType::F16) => K::Conv2dTcFwdNhwcF16,
            (Pass::ForwardNhwc, DType::BF16) => K::Conv2dTcFwdNhwcBf16,
            (Pass::Forward, DType::F32) => K::Conv2dTcFwdTf32,
            (Pass::Forward, DType::F16) => K::Conv2dTcFwdF16,
            (Pass::Forward, DType::BF16) => K::Conv2dTcFwdBf16,
            (Pass::BackwardInputNhwc, DType::F32) => K::Conv2dTcBwdInputNhwcTf32,
            (Pass::BackwardInputNhwc, DType::F16) => K::Conv2dTcBwdInputNhwcF16,
            (Pass::BackwardInputNhwc, DType::BF16) => K::Conv2dTcBwdInputNhwcBf16,
            (Pass::BackwardInput, DType::F32) => K::Conv2dTcBwdInputTf32,
            (Pass::BackwardInput, DType::F16) => K::Conv2dTcBwdInputF16,
            (Pass::BackwardInput, DType::BF16) => K::Conv2dTcBwdInputBf16,
            (Pass::BackwardWeight, DType::F32) => K::Conv2dTcBwdWeightTf32,
            (Pass::BackwardWeight, DType::F16) => K::Conv2dTcBwdWeightF16,
            (Pass::BackwardWeight, DType::BF16) => K::Conv2dTcBwdWeightBf16,
            _ => return Err(Error::UnsupportedDType { op: family, dtype }),
        })
    }

    /// The launch of `m` x `n` per group over `z` groups (x batch chunks): a block of
    /// 256 threads per tile; tensor-core blocks take the dynamic shared memory of two
    /// stages of their tiles (conv_tc.cu).
    fn config(self, op: &'static str, m: usize, n: usize, z: usize) -> Result<LaunchConfig> {
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
    fn launch(
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
/// of one 16-byte chunk (8 halves, 4 floats). The forward (`conv2d_tc_fwd_nhwc_*`,
/// `channels` = c_in / groups) orders K (ky, kx, ci), so every chunk of the unfolded
/// input is consecutive channels of one input pixel and both operands (x and W
/// converted) arrive by whole-chunk cp.async copies. The input gradient
/// (`conv2d_tc_bwd_input_nhwc_*`, `channels` = c_out / groups) orders each stride
/// phase's K (phase tap y, phase tap x, co), so every chunk of B is consecutive
/// channels of one pixel of gy (converted); A, W read transposed, stays gathered. The
/// price is one conversion per converted operand and call (from the caching allocator,
/// freed after); the gather it saves reads every element once per tap, one element per
/// load. The stem (3 channels) and other odd channel counts keep the NCHW gather.
fn channels_last(p: &Conv2dParams, gemm: Gemm, dtype: DType, channels: usize) -> bool {
    let chunk = 16 / dtype.size_in_bytes();
    matches!(gemm, Gemm::TensorCores { .. }) && !is_depthwise(p) && channels.is_multiple_of(chunk)
}

/// A copy of `s` seen through `l`, an (N, C, H, W)-ordered 4-D layout, in (N, H, W, C)
/// order: x or gy to NHWC, and W (co, ci, kh, kw) to (co, kh, kw, ci).
fn to_channels_last(op: &'static str, s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    if l.shape.len() != 4 || l.strides.len() != 4 {
        return Err(Error::shape(
            op,
            format!("expected a 4-D layout, got {:?}", l.shape),
        ));
    }
    let order = [0, 2, 3, 1];
    let nhwc = Layout {
        shape: order.iter().map(|&d| l.shape[d]).collect(),
        strides: order.iter().map(|&d| l.strides[d]).collect(),
        offset: l.offset,
    };
    s.copy_as(&nhwc, s.dtype())
}

/// `Err(DTypeMismatch)` unless `got` is the op's dtype.
fn same_dtype(op: &'static str, expected: DType, got: DType) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::DTypeMismatch { op, expected, got })
    }
}

/// True for a depthwise convolution (one input and one output channel per group),
/// which the direct kernels serve: there is no channel reduction to tile.
fn is_depthwise(p: &Conv2dParams) -> bool {
    p.groups == p.c_in && p.groups == p.c_out
}

/// The geometry as the kernels' two `Dims` (`conv_geom` in conv.cuh), after checking
/// that every size, and every product the kernels index in 32 bits (tile rows and
/// columns, input rows reached through padding, stride and dilation), fits an `int`.
fn geometry(op: &'static str, p: &Conv2dParams) -> Result<[KernelArg; 2]> {
    let reach = |out: usize, stride: usize, k: usize, dil: usize, pad: usize, size: usize| {
        out.checked_mul(stride)
            .zip(k.checked_mul(dil))
            .and_then(|(a, b)| a.checked_add(b)?.checked_add(pad)?.checked_add(size))
    };
    // Sizes of existing tensors cannot overflow; the reach through padding can.
    let checked = [
        Some(p.n),
        p.n.checked_mul(p.out_plane()),
        p.n.checked_mul(p.h * p.w),
        p.h.checked_mul(p.w),
        p.col_rows().checked_mul(1),
        p.c_out_per_group().checked_mul(p.kh * p.kw),
        p.groups.checked_mul(MAX_CHUNKS),
        p.groups
            .checked_mul(p.stride_h)
            .and_then(|v| v.checked_mul(p.stride_w)),
        reach(p.out_h, p.stride_h, p.kh, p.dilation_h, p.pad_top, p.h),
        reach(p.out_w, p.stride_w, p.kw, p.dilation_w, p.pad_left, p.w),
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
    Ok([
        dims([p.n, p.c_in, p.h, p.w, p.c_out, p.kh, p.kw, p.groups]),
        dims([
            p.stride_h,
            p.stride_w,
            p.pad_top,
            p.pad_left,
            p.dilation_h,
            p.dilation_w,
            p.out_h,
            p.out_w,
        ]),
    ])
}

/// An operand in row-major order: the storage itself when its layout is contiguous,
/// else a contiguous copy (the tensor layer passes contiguous operands; this keeps a
/// strided one correct rather than misread).
enum Dense<'a> {
    /// Contiguous storage and the offset of its first element.
    Borrowed(&'a CudaStorage, usize),
    /// A contiguous copy.
    Owned(CudaStorage),
}

impl<'a> Dense<'a> {
    /// `s` viewed through `l`, copied only when not contiguous.
    fn new(s: &'a CudaStorage, l: &Layout) -> Result<Self> {
        Ok(if l.is_contiguous() {
            Dense::Borrowed(s, l.offset)
        } else {
            Dense::Owned(s.copy_as(l, s.dtype())?)
        })
    }

    /// The device address of the first element, as a kernel argument.
    fn arg(&self) -> KernelArg {
        KernelArg::Ptr(match self {
            Dense::Borrowed(s, offset) => s.ptr_at(*offset),
            Dense::Owned(s) => s.ptr(),
        })
    }
}

/// How the weight gradient splits the batch: `(images per chunk, chunks)`. Enough
/// chunks to give every multiprocessor two blocks of `gemm` when the tile grid alone
/// does not, at most [`MAX_CHUNKS`] and at most one per image; every chunk holds an
/// image unless the batch is empty.
fn batch_chunks(p: &Conv2dParams, gemm: Gemm, sm_count: usize) -> (usize, usize) {
    let (rows, cols) = gemm.tile();
    let tiles = p.c_out_per_group().div_ceil(rows) * p.col_rows().div_ceil(cols) * p.groups;
    let wanted = (2 * sm_count)
        .div_ceil(tiles.max(1))
        .clamp(1, MAX_CHUNKS.min(p.n.max(1)));
    let per = p.n.div_ceil(wanted).max(1);
    (per, p.n.div_ceil(per).max(1))
}

impl ConvOps for CudaStorage {
    /// Forward convolution; see [`crate::backend::conv::ConvOps::conv2d`].
    fn conv2d(
        &self,
        xl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        let tc = tensor_cores_for(self);
        self.conv2d_on(xl, w, wl, bias, p, tc)
    }

    /// Gradient of the input; see [`crate::backend::conv::ConvOps::conv2d_backward_input`].
    fn conv2d_backward_input(
        &self,
        gl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        let tc = tensor_cores_for(self);
        self.conv2d_backward_input_on(gl, w, wl, p, tc)
    }

    /// Gradient of the weight; see [`crate::backend::conv::ConvOps::conv2d_backward_weight`].
    fn conv2d_backward_weight(
        &self,
        xl: &Layout,
        g: &CudaStorage,
        gl: &Layout,
        p: &Conv2dParams,
    ) -> Result<CudaStorage> {
        let tc = tensor_cores_for(self);
        self.conv2d_backward_weight_on(xl, g, gl, p, tc)
    }
}

/// What every pass starts with: the operands' dtypes checked, the GEMM chosen and its
/// kernel found (so an integer dtype fails before anything is allocated), the output
/// allocated, and the geometry arguments — `None` when the output is empty.
struct PassSetup {
    gemm: Gemm,
    dev: Arc<CudaDevice>,
    out: CudaStorage,
    geometry: Option<[KernelArg; 2]>,
}

impl PassSetup {
    /// The setup of `pass` over `x` (whose dtype every `other` operand must have), on
    /// tensor cores or not, for a GEMM of `rows` rows per group and an output of
    /// `out_len` elements.
    #[allow(clippy::too_many_arguments)] // the pass's description, field by field
    fn new(
        op: &'static str,
        x: &CudaStorage,
        others: &[DType],
        pass: Pass,
        tensor_cores: bool,
        rows: usize,
        out_len: usize,
        p: &Conv2dParams,
    ) -> Result<PassSetup> {
        let dtype = x.dtype();
        for &other in others {
            same_dtype(op, dtype, other)?;
        }
        let gemm = Gemm::choose(tensor_cores, rows);
        gemm.kernel(pass, dtype)?;
        let dev = x.cuda_device().clone();
        let out = CudaStorage::alloc(&dev, out_len, dtype)?;
        let geometry = (out_len > 0).then(|| geometry(op, p)).transpose()?;
        Ok(PassSetup {
            gemm,
            dev,
            out,
            geometry,
        })
    }
}

impl CudaStorage {
    /// [`ConvOps::conv2d`] on tensor cores or not (`tensor_cores`; the SIMT kernels
    /// when false).
    fn conv2d_on(
        &self,
        xl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &Conv2dParams,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        const OP: &str = "conv2d";
        let others: Vec<DType> = [Some(w), bias.map(|(b, _)| b)]
            .into_iter()
            .flatten()
            .map(CudaStorage::dtype)
            .collect();
        let (rows, len) = (p.c_out_per_group(), p.output_len());
        let s = PassSetup::new(OP, self, &others, Pass::Forward, tensor_cores, rows, len, p)?;
        let (dev, dtype) = (&s.dev, self.dtype());
        let Some([ga, gb]) = s.geometry else {
            return Ok(s.out);
        };
        let nhwc = channels_last(p, s.gemm, dtype, p.c_in_per_group());
        let (x, w) = if nhwc {
            let x = Dense::Owned(to_channels_last(OP, self, xl)?);
            (x, Dense::Owned(to_channels_last(OP, w, wl)?))
        } else {
            (Dense::new(self, xl)?, Dense::new(w, wl)?)
        };
        let b = bias.map(|(b, bl)| Dense::new(b, bl)).transpose()?;
        let b = b.map_or(KernelArg::Ptr(0), |b| b.arg());
        let args = [x.arg(), w.arg(), b, KernelArg::Ptr(s.out.ptr()), ga, gb];
        if is_depthwise(p) {
            let kernel = KernelId::for_dtype("conv2d_dw_fwd", dtype)?;
            dev.launch_grid_stride(kernel, p.output_len(), &args)?;
        } else {
            let cfg = s.gemm.config(OP, rows, p.n * p.out_plane(), p.groups)?;
            let pass = if nhwc {
                Pass::ForwardNhwc
            } else {
                Pass::Forward
            };
            s.gemm.launch(dev, pass, dtype, cfg, &args)?;
        }
        Ok(s.out)
    }

    /// [`ConvOps::conv2d_backward_input`] on tensor cores or not (`tensor_cores`).
    fn conv2d_backward_input_on(
        &self,
        gl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        p: &Conv2dParams,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        const OP: &str = "conv2d_backward_input";
        let (rows, len) = (p.c_in_per_group(), p.input_len());
        let pass = Pass::BackwardInput;
        let s = PassSetup::new(OP, self, &[w.dtype()], pass, tensor_cores, rows, len, p)?;
        let (dev, dtype) = (&s.dev, self.dtype());
        let Some([ga, gb]) = s.geometry else {
            return Ok(s.out);
        };
        let nhwc = channels_last(p, s.gemm, dtype, p.c_out_per_group());
        let g = if nhwc {
            Dense::Owned(to_channels_last(OP, self, gl)?)
        } else {
            Dense::new(self, gl)?
        };
        let w = Dense::new(w, wl)?;
        let args = [g.arg(), w.arg(), KernelArg::Ptr(s.out.ptr()), ga, gb];
        if is_depthwise(p) {
            let kernel = KernelId::for_dtype("conv2d_dw_bwd_input", dtype)?;
            dev.launch_grid_stride(kernel, p.input_len(), &args)?;
        } else {
            // One GEMM per group and stride phase (conv.cuh), each over its input
            // positions: at most ceil(h/stride_h) x ceil(w/stride_w) per image.
            let positions = p.n * p.h.div_ceil(p.stride_h) * p.w.div_ceil(p.stride_w);
            let phases = p.groups * p.stride_h * p.stride_w;
            let cfg = s.gemm.config(OP, rows, positions, phases)?;
            let pass = if nhwc {
                Pass::BackwardInputNhwc
            } else {
                Pass::BackwardInput
            };
            s.gemm.launch(dev, pass, dtype, cfg, &args)?;
        }
        Ok(s.out)
    }

    /// [`ConvOps::conv2d_backward_weight`] on tensor cores or not (`tensor_cores`).
    fn conv2d_backward_weight_on(
        &self,
        xl: &Layout,
        g: &CudaStorage,
        gl: &Layout,
        p: &Conv2dParams,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        const OP: &str = "conv2d_backward_weight";
        let (rows, len) = (p.c_out_per_group(), p.weight_len());
        let pass = Pass::BackwardWeight;
        let s = PassSetup::new(OP, self, &[g.dtype()], pass, tensor_cores, rows, len, p)?;
        let (dev, dtype) = (&s.dev, self.dtype());
        let Some([ga, gb]) = s.geometry else {
            return Ok(s.out);
        };
        let (x, g) = (Dense::new(self, xl)?, Dense::new(g, gl)?);
        if is_depthwise(p) {
            let cfg = LaunchConfig {
                grid: (
                    p.weight_len().min(dev.sm_count() as usize * 32) as u32,
                    1,
                    1,
                ),
                block: (defines::CONV_THREADS as u32, 1, 1),
                shared_bytes: 0,
            };
            let args = [x.arg(), g.arg(), KernelArg::Ptr(s.out.ptr()), ga, gb];
            dev.launch(
                KernelId::for_dtype("conv2d_dw_bwd_weight", dtype)?,
                cfg,
                &args,
            )?;
            return Ok(s.out);
        }
        weight_gradient(dev, p, s.gemm, [x.arg(), g.arg()], [ga, gb], s.out)
    }
}

/// The general weight gradient into `out` by `gemm`: each batch chunk's gradient into
/// a partial buffer (f32 for halves and TF32, like their accumulators), then the chunks
/// summed in order.
fn weight_gradient(
    dev: &Arc<CudaDevice>,
    p: &Conv2dParams,
    gemm: Gemm,
    [x, g]: [KernelArg; 2],
    [ga, gb]: [KernelArg; 2],
    out: CudaStorage,
) -> Result<CudaStorage> {
    const OP: &str = "conv2d_backward_weight";
    let dtype = out.dtype();
    let (per, chunks) = batch_chunks(p, gemm, dev.sm_count() as usize);
    let acc = if dtype == DType::F64 {
        DType::F64
    } else {
        DType::F32
    };
    let partial = CudaStorage::alloc(dev, chunks * p.weight_len(), acc)?;
    let cfg = gemm.config(OP, p.c_out_per_group(), p.col_rows(), p.groups * chunks)?;
    let (per, n_chunks) = (KernelArg::I32(per as i32), KernelArg::I32(chunks as i32));
    let args = [x, g, KernelArg::Ptr(partial.ptr()), ga, gb, per, n_chunks];
    gemm.launch(dev, Pass::BackwardWeight, dtype, cfg, &args)?;
    let len = p.weight_len() as u64;
    let args = [
        KernelArg::Ptr(partial.ptr()),
        KernelArg::Ptr(out.ptr()),
        KernelArg::U64(len),
        n_chunks,
    ];
    dev.launch_grid_stride(
        KernelId::for_dtype("conv2d_wgrad_sum", dtype)?,
        p.weight_len(),
        &args,
    )?;
    Ok(out)
}

#[cfg(all(test, feature = "cuda-emulator"))]
#[path = "conv_tests.rs"]
mod tests;
