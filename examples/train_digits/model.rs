//! The digits CNN and its training and evaluation loops, shared by the
//! `train_digits` example and its test (`tests/train_digits.rs`).

use kiln::nn::{self, functional as F, Conv2dOpts, Forward, Module};
use kiln::optim::lr_scheduler::LrScheduler;
use kiln::optim::{AdamW, Optimizer, ParamGroup};
use kiln::{Device, Result, Tensor};

/// A small CNN for 1-channel images of 8×8 (digits) or larger (MNIST).
#[derive(nn::Module)]
pub struct DigitsNet {
    features: nn::Sequential,
    classifier: nn::Sequential,
}

impl DigitsNet {
    /// Layers are built here, once: the optimizer is given their parameters.
    pub fn new(dev: &Device) -> Result<Self> {
        let features = nn::Sequential::new()
            .add(nn::Conv2d::new(
                1,
                16,
                3,
                Conv2dOpts::new().padding(1),
                dev,
            )?)
            .add(nn::BatchNorm2d::new(16, dev)?)
            .add(nn::ReLU)
            .add(nn::MaxPool2d::new(2, 2))
            .add(nn::Conv2d::new(
                16,
                32,
                3,
                Conv2dOpts::new().padding(1),
                dev,
            )?)
            .add(nn::BatchNorm2d::new(32, dev)?)
            .add(nn::ReLU)
            .add(nn::AdaptiveAvgPool2d::new((4, 4)));
        let classifier = nn::Sequential::new()
            .add(nn::Flatten::new())
            .add(nn::Dropout::new(0.25)?)
            .add(nn::Linear::new(32 * 4 * 4, 64, dev)?)
            .add(nn::ReLU)
            .add(nn::Linear::new(64, 10, dev)?);
        Ok(DigitsNet {
            features,
            classifier,
        })
    }
}

impl Forward for DigitsNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.classifier.forward(&self.features.forward(x)?)
    }
}

/// AdamW with two parameter groups: weights decay by `weight_decay`; biases and the
/// BatchNorm parameters (every parameter of one dimension) do not decay.
pub fn optimizer(net: &DigitsNet, lr: f64, weight_decay: f64) -> Result<AdamW> {
    let (decay, no_decay): (Vec<_>, Vec<_>) = net
        .named_parameters()
        .into_iter()
        .partition(|(_, p)| p.shape().len() > 1);
    let mut opt = AdamW::new(decay, lr)?.weight_decay(weight_decay);
    opt.add_param_group(ParamGroup::new(no_decay).weight_decay(0.0))?;
    Ok(opt)
}

/// What happens around each optimizer step besides the update itself.
#[derive(Default)]
pub struct StepOpts<'a> {
    /// Clip the gradients to this total 2-norm before the step.
    pub max_grad_norm: Option<f64>,
    /// Step this scheduler after every optimizer step.
    pub scheduler: Option<&'a mut dyn LrScheduler>,
}

/// Loss and accuracy over some batches.
#[derive(Debug, Clone, Copy)]
pub struct Score {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of correct predictions.
    pub accuracy: f64,
}

/// Number of correct predictions in a batch.
fn correct(logits: &Tensor, labels: &Tensor) -> Result<usize> {
    let hits = logits
        .argmax(1, false)?
        .eq(labels)?
        .to_dtype(kiln::DType::I64)?
        .sum_all()?;
    Ok(hits.item::<i64>()? as usize)
}

/// One step per batch; `on_batch` is called after each (for a progress bar).
pub fn train_epoch(
    net: &DigitsNet,
    opt: &mut dyn Optimizer,
    batches: &[(Tensor, Tensor)],
    on_batch: impl FnMut(f64),
) -> Result<Score> {
    train_epoch_with(net, opt, StepOpts::default(), batches, on_batch)
}

/// [`train_epoch`] with the clipping and scheduling of `step_opts` around each step.
pub fn train_epoch_with(
    net: &DigitsNet,
    opt: &mut dyn Optimizer,
    mut step_opts: StepOpts<'_>,
    batches: &[(Tensor, Tensor)],
    mut on_batch: impl FnMut(f64),
) -> Result<Score> {
    net.train();
    let (mut loss_sum, mut hits, mut seen) = (0.0, 0, 0);
    for (x, y) in batches {
        opt.zero_grad();
        let logits = net.forward(x)?;
        let loss = F::cross_entropy(&logits, y)?;
        loss.backward()?;
        if let Some(max_norm) = step_opts.max_grad_norm {
            nn::utils::clip_grad_norm(&net.parameters(), max_norm)?;
        }
        opt.step()?;
        if let Some(sched) = step_opts.scheduler.as_deref_mut() {
            sched.step(opt)?;
        }
        let l = f64::from(loss.item::<f32>()?);
        loss_sum += l * y.numel() as f64;
        hits += correct(&logits, y)?;
        seen += y.numel();
        on_batch(l);
    }
    Ok(Score {
        loss: loss_sum / seen as f64,
        accuracy: hits as f64 / seen as f64,
    })
}

/// Loss and accuracy in eval mode (dropout off, BatchNorm's running statistics),
/// with no graph recorded. The model is switched back to training mode afterwards.
pub fn evaluate(net: &DigitsNet, batches: &[(Tensor, Tensor)]) -> Result<Score> {
    net.eval();
    let _guard = kiln::no_grad();
    let (mut loss_sum, mut hits, mut seen) = (0.0, 0, 0);
    for (x, y) in batches {
        let logits = net.forward(x)?;
        loss_sum += f64::from(F::cross_entropy(&logits, y)?.item::<f32>()?) * y.numel() as f64;
        hits += correct(&logits, y)?;
        seen += y.numel();
    }
    net.train();
    Ok(Score {
        loss: loss_sum / seen as f64,
        accuracy: hits as f64 / seen as f64,
    })
}
