//! `F::pad` (constant, reflect, replicate, circular) and `conv2d`'s padding modes
//! against PyTorch (values from scripts/golden/pad.py, whose lists hold the PyTorch
//! calls), on every device; f64 gradchecks; bad arguments.

mod common;

use common::{assert_close, check_weighted_case, device_test, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional::{self as F, PadMode};
use kiln::nn::{self, Conv2dOpts, Forward, Padding, PaddingMode};
use kiln::{DType, Device, Error, Tensor};

/// The dtypes every case runs in, with their tolerances on the CPU.
const DTYPES: [(DType, f64); 2] = [(DType::F64, 1e-12), (DType::F32, 1e-5)];

/// Pad case `name` of the fixture in `dtype` on `dev`: output and input gradient.
fn check_pad(name: &str, pad: (usize, usize, usize, usize), mode: PadMode, dev: &Device) {
    let g = Golden::load("pad");
    let key = |k: &str| format!("pad_{name}.{k}");
    for (dtype, tol) in DTYPES {
        let x = g
            .on(&key("x"), dev)
            .to_dtype(dtype)
            .unwrap()
            .requires_grad();
        let y = F::pad(&x, pad, mode).unwrap();
        assert_eq!(y.dtype(), dtype);
        assert_close(&y, &g.get(&key("out")), dev, tol, tol);
        let gy = g.on(&key("gy"), dev).to_dtype(dtype).unwrap();
        y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&x.grad().unwrap(), &g.get(&key("grad_x")), dev, tol, tol);
    }
}

device_test! {
    fn pad_constant(dev) { check_pad("constant", (1, 2, 0, 3), PadMode::Constant(0.5), dev); }
    fn pad_constant_zero_unbatched(dev) {
        check_pad("constant_zero_3d", (2, 0, 1, 1), PadMode::Constant(0.0), dev);
    }
    fn pad_reflect(dev) { check_pad("reflect", (2, 1, 3, 1), PadMode::Reflect, dev); }
    /// Reflect pads of size - 1, the largest allowed.
    fn pad_reflect_max(dev) { check_pad("reflect_max", (3, 3, 2, 2), PadMode::Reflect, dev); }
    fn pad_replicate(dev) { check_pad("replicate", (3, 1, 2, 4), PadMode::Replicate, dev); }
    /// A 1×1 plane: every output copies the one element, whose gradient sums them all.
    fn pad_replicate_one_pixel(dev) {
        check_pad("replicate_1px", (2, 1, 1, 3), PadMode::Replicate, dev);
    }
    fn pad_circular(dev) { check_pad("circular", (2, 3, 1, 4), PadMode::Circular, dev); }
    /// Circular pads as large as the input: a full wrap on each side.
    fn pad_circular_full(dev) { check_pad("circular_full", (4, 4, 3, 3), PadMode::Circular, dev); }
}

/// Conv case `name` through `F::conv2d` with `opts`, and through an `nn::Conv2d`
/// with the fixture's weights, in f64 and f32.
fn check_conv(name: &str, opts: Conv2dOpts, dev: &Device) {
    for (dtype, tol) in DTYPES {
        check_weighted_case("pad", name, true, dtype, tol, dev, |x, w, b| {
            F::conv2d(x, w, b, opts)
        });
        let g = Golden::load("pad");
        let key = |k: &str| format!("{name}.{k}");
        let w = g.get(&key("w"));
        let (c_out, c_in_g, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
        let conv = nn::Conv2d::new(
            c_in_g * opts.groups,
            c_out,
            (kh, kw),
            opts.dtype(dtype),
            dev,
        )
        .unwrap();
        conv.weight
            .copy_(&g.on(&key("w"), dev).to_dtype(dtype).unwrap())
            .unwrap();
        let bias = conv.bias.as_ref().unwrap();
        bias.copy_(&g.on(&key("b"), dev).to_dtype(dtype).unwrap())
            .unwrap();
        let y = conv
            .forward(&g.on(&key("x"), dev).to_dtype(dtype).unwrap())
            .unwrap();
        assert_close(&y, &g.get(&key("out")), dev, tol, tol);
    }
}

device_test! {
    fn conv_padding_mode_zeros(dev) {
        check_conv("conv_zeros", Conv2dOpts::new().padding(1), dev);
    }
    fn conv_padding_mode_reflect(dev) {
        check_conv("conv_reflect", Conv2dOpts::new().padding(1).padding_mode(PaddingMode::Reflect), dev);
    }
    fn conv_padding_mode_replicate_strided(dev) {
        let opts = Conv2dOpts::new().padding((2, 1)).stride((2, 1)).padding_mode(PaddingMode::Replicate);
        check_conv("conv_replicate", opts, dev);
    }
    fn conv_padding_mode_circular_dilated_grouped(dev) {
        let opts = Conv2dOpts::new().padding(2).dilation(2).groups(2).padding_mode(PaddingMode::Circular);
        check_conv("conv_circular", opts, dev);
    }
    /// `padding="same"` with an even kernel width: the odd column goes on the right.
    fn conv_padding_mode_reflect_same(dev) {
        let opts = Conv2dOpts::new().padding(Padding::Same).padding_mode(PaddingMode::Reflect);
        check_conv("conv_reflect_same", opts, dev);
    }
}

#[test]
fn gradcheck_pad_every_mode() {
    kiln::manual_seed(14);
    let x = [Tensor::randn(&[2, 2, 4, 5], DType::F64, &Device::Cpu).unwrap()];
    let opts = GradcheckOpts::default();
    for mode in [
        PadMode::Constant(0.7),
        PadMode::Reflect,
        PadMode::Replicate,
        PadMode::Circular,
    ] {
        gradcheck(|t| F::pad(&t[0], (3, 2, 1, 3), mode), &x, opts).unwrap();
        gradcheck(|t| F::pad(&t[0], (0, 4, 3, 0), mode), &x, opts)
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
}

#[test]
fn gradcheck_conv_with_padding_modes() {
    kiln::manual_seed(15);
    let randn = |s: &[usize]| Tensor::randn(s, DType::F64, &Device::Cpu).unwrap();
    let inputs = [randn(&[1, 2, 5, 4]), randn(&[3, 2, 3, 3]), randn(&[3])];
    for mode in [
        PaddingMode::Reflect,
        PaddingMode::Replicate,
        PaddingMode::Circular,
    ] {
        let opts = Conv2dOpts::new()
            .padding((2, 1))
            .stride((1, 2))
            .padding_mode(mode);
        gradcheck(
            |t| F::conv2d(&t[0], &t[1], Some(&t[2]), opts),
            &inputs,
            GradcheckOpts::default(),
        )
        .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    }
}

/// The name of the argument an `Err` blames.
fn blamed(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other}"),
    }
}

#[test]
fn bad_padding_is_an_error_naming_it() {
    let x = Tensor::zeros(&[1, 2, 3, 4], DType::F32, &Device::Cpu).unwrap();
    // Reflect: each pad below the size it pads (here H = 3, W = 4), as PyTorch.
    assert_eq!(
        blamed(F::pad(&x, (0, 0, 3, 0), PadMode::Reflect).unwrap_err()),
        "pad"
    );
    assert_eq!(
        blamed(F::pad(&x, (4, 0, 0, 0), PadMode::Reflect).unwrap_err()),
        "pad"
    );
    assert!(F::pad(&x, (3, 3, 2, 2), PadMode::Reflect).is_ok());
    // Circular: at most the size.
    assert_eq!(
        blamed(F::pad(&x, (0, 5, 0, 0), PadMode::Circular).unwrap_err()),
        "pad"
    );
    assert!(F::pad(&x, (4, 4, 3, 3), PadMode::Circular).is_ok());
    // Empty dimensions cannot be reflected, replicated or wrapped; constant is fine.
    let empty = Tensor::zeros(&[1, 2, 0, 4], DType::F32, &Device::Cpu).unwrap();
    for mode in [PadMode::Reflect, PadMode::Replicate, PadMode::Circular] {
        assert_eq!(
            blamed(F::pad(&empty, (0, 0, 1, 0), mode).unwrap_err()),
            "pad"
        );
    }
    assert_eq!(
        F::pad(&empty, (0, 0, 1, 1), PadMode::Constant(1.0))
            .unwrap()
            .shape(),
        &[1, 2, 2, 4]
    );
    // Rank below 2, integer input.
    let v = Tensor::zeros(&[4], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        blamed(F::pad(&v, (1, 1, 0, 0), PadMode::Replicate).unwrap_err()),
        "input"
    );
    let ints = Tensor::zeros(&[2, 2], DType::I64, &Device::Cpu).unwrap();
    assert!(F::pad(&ints, (1, 1, 0, 0), PadMode::Replicate).is_err());
    // conv2d names its `padding` when the mode cannot pad that much.
    let w = Tensor::zeros(&[1, 2, 1, 1], DType::F32, &Device::Cpu).unwrap();
    let opts = Conv2dOpts::new()
        .padding(3)
        .padding_mode(PaddingMode::Reflect);
    assert_eq!(
        blamed(F::conv2d(&x, &w, None, opts).unwrap_err()),
        "padding"
    );
    let conv = nn::Conv2d::new(2, 1, 1, opts, &Device::Cpu).unwrap();
    assert_eq!(blamed(conv.forward(&x).unwrap_err()), "padding");
    // Zero padding of any size stays allowed.
    assert!(F::conv2d(&x, &w, None, opts.padding_mode(PaddingMode::Zeros)).is_ok());
}

#[test]
fn conv_bias_and_dtype_options() {
    let dev = Device::Cpu;
    let a = nn::Conv2d::new(2, 4, 3, Conv2dOpts::new().bias(false), &dev).unwrap();
    let b = nn::Conv2d::no_bias(2, 4, 3, Conv2dOpts::new(), &dev).unwrap();
    assert!(a.bias.is_none() && b.bias.is_none());
    // The same layer: shape, dtype and PyTorch's kaiming-uniform bound 1/√fan_in. (Not
    // the same values from one seed: this file's tests run in parallel and draw from
    // the one global generator, so a seeded pair of draws could interleave.)
    let bound = 1.0 / (2.0f32 * 3.0 * 3.0).sqrt();
    for w in [&a.weight, &b.weight] {
        assert_eq!((w.shape(), w.dtype()), (&[4, 2, 3, 3][..], DType::F32));
        let v = w.to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() <= bound) && v.iter().any(|&x| x != 0.0));
    }
    let names: Vec<String> = nn::Module::named_parameters(&a)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["weight"]);
    for dtype in [DType::F64, DType::F16, DType::BF16] {
        let c = nn::Conv2d::new(2, 4, 3, Conv2dOpts::new().dtype(dtype), &dev).unwrap();
        assert_eq!(c.weight.dtype(), dtype);
        assert_eq!(c.bias.as_ref().unwrap().dtype(), dtype);
        let x = Tensor::ones(&[1, 2, 5, 5], dtype, &dev).unwrap();
        assert_eq!(c.forward(&x).unwrap().dtype(), dtype);
    }
    for dtype in [DType::I64, DType::U8] {
        let e = nn::Conv2d::new(2, 4, 3, Conv2dOpts::new().dtype(dtype), &dev).unwrap_err();
        assert_eq!(blamed(e), "dtype");
        let e = nn::Linear::new_with(2, 4, nn::LinearOpts::new().dtype(dtype), &dev).unwrap_err();
        assert_eq!(blamed(e), "dtype");
        let e =
            nn::BatchNorm2d::new_with(2, nn::BatchNormOpts::new().dtype(dtype), &dev).unwrap_err();
        assert_eq!(blamed(e), "dtype");
    }
    let fc = nn::Linear::new_with(
        3,
        2,
        nn::LinearOpts::new().bias(false).dtype(DType::F64),
        &dev,
    )
    .unwrap();
    assert!(fc.bias.is_none() && fc.weight.dtype() == DType::F64);
    let bn = nn::BatchNorm2d::new_with(
        3,
        nn::BatchNormOpts::new().dtype(DType::BF16).eps(1e-3),
        &dev,
    )
    .unwrap();
    assert_eq!(bn.weight.dtype(), DType::BF16);
    assert_eq!(bn.running_var.dtype(), DType::BF16);
    assert_eq!(bn.num_batches_tracked.dtype(), DType::I64);
    assert_eq!(bn.eps(), 1e-3);
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The padding kernels on every float dtype and mode against the CPU backend
/// (tests/common/parity.rs), and the check that these tests launch every kernel of
/// kernels/pad.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, values, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{Device, Result, Tensor};

    /// Padding in every float dtype and mode, forward and gradient, against the CPU:
    /// exact (the forward copies; the gradient sums the same copies in the same order).
    /// A larger case crosses the grid-stride loop.
    #[test]
    fn pad_matches_the_cpu_in_every_float_dtype() {
        use kiln::nn::functional::PadMode;
        let (dev, _gpu) = gpu_or_skip!("pad_matches_the_cpu_in_every_float_dtype");
        let modes = [
            PadMode::Constant(-1.5),
            PadMode::Reflect,
            PadMode::Replicate,
            PadMode::Circular,
        ];
        // (input shape, (left, right, top, bottom))
        type PadCase = (&'static [usize], (usize, usize, usize, usize));
        let cases: [PadCase; 3] = [
            (&[2, 3, 5, 6], (2, 3, 4, 1)),
            (&[3, 4, 2], (1, 1, 0, 3)),
            (&[1, 2, 60, 97], (5, 4, 3, 2)),
        ];
        for dtype in FLOATS {
            for (case, &(shape, pad)) in cases.iter().enumerate() {
                for mode in modes {
                    let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                        let x = values(shape, dtype, 95 + case as u64)
                            .to_device(d)?
                            .requires_grad();
                        let y = F::pad(&x, pad, mode)?;
                        let upstream = values(y.shape(), dtype, 96).to_device(d)?;
                        y.mul(&upstream)?.sum_all()?.backward()?;
                        Ok((y, x.grad().expect("grad")))
                    };
                    let what = format!("pad {mode:?} {shape:?} {dtype:?}");
                    let (yg, gg) = run(&dev).unwrap();
                    let (yc, gc) = run(&Device::Cpu).unwrap();
                    assert_close(&format!("{what} value"), &yg, &yc, 0.0, 0.0);
                    assert_close(&format!("{what} grad"), &gg, &gc, 0.0, 0.0);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/pad.cu.
    #[test]
    fn every_pad_kernel_is_launched() {
        let suite: [fn(); 1] = [pad_matches_the_cpu_in_every_float_dtype];
        assert_every_kernel_launched("pad", &suite, &[]);
    }
}
