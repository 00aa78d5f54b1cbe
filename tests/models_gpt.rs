//! kiln::models::gpt: a one-block GPT state_dict saved by PyTorch (the model defined
//! in scripts/golden/attention.py) loads by its names and gives PyTorch's logits, for
//! the full context and a shorter one, on every device; the model trains (the loss of
//! a repeated pattern falls); bad input is an error naming the argument.

#![cfg(feature = "models")]

mod common;

use common::{assert_close, device_test, Golden};
use kiln::models::gpt::{Gpt, GptConfig};
use kiln::nn::{functional as F, Forward, Module};
use kiln::optim::{AdamW, Optimizer};
use kiln::{Device, Error, Tensor};

const CONFIG: GptConfig = GptConfig {
    vocab_size: 11,
    block_size: 8,
    n_layer: 1,
    n_head: 4,
    n_embd: 16,
    tie_weights: false,
};

device_test! {
    fn a_pytorch_state_dict_gives_pytorchs_logits(dev) {
        let g = Golden::load("attention");
        let gpt = Gpt::new(CONFIG, dev).unwrap();
        gpt.load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gpt_torch.safetensors")).unwrap();
        gpt.eval();
        let ids = g.on("gpt.ids", dev);
        assert_close(&gpt.forward(&ids).unwrap(), &g.get("gpt.out"), dev, 1e-5, 1e-5);
        let short = ids.narrow(1, 0, 5).unwrap();
        assert_close(&gpt.forward(&short).unwrap(), &g.get("gpt.out_short"), dev, 1e-5, 1e-5);
    }

    fn the_loss_of_a_repeated_pattern_falls(dev) {
        kiln::manual_seed(5);
        let gpt = Gpt::new(GptConfig { tie_weights: true, ..CONFIG }, dev).unwrap();
        let names: Vec<String> = gpt.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert!(!names.iter().any(|n| n.starts_with("lm_head")), "tied: no head weight");
        let pattern: Vec<i64> = (0..18).map(|i| (i * 3 % 11) as i64).collect();
        let x = Tensor::from_vec(pattern[..16].to_vec(), &[2, 8], dev).unwrap();
        let y = Tensor::from_vec(pattern[1..17].to_vec(), &[16], dev).unwrap();
        let mut opt = AdamW::new(gpt.parameters(), 1e-2).unwrap();
        let mut losses = Vec::new();
        for _ in 0..30 {
            let logits = gpt.forward(&x).unwrap().reshape(&[16, 11]).unwrap();
            let loss = F::cross_entropy(&logits, &y).unwrap();
            losses.push(loss.item::<f32>().unwrap());
            opt.zero_grad();
            loss.backward().unwrap();
            opt.step().unwrap();
        }
        assert!(losses[29] < 0.5 * losses[0], "losses {losses:?}");
    }
}

#[test]
fn bad_input_is_an_error_naming_the_argument() {
    let dev = Device::Cpu;
    let gpt = Gpt::new(CONFIG, &dev).unwrap();
    let too_long = Tensor::zeros(&[1, 9], kiln::DType::I64, &dev).unwrap();
    let floats = Tensor::zeros(&[1, 4], kiln::DType::F32, &dev).unwrap();
    for bad in [too_long, floats] {
        match gpt.forward(&bad) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "ids"),
            other => panic!("expected an invalid `ids`, got {other:?}"),
        }
    }
    match Gpt::new(
        GptConfig {
            n_layer: 0,
            ..CONFIG
        },
        &dev,
    ) {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "n_layer"),
        other => panic!("expected an invalid `n_layer`, got {other:?}"),
    }
}
