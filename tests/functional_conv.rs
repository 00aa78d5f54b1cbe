//! `F::conv2d` against PyTorch (tests/data/conv.safetensors, written by
//! scripts/golden/conv.py), finite differences, and its argument errors.

mod common;

use common::{assert_close, device_test};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::nn::{Conv2dOpts, Padding};
use kiln::{DType, Device, Error, Tensor};

/// Runs case `name` in `dtype` on `dev` and compares the output and every gradient
/// with PyTorch's (computed in f64) within `tol` (absolute and relative).
fn check_case(name: &str, has_bias: bool, opts: Conv2dOpts, dtype: DType, tol: f64, dev: &Device) {
    common::check_weighted_case("conv", name, has_bias, dtype, tol, dev, |x, w, b| {
        F::conv2d(x, w, b, opts)
    });
}

/// One test per golden case and device, in f64 (tight) and f32 (the training dtype).
macro_rules! golden {
    ($($test:ident: $name:literal, bias $bias:literal, $opts:expr;)*) => {
        mod golden_f64 {
            use super::*;
            device_test! {
                $(fn $test(dev) { check_case($name, $bias, $opts, DType::F64, 1e-10, dev); })*
            }
        }
        mod golden_f32 {
            use super::*;
            device_test! {
                $(fn $test(dev) { check_case($name, $bias, $opts, DType::F32, 2e-4, dev); })*
            }
        }
    };
}

golden! {
    // F.conv2d(x[2,3,7,9], w[4,3,3,2], b)
    basic: "basic", bias true, Conv2dOpts::new();
    // F.conv2d(x[2,3,9,8], w[5,3,3,3], b, stride=2, padding=1)
    stride2_pad1: "stride2_pad1", bias true, Conv2dOpts::new().stride(2).padding(1);
    // F.conv2d(x[2,4,9,8], w[6,2,3,2], stride=(2,1), padding=(1,0), dilation=(1,2), groups=2)
    mixed_groups2: "mixed_groups2", bias false,
        Conv2dOpts::new().stride((2, 1)).padding((1, 0)).dilation((1, 2)).groups(2);
    // F.conv2d(x[1,2,10,9], w[3,2,3,3], b, padding=2, dilation=2)
    dilation2: "dilation2", bias true, Conv2dOpts::new().padding(2).dilation(2);
    // F.conv2d(x[1,4,8,7], w[4,1,3,3], b, padding=1, groups=4)   (depthwise)
    depthwise: "depthwise", bias true, Conv2dOpts::new().padding(1).groups(4);
    // F.conv2d(x[2,3,6,7], w[6,1,3,2], stride=(1,2), groups=3)   (depthwise, multiplier 2)
    depthwise_mult2: "depthwise_mult2", bias false, Conv2dOpts::new().stride((1, 2)).groups(3);
    // F.conv2d(x[1,5,6,7], w[4,5,1,1], b)   (1x1)
    pointwise: "pointwise", bias true, Conv2dOpts::new();
    // F.conv2d(x[1,6,6,7], w[4,3,1,1], groups=2)   (1x1, grouped)
    pointwise_groups2: "pointwise_groups2", bias false, Conv2dOpts::new().groups(2);
    // F.conv2d(x[2,5,7,6], w[3,5,1,1], stride=2)   (1x1, strided)
    pointwise_stride2: "pointwise_stride2", bias false, Conv2dOpts::new().stride(2);
    // F.conv2d(x[1,3,7,8], w[4,3,3,3], b, padding="same")
    same_3x3: "same_3x3", bias true, Conv2dOpts::new().padding(Padding::Same);
    // F.conv2d(x[1,3,7,8], w[4,3,4,2], b, padding="same")   (asymmetric padding)
    same_4x2: "same_4x2", bias true, Conv2dOpts::new().padding(Padding::Same);
    // F.conv2d(x[1,4,9,8], w[2,2,2,3], padding="same", dilation=(3,1), groups=2)
    same_dilated_groups: "same_dilated_groups", bias false,
        Conv2dOpts::new().padding(Padding::Same).dilation((3, 1)).groups(2);
    // F.conv2d(x[2,3,6,5], w[2,3,2,3], b, padding="valid")
    valid: "valid", bias true, Conv2dOpts::new().padding(Padding::Valid);
    // F.conv2d(x[2,6,8,9], w[9,2,4,3], b, stride=(3,2), padding=(2,1), groups=3)
    stride3_groups3: "stride3_groups3", bias true,
        Conv2dOpts::new().stride((3, 2)).padding((2, 1)).groups(3);
    // F.conv2d(x[1,2,3,3], w[2,2,5,5], b, padding=1)   (kernel exactly the padded input)
    kernel_fills_input: "kernel_fills_input", bias true, Conv2dOpts::new().padding(1);
    // F.conv2d(x[3,6,5], w[2,3,3,3], b, padding=1)   (unbatched input)
    unbatched: "unbatched", bias true, Conv2dOpts::new().padding(1);
    // F.conv2d(x[4,3,6,6], w[4,3,3,3], b, stride=2, padding=1)   (images split across threads)
    batch4: "batch4", bias true, Conv2dOpts::new().stride(2).padding(1);
    // F.conv2d(x[1,3,13,13], w[8,3,7,7], b, stride=2, padding=3)   (stem: C=3, K=147)
    tc_stem: "tc_stem", bias true, Conv2dOpts::new().stride(2).padding(3);
    // F.conv2d(x[1,8,4,3], w[72,8,3,1], b, padding=1)   (72 output channels, K=24)
    tc_wide: "tc_wide", bias true, Conv2dOpts::new().padding(1);
    // F.conv2d(x[2,8,7,7], w[12,8,1,1], stride=2)   (1x1 stride-2 downsample)
    tc_down1x1: "tc_down1x1", bias false, Conv2dOpts::new().stride(2);
    // F.conv2d(x[2,5,9,9], w[7,5,3,3], b, stride=2, padding=1)   (3x3 stride 2)
    tc_stride2_3x3: "tc_stride2_3x3", bias true, Conv2dOpts::new().stride(2).padding(1);
    // F.conv2d(x[1,3,9,9], w[4,3,3,3], b, stride=2, padding=2, dilation=2)   (inputs
    // no tap reads: stride phases without taps)
    stride2_dilation2: "stride2_dilation2", bias true,
        Conv2dOpts::new().stride(2).padding(2).dilation(2);
    // F.conv2d(x[2,32,7,8], w[10,16,3,3], b, padding=(1,2), dilation=2, groups=2)
    nhwc_groups2: "nhwc_groups2", bias true, nhwc_groups2_opts();
    // F.conv2d(x[1,8,9,9], w[70,8,3,3], stride=2, padding=1)
    nhwc_stride2: "nhwc_stride2", bias false, Conv2dOpts::new().stride(2).padding(1);
    // F.conv2d(x[2,6,9,8], w[32,3,3,3], b, stride=2, padding=(1,2), dilation=(1,2), groups=2)
    nhwc_dgrad: "nhwc_dgrad", bias true, nhwc_dgrad_opts();
}

/// The options of golden case nhwc_groups2.
fn nhwc_groups2_opts() -> Conv2dOpts {
    Conv2dOpts::new().padding((1, 2)).dilation(2).groups(2)
}

/// The options of golden case nhwc_dgrad.
fn nhwc_dgrad_opts() -> Conv2dOpts {
    Conv2dOpts::new()
        .stride(2)
        .padding((1, 2))
        .dilation((1, 2))
        .groups(2)
}

/// The value and every gradient of golden case `name` in `dtype` on `dev`.
fn run_case(
    name: &str,
    has_bias: bool,
    opts: Conv2dOpts,
    dtype: DType,
    dev: &Device,
) -> Vec<Tensor> {
    common::run_weighted_case("conv", name, has_bias, dtype, dev, |x, w, b| {
        F::conv2d(x, w, b, opts)
    })
}

/// f16 and bf16 run on the tensor-core kernels (conv_tc.cu) on CUDA (compute
/// capability >= 8.0, and the emulated device): the value and every gradient against
/// the CPU backend in the same dtype, on the cases that reach the kernels' edges — K
/// not a multiple of a slice (the stem's 147, 1x1's 8), M and N not multiples of a
/// tile, 64- and 128-row tiles (tc_wide), weights copied by cp.async (K a multiple of
/// 8: tc_wide, tc_down1x1) or gathered (the rest), stride 2 (the input gradient's
/// phases), phases without taps (stride2_dilation2), groups and dilation; the
/// channels-last forward (input channels per group a multiple of 8: tc_wide,
/// tc_down1x1, nhwc_groups2, nhwc_stride2) and input gradient (output channels per
/// group a multiple of 8: tc_wide, nhwc_dgrad) against the gathering ones (the rest). Both backends multiply the same
/// halves exactly and sum in f32, in another order, then round once: [`device_tol`]'s
/// one rounding of the half format (and f32 reordering) bounds the difference.
///
/// [`device_tol`]: common::device_tol
macro_rules! tensor_core_halves {
    ($($test:ident: $name:literal, bias $bias:literal, $opts:expr;)*) => {
        mod tensor_core_halves {
            use super::*;
            $(
                #[test]
                fn $test() {
                    let Some(dev) = common::cuda_or_skip(concat!("tensor_core_halves::", $name)) else {
                        return;
                    };
                    for dtype in [DType::F16, DType::BF16] {
                        let got = run_case($name, $bias, $opts, dtype, &dev);
                        let want = run_case($name, $bias, $opts, dtype, &Device::Cpu);
                        for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                            assert_eq!(g.dtype(), dtype);
                            let (atol, rtol) = common::device_tol(dtype, &dev);
                            let what = format!("{} {dtype:?}: value/grad x/w/b {j}", $name);
                            common::assert_values(&what, g, w, atol, rtol);
                        }
                    }
                }
            )*
        }
    };
}

tensor_core_halves! {
    tc_stem: "tc_stem", bias true, Conv2dOpts::new().stride(2).padding(3);
    tc_wide: "tc_wide", bias true, Conv2dOpts::new().padding(1);
    tc_down1x1: "tc_down1x1", bias false, Conv2dOpts::new().stride(2);
    tc_stride2_3x3: "tc_stride2_3x3", bias true, Conv2dOpts::new().stride(2).padding(1);
    mixed_groups2: "mixed_groups2", bias false,
        Conv2dOpts::new().stride((2, 1)).padding((1, 0)).dilation((1, 2)).groups(2);
    dilation2: "dilation2", bias true, Conv2dOpts::new().padding(2).dilation(2);
    stride2_dilation2: "stride2_dilation2", bias true,
        Conv2dOpts::new().stride(2).padding(2).dilation(2);
    nhwc_groups2: "nhwc_groups2", bias true, nhwc_groups2_opts();
    nhwc_stride2: "nhwc_stride2", bias false, Conv2dOpts::new().stride(2).padding(1);
    nhwc_dgrad: "nhwc_dgrad", bias true, nhwc_dgrad_opts();
}

/// Asserts that golden case `name` (bias `has_bias`) in f16 and bf16 on the emulated
/// device launches `{family}_f16` and `{family}_bf16`.
#[cfg(feature = "cuda-emulator")]
fn assert_takes(test: &str, name: &str, has_bias: bool, opts: Conv2dOpts, family: &str) {
    let Some(dev) = common::cuda_or_skip(test) else {
        return;
    };
    for (dtype, suffix) in [(DType::F16, "f16"), (DType::BF16, "bf16")] {
        let kernel = format!("{family}_{suffix}");
        let before = common::launches(&kernel);
        run_case(name, has_bias, opts, dtype, &dev);
        if let Some(before) = before {
            assert!(
                common::launches(&kernel) > Some(before),
                "{name}: {kernel} ran"
            );
        }
    }
}

/// A half convolution whose groups have a multiple of 8 input channels runs the
/// channels-last forward kernel (x and the weights converted on the way in).
#[cfg(feature = "cuda-emulator")]
#[test]
fn chunked_channels_take_the_channels_last_forward() {
    assert_takes(
        "chunked_channels_take_the_channels_last_forward",
        "nhwc_groups2",
        true,
        nhwc_groups2_opts(),
        "conv_tc_fwd_nhwc",
    );
}

/// A half convolution whose groups have a multiple of 8 output channels runs the
/// channels-last input gradient (gy converted on the way in).
#[cfg(feature = "cuda-emulator")]
#[test]
fn chunked_output_channels_take_the_channels_last_input_gradient() {
    assert_takes(
        "chunked_output_channels_take_the_channels_last_input_gradient",
        "nhwc_dgrad",
        true,
        nhwc_dgrad_opts(),
        "conv_tc_bwd_input_nhwc",
    );
}

device_test! {
    fn half_precision_inputs_compute_in_f32(dev) {
        for dtype in [DType::F16, DType::BF16] {
            check_case("basic", true, Conv2dOpts::new(), dtype, 0.1, dev);
        }
    }
}

#[test]
fn options_build_like_api_md() {
    let o = Conv2dOpts::new()
        .stride((2, 1))
        .padding((1, 0))
        .dilation((1, 2))
        .groups(2);
    assert_eq!((o.stride.h, o.stride.w), (2, 1));
    assert_eq!(o.padding, Padding::Explicit(1, 0));
    assert_eq!((o.dilation.h, o.dilation.w), (1, 2));
    assert_eq!(o.groups, 2);
    assert_eq!(
        Conv2dOpts::new().padding(3).padding,
        Padding::Explicit(3, 3)
    );
    assert_eq!(Conv2dOpts::default(), Conv2dOpts::new());
    assert_eq!(Conv2dOpts::new().padding, Padding::Explicit(0, 0));
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F64, &Device::Cpu).unwrap()
}

fn conv_gradcheck(x: &[usize], w: &[usize], bias: bool, opts: Conv2dOpts) {
    kiln::manual_seed(3);
    let mut inputs = vec![randn(x), randn(w)];
    if bias {
        inputs.push(randn(&[w[0]]));
    }
    gradcheck(
        |t| F::conv2d(&t[0], &t[1], t.get(2), opts),
        &inputs,
        GradcheckOpts::default(),
    )
    .unwrap();
}

#[test]
fn gradcheck_strided_dilated_grouped() {
    let opts = Conv2dOpts::new()
        .stride((2, 1))
        .padding((1, 2))
        .dilation((2, 1))
        .groups(2);
    conv_gradcheck(&[2, 4, 6, 5], &[4, 2, 3, 2], true, opts);
}

#[test]
fn gradcheck_same_asymmetric() {
    conv_gradcheck(
        &[1, 2, 5, 4],
        &[3, 2, 2, 3],
        true,
        Conv2dOpts::new().padding(Padding::Same),
    );
}

#[test]
fn gradcheck_pointwise_and_depthwise() {
    conv_gradcheck(&[2, 3, 3, 4], &[2, 3, 1, 1], true, Conv2dOpts::new());
    conv_gradcheck(
        &[1, 3, 4, 4],
        &[3, 1, 3, 3],
        false,
        Conv2dOpts::new().padding(1).groups(3),
    );
}

#[test]
fn gradcheck_unbatched_valid() {
    conv_gradcheck(
        &[2, 4, 5],
        &[2, 2, 2, 2],
        true,
        Conv2dOpts::new().padding(Padding::Valid),
    );
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    kiln::manual_seed(11);
    let x = randn(&[7, 4, 9, 8]).requires_grad();
    let w = randn(&[6, 2, 3, 3]).requires_grad();
    let b = randn(&[6]).requires_grad();
    let opts = Conv2dOpts::new().padding(1).stride((1, 2)).groups(2);
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let y = F::conv2d(&x, &w, Some(&b), opts).unwrap();
            y.mul(&y).unwrap().sum_all().unwrap().backward().unwrap();
            let grads = (x.grad().unwrap(), w.grad().unwrap(), b.grad().unwrap());
            for t in [&x, &w, &b] {
                t.zero_grad();
            }
            (y, grads)
        })
    };
    let (y1, (gx1, gw1, gb1)) = run(1);
    for threads in [2, 3, 8] {
        let (y, (gx, gw, gb)) = run(threads);
        let cpu = &Device::Cpu;
        assert_close(&y, &y1, cpu, 1e-12, 1e-12);
        assert_close(&gx, &gx1, cpu, 1e-12, 1e-12);
        assert_close(&gw, &gw1, cpu, 1e-10, 1e-10);
        assert_close(&gb, &gb1, cpu, 1e-10, 1e-10);
    }
}

#[test]
fn input_without_grad_gets_none_and_weight_still_learns() {
    let x = randn(&[2, 3, 5, 5]);
    let w = randn(&[4, 3, 3, 3]).requires_grad();
    let y = F::conv2d(&x, &w, None, Conv2dOpts::new()).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert!(x.grad().is_none());
    assert_eq!(w.grad().unwrap().shape(), &[4, 3, 3, 3]);
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn conv_err(x: &[usize], w: &[usize], opts: Conv2dOpts) -> Error {
    F::conv2d(&randn(x), &randn(w), None, opts).unwrap_err()
}

#[test]
fn channels_not_divisible_by_groups() {
    assert_eq!(
        arg_name(conv_err(
            &[1, 3, 5, 5],
            &[4, 1, 3, 3],
            Conv2dOpts::new().groups(2)
        )),
        "groups"
    );
    // Output channels (5) not divisible by groups (2).
    assert_eq!(
        arg_name(conv_err(
            &[1, 4, 5, 5],
            &[5, 2, 3, 3],
            Conv2dOpts::new().groups(2)
        )),
        "groups"
    );
    assert_eq!(
        arg_name(conv_err(
            &[1, 4, 5, 5],
            &[4, 4, 3, 3],
            Conv2dOpts::new().groups(0)
        )),
        "groups"
    );
}

#[test]
fn weight_input_channel_mismatch() {
    let e = conv_err(&[1, 3, 5, 5], &[4, 2, 3, 3], Conv2dOpts::new());
    assert!(e.to_string().contains("input has 3"), "{e}");
    assert_eq!(arg_name(e), "weight");
    assert_eq!(
        arg_name(conv_err(
            &[1, 4, 5, 5],
            &[4, 4, 3, 3],
            Conv2dOpts::new().groups(2)
        )),
        "weight"
    );
}

#[test]
fn same_padding_needs_stride_one() {
    let opts = Conv2dOpts::new().padding(Padding::Same).stride((1, 2));
    let e = conv_err(&[1, 2, 6, 6], &[2, 2, 3, 3], opts);
    assert!(e.to_string().contains("Same"), "{e}");
    assert_eq!(arg_name(e), "padding");
}

#[test]
fn kernel_larger_than_padded_input() {
    assert_eq!(
        arg_name(conv_err(&[1, 2, 4, 6], &[2, 2, 5, 3], Conv2dOpts::new())),
        "weight"
    );
    // Dilation makes a 3x3 kernel span 5x5; padding 0 leaves 4x6.
    assert_eq!(
        arg_name(conv_err(
            &[1, 2, 4, 6],
            &[2, 2, 3, 3],
            Conv2dOpts::new().dilation(2)
        )),
        "weight"
    );
    // The same with padding 1 fits.
    F::conv2d(
        &randn(&[1, 2, 4, 6]),
        &randn(&[2, 2, 3, 3]),
        None,
        Conv2dOpts::new().dilation(2).padding(1),
    )
    .unwrap();
}

#[test]
fn zero_stride_or_dilation() {
    assert_eq!(
        arg_name(conv_err(
            &[1, 2, 5, 5],
            &[2, 2, 3, 3],
            Conv2dOpts::new().stride((1, 0))
        )),
        "stride"
    );
    assert_eq!(
        arg_name(conv_err(
            &[1, 2, 5, 5],
            &[2, 2, 3, 3],
            Conv2dOpts::new().dilation(0)
        )),
        "dilation"
    );
}

#[test]
fn wrong_ranks_and_bias_shape() {
    assert_eq!(
        arg_name(conv_err(&[2, 5, 5], &[2, 2, 3], Conv2dOpts::new())),
        "weight"
    );
    assert_eq!(
        arg_name(conv_err(&[5, 5], &[2, 2, 3, 3], Conv2dOpts::new())),
        "input"
    );
    assert_eq!(
        arg_name(conv_err(&[1, 1, 2, 5, 5], &[2, 2, 3, 3], Conv2dOpts::new())),
        "input"
    );
    let e = F::conv2d(
        &randn(&[1, 2, 5, 5]),
        &randn(&[3, 2, 3, 3]),
        Some(&randn(&[2])),
        Conv2dOpts::new(),
    )
    .unwrap_err();
    assert_eq!(arg_name(e), "bias");
}

#[test]
fn dtype_mismatch_names_the_operand() {
    let x = randn(&[1, 2, 5, 5]);
    let w32 = randn(&[3, 2, 3, 3]).to_dtype(DType::F32).unwrap();
    let e = F::conv2d(&x, &w32, None, Conv2dOpts::new()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "conv2d weight",
                ..
            }
        ),
        "{e:?}"
    );
    let b32 = randn(&[3]).to_dtype(DType::F32).unwrap();
    let e = F::conv2d(&x, &randn(&[3, 2, 3, 3]), Some(&b32), Conv2dOpts::new()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "conv2d bias",
                ..
            }
        ),
        "{e:?}"
    );
    let xi = Tensor::zeros(&[1, 2, 5, 5], DType::I64, &Device::Cpu).unwrap();
    let e = F::conv2d(&xi, &randn(&[3, 2, 3, 3]), None, Conv2dOpts::new()).unwrap_err();
    assert!(matches!(e, Error::UnsupportedDType { .. }), "{e:?}");
}
