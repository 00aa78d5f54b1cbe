//! Resuming training in a fresh process: two steps, save the model, the optimizer's
//! state and the random generator, then a child process (this test binary, run with
//! `KILN_RESUME_DIR` set, executing only `child_half`) loads them and takes two more
//! steps. The parameters must equal four uninterrupted steps bit for bit, on every
//! device. The model has dropout (the generator's state matters) and AdamW with two
//! parameter groups (moments, step counts and per-group options matter).

mod common;

use common::{device_test, own_generator};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::optim::{AdamW, Optimizer, ParamGroup};
use kiln::{DType, Device, Result, Tensor};
use std::path::Path;

#[derive(nn::Module)]
struct Net {
    fc1: nn::Linear,
    drop: nn::Dropout,
    fc2: nn::Linear,
}

impl Forward for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&F::relu(&self.drop.forward(&self.fc1.forward(x)?)?)?)
    }
}

fn net(dev: &Device) -> Net {
    Net {
        fc1: nn::Linear::new(4, 16, dev).unwrap(),
        drop: nn::Dropout::new(0.5).unwrap(),
        fc2: nn::Linear::new(16, 3, dev).unwrap(),
    }
}

/// AdamW without weight decay on the biases, a higher lr for them.
fn optimizer(net: &Net) -> AdamW {
    let (biases, weights): (Vec<_>, Vec<_>) = net
        .named_parameters()
        .into_iter()
        .partition(|(name, _)| name.ends_with("bias"));
    let mut opt = AdamW::new(weights, 1e-2).unwrap().weight_decay(0.1);
    opt.add_param_group(ParamGroup::new(biases).lr(3e-2).weight_decay(0.0))
        .unwrap();
    opt
}

fn train(net: &Net, opt: &mut AdamW, x: &Tensor, y: &Tensor, steps: usize) {
    for _ in 0..steps {
        opt.zero_grad();
        F::cross_entropy(&net.forward(x).unwrap(), y)
            .unwrap()
            .backward()
            .unwrap();
        opt.step().unwrap();
    }
}

fn params(net: &Net) -> Vec<(String, Vec<f32>)> {
    net.named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.to_vec::<f32>().unwrap()))
        .collect()
}

/// A model, its optimizer and a batch, from seed 0.
fn start(dev: &Device) -> (Net, AdamW, Tensor, Tensor) {
    kiln::manual_seed(0);
    let net = net(dev);
    let opt = optimizer(&net);
    let x = Tensor::randn(&[8, 4], DType::F32, dev).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 2, 0, 1, 2, 2, 1], &[8], dev).unwrap();
    (net, opt, x, y)
}

device_test! {
    fn two_steps_saved_and_two_more_in_a_fresh_process_equal_four(dev) {
        let _rng = own_generator();
        let (net, mut opt, x, y) = start(dev);
        train(&net, &mut opt, &x, &y, 4);
        let uninterrupted = params(&net);

        let (net, mut opt, x, y) = start(dev);
        train(&net, &mut opt, &x, &y, 2);
        let dir = std::env::temp_dir().join(format!(
            "kiln-resume-{}-{}",
            std::process::id(),
            if dev.is_cpu() { "cpu" } else { "cuda" }
        ));
        std::fs::create_dir_all(&dir).unwrap();
        net.save(dir.join("model.safetensors")).unwrap();
        kiln::save_tensors(dir.join("optim.safetensors"), &opt.state_dict()).unwrap();
        let extra = vec![
            ("rng".to_string(), kiln::rng_state()),
            ("x".to_string(), x.clone()),
            ("y".to_string(), y.clone()),
        ];
        kiln::save_tensors(dir.join("extra.safetensors"), &extra).unwrap();

        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_half", "--test-threads=1", "--nocapture"])
            .env("KILN_RESUME_DIR", &dir)
            .env("KILN_RESUME_DEVICE", if dev.is_cpu() { "cpu" } else { "cuda" })
            .status()
            .unwrap();
        assert!(status.success(), "the resumed half failed: {status}");
        let resumed = kiln::load_tensors(dir.join("final.safetensors"), &Device::Cpu).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert_eq!(resumed.len(), uninterrupted.len());
        for (name, want) in &uninterrupted {
            let got = &resumed.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(&got.to_vec::<f32>().unwrap(), want, "{name} differs");
        }
        // The test can fail: two more steps from another generator state (other
        // dropout masks) end elsewhere.
        kiln::manual_seed(777);
        train(&net, &mut opt, &x, &y, 2);
        assert_ne!(uninterrupted, params(&net), "the generator's state must matter");
    }
}

/// The second half, in the child process (a no-op in a normal test run): loads the
/// checkpoint from `KILN_RESUME_DIR` into a model built from another seed, takes two
/// steps and writes the parameters to `final.safetensors`.
#[test]
fn child_half() {
    let Ok(dir) = std::env::var("KILN_RESUME_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let dev = match std::env::var("KILN_RESUME_DEVICE").as_deref() {
        Ok("cuda") => Device::cuda(0).unwrap(),
        _ => Device::Cpu,
    };
    kiln::manual_seed(12345); // the state comes from the files, not from here
    let net = net(&dev);
    net.load(dir.join("model.safetensors")).unwrap();
    let mut opt = optimizer(&net);
    opt.load_state_dict(&kiln::load_tensors(dir.join("optim.safetensors"), &dev).unwrap())
        .unwrap();
    let extra = kiln::load_tensors(dir.join("extra.safetensors"), &dev).unwrap();
    let get = |key: &str| extra.iter().find(|(k, _)| k == key).unwrap().1.clone();
    kiln::set_rng_state(&get("rng")).unwrap();
    train(&net, &mut opt, &get("x"), &get("y"), 2);
    let out: Vec<(String, Tensor)> = net
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.tensor().clone()))
        .collect();
    kiln::save_tensors(dir.join("final.safetensors"), &out).unwrap();
}

#[test]
fn a_bad_rng_state_is_an_error_that_changes_nothing() {
    let _rng = own_generator();
    kiln::manual_seed(3);
    let state = kiln::rng_state();
    assert_eq!((state.dtype(), state.shape()), (DType::U8, &[16usize][..]));
    let a = Tensor::rand(&[5], DType::F64, &Device::Cpu).unwrap();
    let bad = Tensor::zeros(&[8], DType::U8, &Device::Cpu).unwrap();
    assert!(matches!(
        kiln::set_rng_state(&bad),
        Err(kiln::Error::InvalidArgument { name: "state", .. })
    ));
    let float = Tensor::zeros(&[16], DType::F32, &Device::Cpu).unwrap();
    assert!(kiln::set_rng_state(&float).is_err());
    kiln::set_rng_state(&state).unwrap();
    let b = Tensor::rand(&[5], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
}

#[test]
fn save_and_load_tensors_round_trip_every_dtype() {
    let dev = Device::Cpu;
    let path =
        std::env::temp_dir().join(format!("kiln-tensors-{}.safetensors", std::process::id()));
    let tensors = vec![
        (
            "a.f32".to_string(),
            Tensor::from_vec(vec![1.5f32, -2.0], &[2], &dev).unwrap(),
        ),
        ("b.f64".to_string(), Tensor::scalar(0.25f64, &dev).unwrap()),
        (
            "c.i64".to_string(),
            Tensor::from_vec(vec![7i64, 8, 9], &[3, 1], &dev).unwrap(),
        ),
        ("d.u8".to_string(), kiln::rng_state()),
    ];
    kiln::save_tensors(&path, &tensors).unwrap();
    let back = kiln::load_tensors(&path, &dev).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(back.len(), tensors.len());
    for (n, t) in &tensors {
        let u = &back.iter().find(|(m, _)| m == n).unwrap().1;
        assert_eq!((t.shape(), t.dtype()), (u.shape(), u.dtype()));
        assert_eq!(common::host(t), common::host(u));
    }
    let twice = vec![tensors[0].clone(), tensors[0].clone()];
    assert!(kiln::save_tensors(&path, &twice).is_err());
    assert!(!path.exists(), "a failed save writes nothing");
    assert!(matches!(
        kiln::load_tensors("/nonexistent/kiln.safetensors", &dev),
        Err(kiln::Error::Io { .. })
    ));
}
