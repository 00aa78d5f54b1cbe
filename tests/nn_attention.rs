//! nn::MultiheadAttention: a state_dict saved by PyTorch's
//! `nn.MultiheadAttention(16, 4, batch_first=True)` loads by its names and gives
//! PyTorch's outputs (scripts/golden/attention.py) for self-attention, causal
//! self-attention and cross-attention with boolean padding and attention masks, on
//! every device; PyTorch's initialisation; dropout that follows the mode; bad input.

mod common;

use common::{assert_close, device_test, Golden};
use kiln::nn::{self, AttnOpts, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};

fn assert_invalid_arg<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

/// The PyTorch module's weights, loaded into a kiln module on `dev`, in eval mode.
fn torch_mha(dev: &Device) -> nn::MultiheadAttention {
    let mha = nn::MultiheadAttention::new(16, 4, dev).unwrap();
    mha.load(format!(
        "{}/tests/data/mha_torch.safetensors",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    mha.eval();
    mha
}

device_test! {
    fn a_pytorch_state_dict_gives_pytorchs_outputs(dev) {
        let g = Golden::load("attention");
        let mha = torch_mha(dev);
        let x = g.on("mha_self.q", dev);
        assert_close(&mha.forward(&x).unwrap(), &g.get("mha_self.out"), dev, 1e-5, 1e-5);
        let y = mha.forward_qkv(&x, &x, &x, AttnOpts::new().causal(true)).unwrap();
        assert_close(&y, &g.get("mha_causal.out"), dev, 1e-5, 1e-5);
        // The same causal mask given as PyTorch gives it: float, -inf above the diagonal.
        let i = Tensor::arange(5, DType::F32, dev).unwrap().reshape(&[5, 1]).unwrap();
        let j = Tensor::arange(5, DType::F32, dev).unwrap().reshape(&[1, 5]).unwrap();
        let future = j.gt(&i).unwrap();
        let float_mask = future.to_dtype(DType::F32).unwrap().mul_scalar(-1e30).unwrap();
        let y = mha.forward_qkv(&x, &x, &x, AttnOpts::new().attn_mask(&float_mask)).unwrap();
        assert_close(&y, &g.get("mha_causal.out"), dev, 1e-5, 1e-5);
        let y = mha.forward_qkv(&x, &x, &x, AttnOpts::new().attn_mask(&future)).unwrap();
        assert_close(&y, &g.get("mha_causal.out"), dev, 1e-5, 1e-5);

        let key = |k: &str| g.on(&format!("mha_cross.{k}"), dev);
        let (pad, am) = (key("key_padding_mask"), key("attn_mask"));
        let y = mha
            .forward_qkv(&key("q"), &key("k"), &key("v"),
                AttnOpts::new().key_padding_mask(&pad).attn_mask(&am))
            .unwrap();
        assert_close(&y, &g.get("mha_cross.out"), dev, 1e-5, 1e-5);
        // A float padding mask with a boolean attention mask: the same scores.
        let float_pad = pad.to_dtype(DType::F32).unwrap().mul_scalar(-1e30).unwrap();
        let y = mha
            .forward_qkv(&key("q"), &key("k"), &key("v"),
                AttnOpts::new().key_padding_mask(&float_pad).attn_mask(&am))
            .unwrap();
        assert_close(&y, &g.get("mha_cross.out"), dev, 1e-5, 1e-5);
    }

    /// Gradients reach every parameter and the input.
    fn gradients_reach_every_parameter(dev) {
        let mha = torch_mha(dev);
        let x = Golden::load("attention").on("mha_self.q", dev).requires_grad();
        mha.forward_qkv(&x, &x, &x, AttnOpts::new().causal(true))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (name, p) in mha.named_parameters() {
            let g = p.grad().unwrap_or_else(|| panic!("{name}: no gradient"));
            assert_eq!(g.shape(), p.shape(), "{name}");
            let norm = g.abs().unwrap().sum_all().unwrap().item::<f32>().unwrap();
            assert!(norm > 0.0, "{name}: zero gradient");
        }
        assert_eq!(x.grad().unwrap().shape(), x.shape());
    }

    fn dropout_follows_the_module_mode(dev) {
        let mha = nn::MultiheadAttention::new(8, 2, dev).unwrap().with_dropout(0.5).unwrap();
        kiln::manual_seed(3);
        let x = Tensor::randn(&[2, 6, 8], DType::F32, dev).unwrap();
        mha.eval();
        let (a, b) = (mha.forward(&x).unwrap(), mha.forward(&x).unwrap());
        assert_close(&a, &b, dev, 0.0, 0.0);
        mha.train();
        let c = mha.forward(&x).unwrap();
        let diff = c.sub(&a).unwrap().abs().unwrap().sum_all().unwrap().item::<f32>().unwrap();
        assert!(diff > 1e-4, "dropout 0.5 in training changed nothing");
    }
}

/// PyTorch's names, shapes and initialisation: Xavier-uniform in_proj_weight, zero
/// in_proj_bias and out_proj.bias, a Linear's U(±1/√d) out_proj.weight.
#[test]
fn parameters_are_named_and_initialised_like_pytorch() {
    kiln::manual_seed(0);
    let mha = nn::MultiheadAttention::new(64, 8, &Device::Cpu).unwrap();
    let names: Vec<(String, Vec<usize>)> = mha
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.shape().to_vec()))
        .collect();
    let want = [
        ("in_proj_weight", vec![192, 64]),
        ("in_proj_bias", vec![192]),
        ("out_proj.weight", vec![64, 64]),
        ("out_proj.bias", vec![64]),
    ];
    assert_eq!(names.len(), want.len());
    for ((n, s), (wn, ws)) in names.iter().zip(&want) {
        assert_eq!((n.as_str(), s), (*wn, ws));
    }
    let max_abs = |t: &Tensor| {
        common::host(t)
            .into_iter()
            .fold(0.0f64, |m, x| m.max(x.abs()))
    };
    let xavier = (6.0f64 / (64.0 + 192.0)).sqrt();
    let w = max_abs(&mha.in_proj_weight);
    assert!(
        w <= xavier && w > 0.9 * xavier,
        "in_proj_weight bound {w} vs {xavier}"
    );
    let o = max_abs(&mha.out_proj.weight);
    assert!(o <= 0.125 && o > 0.11, "out_proj.weight bound {o}");
    assert_eq!(max_abs(&mha.in_proj_bias), 0.0);
    assert_eq!(max_abs(mha.out_proj.bias.as_ref().unwrap()), 0.0);
    assert_eq!((mha.num_heads(), mha.embed_dim()), (8, 64));
}

#[test]
fn bad_input_is_an_error_naming_the_argument() {
    let dev = Device::Cpu;
    assert_invalid_arg(nn::MultiheadAttention::new(10, 4, &dev), "d_model");
    assert_invalid_arg(nn::MultiheadAttention::new(8, 0, &dev), "n_heads");
    let mha = nn::MultiheadAttention::new(8, 2, &dev).unwrap();
    assert_invalid_arg(mha.with_dropout(-0.1), "p");
    let mha = nn::MultiheadAttention::new(8, 2, &dev).unwrap();
    let x = Tensor::zeros(&[2, 5, 8], DType::F32, &dev).unwrap();
    let kv = Tensor::zeros(&[2, 4, 8], DType::F32, &dev).unwrap();
    let attn = |q: &Tensor, k: &Tensor, v: &Tensor, o| mha.forward_qkv(q, k, v, o);
    assert_invalid_arg(
        attn(&x.narrow(2, 0, 6).unwrap(), &x, &x, AttnOpts::new()),
        "query",
    );
    assert_invalid_arg(
        attn(&x, &kv.narrow(0, 0, 1).unwrap(), &kv, AttnOpts::new()),
        "key",
    );
    assert_invalid_arg(attn(&x, &kv, &x, AttnOpts::new()), "value");
    let m = Tensor::zeros(&[5, 5], DType::U8, &dev).unwrap();
    assert_invalid_arg(
        attn(&x, &kv, &kv, AttnOpts::new().attn_mask(&m)),
        "attn_mask",
    );
    let m = Tensor::zeros(&[2, 5], DType::U8, &dev).unwrap();
    assert_invalid_arg(
        attn(&x, &kv, &kv, AttnOpts::new().key_padding_mask(&m)),
        "key_padding_mask",
    );
    let m = Tensor::zeros(&[2, 4], DType::I64, &dev).unwrap();
    assert_invalid_arg(
        attn(&x, &kv, &kv, AttnOpts::new().key_padding_mask(&m)),
        "key_padding_mask",
    );
}
