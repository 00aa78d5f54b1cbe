//! Trains a small CNN on the UCI handwritten digits (1,797 8×8 images, shipped in
//! `data/digits/`), or on MNIST with `--data DIR` (the four standard IDX files).
//!
//! ```sh
//! cargo run --release --example train_digits                 # digits, ~97-99% test accuracy
//! cargo run --release --example train_digits -- --data mnist/ --epochs 3 --device cuda:0
//! cargo run --release --example train_digits -- --epochs 4 --checkpoint /tmp/digits.ckpt
//! cargo run --release --example train_digits -- --epochs 8 --resume /tmp/digits.ckpt
//! cargo run --release --example train_digits -- --help
//! ```
//!
//! The recipe: AdamW in two parameter groups (no weight decay on biases and BatchNorm
//! parameters), a linear warm-up then cosine annealing per step (`SequentialLr`),
//! gradients clipped to a norm of 5. After every epoch the model, the optimizer's
//! and the schedule's states, the random generator and the epoch go into one
//! safetensors checkpoint; `--resume PATH` continues from one (same `--epochs` and
//! `--batch-size`: the schedule depends on them). The split is fixed: every fifth
//! digit (indices 0, 5, 10, ...) is a test image, the other 1,437 train.

#[allow(dead_code)] // train_epoch (no clipping or schedule) serves tests/cuda.rs
mod model;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kiln::nn::Module;
use kiln::optim::lr_scheduler::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
use kiln::optim::Optimizer;
use kiln::{data, Device, Result, Tensor};
use model::{evaluate, optimizer, train_epoch_with, DigitsNet, StepOpts};
use std::path::{Path, PathBuf};

/// Train a small CNN on handwritten digits with kiln.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// A directory with the four MNIST IDX files, instead of the shipped digits.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Where to train: `cpu`, `cuda` or `cuda:N` (default: the first usable GPU,
    /// else the CPU).
    #[arg(long)]
    device: Option<String>,
    /// Number of passes over the training set.
    #[arg(long, default_value_t = 15)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// The peak learning rate (reached after the warm-up).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Seed of kiln's random generator (initialisation, dropout, shuffling).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Continue from a checkpoint written by a previous run.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Where to write the checkpoint after every epoch.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("kiln_train_digits.ckpt.safetensors"))]
    checkpoint: PathBuf,
}

/// The device asked for, or the reason it cannot be used (then the CPU is used).
fn pick_device(asked: Option<&str>) -> std::result::Result<Device, String> {
    let ordinal = match asked {
        None => {
            return Ok(match Device::cuda(0) {
                Ok(dev) => dev,
                Err(e) => {
                    println!("CUDA is not usable ({e}); running on the CPU");
                    Device::Cpu
                }
            })
        }
        Some("cpu") => return Ok(Device::Cpu),
        Some("cuda") => 0,
        Some(other) => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => n,
            _ => return Err(format!("--device {other}: expected cpu, cuda or cuda:N")),
        },
    };
    Ok(match Device::cuda(ordinal) {
        Ok(dev) => dev,
        Err(e) => {
            println!("--device cuda:{ordinal} asked for, but CUDA is not usable ({e}); running on the CPU");
            Device::Cpu
        }
    })
}

/// The learning-rate schedule: 5% of the steps of linear warm-up from lr/10, then
/// cosine annealing to 0 over the rest.
fn schedule(opt: &dyn Optimizer, total_steps: usize) -> Result<SequentialLr> {
    let warm_steps = (total_steps / 20).max(1);
    let warm = LinearLr::new(opt, 0.1, 1.0, warm_steps)?;
    let cos = CosineAnnealingLr::new(opt, total_steps.saturating_sub(warm_steps).max(1))?;
    SequentialLr::new(opt, vec![Box::new(warm), Box::new(cos)], &[warm_steps])
}

/// Everything a run needs to continue, in one file: `model.*`, `optim.*`, `sched.*`,
/// `rng`, `epoch` and the run's `steps` (total steps: the schedule depends on them).
fn save_checkpoint(
    path: &Path,
    net: &DigitsNet,
    opt: &dyn Optimizer,
    sched: &dyn LrScheduler,
    epoch: usize,
    steps: usize,
) -> Result<()> {
    let mut all: Vec<(String, Tensor)> = Vec::new();
    let parts = [
        ("model", net.state_dict()),
        ("optim", opt.state_dict()),
        ("sched", sched.state_dict()),
    ];
    for (prefix, state) in parts {
        all.extend(state.into_iter().map(|(k, t)| (format!("{prefix}.{k}"), t)));
    }
    all.push(("rng".into(), kiln::rng_state()));
    all.push(("epoch".into(), Tensor::scalar(epoch as i64, &Device::Cpu)?));
    all.push(("steps".into(), Tensor::scalar(steps as i64, &Device::Cpu)?));
    kiln::save_tensors(path, &all)
}

/// The entry `key` of a checkpoint.
fn entry(path: &Path, ckpt: &[(String, Tensor)], key: &str) -> Result<Tensor> {
    ckpt.iter()
        .find(|(k, _)| k == key)
        .map(|(_, t)| t.clone())
        .ok_or_else(|| kiln::Error::Checkpoint {
            path: path.display().to_string(),
            msg: format!("missing key `{key}`"),
        })
}

/// Loads a checkpoint's model, optimizer, schedule and generator states.
fn restore(
    ckpt: &[(String, Tensor)],
    net: &DigitsNet,
    opt: &mut dyn Optimizer,
    sched: &mut dyn LrScheduler,
) -> Result<()> {
    let part = |prefix: &str| -> Vec<(String, Tensor)> {
        ckpt.iter()
            .filter_map(|(k, t)| k.strip_prefix(prefix).map(|k| (k.to_owned(), t.clone())))
            .collect()
    };
    net.load_state_dict(&part("model."))?;
    opt.load_state_dict(&part("optim."))?;
    sched.load_state_dict(&part("sched."))?;
    let rng = ckpt
        .iter()
        .find(|(k, _)| k == "rng")
        .map(|(_, t)| t.clone());
    rng.map_or(Ok(()), |r| kiln::set_rng_state(&r))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dev = match pick_device(args.device.as_deref()) {
        Ok(dev) => dev,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    kiln::manual_seed(args.seed);
    let (train, test) = match &args.data {
        Some(dir) => data::load_mnist(dir)?,
        None => data::load_digits(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/data/digits/digits.csv.gz"
        ))?
        .split_every(5)?,
    };
    println!(
        "device: {dev}; {} training and {} test images",
        train.len(),
        test.len()
    );

    let net = DigitsNet::new(&dev)?;
    let mut opt = optimizer(&net, args.lr, 1e-4)?;
    let steps_per_epoch = train.len().div_ceil(args.batch_size.max(1));
    let total_steps = args.epochs * steps_per_epoch;
    let mut sched = schedule(&opt, total_steps)?;
    let mut first_epoch = 1;
    if let Some(path) = &args.resume {
        let ckpt = kiln::load_tensors(path, &dev)?;
        let done = entry(path, &ckpt, "epoch")?.item::<i64>()?.max(0) as usize;
        entry(path, &ckpt, "rng")?;
        let planned = entry(path, &ckpt, "steps")?.item::<i64>()?;
        // The schedule's state only loads into one built for as many steps; say why
        // in the run's own terms.
        if planned != total_steps as i64 {
            return Err(kiln::Error::Checkpoint {
                path: path.display().to_string(),
                msg: format!(
                    "its run planned {planned} steps, this one {total_steps}: resume with \
                     the same --epochs and --batch-size"
                ),
            });
        }
        restore(&ckpt, &net, &mut opt, &mut sched)?;
        first_epoch = done + 1;
        println!("resumed from {} after epoch {done}", path.display());
    }
    let test_batches = test.batches(256, None, &dev)?;
    let started = std::time::Instant::now();
    for epoch in first_epoch..=args.epochs {
        let batches = train.batches(args.batch_size, Some(epoch as u64), &dev)?;
        let bar = ProgressBar::new(batches.len() as u64).with_style(
            ProgressStyle::with_template("epoch {prefix:>2} [{bar:30}] {pos}/{len} loss {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        let step_opts = StepOpts {
            max_grad_norm: Some(5.0),
            scheduler: Some(&mut sched),
        };
        let trained = train_epoch_with(&net, &mut opt, step_opts, &batches, |loss| {
            bar.set_message(format!("{loss:.4}"));
            bar.inc(1);
        })?;
        bar.finish_and_clear();
        let tested = evaluate(&net, &test_batches)?;
        println!(
            "epoch {epoch:2}: train loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%, lr {:.2e}",
            trained.loss,
            100.0 * trained.accuracy,
            100.0 * tested.accuracy,
            opt.lr()
        );
        save_checkpoint(&args.checkpoint, &net, &opt, &sched, epoch, total_steps)?;
    }
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let score = evaluate(&net, &test_batches)?;
    let path = std::env::temp_dir().join("kiln_train_digits.safetensors");
    net.save(&path)?;
    let reloaded = DigitsNet::new(&dev)?;
    reloaded.load(&path)?;
    let again = evaluate(&reloaded, &test_batches)?;
    println!(
        "checkpoint {}: reloaded model scores {:.2}%; resume with --resume {}",
        path.display(),
        100.0 * again.accuracy,
        args.checkpoint.display()
    );
    if again.accuracy != score.accuracy {
        eprintln!(
            "the reloaded model scores differently: {} vs {}",
            again.accuracy, score.accuracy
        );
        std::process::exit(1);
    }
    println!("test accuracy: {:.2}%", 100.0 * score.accuracy);
    Ok(())
}
