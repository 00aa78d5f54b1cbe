//! `F::conv1d`, `F::conv3d`, `F::conv_transpose1d`, `F::conv_transpose2d` and their
//! modules against PyTorch (tests/data/conv_nd.safetensors, written by
//! scripts/golden/conv_nd.py), finite differences, their argument errors, and the
//! CUDA parity sweep of the conv family (every dtype against the CPU backend).

mod common;

use common::device_test;
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional as F;
use kiln::nn::{
    self, Conv1dOpts, Conv3dOpts, ConvTranspose1dOpts, ConvTranspose2dOpts, Forward, Padding1d,
    Padding3d, PaddingMode,
};
use kiln::{DType, Device, Error, Tensor};

/// One of the ops under test with its options.
#[derive(Clone, Copy, Debug)]
enum Op {
    C1(Conv1dOpts),
    C3(Conv3dOpts),
    T1(ConvTranspose1dOpts),
    T2(ConvTranspose2dOpts),
}

impl Op {
    fn run(self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> kiln::Result<Tensor> {
        match self {
            Op::C1(o) => F::conv1d(x, w, b, o),
            Op::C3(o) => F::conv3d(x, w, b, o),
            Op::T1(o) => F::conv_transpose1d(x, w, b, o),
            Op::T2(o) => F::conv_transpose2d(x, w, b, o),
        }
    }
}

/// The golden cases: name, bias, op (the PyTorch call is in scripts/golden/conv_nd.py).
fn cases() -> Vec<(&'static str, bool, Op)> {
    let (c1, c3) = (Conv1dOpts::new(), Conv3dOpts::new());
    let (t1, t2) = (ConvTranspose1dOpts::new(), ConvTranspose2dOpts::new());
    vec![
        ("c1_basic", true, Op::C1(c1)),
        (
            "c1_mixed",
            false,
            Op::C1(c1.stride(2).padding(1).dilation(2).groups(2)),
        ),
        ("c1_same", true, Op::C1(c1.padding(Padding1d::Same))),
        ("c1_depthwise", true, Op::C1(c1.padding(1).groups(4))),
        (
            "c1_reflect",
            true,
            Op::C1(c1.padding(2).padding_mode(PaddingMode::Reflect)),
        ),
        ("c1_unbatched", true, Op::C1(c1.padding(1))),
        ("c1_nhwc", true, Op::C1(c1.padding(1).groups(2))),
        ("c3_basic", true, Op::C3(c3)),
        (
            "c3_mixed",
            false,
            Op::C3(
                c3.stride((2, 1, 2))
                    .padding((1, 0, 1))
                    .dilation((1, 2, 1))
                    .groups(2),
            ),
        ),
        ("c3_same", true, Op::C3(c3.padding(Padding3d::Same))),
        ("c3_depthwise", true, Op::C3(c3.padding(1).groups(3))),
        (
            "c3_replicate",
            true,
            Op::C3(c3.padding(1).padding_mode(PaddingMode::Replicate)),
        ),
        (
            "c3_circular",
            false,
            Op::C3(
                c3.stride(2)
                    .padding((1, 0, 2))
                    .padding_mode(PaddingMode::Circular),
            ),
        ),
        ("c3_unbatched", true, Op::C3(c3.stride(2))),
        ("c3_nhwc", true, Op::C3(c3.padding((0, 1, 1)))),
        ("t1_basic", true, Op::T1(t1)),
        (
            "t1_stride2",
            true,
            Op::T1(t1.stride(2).padding(1).output_padding(1)),
        ),
        (
            "t1_mixed",
            false,
            Op::T1(
                t1.stride(3)
                    .padding(2)
                    .output_padding(1)
                    .groups(3)
                    .dilation(2),
            ),
        ),
        ("t1_unbatched", true, Op::T1(t1.stride(2))),
        ("t2_basic", true, Op::T2(t2)),
        ("t2_stride2", true, Op::T2(t2.stride(2))),
        (
            "t2_outpad",
            true,
            Op::T2(t2.stride(2).padding(1).output_padding(1)),
        ),
        (
            "t2_mixed",
            false,
            Op::T2(
                t2.stride((2, 3))
                    .padding((1, 0))
                    .output_padding((0, 2))
                    .groups(3)
                    .dilation((2, 1)),
            ),
        ),
        (
            "t2_outpad_dilation",
            true,
            Op::T2(t2.dilation(2).output_padding(1)),
        ),
        ("t2_unbatched", true, Op::T2(t2.stride(2).padding(1))),
        (
            "t2_nhwc",
            true,
            Op::T2(t2.stride(2).padding(1).output_padding(1)),
        ),
    ]
}

/// `x` seen through a non-contiguous view with the same values (its last two dims
/// swapped twice, the second time as a view; every case has both above 1).
fn strided(x: &Tensor) -> kiln::Result<Tensor> {
    let r = x.rank();
    x.transpose(r - 2, r - 1)?
        .contiguous()?
        .transpose(r - 2, r - 1)
}

/// Every golden case in `dtype` on `dev` within `tol`, the input once contiguous and
/// once a strided view.
fn check_all(dtype: DType, tol: f64, dev: &Device) {
    for (name, bias, op) in cases() {
        eprintln!("case {name} {dtype:?}");
        common::check_weighted_case("conv_nd", name, bias, dtype, tol, dev, |x, w, b| {
            op.run(x, w, b)
        });
        common::check_weighted_case("conv_nd", name, bias, dtype, tol, dev, |x, w, b| {
            let y = op.run(&strided(x)?, w, b)?;
            assert!(!strided(x)?.is_contiguous());
            Ok(y)
        });
    }
}

device_test! {
    fn golden_f64(dev) {
        check_all(DType::F64, 1e-10, dev);
    }
    fn golden_f32(dev) {
        check_all(DType::F32, 2e-4, dev);
    }
}

/// The CUDA parity sweep: every golden case in every float dtype on the device
/// against the CPU backend in the same dtype (halves on tensor cores, channels-last
/// where the channels allow, SIMT f32/f64, the depthwise kernels), value and every
/// gradient within one rounding of the dtype ([`common::device_tol`]).
#[test]
fn cuda_matches_the_cpu_in_every_dtype() {
    let Some(dev) = common::cuda_or_skip("cuda_matches_the_cpu_in_every_dtype") else {
        return;
    };
    for (name, bias, op) in cases() {
        for dtype in [DType::F64, DType::F32, DType::F16, DType::BF16] {
            let run = |d: &Device| {
                common::run_weighted_case("conv_nd", name, bias, dtype, d, |x, w, b| {
                    op.run(x, w, b)
                })
            };
            let (got, want) = (run(&dev), run(&Device::Cpu));
            let (atol, rtol) = common::device_tol(dtype, &dev);
            for (j, (g, w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.dtype(), dtype);
                let what = format!("{name} {dtype:?}: value/grad x/w/b {j}");
                common::assert_values(&what, g, w, atol, rtol);
            }
        }
    }
}

/// On the emulated device every kernel of conv.cu and conv_tc.cu that this binary can
/// reach runs in the sweep above. Two groups are reached elsewhere, being behind
/// settings: the TF32 tensor-core kernels (`kiln::cuda::set_conv_allow_tf32`, a
/// process-wide switch, tests/conv_tf32.rs) and the SIMT half kernels (taken only
/// below compute capability 8.0; src/backend/cuda/ops/conv_tests.rs forces them).
#[test]
fn every_conv_kernel_is_launched() {
    if common::launches("conv_fwd_f32").is_none() {
        eprintln!("skipped: launch counts exist only on the emulated device");
        return;
    }
    cuda_matches_the_cpu_in_every_dtype();
    let mut kernels = Vec::new();
    for dtype in ["f32", "f64", "f16", "bf16"] {
        for family in ["dw_fwd", "dw_bwd_input", "dw_bwd_weight", "wgrad_sum"] {
            kernels.push(format!("conv_{family}_{dtype}"));
        }
    }
    for dtype in ["f32", "f64"] {
        for family in ["fwd", "bwd_input", "bwd_weight"] {
            kernels.push(format!("conv_{family}_{dtype}"));
        }
    }
    for dtype in ["f16", "bf16"] {
        for family in [
            "fwd",
            "fwd_nhwc",
            "bwd_input",
            "bwd_input_nhwc",
            "bwd_weight",
        ] {
            kernels.push(format!("conv_tc_{family}_{dtype}"));
        }
    }
    for kernel in kernels {
        assert!(common::launches(&kernel).unwrap() > 0, "{kernel} never ran");
    }
}

/// Input, weight, op and expected output shapes of an empty-batch case.
type EmptyCase = (&'static [usize], &'static [usize], Op, &'static [usize]);

device_test! {
    /// An empty batch gives an empty output and gradients of the operands' shapes (the
    /// weight's and bias's zero).
    fn empty_batch(dev) {
        let shapes: [EmptyCase; 4] = [
            (&[0, 2, 5], &[3, 2, 3], Op::C1(Conv1dOpts::new()), &[0, 3, 3]),
            (&[0, 2, 3, 4, 4], &[3, 2, 2, 2, 2], Op::C3(Conv3dOpts::new()), &[0, 3, 2, 3, 3]),
            (&[0, 2, 5], &[2, 3, 3], Op::T1(ConvTranspose1dOpts::new().stride(2)), &[0, 3, 11]),
            (&[0, 2, 3, 4], &[2, 3, 2, 2], Op::T2(ConvTranspose2dOpts::new()), &[0, 3, 4, 5]),
        ];
        for (xs, ws, op, out) in shapes {
            let x = Tensor::zeros(xs, DType::F32, dev).unwrap().requires_grad();
            let w = Tensor::ones(ws, DType::F32, dev).unwrap().requires_grad();
            let b = Tensor::ones(&[3], DType::F32, dev).unwrap().requires_grad();
            let y = op.run(&x, &w, Some(&b)).unwrap();
            assert_eq!(y.shape(), out, "{op:?}");
            y.sum_all().unwrap().backward().unwrap();
            assert_eq!(x.grad().unwrap().shape(), xs);
            assert_eq!(common::host(&w.grad().unwrap()), vec![0.0; w.numel()]);
            assert_eq!(common::host(&b.grad().unwrap()), vec![0.0; 3]);
        }
    }
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F64, &Device::Cpu).unwrap()
}

/// Finite differences of `op` with respect to input, weight and (with `bias` of
/// `channels`) bias.
fn check_gradients(x: &[usize], w: &[usize], bias: Option<usize>, op: Op) {
    kiln::manual_seed(5);
    let mut inputs = vec![randn(x), randn(w)];
    inputs.extend(bias.map(|c| randn(&[c])));
    gradcheck(
        |t| op.run(&t[0], &t[1], t.get(2)),
        &inputs,
        GradcheckOpts::default(),
    )
    .unwrap();
}

#[test]
fn gradcheck_conv1d_and_conv3d() {
    let c1 = Conv1dOpts::new().stride(2).padding(2).dilation(2).groups(2);
    check_gradients(&[2, 4, 9], &[4, 2, 3], Some(4), Op::C1(c1));
    let reflect = Conv1dOpts::new()
        .padding(1)
        .padding_mode(PaddingMode::Reflect);
    check_gradients(&[1, 2, 5], &[2, 2, 3], None, Op::C1(reflect));
    let c3 = Conv3dOpts::new()
        .stride((1, 2, 1))
        .padding((1, 0, 1))
        .groups(2);
    check_gradients(&[1, 4, 3, 4, 3], &[2, 2, 2, 2, 2], Some(2), Op::C3(c3));
    let circular = Conv3dOpts::new()
        .padding(1)
        .padding_mode(PaddingMode::Circular);
    check_gradients(&[1, 1, 3, 3, 3], &[1, 1, 2, 2, 2], None, Op::C3(circular));
}

#[test]
fn gradcheck_transposed() {
    let t1 = ConvTranspose1dOpts::new()
        .stride(2)
        .padding(1)
        .output_padding(1)
        .groups(2);
    check_gradients(&[2, 4, 5], &[4, 3, 3], Some(6), Op::T1(t1));
    let t2 = ConvTranspose2dOpts::new()
        .stride((2, 1))
        .padding((0, 1))
        .output_padding((1, 0))
        .dilation((1, 2));
    check_gradients(&[1, 3, 3, 4], &[3, 2, 2, 3], Some(2), Op::T2(t2));
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// The argument `op` on fresh operands of these shapes names in its error.
fn err(x: &[usize], w: &[usize], b: Option<usize>, op: Op) -> &'static str {
    arg_name(
        op.run(&randn(x), &randn(w), b.map(|c| randn(&[c])).as_ref())
            .unwrap_err(),
    )
}

#[test]
fn bad_arguments_of_conv1d_and_conv3d_are_errors_naming_them() {
    let c1 = Conv1dOpts::new();
    assert_eq!(
        err(&[1, 3, 5], &[4, 1, 3], None, Op::C1(c1.groups(2))),
        "groups"
    );
    assert_eq!(err(&[1, 3, 5], &[4, 2, 3], None, Op::C1(c1)), "weight");
    assert_eq!(err(&[1, 3, 5], &[4, 3, 3, 3], None, Op::C1(c1)), "weight");
    assert_eq!(err(&[1, 1, 3, 5], &[4, 3, 3], None, Op::C1(c1)), "input");
    assert_eq!(
        err(&[1, 3, 5], &[4, 3, 3], None, Op::C1(c1.stride(0))),
        "stride"
    );
    assert_eq!(
        err(&[1, 3, 5], &[4, 3, 3], None, Op::C1(c1.dilation(0))),
        "dilation"
    );
    assert_eq!(err(&[1, 3, 2], &[4, 3, 3], None, Op::C1(c1)), "weight");
    assert_eq!(err(&[1, 3, 5], &[4, 3, 3], Some(3), Op::C1(c1)), "bias");
    let same = c1.padding(Padding1d::Same).stride(2);
    assert_eq!(err(&[1, 3, 5], &[4, 3, 3], None, Op::C1(same)), "padding");
    let reflect = c1.padding(5).padding_mode(PaddingMode::Reflect);
    assert_eq!(
        err(&[1, 3, 5], &[4, 3, 3], None, Op::C1(reflect)),
        "padding"
    );
    let c3 = Conv3dOpts::new();
    assert_eq!(
        err(&[1, 2, 3, 4, 4], &[2, 2, 2, 2], None, Op::C3(c3)),
        "weight"
    );
    assert_eq!(
        err(&[1, 3, 3, 4, 4], &[2, 2, 2, 2, 2], None, Op::C3(c3)),
        "weight"
    );
    assert_eq!(
        err(&[1, 2, 2, 4, 4], &[2, 2, 3, 2, 2], None, Op::C3(c3)),
        "weight"
    );
    assert_eq!(
        err(
            &[1, 2, 3, 4, 4],
            &[2, 2, 2, 2, 2],
            None,
            Op::C3(c3.stride((1, 0, 1)))
        ),
        "stride"
    );
    let circular = c3.padding((4, 0, 0)).padding_mode(PaddingMode::Circular);
    assert_eq!(
        err(&[1, 2, 3, 4, 4], &[2, 2, 2, 2, 2], None, Op::C3(circular)),
        "padding"
    );
}

#[test]
fn bad_arguments_of_transposed_convolutions_are_errors_naming_them() {
    let t2 = ConvTranspose2dOpts::new();
    // The weight's first axis is the input's channels.
    assert_eq!(
        err(&[1, 3, 4, 4], &[4, 3, 3, 3], None, Op::T2(t2)),
        "weight"
    );
    assert_eq!(err(&[1, 3, 4, 4], &[3, 2, 3], None, Op::T2(t2)), "weight");
    assert_eq!(err(&[3, 4], &[3, 2, 3, 3], None, Op::T2(t2)), "input");
    assert_eq!(
        err(&[1, 3, 4, 4], &[3, 2, 3, 3], None, Op::T2(t2.groups(2))),
        "groups"
    );
    assert_eq!(
        err(&[1, 4, 4, 4], &[4, 2, 3, 3], None, Op::T2(t2.groups(0))),
        "groups"
    );
    assert_eq!(
        err(
            &[1, 3, 4, 4],
            &[3, 2, 3, 3],
            None,
            Op::T2(t2.stride((0, 1)))
        ),
        "stride"
    );
    assert_eq!(
        err(&[1, 3, 4, 4], &[3, 2, 3, 3], None, Op::T2(t2.dilation(0))),
        "dilation"
    );
    // output_padding must be below the stride or the dilation.
    let too_much = t2.stride(2).output_padding(2);
    assert_eq!(
        err(&[1, 3, 4, 4], &[3, 2, 3, 3], None, Op::T2(too_much)),
        "output_padding"
    );
    assert_eq!(
        err(
            &[1, 3, 4, 4],
            &[3, 2, 3, 3],
            None,
            Op::T2(t2.output_padding(1))
        ),
        "output_padding"
    );
    // (1 - 1)·1 + 3 - 2·2 < 1: no output.
    assert_eq!(
        err(&[1, 3, 1, 4], &[3, 2, 3, 3], None, Op::T2(t2.padding(2))),
        "padding"
    );
    // One bias per output channel: weight.shape[1]·groups.
    assert_eq!(
        err(&[1, 3, 4, 4], &[3, 2, 3, 3], Some(3), Op::T2(t2)),
        "bias"
    );
    let t1 = ConvTranspose1dOpts::new();
    assert_eq!(err(&[1, 3, 0], &[3, 2, 3], None, Op::T1(t1)), "input");
    assert_eq!(
        err(
            &[1, 3, 4],
            &[3, 2, 3],
            None,
            Op::T1(t1.stride(3).output_padding(3))
        ),
        "output_padding"
    );
    let x = randn(&[1, 3, 4]);
    let w32 = randn(&[3, 2, 3]).to_dtype(DType::F32).unwrap();
    let e = F::conv_transpose1d(&x, &w32, None, t1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DTypeMismatch {
                op: "conv_transpose1d weight",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn modules_hold_pytorch_layouts_and_run_the_functional_op() {
    let dev = Device::Cpu;
    let c1 = nn::Conv1d::new(4, 6, 3, Conv1dOpts::new().padding(1).groups(2), &dev).unwrap();
    assert_eq!(c1.weight.shape(), &[6, 2, 3]);
    assert_eq!(c1.bias.as_ref().unwrap().shape(), &[6]);
    assert_eq!(
        nn::repr(&c1),
        "Conv1d(4, 6, kernel_size=(3,), stride=(1,), padding=(1,), groups=2)"
    );
    let c3 =
        nn::Conv3d::no_bias(2, 3, (1, 2, 3), Conv3dOpts::new().stride((1, 2, 2)), &dev).unwrap();
    assert_eq!(c3.weight.shape(), &[3, 2, 1, 2, 3]);
    assert_eq!(
        nn::repr(&c3),
        "Conv3d(2, 3, kernel_size=(1, 2, 3), stride=(1, 2, 2), bias=False)"
    );
    let opts = ConvTranspose2dOpts::new()
        .stride(2)
        .output_padding(1)
        .groups(2)
        .dilation((1, 2));
    let t2 = nn::ConvTranspose2d::new(4, 6, 3, opts, &dev).unwrap();
    assert_eq!(t2.weight.shape(), &[4, 3, 3, 3]);
    assert_eq!(t2.bias.as_ref().unwrap().shape(), &[6]);
    assert_eq!(
        nn::repr(&t2),
        "ConvTranspose2d(4, 6, kernel_size=(3, 3), stride=(2, 2), dilation=(1, 2), output_padding=(1, 1), groups=2)"
    );
    let x = randn(&[2, 4, 3, 5]).to_dtype(DType::F32).unwrap();
    let y = t2.forward(&x).unwrap();
    let want = F::conv_transpose2d(&x, &t2.weight, t2.bias.as_deref(), opts).unwrap();
    assert_eq!(y.shape(), &[2, 6, 8, 14]);
    common::assert_values("ConvTranspose2d", &y, &want, 0.0, 0.0);
    let t1 = nn::ConvTranspose1d::new(2, 2, 4, ConvTranspose1dOpts::new().stride(2), &dev).unwrap();
    assert_eq!(
        t1.forward(&randn(&[2, 7]).to_dtype(DType::F32).unwrap())
            .unwrap()
            .shape(),
        &[2, 16]
    );
    for (name, e) in [
        (
            "in_channels",
            nn::Conv1d::new(3, 4, 3, Conv1dOpts::new().groups(2), &dev).unwrap_err(),
        ),
        (
            "out_channels",
            nn::ConvTranspose2d::new(4, 3, 3, ConvTranspose2dOpts::new().groups(2), &dev)
                .unwrap_err(),
        ),
        (
            "kernel_size",
            nn::Conv3d::new(2, 2, (1, 0, 1), Conv3dOpts::new(), &dev).unwrap_err(),
        ),
        (
            "dtype",
            nn::ConvTranspose1d::new(2, 2, 2, ConvTranspose1dOpts::new().dtype(DType::I64), &dev)
                .unwrap_err(),
        ),
    ] {
        assert_eq!(arg_name(e), name);
    }
}
