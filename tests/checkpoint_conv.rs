//! A PyTorch checkpoint of a small CNN (Conv2d + BatchNorm2d + ReLU + MaxPool2d +
//! Flatten + Linear, trained two steps: see scripts/golden/state_dict.py) loads into
//! the same architecture built with `nn::Sequential` and gives PyTorch's outputs in
//! eval and training mode; and kiln's default initialisation has PyTorch's
//! distributions.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::nn::{self, Conv2dOpts, Forward, Module};
use kiln::{DType, Device, Tensor};
use std::path::PathBuf;

/// The kiln twin of the script's `conv_net()`.
fn conv_net(dev: &Device) -> kiln::Result<nn::Sequential> {
    Ok(nn::Sequential::new()
        .add(nn::Conv2d::new(2, 4, 3, Conv2dOpts::new().padding(1), dev)?)
        .add(nn::BatchNorm2d::new(4, dev)?)
        .add(nn::ReLU)
        .add(nn::MaxPool2d::new(2, 2))
        .add(nn::Flatten::new())
        .add(nn::Linear::new(4 * 3 * 2, 5, dev)?))
}

fn torch_checkpoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/state_dict_conv_torch.safetensors")
}

fn state(net: &dyn Module, name: &str) -> Tensor {
    let found = net.state_dict().into_iter().find(|(n, _)| n == name);
    found
        .unwrap_or_else(|| panic!("no {name} in the state_dict"))
        .1
}

#[test]
fn names_shapes_and_dtypes_match_pytorch_file() {
    let bytes = std::fs::read(torch_checkpoint()).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut torch: Vec<(String, Vec<usize>, String)> = file
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.shape().to_vec(), format!("{:?}", v.dtype())))
        .collect();
    torch.sort();
    let net = conv_net(&Device::Cpu).unwrap();
    let mut ours: Vec<(String, Vec<usize>, String)> = net
        .state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), format!("{:?}", t.dtype())))
        .collect();
    ours.sort();
    assert_eq!(ours, torch);
    assert_eq!(ours.len(), 9, "conv 2, batch norm 5, linear 2");
}

device_test! {
    fn pytorch_conv_checkpoint_gives_pytorch_eval_output(dev) {
        let net = conv_net(dev).unwrap();
        net.load(torch_checkpoint()).unwrap();
        let steps = state(&net, "1.num_batches_tracked");
        assert_eq!((steps.dtype(), steps.device()), (DType::I64, *dev));
        assert_eq!(steps.item::<i64>().unwrap(), 2);
        // Training moved the running statistics off their defaults.
        let mean = state(&net, "1.running_mean").to_vec::<f32>().unwrap();
        assert!(mean.iter().all(|&m| m != 0.0));
        net.eval();
        let golden = Golden::load("state_dict");
        let out = net.forward(&golden.on("conv.x", dev)).unwrap();
        assert_close(&out, &golden.get("conv.out"), dev, 1e-5, 1e-5);
        // Eval mode leaves the buffers alone.
        assert_eq!(
            state(&net, "1.num_batches_tracked").item::<i64>().unwrap(),
            2
        );
        assert_eq!(state(&net, "1.running_mean").to_vec::<f32>().unwrap(), mean);
    }

    fn pytorch_conv_checkpoint_trains_like_pytorch(dev) {
        let net = conv_net(dev).unwrap();
        net.load(torch_checkpoint()).unwrap();
        assert!(net.is_training());
        let golden = Golden::load("state_dict");
        let out = net.forward(&golden.on("conv.train_x", dev)).unwrap();
        assert_close(&out, &golden.get("conv.train_out"), dev, 1e-5, 1e-5);
        let rm = state(&net, "1.running_mean");
        let rv = state(&net, "1.running_var");
        assert_close(&rm, &golden.get("conv.running_mean"), dev, 1e-6, 1e-5);
        assert_close(&rv, &golden.get("conv.running_var"), dev, 1e-6, 1e-5);
        assert_eq!(
            state(&net, "1.num_batches_tracked").item::<i64>().unwrap(),
            3
        );
    }
}

/// Checks that `values` look like samples of U(-bound, bound): all within the bound,
/// the largest near it, and mean and variance within 6σ of 0 and bound²/3.
#[track_caller]
fn check_uniform(what: &str, n: usize, mean: f64, var: f64, max_abs: f64, bound: f64) {
    let nf = n as f64;
    assert!(
        max_abs <= bound,
        "{what}: max |x| {max_abs} > bound {bound}"
    );
    // P(max |x| < 0.5·bound) = 0.5^n: negligible for n ≥ 32.
    assert!(
        max_abs > 0.5 * bound,
        "{what}: max |x| {max_abs} vs bound {bound}"
    );
    let mean_sigma = bound / (3.0 * nf).sqrt();
    assert!(mean.abs() < 6.0 * mean_sigma, "{what}: mean {mean}");
    // Var(x²) = E[x⁴] - E[x²]² = b⁴/5 - b⁴/9 = 4b⁴/45.
    let var_sigma = bound * bound * (4.0 / (45.0 * nf)).sqrt();
    let want = bound * bound / 3.0;
    assert!(
        (var - want).abs() < 6.0 * var_sigma,
        "{what}: variance {var}, want {want} ± 6·{var_sigma}"
    );
}

fn sample_stats(t: &Tensor) -> (usize, f64, f64, f64) {
    let v = t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let max_abs = v.iter().fold(0f64, |m, x| m.max(x.abs()));
    (v.len(), mean, var, max_abs)
}

device_test! {
    /// Initialisation draws on the device it builds on: on every device the
    /// distributions are PyTorch's.
    fn default_initialisation_matches_pytorch(dev) {
    let golden = Golden::load("state_dict");
    let scalar = |key: &str| golden.get(key).item::<f64>().unwrap();
    // The same layers as the script's `init_stats`.
    let layers: Vec<(&str, Box<dyn nn::Layer>, Vec<usize>)> = vec![
        (
            "conv",
            Box::new(nn::Conv2d::new(16, 32, (3, 5), Conv2dOpts::new(), dev).unwrap()),
            vec![32, 16, 3, 5],
        ),
        (
            "conv_grouped",
            Box::new(nn::Conv2d::new(16, 32, 3, Conv2dOpts::new().groups(4), dev).unwrap()),
            vec![32, 4, 3, 3],
        ),
        (
            "linear",
            Box::new(nn::Linear::new(300, 64, dev).unwrap()),
            vec![64, 300],
        ),
    ];
    for (layer, module, weight_shape) in &layers {
        let params = module.named_parameters();
        let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["weight", "bias"]);
        assert_eq!(params[0].1.shape(), weight_shape.as_slice());
        assert_eq!(params[1].1.shape(), &weight_shape[..1]);
        // PyTorch's bound is 1/√fan_in with fan_in from the weight's shape.
        let (fan_in, _) = nn::init::calculate_fan_in_and_fan_out(weight_shape).unwrap();
        for (name, p) in &params {
            let key = format!("init.{layer}.{name}");
            let bound = scalar(&format!("{key}.bound"));
            assert!(
                (bound - 1.0 / (fan_in as f64).sqrt()).abs() < 1e-12,
                "{key}: bound"
            );
            // PyTorch's own samples fit the model...
            check_uniform(
                &format!("torch {key}"),
                p.numel(),
                scalar(&format!("{key}.mean")),
                scalar(&format!("{key}.var")),
                scalar(&format!("{key}.max_abs")),
                bound,
            );
            // ...and so do kiln's.
            assert_eq!((p.dtype(), p.device()), (DType::F32, *dev));
            assert!(p.requires_grad_flag() && p.is_parameter());
            let (n, mean, var, max_abs) = sample_stats(p);
            check_uniform(&format!("kiln {key}"), n, mean, var, max_abs, bound);
        }
    }
    // BatchNorm2d: weight 1, bias 0, running mean 0, var 1, num_batches_tracked 0 (I64).
    let bn = nn::BatchNorm2d::new(32, dev).unwrap();
    let sd = bn.state_dict();
    assert_eq!(sd.len(), 5);
    for (name, t) in sd {
        let want = golden.get(&format!("init.bn.{name}"));
        assert_eq!(t.dtype(), want.dtype(), "{name}");
        assert_eq!(t.device(), *dev, "{name}");
        assert_eq!(t.shape(), want.shape(), "{name}");
        let as_f64 = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        assert_eq!(as_f64(&t), as_f64(&want), "{name}");
    }
    assert!(bn.is_training(), "new modules train");
}
}
