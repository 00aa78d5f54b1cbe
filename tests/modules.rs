//! The module layer: `#[derive(nn::Module)]`, names, train/eval propagation,
//! `Sequential`, `Vec`/`Option`/boxed children, `#[module(skip)]`, parameters and
//! buffers, with the built-in layers. The seed's examples are in
//! tests/seed_examples.rs.

mod common;

use common::device_test;
use kiln::nn::{self, functional as F, BatchNorm1d, Forward, Linear, Module};
use kiln::{DType, Device, Tensor};

/// A dropout layer (p = 0.5) in its default, training mode.
fn dropout() -> nn::Dropout {
    nn::Dropout::new(0.5).unwrap()
}

fn names<T>(list: Vec<(String, T)>) -> Vec<String> {
    list.into_iter().map(|(name, _)| name).collect()
}

fn ones(shape: &[usize]) -> Tensor {
    ones_on(shape, &Device::Cpu)
}

fn ones_on(shape: &[usize], dev: &Device) -> Tensor {
    Tensor::ones(shape, DType::F32, dev).unwrap()
}

// --- Nested structure: names and mode propagation ---

#[derive(nn::Module)]
struct Head {
    fc: Linear,
    drop: nn::Dropout,
}

fn head(dev: &Device) -> Head {
    Head {
        fc: Linear::new(4, 2, dev).unwrap(),
        drop: dropout(),
    }
}

#[derive(nn::Module)]
struct Net {
    body: nn::Sequential,
    heads: Vec<Head>,
    aux: Option<Head>,
    missing: Option<Head>,
    #[module(skip)]
    frozen: Head,
    boxed: Box<dyn nn::Layer>,
    tuple: Pair,
    hidden: usize,
    scale: f64,
}

#[derive(nn::Module)]
struct Pair(Linear, nn::Dropout);

fn net(dev: &Device) -> Net {
    Net {
        body: nn::Sequential::new()
            .add(Linear::new(3, 4, dev).unwrap())
            .add(nn::ReLU)
            .add(dropout())
            .add(Linear::no_bias(4, 4, dev).unwrap()),
        heads: vec![head(dev), head(dev)],
        aux: Some(head(dev)),
        missing: None,
        frozen: head(dev),
        boxed: Box::new(dropout()),
        tuple: Pair(Linear::new(2, 2, dev).unwrap(), dropout()),
        hidden: 4,
        scale: 0.5,
    }
}

/// Every Mode in `net`, including the skipped field's (which must not follow).
fn modes(net: &Net) -> Vec<bool> {
    vec![
        net.body.is_training(),
        net.body.get(2).unwrap().is_training(),
        net.heads[0].drop.is_training(),
        net.heads[1].drop.is_training(),
        net.aux.as_ref().unwrap().drop.is_training(),
        net.boxed.is_training(),
        net.tuple.1.is_training(),
    ]
}

#[test]
fn nested_names_follow_pytorch() {
    let net = net(&Device::Cpu);
    assert_eq!(
        names(net.named_parameters()),
        [
            "body.0.weight",
            "body.0.bias",
            "body.3.weight",
            "heads.0.fc.weight",
            "heads.0.fc.bias",
            "heads.1.fc.weight",
            "heads.1.fc.bias",
            "aux.fc.weight",
            "aux.fc.bias",
            "tuple.0.weight",
            "tuple.0.bias",
        ]
    );
    assert_eq!(
        names(net.named_children()),
        ["body", "heads.0", "heads.1", "aux", "boxed", "tuple"]
    );
    assert_eq!(names(net.body.named_children()), ["0", "1", "2", "3"]);
    assert_eq!(net.parameters().len(), 11);
    let count: usize = net.parameters().iter().map(|p| p.numel()).sum();
    // 3·4+4 + 4·4 + 2·(4·2+2) + (4·2+2) + 2·2+2
    assert_eq!(count, 16 + 16 + 20 + 10 + 6);
}

#[test]
fn eval_and_train_reach_every_descendant_but_skipped_fields() {
    let net = net(&Device::Cpu);
    assert!(modes(&net).iter().all(|&m| m) && net.is_training());
    net.eval();
    assert_eq!(modes(&net), [false; 7]);
    // Net has no Mode of its own: it reports its first child's (body's).
    assert!(!net.is_training());
    assert!(
        net.frozen.drop.is_training(),
        "#[module(skip)] leaves the field alone"
    );
    net.train();
    assert_eq!(modes(&net), [true; 7]);
    assert!(net.is_training());
    // Setting a subtree changes only that subtree.
    net.heads[1].eval();
    assert_eq!(modes(&net), [true, true, true, false, true, true, true]);
}

#[test]
fn module_without_mode_reports_children_or_training() {
    // Declared mode-less: always "training" (it acts the same in both modes).
    #[derive(nn::Module)]
    #[module(stateless)]
    struct Stateless {
        act: nn::ReLU,
    }
    let m = Stateless { act: nn::ReLU };
    m.eval();
    assert!(m.is_training());
    // Own Mode wins over children, whatever the declaration order.
    #[derive(nn::Module)]
    struct OwnMode {
        child: nn::Dropout,
        mode: nn::Mode,
    }
    let m = OwnMode {
        child: dropout(),
        mode: nn::Mode::default(),
    };
    m.child.eval();
    assert!(m.is_training());
    m.eval();
    assert!(!m.is_training() && !m.child.is_training());
}

device_test! {
    /// Values by hand, so the layers' forward is checked on every device.
    fn sequential_chains_forward_and_names_children_by_position(dev) {
    let lin = Linear::new(3, 2, dev).unwrap();
    let (w, b) = (lin.weight.clone(), lin.bias.clone().unwrap());
    // Known weights, so that some outputs are certainly active after the ReLU.
    w.copy_(&Tensor::from_vec(vec![0.5f32, -0.25, 1.0, -1.0, 0.5, 0.75], &[2, 3], dev).unwrap())
        .unwrap();
    b.copy_(&Tensor::from_vec(vec![0.1f32, -0.2], &[2], dev).unwrap())
        .unwrap();
    // p = 1 makes dropout deterministic: all zeros in training, the identity in eval.
    let seq = nn::Sequential::new()
        .add(lin)
        .add(nn::ReLU)
        .add(nn::Dropout::new(1.0).unwrap());
    assert_eq!(seq.len(), 3);
    assert_eq!(names(seq.named_parameters()), ["0.weight", "0.bias"]);
    let x = Tensor::from_vec(vec![1f32, -2., 0.5, 3., 0., -1.], &[2, 3], dev).unwrap();
    let want = x
        .matmul(&w.transpose(0, 1).unwrap())
        .unwrap()
        .add(&b)
        .unwrap()
        .relu()
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    // By hand: rows [1, -2, 0.5] and [3, 0, -1] give [1.6, -1.825] and [0.6, -3.95].
    assert_eq!(want.len(), 4);
    assert!((want[0] - 1.6).abs() < 1e-6 && (want[2] - 0.6).abs() < 1e-6);
    let dropped = seq.forward(&x).unwrap();
    assert_eq!(dropped.device(), *dev);
    assert_eq!(dropped.to_vec::<f32>().unwrap(), [0.0; 4]);
    seq.eval();
    assert!(!seq.is_training() && !seq.get(2).unwrap().is_training());
    let got = seq.forward(&x).unwrap().to_vec::<f32>().unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 1e-6 * (1.0 + w.abs()),
            "{got:?} vs {want:?}"
        );
    }
    // An empty Sequential is the identity; a Sequential of mode-less layers still
    // remembers eval() through its own Mode.
    let empty = nn::Sequential::new();
    assert!(empty.is_empty());
    assert_eq!(
        empty.forward(&x).unwrap().to_vec::<f32>().unwrap(),
        x.to_vec::<f32>().unwrap()
    );
    let acts = nn::Sequential::new().add(nn::ReLU).add(nn::Flatten::new());
    acts.eval();
    assert!(!acts.is_training());
}
}

#[test]
fn sequential_nests_and_is_send_sync() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    let dev = Device::Cpu;
    let inner = nn::Sequential::new().add(Linear::new(2, 2, &dev).unwrap());
    let outer = nn::Sequential::new().add(inner).add(nn::ReLU).add(
        nn::Sequential::new()
            .add(nn::ReLU)
            .add(Linear::new(2, 1, &dev).unwrap()),
    );
    assert_send_sync(&outer);
    assert_eq!(
        names(outer.named_parameters()),
        ["0.0.weight", "0.0.bias", "2.1.weight", "2.1.bias"]
    );
    assert_eq!(outer.forward(&ones(&[5, 2])).unwrap().shape(), &[5, 1]);
}

#[test]
fn flatten_keeps_the_batch_dimension() {
    let flat = nn::Flatten::new();
    assert_eq!(
        flat.forward(&ones(&[2, 3, 4, 5])).unwrap().shape(),
        &[2, 60]
    );
    assert_eq!(flat.forward(&ones(&[2, 3])).unwrap().shape(), &[2, 3]);
    assert_eq!(flat.forward(&ones(&[7])).unwrap().shape(), &[7]);
    let scalar = Tensor::scalar(1f32, &Device::Cpu).unwrap();
    assert!(matches!(
        flat.forward(&scalar),
        Err(kiln::Error::InvalidArgument { name: "x", .. })
    ));
}

#[test]
fn generic_and_boxed_dyn_modules() {
    #[derive(nn::Module)]
    struct Wrap<M> {
        inner: M,
        list: Vec<M>,
    }
    let dev = Device::Cpu;
    let wrap = Wrap {
        inner: Linear::new(2, 2, &dev).unwrap(),
        list: vec![Linear::no_bias(2, 2, &dev).unwrap()],
    };
    assert_eq!(
        names(wrap.named_parameters()),
        ["inner.weight", "inner.bias", "list.0.weight"]
    );
    let boxed: Box<dyn Module> = Box::new(wrap);
    assert_eq!(boxed.parameters().len(), 3);
    let as_ref: &dyn Module = &*boxed;
    assert_eq!(as_ref.state_dict().len(), 3);
}

#[test]
fn shared_parameters_are_listed_once_but_saved_under_each_name() {
    #[derive(nn::Module)]
    struct Tied {
        encoder: nn::Parameter,
        decoder: nn::Parameter,
    }
    let p = nn::Parameter::new(ones(&[2, 2])).unwrap();
    let tied = Tied {
        encoder: p.clone(),
        decoder: p,
    };
    assert_eq!(names(tied.named_parameters()), ["encoder"]);
    assert_eq!(names(tied.state_dict()), ["encoder", "decoder"]);
}

device_test! {
    /// The state_dict's views write into the module's storage on every device.
    fn buffers_are_saved_but_not_learnable(dev) {
    let bn = BatchNorm1d::new(3, dev).unwrap();
    assert_eq!(names(bn.named_parameters()), ["weight", "bias"]);
    assert_eq!(
        names(bn.named_buffers()),
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    assert_eq!(
        names(bn.state_dict()),
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked"
        ]
    );
    for b in bn.buffers() {
        assert!(!b.requires_grad_flag() && !b.is_parameter());
    }
    assert_eq!(bn.num_batches_tracked.dtype(), DType::I64);
    // state_dict tensors are detached views of the module's storage.
    let sd = bn.state_dict();
    assert!(sd
        .iter()
        .all(|(_, t)| !t.requires_grad_flag() && !t.is_parameter()));
    assert!(sd.iter().all(|(_, t)| t.device() == *dev));
    sd[2].1.copy_(&ones_on(&[3], dev)).unwrap();
    assert_eq!(bn.running_mean.to_vec::<f32>().unwrap(), [1.0; 3]);
}
}

#[test]
fn parameter_is_a_leaf_that_requires_grad() {
    let dev = Device::Cpu;
    let base = Tensor::ones(&[2], DType::F32, &dev)
        .unwrap()
        .requires_grad();
    let derived = base.mul_scalar(3.0).unwrap();
    let p = nn::Parameter::new(derived).unwrap();
    assert!(p.is_leaf() && p.requires_grad_flag() && p.is_parameter());
    assert_eq!(p.to_vec::<f32>().unwrap(), [3.0, 3.0]);
    // Views and ops on a parameter are not parameters.
    assert!(!p.detach().is_parameter() && !p.mul_scalar(1.0).unwrap().is_parameter());
    let ints = Tensor::from_vec(vec![1i64, 2], &[2], &dev).unwrap();
    assert!(matches!(
        nn::Parameter::new(ints),
        Err(kiln::Error::InvalidArgument { name: "tensor", .. })
    ));
    // A broadcast view shares memory between elements: it cannot be updated in place.
    let expanded = Tensor::ones(&[1, 2], DType::F32, &dev)
        .unwrap()
        .broadcast_as(&[3, 2])
        .unwrap();
    match nn::Parameter::new(expanded.clone()) {
        Err(kiln::Error::InvalidArgument {
            name: "tensor",
            msg,
        }) => {
            assert!(msg.contains("contiguous()"), "{msg}")
        }
        other => panic!("expected an error naming `tensor`, got {other:?}"),
    }
    assert!(nn::Parameter::new(expanded.contiguous().unwrap()).is_ok());
    let mode = nn::Mode::default();
    assert!(mode.is_training());
    let copy = mode.clone();
    mode.set_training(false);
    assert!(copy.is_training() && !mode.is_training());
}

#[test]
fn a_module_of_parameters_only_follows_train_and_eval() {
    // The functional style (API.md's FunctionalModel): no Mode field, no children.
    #[derive(nn::Module)]
    struct Functional {
        weight: nn::Parameter,
        extra: Vec<nn::Buffer>,
    }
    #[derive(nn::Module)]
    struct Outer {
        inner: Functional,
        act: nn::ReLU,
    }
    let m = Outer {
        inner: Functional {
            weight: nn::Parameter::new(ones(&[2])).unwrap(),
            extra: vec![nn::Buffer::new(ones(&[1]))],
        },
        act: nn::ReLU,
    };
    assert!(m.is_training() && m.inner.is_training());
    m.eval();
    assert!(
        !m.is_training() && !m.inner.is_training(),
        "eval on an ancestor"
    );
    m.inner.train();
    assert!(m.inner.is_training() && m.is_training());
    m.inner.eval();
    assert!(!m.inner.is_training());
    // The optimizer's copies of the parameters do not share the module's slot.
    let held = m.inner.parameters();
    m.train();
    assert!(m.inner.is_training());
    drop(held);
    // Dropout told the mode by the module stops dropping in eval().
    m.eval();
    let x = ones(&[1000]);
    let y = F::dropout(&x, 0.5, m.inner.is_training()).unwrap();
    assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
}
