//! PyTorch's `torch.save` files (fixtures by scripts/golden/pth.py in tests/data/pth/):
//! each `.pth`/`.pt` file loads through `kiln::load_tensors` and equals its safetensors
//! twin (same names, dtypes, shapes and bits), on every device; views of one storage
//! stay views; a ResNet-18 `.pth` loads into `kiln::models` and gives the logits of
//! the safetensors route. Hostile files: tests/pth_hostile.rs.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::models::{ResNet, ResNetConfig, Stem};
use kiln::nn::{Forward, Module};
use kiln::{DType, Device, Error, Tensor};

fn fixture(name: &str) -> String {
    format!("{}/tests/data/pth/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The width-4 ResNet-18's state_dict as PyTorch's `save_file` wrote it (the twin of
/// `resnet18_w4.pth`; scripts/golden/data.py).
fn resnet_twin() -> String {
    format!(
        "{}/tests/data/resnet18_w4_cifar_torch.safetensors",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The elements of `t` as exact bit patterns (f16 and bf16 widen exactly to f64).
fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::I64 => t
            .to_vec::<i64>()
            .unwrap()
            .iter()
            .map(|&v| v as u64)
            .collect(),
        DType::U8 => t
            .to_vec::<u8>()
            .unwrap()
            .iter()
            .map(|&v| v.into())
            .collect(),
        _ => {
            let wide = t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            wide.iter().map(|v| v.to_bits()).collect()
        }
    }
}

/// `pth` loaded on `dev` has exactly the tensors of `twin` (loaded on the CPU).
fn assert_equals_twin(pth: &str, twin: &str, dev: &Device) {
    let got = kiln::load_tensors(pth, dev).unwrap_or_else(|e| panic!("{pth}: {e}"));
    let mut want = kiln::load_tensors(twin, &Device::Cpu).unwrap();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let mut got_sorted: Vec<_> = got.iter().collect();
    got_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let names = |v: &[&(String, Tensor)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&got_sorted),
        names(&want.iter().collect::<Vec<_>>()),
        "{pth}: the twin's names"
    );
    for ((name, g), (_, w)) in got_sorted.into_iter().zip(&want) {
        assert_eq!(g.device(), *dev, "{pth}: `{name}` on the device asked for");
        assert_eq!(g.dtype(), w.dtype(), "{pth}: `{name}` dtype");
        assert_eq!(g.shape(), w.shape(), "{pth}: `{name}` shape");
        assert_eq!(bits(g), bits(w), "{pth}: `{name}` values");
    }
}

device_test! {
    /// Every fixture against its twin: a torchvision-style ResNet-18 state_dict, a
    /// checkpoint with an optimizer, every dtype kiln has (with 0-d and empty
    /// tensors and Parameters), views sharing storages, pickle protocol 4, and a file
    /// written without CRCs.
    fn torch_files_equal_their_safetensors_twins(dev) {
        let resnet = resnet_twin();
        for (pth, twin) in [
            (fixture("resnet18_w4.pth"), resnet.as_str()),
            (fixture("checkpoint.pt"), &fixture("checkpoint.safetensors")),
            (fixture("dtypes.pt"), &fixture("dtypes.safetensors")),
            (fixture("dtypes_nocrc.pt"), &fixture("dtypes.safetensors")),
            (fixture("views.pt"), &fixture("views.safetensors")),
            (fixture("views_protocol4.pt"), &fixture("views.safetensors")),
        ] {
            assert_equals_twin(&pth, twin, dev);
        }
    }

    /// Views come back as views of one storage, with PyTorch's strides: no copies,
    /// so a stride-0 view costs nothing and tied weights stay tied.
    fn views_of_one_storage_stay_views(dev) {
        let loaded = kiln::load_tensors(fixture("views.pt"), dev).unwrap();
        let get = |name: &str| loaded.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(get("t").strides(), &[1, 6]);
        assert_eq!(get("col").strides(), &[6]);
        assert_eq!(get("expanded").strides(), &[0, 1]);
        assert_eq!(get("step").strides(), &[5]);
        assert_eq!(get("linear.weight").strides(), &[1, 5], "a transposed parameter");
        // One storage: writing the base shows through every view of it.
        let base = get("tied_a");
        base.copy_(&Tensor::zeros(&[4, 6], DType::F32, dev).unwrap()).unwrap();
        for name in ["base", "tied_b", "row", "col", "t", "block", "step", "expanded"] {
            assert!(get(name).to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0), "{name}");
        }
    }

    /// `Module::load` (and `nn::load` on a `&dyn Module`) reads a ResNet-18 `.pth`;
    /// its logits equal those of the same weights loaded from safetensors, bit for
    /// bit, and PyTorch's.
    fn resnet18_pth_gives_the_safetensors_logits(dev) {
        let g = Golden::load("resnet18");
        let x = g.on("cifar.x", dev);
        let config = || ResNetConfig::new(10).width(4).stem(Stem::Cifar);
        let from_pth = ResNet::new(config(), dev).unwrap();
        from_pth.load(fixture("resnet18_w4.pth")).unwrap();
        let from_st = ResNet::new(config(), dev).unwrap();
        kiln::nn::load(&from_st as &dyn Module, resnet_twin()).unwrap();
        from_pth.eval();
        from_st.eval();
        let logits = from_pth.forward(&x).unwrap();
        assert_eq!(bits(&logits), bits(&from_st.forward(&x).unwrap()));
        assert_close(&logits, &g.get("cifar.eval"), dev, 1e-5, 1e-4);
    }
}

#[test]
fn nested_keys_are_joined_by_dots_in_saved_order_and_non_tensors_skipped() {
    let loaded = kiln::load_tensors(fixture("checkpoint.pt"), &Device::Cpu).unwrap();
    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    let mut want = vec![
        "model.0.weight",
        "model.0.bias",
        "model.1.weight",
        "model.1.bias",
        "model.1.running_mean",
        "model.1.running_var",
        "model.1.num_batches_tracked",
        "model.3.weight",
        "model.3.bias",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    for p in 0..6 {
        for s in ["step", "exp_avg", "exp_avg_sq"] {
            want.push(format!("optimizer.state.{p}.{s}"));
        }
    }
    // "epoch", "config", "losses" and the optimizer's param_groups hold no tensors.
    assert_eq!(names, want);
    let step = &loaded
        .iter()
        .find(|(n, _)| n == "optimizer.state.0.step")
        .unwrap()
        .1;
    assert_eq!(step.shape(), &[] as &[usize]);
    assert_eq!(step.to_vec::<f32>().unwrap(), [2.0], "two Adam steps");
}

#[test]
fn module_load_reads_a_plain_state_dict_only() {
    // A checkpoint dict's names are prefixed (`model.`), so it is not a state_dict.
    let net = kiln::nn::Sequential::new();
    match net.load(fixture("checkpoint.pt")) {
        Err(Error::Checkpoint { msg, .. }) => {
            assert!(msg.contains("unexpected keys: `model.0.bias`"), "{msg}")
        }
        other => panic!("expected a checkpoint error, got {other:?}"),
    }
}
