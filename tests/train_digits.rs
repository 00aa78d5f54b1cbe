//! A shortened run of the train_digits example: the loss falls and the accuracy beats
//! chance (10%) by a wide margin.

#[path = "../examples/train_digits/model.rs"]
#[allow(dead_code)] // train_epoch (no clipping or schedule) serves tests/cuda.rs
mod model;

use kiln::nn::Module;
use kiln::optim::lr_scheduler::{CosineAnnealingLr, LinearLr, SequentialLr};
use kiln::optim::Optimizer;
use kiln::{data, Device};
use model::{evaluate, optimizer, train_epoch_with, DigitsNet, StepOpts};

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
    // The example's recipe: AdamW in two groups, warm-up then cosine, clipping.
    let mut opt = optimizer(&net, 2e-3, 1e-4).unwrap();
    assert_eq!(opt.num_groups(), 2);
    let warm = LinearLr::new(&opt, 0.1, 1.0, 20).unwrap();
    let cos = CosineAnnealingLr::new(&opt, 205).unwrap();
    let mut sched = SequentialLr::new(&opt, vec![Box::new(warm), Box::new(cos)], &[20]).unwrap();
    let test_batches = test.batches(256, None, &dev).unwrap();
    let before = evaluate(&net, &test_batches).unwrap();
    let mut losses = Vec::new();
    for epoch in 0..5 {
        // 5 epochs of 45 steps: 225 steps.
        let batches = train.batches(32, Some(epoch), &dev).unwrap();
        let step_opts = StepOpts {
            max_grad_norm: Some(5.0),
            scheduler: Some(&mut sched),
        };
        losses.push(
            train_epoch_with(&net, &mut opt, step_opts, &batches, |_| {})
                .unwrap()
                .loss,
        );
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
    assert!(
        opt.group_lr(0).unwrap() < 1e-5,
        "the cosine ends near 0 after 225 steps"
    );
}
