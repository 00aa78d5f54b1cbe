//! kiln::models' torchvision classifiers against torchvision
//! (scripts/golden/torchvision_models.py): the full-size models have exactly
//! torchvision's state_dict names and shapes; reduced models built by torchvision's
//! own classes load into kiln's and give torchvision's logits in eval and train mode
//! on every device; a backward pass reaches every parameter.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::models::{
    convnext_tiny, efficientnet_b0, mobilenet_v3_large, mobilenet_v3_small, vit_b_16,
    CNBlockConfig, ConvNeXt, ConvNeXtConfig, EfficientNet, EfficientNetConfig,
    InvertedResidualConfig, MBConvConfig, MobileNetV3, MobileNetV3Config, VisionTransformer,
    VitConfig,
};
use kiln::nn::{Forward, Module};
use kiln::{DType, Device, Error, Tensor};
use std::collections::BTreeMap;

/// The `name d0,d1,...` lines of tests/data/torchvision_names/<model>.txt.
fn torchvision_shapes(model: &str) -> BTreeMap<String, Vec<usize>> {
    let path = format!(
        "{}/tests/data/torchvision_names/{model}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, dims) = line.split_once(' ').unwrap();
            let dims = dims
                .split(',')
                .filter(|d| !d.is_empty())
                .map(|d| d.parse().unwrap())
                .collect();
            (name.to_string(), dims)
        })
        .collect()
}

/// Asserts that `net`'s state_dict has torchvision's `model` names and shapes.
fn assert_torchvision_names(net: &dyn Module, model: &str, entries: usize) {
    let theirs = torchvision_shapes(model);
    assert_eq!(theirs.len(), entries, "torchvision's {model} state_dict");
    let ours: BTreeMap<String, Vec<usize>> = net
        .state_dict()
        .into_iter()
        .map(|(k, t)| (k, t.shape().to_vec()))
        .collect();
    assert_eq!(ours, theirs, "{model}: the same names with the same shapes");
}

/// Loads tests/data/tv_<name>_torch.safetensors into `net` on `dev` and compares
/// its eval-mode and then train-mode logits with torchvision's.
fn assert_torchvision_logits<M: Module + Forward>(net: &M, name: &str, dev: &Device) {
    let g = Golden::load("torchvision_models");
    let path = format!(
        "{}/tests/data/tv_{name}_torch.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    net.load(&path).unwrap();
    let x = g.on(&format!("{name}.x"), dev);
    net.eval();
    let logits = net.forward(&x).unwrap();
    assert_eq!(logits.shape(), &[2, 10]);
    assert_eq!(logits.device(), *dev);
    assert_close(&logits, &g.get(&format!("{name}.eval")), dev, 1e-4, 1e-4);
    net.train();
    let logits = net.forward(&x).unwrap();
    assert_close(&logits, &g.get(&format!("{name}.train")), dev, 1e-4, 1e-4);
}

/// A training-mode forward and backward of `net` on a random batch: every parameter
/// gets a finite gradient of its own shape.
fn assert_backward_reaches_every_parameter<M: Module + Forward>(net: &M, dev: &Device) {
    net.train();
    let x = Tensor::randn(&[2, 3, 32, 32], DType::F32, dev).unwrap();
    let loss = net
        .forward(&x)
        .unwrap()
        .square()
        .unwrap()
        .mean_all()
        .unwrap();
    loss.backward().unwrap();
    for (name, p) in net.named_parameters() {
        let grad = p.grad().unwrap_or_else(|| panic!("{name} has no gradient"));
        assert_eq!(grad.shape(), p.shape(), "{name}");
        let g = grad.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name}: non-finite gradient"
        );
    }
}

/// scripts/golden/torchvision_models.py's reduced MobileNetV3.
fn reduced_mobilenet_v3(dev: &Device) -> MobileNetV3 {
    let b = InvertedResidualConfig::new;
    let cfg = MobileNetV3Config {
        inverted_residual_setting: vec![
            b(8, 3, 8, 8, true, false, 2),
            b(8, 3, 24, 16, false, false, 2),
            b(16, 5, 32, 16, true, true, 1),
            b(16, 3, 32, 24, true, true, 2).dilation(2),
        ],
        last_channel: 32,
        num_classes: 10,
        dropout: 0.0,
    };
    MobileNetV3::new(&cfg, dev).unwrap()
}

/// scripts/golden/torchvision_models.py's reduced EfficientNet.
fn reduced_efficientnet(dev: &Device) -> EfficientNet {
    let c = MBConvConfig::new;
    let cfg = EfficientNetConfig {
        inverted_residual_setting: vec![
            c(1.0, 3, 1, 8, 8, 1),
            c(6.0, 3, 2, 8, 16, 2),
            c(6.0, 5, 1, 16, 24, 1),
        ],
        dropout: 0.0,
        stochastic_depth_prob: 0.0,
        num_classes: 10,
    };
    EfficientNet::new(&cfg, dev).unwrap()
}

/// scripts/golden/torchvision_models.py's reduced ConvNeXt.
fn reduced_convnext(dev: &Device) -> ConvNeXt {
    let c = |input_channels, out_channels, num_layers| CNBlockConfig {
        input_channels,
        out_channels,
        num_layers,
    };
    let cfg = ConvNeXtConfig {
        block_setting: vec![c(8, Some(16), 1), c(16, None, 2)],
        stochastic_depth_prob: 0.0,
        ..ConvNeXtConfig::tiny(10)
    };
    ConvNeXt::new(&cfg, dev).unwrap()
}

/// scripts/golden/torchvision_models.py's reduced ViT.
fn reduced_vit(dev: &Device) -> VisionTransformer {
    let cfg = VitConfig {
        image_size: 32,
        patch_size: 8,
        num_layers: 2,
        num_heads: 2,
        hidden_dim: 32,
        mlp_dim: 64,
        ..VitConfig::b_16(10)
    };
    VisionTransformer::new(&cfg, dev).unwrap()
}

#[test]
fn full_size_vit_b_16_has_torchvisions_names_and_shapes() {
    let net = vit_b_16(1000, &Device::Cpu).unwrap();
    assert_torchvision_names(&net, "vit_b_16", 152);
}

#[test]
fn full_size_efficientnet_b0_has_torchvisions_names_and_shapes() {
    let net = efficientnet_b0(1000, &Device::Cpu).unwrap();
    assert_torchvision_names(&net, "efficientnet_b0", 360);
}

#[test]
fn full_size_convnext_tiny_has_torchvisions_names_and_shapes() {
    let net = convnext_tiny(1000, &Device::Cpu).unwrap();
    assert_torchvision_names(&net, "convnext_tiny", 182);
}

#[test]
fn full_size_mobilenet_v3_has_torchvisions_names_and_shapes() {
    let small = mobilenet_v3_small(1000, &Device::Cpu).unwrap();
    assert_torchvision_names(&small, "mobilenet_v3_small", 244);
    let large = mobilenet_v3_large(1000, &Device::Cpu).unwrap();
    assert_torchvision_names(&large, "mobilenet_v3_large", 312);
}

device_test! {
    fn mobilenet_v3_gives_torchvisions_logits(dev) {
        assert_torchvision_logits(&reduced_mobilenet_v3(dev), "mobilenet_v3", dev);
    }

    fn mobilenet_v3_backward_reaches_every_parameter(dev) {
        assert_backward_reaches_every_parameter(&reduced_mobilenet_v3(dev), dev);
    }

    fn efficientnet_gives_torchvisions_logits(dev) {
        assert_torchvision_logits(&reduced_efficientnet(dev), "efficientnet", dev);
    }

    fn efficientnet_backward_reaches_every_parameter(dev) {
        assert_backward_reaches_every_parameter(&reduced_efficientnet(dev), dev);
    }

    fn convnext_gives_torchvisions_logits(dev) {
        assert_torchvision_logits(&reduced_convnext(dev), "convnext", dev);
    }

    fn convnext_backward_reaches_every_parameter(dev) {
        assert_backward_reaches_every_parameter(&reduced_convnext(dev), dev);
    }

    fn vit_gives_torchvisions_logits(dev) {
        assert_torchvision_logits(&reduced_vit(dev), "vit", dev);
    }

    fn vit_backward_reaches_every_parameter(dev) {
        assert_backward_reaches_every_parameter(&reduced_vit(dev), dev);
    }
}

#[test]
fn bad_configurations_are_errors_naming_them() {
    let cpu = Device::Cpu;
    let named = |r: kiln::Result<MobileNetV3>, want: &str| {
        assert!(
            matches!(&r, Err(Error::InvalidArgument { name, .. }) if *name == want),
            "{want}: {r:?}"
        );
    };
    let mut cfg = MobileNetV3Config::small(10);
    cfg.inverted_residual_setting.clear();
    named(MobileNetV3::new(&cfg, &cpu), "inverted_residual_setting");
    named(
        MobileNetV3::new(&MobileNetV3Config::small(0), &cpu),
        "num_classes",
    );
    let mut cfg = MobileNetV3Config::small(10);
    cfg.inverted_residual_setting[0].stride = 3;
    named(MobileNetV3::new(&cfg, &cpu), "stride");
    let mut cfg = MobileNetV3Config::small(10);
    cfg.dropout = 1.5;
    named(MobileNetV3::new(&cfg, &cpu), "p");
}
