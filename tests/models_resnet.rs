//! `kiln::models::resnet18` against PyTorch (scripts/golden/data.py): torchvision's
//! names and shapes at full size, and a width-4 ResNet-18's state_dict saved by
//! PyTorch loading into kiln's and giving PyTorch's logits, on every device.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::models::{resnet18, ResNet, ResNetConfig, Stem};
use kiln::nn::{Forward, Module};
use kiln::{Device, Error};
use std::collections::BTreeMap;

#[test]
fn full_size_resnet18_has_torchvisions_names_and_shapes() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/resnet18.safetensors"
    );
    let bytes = std::fs::read(file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let g = Golden::load("resnet18");
    let theirs: BTreeMap<String, Vec<usize>> = st
        .names()
        .into_iter()
        .filter_map(|k| k.strip_prefix("tv.").map(str::to_string))
        .map(|k| {
            let dims = g.get(&format!("tv.{k}")).to_vec::<i64>().unwrap();
            (k, dims.iter().map(|&d| d as usize).collect())
        })
        .collect();
    let net = resnet18(10, &Device::Cpu).unwrap();
    let ours: BTreeMap<String, Vec<usize>> = net
        .state_dict()
        .into_iter()
        .map(|(k, t)| (k, t.shape().to_vec()))
        .collect();
    assert_eq!(
        theirs.len(),
        122,
        "torchvision's resnet18 state_dict has 122 entries"
    );
    assert_eq!(ours, theirs, "the same names with the same shapes");
    let params: usize = net.parameters().iter().map(|p| p.numel()).sum();
    assert_eq!(
        params, 11_173_962,
        "torchvision's CIFAR-stem resnet18 for 10 classes"
    );
}

device_test! {
    /// Eval logits (running statistics) and then train-mode logits (batch statistics)
    /// of PyTorch's model, after loading its state_dict.
    fn resnet18_loads_a_pytorch_state_dict_and_gives_its_logits(dev) {
        let g = Golden::load("resnet18");
        for (stem, name) in [(Stem::Cifar, "cifar"), (Stem::ImageNet, "imagenet")] {
            let net = ResNet::new(ResNetConfig::new(10).width(4).stem(stem), dev).unwrap();
            let path = format!(
                "{}/tests/data/resnet18_w4_{name}_torch.safetensors",
                env!("CARGO_MANIFEST_DIR")
            );
            net.load(&path).unwrap();
            net.eval();
            let x = g.on(&format!("{name}.x"), dev);
            let logits = net.forward(&x).unwrap();
            assert_eq!(logits.shape(), &[2, 10]);
            assert_close(&logits, &g.get(&format!("{name}.eval")), dev, 1e-5, 1e-4);
            net.train();
            let logits = net.forward(&x).unwrap();
            assert_close(&logits, &g.get(&format!("{name}.train")), dev, 1e-5, 1e-4);
        }
    }
}

#[test]
fn bad_configurations_are_errors_naming_them() {
    let cpu = Device::Cpu;
    for (cfg, want) in [
        (ResNetConfig::new(0), "num_classes"),
        (ResNetConfig::new(10).width(0), "width"),
    ] {
        assert!(matches!(
            ResNet::new(cfg, &cpu),
            Err(Error::InvalidArgument { name, .. }) if name == want
        ));
    }
}
