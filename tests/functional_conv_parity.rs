//! The conv family's CUDA parity sweep: conv2d and its gradients on every float dtype
//! and option against the CPU backend (tests/common/parity.rs), with the check that it
//! launches every kernel of kernels/conv.cu and kernels/conv_tc.cu. The golden tests
//! are in tests/functional_conv.rs, which this file keeps under ~600 lines.

mod common;

/// conv2d on the device against the CPU.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{Device, Result, Tensor};

    /// One conv case: input (n, c_in, h, w), weight (c_out, c_in/groups, kh, kw), options.
    struct ConvCase {
        /// Input shape.
        x: [usize; 4],
        /// Weight shape.
        w: [usize; 4],
        /// Stride, padding, dilation, each (h, w).
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        groups: usize,
        bias: bool,
    }

    /// conv2d's value and its input, weight and bias gradients (through a random upstream
    /// gradient) on both devices, for every float dtype and every option of the kernels:
    /// stride 2, padding, dilation 2, groups 2, depthwise, non-square kernels, odd channel
    /// counts, batch 1 and 3, with and without bias, tiles cut at their edges, several
    /// batch chunks in the weight gradient, channels-last (16 input channels per group;
    /// 8 output channels per group).
    #[test]
    fn conv2d_and_its_gradients_match_the_cpu_for_every_option() {
        let (dev, _gpu) = gpu_or_skip!("conv2d_and_its_gradients_match_the_cpu_for_every_option");
        use kiln::nn::Conv2dOpts;
        let case = |x, w, stride, padding, dilation, groups, bias| ConvCase {
            x,
            w,
            stride,
            padding,
            dilation,
            groups,
            bias,
        };
        let cases = [
            // Odd channels, batch 3, bias.
            case([3, 3, 7, 9], [5, 3, 3, 3], (1, 1), (1, 1), (1, 1), 1, true),
            // Stride 2, non-square kernel, groups 2, batch 1, no bias.
            case([1, 4, 9, 8], [6, 2, 3, 2], (2, 2), (1, 0), (1, 1), 2, false),
            // Dilation 2 with padding, mixed strides.
            case([3, 3, 8, 7], [5, 3, 2, 3], (2, 1), (2, 1), (2, 2), 1, true),
            // Depthwise: stride 2, padding, bias; then dilation, non-square, batch 1.
            case([3, 5, 7, 6], [5, 1, 3, 3], (2, 2), (1, 1), (1, 1), 5, true),
            case([1, 3, 8, 9], [3, 1, 2, 3], (1, 2), (2, 0), (2, 1), 3, false),
            // More than one 64-row / 64-column tile and several 16-deep K slices.
            case([3, 9, 6, 7], [70, 9, 3, 3], (1, 1), (1, 1), (1, 1), 1, true),
            // Pointwise 1x1.
            case([3, 3, 5, 4], [5, 3, 1, 1], (1, 1), (0, 0), (1, 1), 1, false),
            // 16 channels per group (two 16-byte chunks of halves): the channels-last
            // tensor-core forward, with groups 2, stride, padding and dilation.
            case(
                [2, 32, 6, 5],
                [6, 16, 3, 3],
                (2, 1),
                (1, 1),
                (1, 2),
                2,
                true,
            ),
            // 8 output channels per group (one 16-byte chunk of halves): the channels-last
            // tensor-core input gradient, with groups 2, stride 2 phases and dilation.
            case(
                [2, 6, 7, 6],
                [16, 3, 3, 3],
                (2, 2),
                (1, 1),
                (1, 2),
                2,
                false,
            ),
        ];
        for (i, c) in cases.iter().enumerate() {
            for dtype in FLOATS {
                let run = |d: &Device| -> Result<Vec<Tensor>> {
                    let x = values(&c.x, dtype, 90 + i as u64)
                        .to_device(d)?
                        .requires_grad();
                    let w = values(&c.w, dtype, 91 + i as u64)
                        .mul_scalar(0.25)?
                        .to_device(d)?
                        .requires_grad();
                    let b = values(&[c.w[0]], dtype, 92).to_device(d)?.requires_grad();
                    let opts = Conv2dOpts::new()
                        .stride(c.stride)
                        .padding(c.padding)
                        .dilation(c.dilation)
                        .groups(c.groups);
                    let y = F::conv2d(&x, &w, c.bias.then_some(&b), opts)?;
                    let up = values(y.shape(), dtype, 93).to_device(d)?;
                    y.mul(&up)?.sum_all()?.backward()?;
                    let mut out = vec![y, x.grad().expect("x grad"), w.grad().expect("w grad")];
                    out.extend(b.grad());
                    Ok(out)
                };
                let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                assert_eq!(on_gpu.len(), on_cpu.len());
                // The weight gradient sums a few hundred products of values up to 4 in
                // another order than the CPU (worst seen: 1.3x the plain f32 tolerance).
                let (atol, rtol) = tol(dtype);
                for (j, (g, cpu)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                    let what = format!("conv case {i} {dtype:?}: value/grad x/w/b {j}");
                    assert_close(&what, g, cpu, atol * 4.0, rtol * 4.0);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/conv.cu and kernels/conv_tc.cu.
    #[test]
    fn every_conv_kernel_is_launched() {
        // Launched elsewhere: the SIMT f16/bf16 convolutions serve only GPUs below compute
        // capability 8.0 (src/backend/cuda/ops/conv_tests.rs runs them), and the TF32 ones run
        // only under `kiln::cuda::set_conv_allow_tf32(true)`, which `common::cuda_or_skip`
        // switches off for exact f32 results: tests/conv_tf32.rs turns it on, under a lock,
        // and bounds the TF32 error.
        let elsewhere = [
            "conv_fwd_f16",
            "conv_fwd_bf16",
            "conv_bwd_input_f16",
            "conv_bwd_input_bf16",
            "conv_bwd_weight_f16",
            "conv_bwd_weight_bf16",
            "conv_tc_fwd_tf32",
            "conv_tc_fwd_nhwc_tf32",
            "conv_tc_bwd_input_tf32",
            "conv_tc_bwd_input_nhwc_tf32",
            "conv_tc_bwd_weight_tf32",
        ];
        let suite: [fn(); 1] = [conv2d_and_its_gradients_match_the_cpu_for_every_option];
        assert_every_kernel_launched("conv", &suite, &elsewhere);
    }
}
