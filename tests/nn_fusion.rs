//! `nn::utils::fuse_conv_bn_eval` against `torch.nn.utils.fusion.fuse_conv_bn_eval`
//! (scripts/golden/fusion.py): the fused weight and bias, and the fused layer's output.

mod common;

use common::{device_test, Golden};
use kiln::nn::{self, BatchNormOpts, Conv2dOpts, Forward, Module};
use kiln::{DType, Device, Error, Tensor};

/// A golden case: the convolution's options, its sizes, and the batch norm's eps.
struct Case {
    name: &'static str,
    in_channels: usize,
    out_channels: usize,
    kernel: (usize, usize),
    opts: Conv2dOpts,
    eps: f64,
}

fn cases() -> Vec<Case> {
    let c = |name, in_channels, out_channels, kernel, opts, eps| Case {
        name,
        in_channels,
        out_channels,
        kernel,
        opts,
        eps,
    };
    let f64 = Conv2dOpts::new().dtype(DType::F64);
    vec![
        // Conv2d(3, 4, 3, padding=1), BatchNorm2d(4), float64
        c("plain", 3, 4, (3, 3), f64.padding(1), 1e-5),
        // Conv2d(4, 6, (3, 2), stride=2, bias=False), BatchNorm2d(6, eps=1e-3), float64
        c(
            "no_bias_strided",
            4,
            6,
            (3, 2),
            f64.stride(2).bias(false),
            1e-3,
        ),
        // Conv2d(4, 8, 3, groups=2, padding=1), BatchNorm2d(8), float32
        c(
            "grouped_f32",
            4,
            8,
            (3, 3),
            Conv2dOpts::new().groups(2).padding(1),
            1e-5,
        ),
        // Conv2d(5, 5, 3, groups=5, bias=False), BatchNorm2d(5), float64
        c("depthwise", 5, 5, (3, 3), f64.groups(5).bias(false), 1e-5),
    ]
}

/// The case's two layers on `dev`, holding PyTorch's values, in eval mode.
fn layers(g: &Golden, case: &Case, dev: &Device) -> (nn::Conv2d, nn::BatchNorm2d) {
    let key = |k: &str| g.on(&format!("{}.{k}", case.name), dev);
    let conv = nn::Conv2d::new(
        case.in_channels,
        case.out_channels,
        case.kernel,
        case.opts,
        dev,
    )
    .unwrap();
    conv.weight.copy_(&key("conv.weight")).unwrap();
    if let Some(b) = &conv.bias {
        b.copy_(&key("conv.bias")).unwrap();
    }
    let bn_opts = BatchNormOpts::new().eps(case.eps).dtype(case.opts.dtype);
    let bn = nn::BatchNorm2d::new_with(case.out_channels, bn_opts, dev).unwrap();
    bn.weight.copy_(&key("bn.weight")).unwrap();
    bn.bias.copy_(&key("bn.bias")).unwrap();
    bn.running_mean.copy_(&key("bn.running_mean")).unwrap();
    bn.running_var.copy_(&key("bn.running_var")).unwrap();
    conv.eval();
    bn.eval();
    (conv, bn)
}

device_test! {
    /// The fused parameters and output match PyTorch's; the layers that went in are
    /// unchanged and the generator did not move.
    fn fused_layers_match_pytorch(dev) {
        // The generator is global: other tests' draws would move it between the reads.
        let _own = common::own_generator();
        let g = Golden::load("fusion");
        for case in cases() {
            let (conv, bn) = layers(&g, &case, dev);
            let conv_weight = common::host(&conv.weight);
            let state = kiln::rng_state().to_vec::<u8>().unwrap();
            let fused = nn::utils::fuse_conv_bn_eval(&conv, &bn).unwrap();
            assert_eq!(kiln::rng_state().to_vec::<u8>().unwrap(), state, "{}: rng moved", case.name);
            assert_eq!(common::host(&conv.weight), conv_weight, "{}: conv changed", case.name);
            assert!(!fused.is_training());
            let (atol, rtol) = if case.opts.dtype == DType::F64 { (1e-12, 1e-12) } else { (1e-6, 1e-6) };
            let key = |k: &str| g.on(&format!("{}.{k}", case.name), dev);
            common::assert_close(&fused.weight, &key("fused.weight"), dev, atol, rtol);
            common::assert_close(fused.bias.as_ref().unwrap(), &key("fused.bias"), dev, atol, rtol);
            let out = fused.forward(&key("x")).unwrap();
            let (atol, rtol) = if case.opts.dtype == DType::F64 { (1e-10, 1e-10) } else { (1e-4, 1e-4) };
            common::assert_close(&out, &key("out"), dev, atol, rtol);
            // And it is what the two layers compute.
            let two = bn.forward(&conv.forward(&key("x")).unwrap()).unwrap();
            common::assert_close(&out, &two, dev, atol, rtol);
        }
    }

    /// Training mode anywhere, or a batch norm of other channels, is an Err naming
    /// the layer.
    fn bad_pairs_are_errors(dev) {
        let conv = nn::Conv2d::new(2, 3, 1, Conv2dOpts::new(), dev).unwrap();
        let bn = nn::BatchNorm2d::new(3, dev).unwrap();
        let named = |r: kiln::Result<nn::Conv2d>, name: &str| match r {
            Err(Error::InvalidArgument { name: got, .. }) => assert_eq!(got, name),
            other => panic!("expected an InvalidArgument for {name}, got {other:?}"),
        };
        named(nn::utils::fuse_conv_bn_eval(&conv, &bn), "conv");
        conv.eval();
        named(nn::utils::fuse_conv_bn_eval(&conv, &bn), "bn");
        let other = nn::BatchNorm2d::new(4, dev).unwrap();
        other.eval();
        named(nn::utils::fuse_conv_bn_eval(&conv, &other), "bn");
        bn.eval();
        assert!(nn::utils::fuse_conv_bn_eval(&conv, &bn).is_ok());
    }
}

#[test]
fn the_fused_layer_keeps_the_dtype_and_has_a_bias() {
    let dev = Device::Cpu;
    let conv = nn::Conv2d::no_bias(2, 2, 3, Conv2dOpts::new().dtype(DType::F64), &dev).unwrap();
    let bn = nn::BatchNorm2d::new_with(2, BatchNormOpts::new().dtype(DType::F64), &dev).unwrap();
    conv.eval();
    bn.eval();
    let fused = nn::utils::fuse_conv_bn_eval(&conv, &bn).unwrap();
    assert_eq!(fused.weight.dtype(), DType::F64);
    assert_eq!(fused.bias.as_ref().map(|b| b.dtype()), Some(DType::F64));
    let x = Tensor::randn(&[1, 2, 4, 4], DType::F64, &dev).unwrap();
    assert_eq!(fused.forward(&x).unwrap().shape(), &[1, 2, 2, 2]);
}
