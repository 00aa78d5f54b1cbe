//! nn::TransformerEncoderLayer / TransformerEncoder / TransformerDecoderLayer /
//! TransformerDecoder: PyTorch's state_dicts load by their names and give PyTorch's
//! outputs and every gradient (scripts/golden/transformer_layers.py, f64) on every
//! device — post- and pre-norm, ReLU and GELU, batch- and sequence-first, causal,
//! boolean and float masks, key padding masks, stacks with a final norm; dropout
//! follows the mode; bad arguments are errors.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::nn::{
    self, Activation, AttnOpts, Forward, LayerNorm, Module, TransformerDecoder,
    TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer, TransformerOpts,
};
use kiln::{DType, Device, Error, Result, Tensor};

const TOL: f64 = 1e-10;

fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

/// `module` (made on `dev`) in f64 with case `case`'s PyTorch state_dict.
fn load_case<M: Module>(g: &Golden, case: &str, module: M, dev: &Device) -> M {
    module.to_dtype(DType::F64).unwrap();
    let prefix = format!("{case}.sd.");
    let names: Vec<String> = module.state_dict().into_iter().map(|(n, _)| n).collect();
    let sd: Vec<(String, Tensor)> = names
        .iter()
        .map(|n| (n.clone(), g.on(&format!("{prefix}{n}"), dev)))
        .collect();
    module.load_state_dict(&sd).unwrap();
    module
}

/// Checks `y` and, after backpropagating PyTorch's `gout`, the gradients of the
/// inputs (`(name, tensor)`) and of every parameter of `module`.
fn check_case(
    g: &Golden,
    case: &str,
    y: &Tensor,
    inputs: &[(&str, &Tensor)],
    module: &dyn Module,
    dev: &Device,
) {
    assert_close(y, &g.get(&format!("{case}.out")), dev, TOL, TOL);
    y.mul(&g.on(&format!("{case}.gout"), dev))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (name, t) in inputs {
        assert_close(
            &t.grad().unwrap(),
            &g.get(&format!("{case}.grad_{name}")),
            dev,
            TOL,
            TOL,
        );
    }
    let params = module.named_parameters();
    assert!(!params.is_empty());
    for (name, p) in params {
        let grad = p
            .grad()
            .unwrap_or_else(|| panic!("{case}: {name} has no gradient"));
        assert_close(&grad, &g.get(&format!("{case}.grad.{name}")), dev, TOL, TOL);
    }
}

fn opts(d_ff: usize) -> TransformerOpts {
    TransformerOpts::new().dim_feedforward(d_ff).dropout(0.0)
}

device_test! {
    fn encoder_layer_post_norm_with_padding(dev) {
        let g = Golden::load("transformer_layers");
        let layer = TransformerEncoderLayer::new(8, 2, opts(12).batch_first(true), dev).unwrap();
        let layer = load_case(&g, "enc_post", layer, dev);
        let x = g.on("enc_post.x", dev).requires_grad();
        let pad = g.on("enc_post.src_key_padding_mask", dev);
        let y = layer.forward_mask(&x, AttnOpts::new().key_padding_mask(&pad)).unwrap();
        check_case(&g, "enc_post", &y, &[("x", &x)], &layer, dev);
    }

    fn encoder_layer_pre_norm_gelu_sequence_first_causal(dev) {
        let g = Golden::load("transformer_layers");
        let o = opts(12).activation(Activation::Gelu).norm_first(true);
        let layer = load_case(&g, "enc_pre_gelu", TransformerEncoderLayer::new(8, 2, o, dev).unwrap(), dev);
        let x = g.on("enc_pre_gelu.x", dev).requires_grad();
        let y = layer.forward_mask(&x, AttnOpts::new().causal(true)).unwrap();
        check_case(&g, "enc_pre_gelu", &y, &[("x", &x)], &layer, dev);
    }

    fn encoder_stack_with_final_norm_and_masks(dev) {
        let g = Golden::load("transformer_layers");
        let o = opts(10).batch_first(true).layer_norm_eps(1e-6);
        let layer = TransformerEncoderLayer::new(6, 3, o, dev).unwrap();
        let enc = TransformerEncoder::new(layer, 2)
            .unwrap()
            .with_norm(LayerNorm::new(6, dev).unwrap());
        let enc = load_case(&g, "enc_stack", enc, dev);
        let x = g.on("enc_stack.x", dev).requires_grad();
        let (am, pad) = (g.on("enc_stack.mask", dev), g.on("enc_stack.src_key_padding_mask", dev));
        let y = enc.forward_mask(&x, AttnOpts::new().attn_mask(&am).key_padding_mask(&pad)).unwrap();
        check_case(&g, "enc_stack", &y, &[("x", &x)], &enc, dev);
    }

    fn decoder_layer_causal_with_memory_padding(dev) {
        let g = Golden::load("transformer_layers");
        let layer = TransformerDecoderLayer::new(8, 2, opts(12).batch_first(true), dev).unwrap();
        let layer = load_case(&g, "dec_post", layer, dev);
        let (x, m) = (g.on("dec_post.x", dev).requires_grad(), g.on("dec_post.memory", dev).requires_grad());
        let mpad = g.on("dec_post.memory_key_padding_mask", dev);
        let y = layer
            .forward_mask(&x, &m, AttnOpts::new().causal(true), AttnOpts::new().key_padding_mask(&mpad))
            .unwrap();
        check_case(&g, "dec_post", &y, &[("x", &x), ("memory", &m)], &layer, dev);
    }

    fn decoder_stack_pre_norm_with_float_memory_mask(dev) {
        let g = Golden::load("transformer_layers");
        let o = opts(12).activation(Activation::Gelu).norm_first(true);
        let dec = TransformerDecoder::new(TransformerDecoderLayer::new(8, 2, o, dev).unwrap(), 2)
            .unwrap()
            .with_norm(LayerNorm::new(8, dev).unwrap());
        let dec = load_case(&g, "dec_stack", dec, dev);
        let (x, m) = (g.on("dec_stack.x", dev).requires_grad(), g.on("dec_stack.memory", dev).requires_grad());
        let (tpad, mm) = (g.on("dec_stack.tgt_key_padding_mask", dev), g.on("dec_stack.memory_mask", dev));
        let y = dec
            .forward_mask(&x, &m, AttnOpts::new().key_padding_mask(&tpad), AttnOpts::new().attn_mask(&mm))
            .unwrap();
        check_case(&g, "dec_stack", &y, &[("x", &x), ("memory", &m)], &dec, dev);
    }

    /// Dropout is active in training mode only; eval is deterministic.
    fn dropout_follows_the_mode(dev) {
        let layer = TransformerEncoderLayer::new(8, 2, TransformerOpts::new().dim_feedforward(16).dropout(0.5), dev).unwrap();
        let x = Tensor::randn(&[3, 2, 8], DType::F32, dev).unwrap();
        let (a, b) = (layer.forward(&x).unwrap(), layer.forward(&x).unwrap());
        assert_ne!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        layer.eval();
        let (a, b) = (layer.forward(&x).unwrap(), layer.forward(&x).unwrap());
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    }
}

#[test]
fn names_and_copies_follow_pytorch() {
    let dev = Device::Cpu;
    let layer =
        TransformerEncoderLayer::new(8, 2, TransformerOpts::new().dim_feedforward(16), &dev)
            .unwrap();
    let names: Vec<String> = layer
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "self_attn.in_proj_weight",
            "self_attn.in_proj_bias",
            "self_attn.out_proj.weight",
            "self_attn.out_proj.bias",
            "linear1.weight",
            "linear1.bias",
            "linear2.weight",
            "linear2.bias",
            "norm1.weight",
            "norm1.bias",
            "norm2.weight",
            "norm2.bias",
        ]
    );
    let first = layer.linear1.weight.to_vec::<f32>().unwrap();
    let enc = TransformerEncoder::new(layer, 3).unwrap();
    assert_eq!(enc.layers.len(), 3);
    // PyTorch deep-copies the layer: every copy starts equal, with its own storage.
    for l in &enc.layers {
        assert_eq!(l.linear1.weight.to_vec::<f32>().unwrap(), first);
    }
    assert_ne!(
        enc.layers[0].linear1.weight.id(),
        enc.layers[1].linear1.weight.id()
    );
    assert_eq!(enc.parameters().len(), 36);
    let dec = TransformerDecoderLayer::new(8, 2, TransformerOpts::new(), &dev).unwrap();
    let names: Vec<String> = dec.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"multihead_attn.in_proj_weight".to_owned()));
    assert!(names.contains(&"norm3.bias".to_owned()));
    let linear1 = dec
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n == "linear1.weight")
        .unwrap()
        .1;
    assert_eq!(linear1.shape(), &[2048, 8]); // PyTorch's default width
}

#[test]
fn bad_arguments_are_errors() {
    let dev = Device::Cpu;
    let o = TransformerOpts::new().dim_feedforward(8);
    assert_invalid_arg(TransformerEncoderLayer::new(6, 4, o, &dev), "d_model");
    assert_invalid_arg(
        TransformerEncoderLayer::new(8, 2, o.dropout(1.5), &dev),
        "dropout",
    );
    assert_invalid_arg(
        TransformerEncoderLayer::new(8, 2, o.dim_feedforward(0), &dev),
        "dim_feedforward",
    );
    assert_invalid_arg(
        TransformerEncoderLayer::new(8, 2, o.activation(Activation::Tanh), &dev),
        "activation",
    );
    let layer = TransformerEncoderLayer::new(8, 2, o, &dev).unwrap();
    assert_invalid_arg(
        layer.forward(&Tensor::zeros(&[2, 3, 5], DType::F32, &dev).unwrap()),
        "src",
    );
    let pad = Tensor::zeros(&[4, 4], DType::U8, &dev).unwrap();
    let x = Tensor::zeros(&[3, 2, 8], DType::F32, &dev).unwrap();
    assert_invalid_arg(
        layer.forward_mask(&x, AttnOpts::new().key_padding_mask(&pad)),
        "key_padding_mask",
    );
    assert_invalid_arg(TransformerEncoder::new(layer, 0), "num_layers");
    let dec = TransformerDecoderLayer::new(8, 2, o, &dev).unwrap();
    let mem = Tensor::zeros(&[3, 5, 8], DType::F32, &dev).unwrap();
    assert_invalid_arg(
        dec.forward_mask(&x, &mem, AttnOpts::new(), AttnOpts::new()),
        "memory",
    );
    let _ = nn::summary(&dec);
}
