//! Bad arguments to the layer modules (constructors and `forward`) return an
//! `Error::InvalidArgument` naming the argument, and leave the layer unchanged.

use kiln::nn::{self, Conv2dOpts, Forward, Module};
use kiln::{DType, Device, Error, Tensor};

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F32, &Device::Cpu).unwrap()
}

/// Asserts that `result` is `Err(InvalidArgument)` for `name` and that the message
/// mentions each of `needles`.
#[track_caller]
fn assert_arg<T: std::fmt::Debug>(result: kiln::Result<T>, name: &str, needles: &[&str]) {
    match result {
        Err(Error::InvalidArgument { name: got, msg }) => {
            assert_eq!(got, name, "argument named in {msg:?}");
            for needle in needles {
                assert!(msg.contains(needle), "message {msg:?} lacks {needle:?}");
            }
        }
        other => panic!("expected InvalidArgument for `{name}`, got {other:?}"),
    }
}

#[test]
fn conv2d_channels_not_divisible_by_groups() {
    let dev = Device::Cpu;
    let opts = |groups| Conv2dOpts::new().groups(groups);
    assert_arg(
        nn::Conv2d::new(6, 8, 3, opts(4), &dev),
        "in_channels",
        &["6", "groups (4)"],
    );
    assert_arg(
        nn::Conv2d::new(8, 6, 3, opts(4), &dev),
        "out_channels",
        &["6", "groups (4)"],
    );
    assert_arg(
        nn::Conv2d::no_bias(8, 6, 3, opts(4), &dev),
        "out_channels",
        &[],
    );
    assert_arg(nn::Conv2d::new(8, 8, 3, opts(0), &dev), "groups", &[]);
    assert_arg(nn::Conv2d::new(0, 8, 3, opts(1), &dev), "in_channels", &[]);
    assert_arg(
        nn::Conv2d::new(4, 8, (3, 0), opts(1), &dev),
        "kernel_size",
        &[],
    );
    // Divisible channels are fine, depthwise included.
    assert!(nn::Conv2d::new(8, 16, 3, opts(8), &dev).is_ok());
}

#[test]
fn conv2d_input_that_does_not_fit_the_layer() {
    let conv = nn::Conv2d::new(4, 8, 3, Conv2dOpts::new().groups(2), &Device::Cpu).unwrap();
    // 6 input channels for a layer built for 4.
    assert_arg(conv.forward(&randn(&[1, 6, 5, 5])), "weight", &["6"]);
    // A 2×2 image under a 3×3 kernel without padding.
    assert_arg(conv.forward(&randn(&[1, 4, 2, 2])), "weight", &["larger"]);
    assert_arg(conv.forward(&randn(&[4, 5])), "input", &[]);
}

#[test]
fn dropout_p_outside_unit_interval() {
    for p in [-0.1, 1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_arg(nn::Dropout::new(p), "p", &["[0, 1]"]);
    }
    for p in [0.0, 1.0] {
        assert_eq!(nn::Dropout::new(p).unwrap().p(), p);
    }
}

#[test]
fn batch_norm2d_on_a_3d_input() {
    let bn = nn::BatchNorm2d::new(3, &Device::Cpu).unwrap();
    assert_arg(
        bn.forward(&randn(&[4, 3, 5])),
        "input",
        &["BatchNorm2d", "4-D", "[4, 3, 5]"],
    );
    bn.eval();
    assert_arg(bn.forward(&randn(&[3, 5])), "input", &["BatchNorm2d"]);
    // The wrong number of channels, in the right rank.
    assert_arg(
        bn.forward(&randn(&[4, 5, 2, 2])),
        "input",
        &["BatchNorm2d(3)", "[4, 5, 2, 2]"],
    );
    // BatchNorm1d takes (N, C) and (N, C, L), not images.
    let bn1 = nn::BatchNorm1d::new(3, &Device::Cpu).unwrap();
    assert_arg(
        bn1.forward(&randn(&[4, 3, 2, 2])),
        "input",
        &["BatchNorm1d", "(N, C, L)"],
    );
    assert_arg(bn1.forward(&randn(&[3])), "input", &["BatchNorm1d"]);
    // A failed forward changes no statistic.
    bn1.train();
    assert!(bn1.forward(&randn(&[4, 2])).is_err());
    assert_eq!(bn1.num_batches_tracked.item::<i64>().unwrap(), 0);
    assert_eq!(bn1.running_mean.to_vec::<f32>().unwrap(), [0.0; 3]);
    assert_eq!(bn1.running_var.to_vec::<f32>().unwrap(), [1.0; 3]);
}

#[test]
fn batch_norm_constructor_arguments() {
    let dev = Device::Cpu;
    assert_arg(nn::BatchNorm2d::new(0, &dev), "num_features", &[]);
    assert_arg(nn::BatchNorm1d::new(0, &dev), "num_features", &[]);
    for momentum in [-0.5, 1.5, f64::NAN] {
        assert_arg(
            nn::BatchNorm2d::with_options(3, momentum, 1e-5, &dev),
            "momentum",
            &[],
        );
    }
    for eps in [0.0, -1e-5, f64::NAN] {
        assert_arg(nn::BatchNorm1d::with_options(3, 0.1, eps, &dev), "eps", &[]);
    }
}

#[test]
fn linear_on_a_wrong_sized_input() {
    let fc = nn::Linear::new(4, 3, &Device::Cpu).unwrap();
    assert_arg(
        fc.forward(&randn(&[2, 5])),
        "input",
        &["in_features = 4", "[2, 5]"],
    );
    assert_arg(fc.forward(&randn(&[2, 4, 3])), "input", &["[2, 4, 3]"]);
    let scalar = Tensor::scalar(1f32, &Device::Cpu).unwrap();
    assert_arg(fc.forward(&scalar), "input", &[]);
    // Any rank >= 1 with a last dimension of 4 is fine.
    assert_eq!(fc.forward(&randn(&[4])).unwrap().shape(), &[3]);
    assert_eq!(fc.forward(&randn(&[2, 3, 4])).unwrap().shape(), &[2, 3, 3]);
    let fc_nb = nn::Linear::no_bias(4, 3, &Device::Cpu).unwrap();
    assert_arg(fc_nb.forward(&randn(&[7])), "input", &[]);
    assert_arg(nn::Linear::new(0, 3, &Device::Cpu), "in_features", &[]);
    assert_arg(nn::Linear::no_bias(4, 0, &Device::Cpu), "out_features", &[]);
}

#[test]
fn dtype_mismatch_with_a_layer_is_an_error() {
    // Layers hold F32 parameters; an F64 input is rejected, not silently converted.
    let fc = nn::Linear::new(4, 3, &Device::Cpu).unwrap();
    let x = Tensor::randn(&[2, 4], DType::F64, &Device::Cpu).unwrap();
    assert!(matches!(fc.forward(&x), Err(Error::DTypeMismatch { .. })));
    let conv = nn::Conv2d::new(2, 2, 1, Conv2dOpts::new(), &Device::Cpu).unwrap();
    let img = Tensor::randn(&[1, 2, 3, 3], DType::F64, &Device::Cpu).unwrap();
    assert!(conv.forward(&img).is_err());
}
