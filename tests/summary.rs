//! `nn::summary` / `nn::repr` against PyTorch's `print(model)`: the expected text is
//! in tests/data/summary.txt, written by scripts/golden/pad.py (which holds the
//! PyTorch modules), section by section.

#[path = "../examples/train_digits/model.rs"]
#[allow(dead_code)] // only the architecture is used here
mod model;

use kiln::nn::{self, functional as F, Conv2dOpts, Module, Padding, PaddingMode};
use kiln::{Device, Tensor};

/// The text of section `name` of tests/data/summary.txt.
fn expected(name: &str) -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/summary.txt");
    let text = std::fs::read_to_string(path).expect("run scripts/golden/pad.py");
    let header = format!("=== {name}\n");
    let start = text
        .find(&header)
        .unwrap_or_else(|| panic!("no section {name}"))
        + header.len();
    let rest = &text[start..];
    let end = rest.find("\n=== ").map(|i| i + 1).unwrap_or(rest.len());
    rest[..end].trim_end_matches('\n').to_owned()
}

/// Asserts line by line, so a failure names the first line that differs.
#[track_caller]
fn assert_text(got: &str, name: &str) {
    let want = expected(name);
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "{name}: line {}", i + 1);
    }
    assert_eq!(
        got.lines().count(),
        want.lines().count(),
        "{name}: line count\n{got}"
    );
    assert_eq!(got, want);
}

#[test]
fn digits_cnn_prints_like_pytorch() {
    let net = model::DigitsNet::new(&Device::Cpu).unwrap();
    assert_text(&nn::summary(&net), "digits");
}

#[derive(nn::Module)]
struct Net {
    conv: nn::Conv2d,
    drop: nn::Dropout,
    fc: nn::Linear,
}

#[test]
fn api_example_prints_like_pytorch() {
    let dev = Device::Cpu;
    let net = Net {
        conv: nn::Conv2d::new(1, 8, 3, Conv2dOpts::new().padding(1), &dev).unwrap(),
        drop: nn::Dropout::new(0.25).unwrap(),
        fc: nn::Linear::new(8 * 4 * 4, 10, &dev).unwrap(),
    };
    assert_text(&nn::summary(&net), "net");
    // Boxed and borrowed modules print the same.
    let boxed: Box<dyn nn::Layer> = Box::new(nn::Linear::new(84, 10, &dev).unwrap());
    assert_eq!(
        nn::repr(&boxed),
        "Linear(in_features=84, out_features=10, bias=True)"
    );
    assert_eq!(boxed.type_name(), "Linear");
}

#[test]
fn layers_print_their_arguments_like_pytorch() {
    let dev = Device::Cpu;
    let conv_all = Conv2dOpts::new()
        .stride((2, 1))
        .padding((1, 0))
        .dilation((1, 2))
        .groups(2)
        .bias(false)
        .padding_mode(PaddingMode::Circular);
    let same = Conv2dOpts::new()
        .padding(Padding::Same)
        .padding_mode(PaddingMode::Reflect);
    let cases: Vec<(&str, String)> = vec![
        (
            "conv_default",
            nn::repr(&nn::Conv2d::new(3, 6, 3, Conv2dOpts::new(), &dev).unwrap()),
        ),
        (
            "conv_all",
            nn::repr(&nn::Conv2d::new(4, 8, (3, 1), conv_all, &dev).unwrap()),
        ),
        (
            "conv_same",
            nn::repr(&nn::Conv2d::new(2, 2, 3, same, &dev).unwrap()),
        ),
        (
            "linear_no_bias",
            nn::repr(&nn::Linear::no_bias(84, 10, &dev).unwrap()),
        ),
        ("dropout", nn::repr(&nn::Dropout::new(0.5).unwrap())),
        ("relu", nn::repr(&nn::ReLU)),
        ("gelu", nn::repr(&nn::GELU)),
        ("leaky_relu", nn::repr(&nn::LeakyReLU::new(0.2).unwrap())),
        ("leaky_relu_default", nn::repr(&nn::LeakyReLU::default())),
        ("max_pool", nn::repr(&nn::MaxPool2d::new(3, 2))),
        (
            "max_pool_rect",
            nn::repr(&nn::MaxPool2d::new((2, 3), (1, 2)).padding(1)),
        ),
        ("avg_pool", nn::repr(&nn::AvgPool2d::new(2, 2))),
        ("adaptive", nn::repr(&nn::AdaptiveAvgPool2d::new((2, 3)))),
        (
            "batch_norm1d",
            nn::repr(&nn::BatchNorm1d::with_options(5, 0.01, 1e-3, &dev).unwrap()),
        ),
        ("flatten", nn::repr(&nn::Flatten::new())),
        ("empty_sequential", nn::repr(&nn::Sequential::new())),
        ("silu", nn::repr(&nn::SiLU)),
        ("tanh", nn::repr(&nn::Tanh)),
        ("softplus", nn::repr(&nn::Softplus::default())),
        (
            "softplus_args",
            nn::repr(&nn::Softplus::new(2.0, 10.0).unwrap()),
        ),
        (
            "embedding",
            nn::repr(&nn::Embedding::new(65, 64, &dev).unwrap()),
        ),
        (
            "embedding_pad",
            nn::repr(
                &nn::Embedding::new_with(10, 4, F::EmbeddingOpts::new().padding_idx(0), &dev)
                    .unwrap(),
            ),
        ),
        (
            "layer_norm",
            nn::repr(&nn::LayerNorm::new(64, &dev).unwrap()),
        ),
        (
            "layer_norm_no_affine",
            nn::repr(&nn::LayerNorm::with_options(&[8], 1e-6, false, true, &dev).unwrap()),
        ),
        ("rms_norm", nn::repr(&nn::RMSNorm::new(64, &dev).unwrap())),
        (
            "rms_norm_eps",
            nn::repr(&nn::RMSNorm::with_options(&[16], Some(1e-6), true, &dev).unwrap()),
        ),
    ];
    for (name, got) in cases {
        assert_text(&got, name);
    }
}

/// A user module with a `Vec` of children, an `Option` child, a bare parameter, and a
/// shared parameter: names as kiln names them, counts without double counting.
#[derive(nn::Module)]
struct Tower {
    scale: nn::Parameter,
    blocks: Vec<nn::Sequential>,
    head: Option<nn::Linear>,
}

#[test]
fn user_modules_print_their_fields_and_count_shared_parameters_once() {
    let dev = Device::Cpu;
    let block = || {
        nn::Sequential::new()
            .add(nn::Linear::new(2, 2, &dev).unwrap())
            .add(nn::ReLU)
    };
    let tower = Tower {
        scale: nn::Parameter::new(Tensor::ones(&[3], kiln::DType::F32, &dev).unwrap()).unwrap(),
        blocks: vec![block(), block()],
        head: None,
    };
    let want = "Tower(\n  (blocks.0): Sequential(\n    (0): Linear(in_features=2, out_features=2, bias=True)\n    (1): ReLU()\n  )\n  (blocks.1): Sequential(\n    (0): Linear(in_features=2, out_features=2, bias=True)\n    (1): ReLU()\n  )\n)\nTotal params: 15 (trainable 15)";
    assert_eq!(nn::summary(&tower), want);
    assert_eq!(tower.type_name(), "Tower");
    // A parameter reachable twice counts once.
    #[derive(nn::Module)]
    struct Twice {
        a: nn::Parameter,
        b: nn::Parameter,
    }
    let p = nn::Parameter::new(Tensor::ones(&[1000, 2], kiln::DType::F32, &dev).unwrap()).unwrap();
    let twice = Twice { a: p.clone(), b: p };
    assert_eq!(
        nn::summary(&twice),
        "Twice()\nTotal params: 2,000 (trainable 2,000)"
    );
}
