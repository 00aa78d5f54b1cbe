//! Trains ResNet-18 (`kiln::models::resnet18`, torchvision's layers and names, CIFAR
//! stem) on CIFAR-10, or, without `--data`, measures training speed on synthetic data.
//! `--model` picks another of `kiln::models`' torchvision classifiers instead:
//! `mobilenet_v3_small`, `mobilenet_v3_large`, `efficientnet_b0`, `convnext_tiny` or
//! `vit_b_16` (for 32×32 images, with 4×4 patches).
//!
//! ```sh
//! cargo run --release --example train_resnet                        # benchmark: images/s
//! cargo run --release --example train_resnet -- --data cifar-10-batches-bin --epochs 30
//! cargo run --release --example train_resnet -- --model mobilenet_v3_small
//! cargo run --release --example train_resnet -- --help
//! ```
//!
//! With `--data DIR` (the binary CIFAR-10, `cifar-10-binary.tar.gz` extracted) it trains
//! with random crops (padding 4) and horizontal flips, label smoothing, SGD with
//! Nesterov momentum or AdamW (`--optimizer`), a linear warm-up then cosine decay of the
//! learning rate (per step), BF16 autocast on CUDA, batches uploaded by the
//! `DataLoader`'s background thread, and prints the test accuracy after every epoch. Without it, it
//! trains for `--steps` steps on random images made on the device (after one warm-up
//! step) and reports images/s: a benchmark anyone can run on any machine. On the CPU
//! the defaults keep it under a minute. `--profile` profiles three synthetic-data steps
//! after the warm-up step instead (`kiln::profiler`): it prints the table of the ops
//! and writes a Chrome trace.

#[path = "common/mod.rs"]
mod common;
#[path = "common/profile.rs"]
mod profile;

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kiln::data::transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip};
use kiln::data::{load_cifar10, DataLoader, Dataset};
use kiln::models::{self, ResNet, ResNetConfig, VisionTransformer, VitConfig};
use kiln::nn::{functional as F, Layer};
use kiln::optim::lr_scheduler::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
use kiln::optim::{AdamW, Optimizer, Sgd};
use kiln::{DType, Device, Result, Tensor};
use std::time::Instant;

/// CIFAR-10's per-channel mean and standard deviation (training set).
const MEAN: [f64; 3] = [0.4914, 0.4822, 0.4465];
const STD: [f64; 3] = [0.2470, 0.2435, 0.2616];

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Opt {
    /// SGD with Nesterov momentum 0.9.
    Sgd,
    /// AdamW.
    Adamw,
}

/// The network to train (torchvision's names).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Model {
    /// ResNet-18 with the CIFAR stem (`--width` sets its channels).
    #[value(name = "resnet18")]
    Resnet18,
    /// MobileNetV3-Small.
    #[value(name = "mobilenet_v3_small")]
    MobilenetV3Small,
    /// MobileNetV3-Large.
    #[value(name = "mobilenet_v3_large")]
    MobilenetV3Large,
    /// EfficientNet-B0.
    #[value(name = "efficientnet_b0")]
    EfficientnetB0,
    /// ConvNeXt-Tiny.
    #[value(name = "convnext_tiny")]
    ConvnextTiny,
    /// ViT-B/16's encoder on 32×32 images cut into 4×4 patches (16×16 patches would
    /// leave 4 tokens).
    #[value(name = "vit_b_16")]
    VitB16,
}

/// ResNet-18 (or --model) on CIFAR-10, or a synthetic-data training benchmark
/// without --data.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    device: common::DeviceArgs,
    /// The network.
    #[arg(long, value_enum, default_value_t = Model::Resnet18)]
    model: Model,
    /// The binary CIFAR-10 folder (data_batch_1.bin … test_batch.bin); without it, a
    /// synthetic-data benchmark.
    #[arg(long)]
    data: Option<std::path::PathBuf>,
    /// Epochs over CIFAR-10.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Images per batch [default: 128 on CUDA, 8 on the CPU].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate [default: 0.1 for sgd, 2e-3 for adamw].
    #[arg(long)]
    lr: Option<f64>,
    /// Optimizer.
    #[arg(long, value_enum, default_value_t = Opt::Sgd)]
    optimizer: Opt,
    /// Weight decay [default: 5e-4 for sgd, 0.05 for adamw].
    #[arg(long)]
    weight_decay: Option<f64>,
    /// Label smoothing of the cross-entropy.
    #[arg(long, default_value_t = 0.1)]
    label_smoothing: f64,
    /// Channels of layer1 (64 is torchvision's ResNet-18); resnet18 only.
    #[arg(long, default_value_t = 64)]
    width: usize,
    /// Benchmark: timed training steps [default: 50 on CUDA, 4 on the CPU].
    #[arg(long)]
    steps: Option<usize>,
    /// Epochs of linear learning-rate warm-up (from 1/10 of --lr) before the cosine decay.
    #[arg(long, default_value_t = 1)]
    warmup_epochs: usize,
    /// Keep every op in f32 on CUDA (by default convolutions and matmuls run under BF16
    /// autocast there; the CPU always computes in f32).
    #[arg(long)]
    no_autocast: bool,
    /// Profile a few training steps on synthetic data after a warm-up step, print the
    /// ops' table and write a Chrome trace, then exit.
    #[arg(long)]
    profile: bool,
}

/// The network `model` names, for 10 classes, and its description.
fn build(model: Model, width: usize, dev: &Device) -> Result<(Box<dyn Layer>, String)> {
    Ok(match model {
        Model::Resnet18 => (
            Box::new(ResNet::new(ResNetConfig::new(10).width(width), dev)?),
            format!("ResNet-18 (width {width})"),
        ),
        Model::MobilenetV3Small => (
            Box::new(models::mobilenet_v3_small(10, dev)?),
            "MobileNetV3-Small".into(),
        ),
        Model::MobilenetV3Large => (
            Box::new(models::mobilenet_v3_large(10, dev)?),
            "MobileNetV3-Large".into(),
        ),
        Model::EfficientnetB0 => (
            Box::new(models::efficientnet_b0(10, dev)?),
            "EfficientNet-B0".into(),
        ),
        Model::ConvnextTiny => (
            Box::new(models::convnext_tiny(10, dev)?),
            "ConvNeXt-Tiny".into(),
        ),
        Model::VitB16 => {
            let cfg = VitConfig {
                image_size: 32,
                patch_size: 4,
                ..VitConfig::b_16(10)
            };
            (
                Box::new(VisionTransformer::new(&cfg, dev)?),
                "ViT-B (32×32 images, 4×4 patches)".into(),
            )
        }
    })
}

/// A progress bar for `len` steps showing loss, accuracy and images/s.
fn bar(len: u64, prefix: String) -> ProgressBar {
    let bar = ProgressBar::new(len).with_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix);
    bar
}

/// Sums over the steps of an epoch, kept on the device (read only for the display).
struct Meter {
    loss: Tensor,
    correct: Tensor,
    images: usize,
    started: Instant,
}

impl Meter {
    fn new(dev: &Device) -> Result<Meter> {
        Ok(Meter {
            loss: Tensor::zeros(&[], DType::F32, dev)?,
            correct: Tensor::zeros(&[], DType::F32, dev)?,
            images: 0,
            started: Instant::now(),
        })
    }

    /// Adds a batch's mean loss and its correct predictions.
    fn add(&mut self, loss: &Tensor, logits: &Tensor, labels: &Tensor) -> Result<()> {
        let n = labels.shape()[0];
        let hits = logits.argmax(1, false)?.eq(labels)?.to_dtype(DType::F32)?;
        self.loss = self.loss.add(&loss.detach().mul_scalar(n as f64)?)?;
        self.correct = self.correct.add(&hits.sum_all()?)?;
        self.images += n;
        Ok(())
    }

    /// `loss 1.2345 acc 56.78% 1234 img/s` (reads the sums: synchronizes).
    fn show(&self) -> Result<String> {
        let n = self.images.max(1) as f64;
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        Ok(format!(
            "loss {:.4} acc {:.2}% {:.0} img/s",
            f64::from(self.loss.item::<f32>()?) / n,
            100.0 * f64::from(self.correct.item::<f32>()?) / n,
            self.images as f64 / secs
        ))
    }

    fn accuracy(&self) -> Result<f64> {
        Ok(f64::from(self.correct.item::<f32>()?) / self.images.max(1) as f64)
    }
}

/// `kiln::autocast(BF16)` when `on`: convolutions and matmuls in BF16 from the f32
/// weights, losses and norms in f32.
fn maybe_autocast(on: bool) -> Result<Option<kiln::AutocastGuard>> {
    on.then(|| kiln::autocast(DType::BF16)).transpose()
}

/// One training step on a batch; returns the loss and logits for the meter.
fn step(
    net: &dyn Layer,
    opt: &mut dyn Optimizer,
    x: &Tensor,
    y: &Tensor,
    smoothing: f64,
    autocast: bool,
) -> Result<(Tensor, Tensor)> {
    opt.zero_grad();
    let (logits, loss) = {
        let _ac = maybe_autocast(autocast)?;
        let logits = net.forward(x)?;
        let loss = F::cross_entropy_with(&logits, y, smoothing)?;
        (logits, loss)
    };
    loss.backward()?;
    opt.step()?;
    Ok((loss, logits.detach()))
}

/// Accuracy of `net` (eval mode) over `batches`, each normalized first.
fn evaluate(
    net: &dyn Layer,
    batches: impl Iterator<Item = Result<Vec<Tensor>>>,
    norm: &Normalize,
    dev: &Device,
    autocast: bool,
) -> Result<f64> {
    net.eval();
    let _no_grad = kiln::no_grad();
    let _ac = maybe_autocast(autocast)?;
    let mut meter = Meter::new(dev)?;
    for batch in batches {
        let batch = batch?;
        let x = kiln::data::transforms::Transform::apply(norm, &batch[0])?;
        let logits = net.forward(&x)?;
        let loss = F::cross_entropy(&logits, &batch[1])?;
        meter.add(&loss, &logits, &batch[1])?;
    }
    net.train();
    meter.accuracy()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dev = cli.device.setup();
    let on_gpu = dev.is_cuda();
    let batch_size = cli.batch_size.unwrap_or(if on_gpu { 128 } else { 8 });
    let (net, name) = build(cli.model, cli.width, &dev)?;
    let params: usize = net.parameters().iter().map(|p| p.numel()).sum();
    println!("{name}: {params} parameters");
    let mut opt: Box<dyn Optimizer> = match cli.optimizer {
        Opt::Sgd => Box::new(
            Sgd::new(net.parameters(), cli.lr.unwrap_or(0.1))?
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(cli.weight_decay.unwrap_or(5e-4)),
        ),
        Opt::Adamw => Box::new(
            AdamW::new(net.parameters(), cli.lr.unwrap_or(2e-3))?
                .weight_decay(cli.weight_decay.unwrap_or(0.05)),
        ),
    };
    let norm = Normalize::new(&MEAN, &STD);
    let autocast = on_gpu && !cli.no_autocast;
    if autocast {
        println!("BF16 autocast (--no-autocast for f32)");
    }
    let Some(dir) = cli.data.as_ref().filter(|_| !cli.profile) else {
        return benchmark(&cli, &*net, opt.as_mut(), batch_size, &norm, &dev, autocast);
    };

    let (train, test) = load_cifar10(dir)?;
    println!(
        "CIFAR-10: {} training and {} test images",
        train.len(),
        test.len()
    );
    let train_loader = DataLoader::new(&train, batch_size)
        .shuffle(true)
        .drop_last(true)
        .seed(cli.device.seed)
        .device(&dev);
    let test_loader = DataLoader::new(&test, 500).device(&dev);
    let augment = Compose::new()
        .add(RandomCrop::new(32, 4))
        .add(RandomHorizontalFlip::new(0.5))
        .add(Normalize::new(&MEAN, &STD));
    // Per step: linear warm-up from lr/10, then cosine decay to 0 (PyTorch's
    // SequentialLR of LinearLR and CosineAnnealingLR).
    let total = (cli.epochs * train_loader.len()).max(1);
    let warmup = (cli.warmup_epochs * train_loader.len()).clamp(1, total);
    let warm = LinearLr::new(opt.as_ref(), 0.1, 1.0, warmup)?;
    let cosine = CosineAnnealingLr::new(opt.as_ref(), (total - warmup).max(1))?;
    let mut schedule = SequentialLr::new(
        opt.as_ref(),
        vec![Box::new(warm), Box::new(cosine)],
        &[warmup],
    )?;
    let mut accuracy = 0.0;
    for epoch in 1..=cli.epochs {
        let progress = bar(train_loader.len() as u64, format!("epoch {epoch:>3}"));
        let mut meter = Meter::new(&dev)?;
        for (i, batch) in train_loader.iter()?.enumerate() {
            let batch = batch?;
            let x = augment.apply(&batch[0])?;
            let (loss, logits) = step(
                &*net,
                opt.as_mut(),
                &x,
                &batch[1],
                cli.label_smoothing,
                autocast,
            )?;
            schedule.step(opt.as_mut())?;
            meter.add(&loss, &logits, &batch[1])?;
            if i % 20 == 19 {
                progress.set_message(meter.show()?);
            }
            progress.inc(1);
        }
        let summary = meter.show()?;
        progress.finish_and_clear();
        accuracy = evaluate(&*net, test_loader.iter()?, &norm, &dev, autocast)?;
        println!(
            "epoch {epoch:3}: {summary}, test accuracy {:.2}%",
            100.0 * accuracy
        );
    }
    println!("test accuracy: {:.2}%", 100.0 * accuracy);
    Ok(())
}

/// Random images and labels made on the device, one batch per step: the time of the
/// training steps alone (after a warm-up step), as images/s.
fn benchmark(
    cli: &Cli,
    net: &dyn Layer,
    opt: &mut dyn Optimizer,
    batch_size: usize,
    norm: &Normalize,
    dev: &Device,
    autocast: bool,
) -> Result<()> {
    let steps = cli.steps.unwrap_or(if dev.is_cuda() { 50 } else { 4 });
    println!("synthetic data (no --data): {steps} timed steps of {batch_size} images 3×32×32");
    let batch = |n: usize| -> Result<Vec<Tensor>> {
        let x = Tensor::rand(&[n, 3, 32, 32], DType::F32, dev)?;
        let y = Tensor::rand(&[n], DType::F32, dev)?
            .mul_scalar(10.0)?
            .to_dtype(DType::I64)?;
        Ok(vec![x, y])
    };
    let warm = batch(batch_size)?;
    step(net, opt, &warm[0], &warm[1], cli.label_smoothing, autocast)?
        .0
        .item::<f32>()?;
    if cli.profile {
        return profile::profile("train_resnet", || {
            let b = batch(batch_size)?;
            Ok(step(net, opt, &b[0], &b[1], cli.label_smoothing, autocast)?.0)
        });
    }
    let progress = bar(steps as u64, "benchmark".into());
    let mut meter = Meter::new(dev)?;
    for i in 0..steps {
        let b = batch(batch_size)?;
        let (loss, logits) = step(net, opt, &b[0], &b[1], cli.label_smoothing, autocast)?;
        meter.add(&loss, &logits, &b[1])?;
        if i % 10 == 0 {
            progress.set_message(meter.show()?); // reads the loss: a synchronization
        }
        progress.inc(1);
    }
    let summary = meter.show()?;
    progress.finish_and_clear();
    println!("train: {summary}");
    let images_per_s = meter.images as f64 / meter.started.elapsed().as_secs_f64();
    println!("{images_per_s:.1} images/s (training, {dev})");
    let test = (0..2).map(|_| batch(batch_size));
    let accuracy = evaluate(net, test, norm, dev, autocast)?;
    println!(
        "test accuracy: {:.2}% (random labels: about 10%)",
        100.0 * accuracy
    );
    Ok(())
}
