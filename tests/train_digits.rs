//! A shortened run of the train_digits example: the loss falls and the accuracy beats
//! chance (10%) by a wide margin.

#[path = "../examples/train_digits/model.rs"]
mod model;

use kiln::nn::Module;
use kiln::optim::AdamW;
use kiln::{data, Device};
use model::{evaluate, train_epoch, DigitsNet};

#[test]
fn a_few_hundred_steps_learn_the_digits() {
    kiln::manual_seed(1);
    let dev = Device::Cpu;
    let digits = data::load_digits(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/digits/digits.csv.gz"
    ))
    .unwrap();
    let (train, test) = digits.split_every(5).unwrap();
    let net = DigitsNet::new(&dev).unwrap();
    let mut opt = AdamW::new(net.parameters(), 2e-3).unwrap();
    let test_batches = test.batches(256, None, &dev).unwrap();
    let before = evaluate(&net, &test_batches).unwrap();
    let mut losses = Vec::new();
    for epoch in 0..5 {
        // 5 epochs of 45 steps: 225 steps.
        let batches = train.batches(32, Some(epoch), &dev).unwrap();
        losses.push(train_epoch(&net, &mut opt, &batches, |_| {}).unwrap().loss);
    }
    let after = evaluate(&net, &test_batches).unwrap();
    assert!(
        losses[4] < 0.5 * losses[0],
        "training loss should fall: {losses:?}"
    );
    assert!(
        after.loss < before.loss,
        "test loss {} -> {}",
        before.loss,
        after.loss
    );
    assert!(
        after.accuracy > 0.85,
        "test accuracy {} is not far above chance",
        after.accuracy
    );
    assert!(net.is_training(), "evaluate switches back to training mode");
}
