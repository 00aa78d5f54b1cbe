//! Launch of `kernels/conv.cu` and `kernels/conv_tc.cu`: convolution (1-, 2- and 3-d,
//! described in 3) on the device — implicit GEMMs per channel group for the forward
//! pass and both gradients (the weight gradient split over chunks of the batch into
//! partial buffers, then summed in order: deterministic), on tensor cores (mma.sync)
//! for halves and for f32 as TF32 when `kiln::cuda::conv_allow_tf32` allows it, else
//! on CUDA cores; the tensor-core forward and input gradient channels-last when the
//! channels allow it; and direct kernels for depthwise convolutions (groups == c_in ==
//! c_out). The input gradient adds a bias when given: that is the transposed
//! convolution's forward. `conv_gemm.rs` chooses and launches the GEMMs.

#[path = "conv_gemm.rs"]
mod gemm;

use super::{ConvOps, ConvParams};
use crate::backend::cuda::runtime::device::CudaDevice;
use crate::backend::cuda::runtime::kernels::{defines, KernelId};
use crate::backend::cuda::runtime::launch::{KernelArg, LaunchConfig};
use crate::backend::cuda::CudaStorage;
use crate::shape::Layout;
use crate::{DType, Result};
use gemm::{
    batch_chunks, channels_last, geometry, is_depthwise, optional_arg, same_dtype,
    tensor_cores_for, to_channels_last, Dense, Gemm, Pass,
};
use std::sync::Arc;

impl ConvOps for CudaStorage {
    /// Forward convolution; see [`crate::backend::conv::ConvOps::conv`].
    fn conv(
        &self,
        xl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &ConvParams,
    ) -> Result<CudaStorage> {
        let tc = tensor_cores_for(self);
        self.conv_on(xl, w, wl, bias, p, tc)
    }

    /// Gradient of the input; see [`crate::backend::conv::ConvOps::conv_backward_input`].
    fn conv_backward_input(
        &self,
        gl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &ConvParams,
    ) -> Result<CudaStorage> {
        let tc = tensor_cores_for(self);
        self.conv_backward_input_on(gl, w, wl, bias, p, tc)
    }

    /// Gradient of the weight; see [`crate::backend::conv::ConvOps::conv_backward_weight`].
    fn conv_backward_weight(
        &self,
        xl: &Layout,
        g: &CudaStorage,
        gl: &Layout,
        p: &ConvParams,
    ) -> Result<CudaStorage> {
        let tc = tensor_cores_for(self);
        self.conv_backward_weight_on(xl, g, gl, p, tc)
    }
}

/// What every pass starts with: the operands' dtypes checked, the GEMM chosen and its
/// kernel found (so an integer dtype fails before anything is allocated), the output
/// allocated, and the geometry arguments — `None` when the output is empty.
struct PassSetup {
    gemm: Gemm,
    dev: Arc<CudaDevice>,
    out: CudaStorage,
    geometry: Option<[KernelArg; 3]>,
}

impl PassSetup {
    /// The setup of `pass` over `x` (whose dtype every `other` operand must have), on
    /// tensor cores or not, for a GEMM of `rows` rows per group and an output of
    /// `out_len` elements.
    #[allow(clippy::too_many_arguments)] // the pass's description, field by field
    fn new(
        op: &'static str,
        x: &CudaStorage,
        others: &[Option<&CudaStorage>],
        pass: Pass,
        tensor_cores: bool,
        rows: usize,
        out_len: usize,
        p: &ConvParams,
    ) -> Result<PassSetup> {
        let dtype = x.dtype();
        for other in others.iter().flatten() {
            same_dtype(op, dtype, other.dtype())?;
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

    /// Runs the pass with `args`: for a depthwise convolution the direct kernel of
    /// `depthwise.0` over `depthwise.1` threads, else the implicit GEMM of `m` x `n`
    /// per group over `z` groups (`[m, n, z]`), in `pass`'s channels-last form when
    /// `nhwc`.
    #[allow(clippy::too_many_arguments)] // the two ways to run a pass, side by side
    fn run(
        &self,
        op: &'static str,
        p: &ConvParams,
        depthwise: (&'static str, usize),
        [m, n, z]: [usize; 3],
        pass: Pass,
        nhwc: bool,
        args: &[KernelArg],
    ) -> Result<()> {
        let dtype = self.out.dtype();
        if is_depthwise(p) {
            let kernel = KernelId::for_dtype(depthwise.0, dtype)?;
            return self.dev.launch_grid_stride(kernel, depthwise.1, args);
        }
        let cfg = self.gemm.config(op, m, n, z)?;
        let pass = if nhwc { pass.channels_last() } else { pass };
        self.gemm.launch(&self.dev, pass, dtype, cfg, args)
    }
}

impl CudaStorage {
    /// [`ConvOps::conv`] on tensor cores or not (`tensor_cores`; the SIMT kernels when
    /// false).
    fn conv_on(
        &self,
        xl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &ConvParams,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        const OP: &str = "conv";
        let others = [Some(w), bias.map(|(b, _)| b)];
        let (rows, len) = (p.c_out_per_group(), p.output_len());
        let s = PassSetup::new(OP, self, &others, Pass::Forward, tensor_cores, rows, len, p)?;
        let dtype = self.dtype();
        let Some([ga, gb, gc]) = s.geometry else {
            return Ok(s.out);
        };
        let nhwc = channels_last(p, s.gemm, dtype, p.c_in_per_group());
        let (x, w) = if nhwc {
            let x = Dense::Owned(to_channels_last(OP, self, xl)?);
            (x, Dense::Owned(to_channels_last(OP, w, wl)?))
        } else {
            (Dense::new(self, xl)?, Dense::new(w, wl)?)
        };
        let b = Dense::optional(bias)?;
        let args = [
            x.arg(),
            w.arg(),
            optional_arg(&b),
            s.out.ptr_arg(),
            ga,
            gb,
            gc,
        ];
        let depthwise = ("conv_dw_fwd", p.output_len());
        let gemm = [rows, p.n * p.out_spatial(), p.groups];
        s.run(OP, p, depthwise, gemm, Pass::Forward, nhwc, &args)?;
        Ok(s.out)
    }

    /// [`ConvOps::conv_backward_input`] on tensor cores or not (`tensor_cores`).
    fn conv_backward_input_on(
        &self,
        gl: &Layout,
        w: &CudaStorage,
        wl: &Layout,
        bias: Option<(&CudaStorage, &Layout)>,
        p: &ConvParams,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        const OP: &str = "conv_backward_input";
        let (rows, len) = (p.c_in_per_group(), p.input_len());
        let others = [Some(w), bias.map(|(b, _)| b)];
        let pass = Pass::BackwardInput;
        let s = PassSetup::new(OP, self, &others, pass, tensor_cores, rows, len, p)?;
        let dtype = self.dtype();
        let Some([ga, gb, gc]) = s.geometry else {
            return Ok(s.out);
        };
        let nhwc = channels_last(p, s.gemm, dtype, p.c_out_per_group());
        let g = if nhwc {
            Dense::Owned(to_channels_last(OP, self, gl)?)
        } else {
            Dense::new(self, gl)?
        };
        let (w, b) = (Dense::new(w, wl)?, Dense::optional(bias)?);
        let args = [
            g.arg(),
            w.arg(),
            optional_arg(&b),
            s.out.ptr_arg(),
            ga,
            gb,
            gc,
        ];
        let depthwise = ("conv_dw_bwd_input", p.input_len());
        // One GEMM per group and stride phase (conv.cuh), each over its input
        // positions: at most ceil(size / stride) along each axis per image.
        let positions = (0..3).fold(p.n, |acc, a| acc * p.input[a].div_ceil(p.stride[a]));
        let gemm = [
            rows,
            positions,
            p.groups * p.stride.iter().product::<usize>(),
        ];
        s.run(OP, p, depthwise, gemm, pass, nhwc, &args)?;
        Ok(s.out)
    }

    /// [`ConvOps::conv_backward_weight`] on tensor cores or not (`tensor_cores`).
    fn conv_backward_weight_on(
        &self,
        xl: &Layout,
        g: &CudaStorage,
        gl: &Layout,
        p: &ConvParams,
        tensor_cores: bool,
    ) -> Result<CudaStorage> {
        const OP: &str = "conv_backward_weight";
        let (rows, len) = (p.c_out_per_group(), p.weight_len());
        let pass = Pass::BackwardWeight;
        let s = PassSetup::new(OP, self, &[Some(g)], pass, tensor_cores, rows, len, p)?;
        let (dev, dtype) = (&s.dev, self.dtype());
        let Some([ga, gb, gc]) = s.geometry else {
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
            let args = [x.arg(), g.arg(), s.out.ptr_arg(), ga, gb, gc];
            let kernel = KernelId::for_dtype("conv_dw_bwd_weight", dtype)?;
            dev.launch(kernel, cfg, &args)?;
            return Ok(s.out);
        }
        weight_gradient(dev, p, s.gemm, [x.arg(), g.arg()], [ga, gb, gc], s.out)
    }

    /// The address of the first element, as a kernel argument.
    fn ptr_arg(&self) -> KernelArg {
        KernelArg::Ptr(self.ptr())
    }
}

/// The general weight gradient into `out` by `gemm`: each batch chunk's gradient into
/// a partial buffer (f32 for halves and TF32, like their accumulators), then the chunks
/// summed in order.
fn weight_gradient(
    dev: &Arc<CudaDevice>,
    p: &ConvParams,
    gemm: Gemm,
    [x, g]: [KernelArg; 2],
    [ga, gb, gc]: [KernelArg; 3],
    out: CudaStorage,
) -> Result<CudaStorage> {
    const OP: &str = "conv_backward_weight";
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
    let args = [x, g, partial.ptr_arg(), ga, gb, gc, per, n_chunks];
    gemm.launch(dev, Pass::BackwardWeight, dtype, cfg, &args)?;
    let args = [
        partial.ptr_arg(),
        out.ptr_arg(),
        KernelArg::U64(p.weight_len() as u64),
        n_chunks,
    ];
    let kernel = KernelId::for_dtype("conv_wgrad_sum", dtype)?;
    dev.launch_grid_stride(kernel, p.weight_len(), &args)?;
    Ok(out)
}

#[cfg(all(test, feature = "cuda-emulator"))]
#[path = "conv_tests.rs"]
mod tests;
