//! Trains a small CNN on the UCI handwritten digits (1,797 8×8 images, shipped in
//! `data/digits/`), or on MNIST with `--data DIR` (the four standard IDX files).
//!
//! ```sh
//! cargo run --release --example train_digits                 # digits, ~97-99% test accuracy
//! cargo run --release --example train_digits -- --data mnist/ --epochs 3
//! ```
//!
//! Runs on the GPU when one is usable, else on the CPU. The split is fixed: every
//! fifth digit (indices 0, 5, 10, ...) is a test image, the other 1,437 train.

mod model;

use indicatif::{ProgressBar, ProgressStyle};
use kiln::nn::Module;
use kiln::optim::{AdamW, Optimizer};
use kiln::{data, Device, Result};
use model::{evaluate, train_epoch, DigitsNet};

struct Args {
    data: Option<String>,
    epochs: usize,
    batch_size: usize,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        data: None,
        epochs: 15,
        batch_size: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => args.data = Some(value()?),
            "--epochs" => args.epochs = value()?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--batch-size" => {
                args.batch_size = value()?.parse().map_err(|e| format!("--batch-size: {e}"))?
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; use --data DIR, --epochs N, --batch-size N"
                ))
            }
        }
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    kiln::manual_seed(0);
    let dev = Device::cuda_if_available(0);
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
    let base_lr = 2e-3;
    let mut opt = AdamW::new(net.parameters(), base_lr)?.weight_decay(1e-4);
    let test_batches = test.batches(256, None, &dev)?;
    let started = std::time::Instant::now();
    for epoch in 1..=args.epochs {
        // Linear decay to zero over the run: the late epochs settle instead of bouncing.
        opt.set_lr(base_lr * (1.0 - (epoch - 1) as f64 / args.epochs as f64));
        let batches = train.batches(args.batch_size, Some(epoch as u64), &dev)?;
        let bar = ProgressBar::new(batches.len() as u64).with_style(
            ProgressStyle::with_template("epoch {prefix:>2} [{bar:30}] {pos}/{len} loss {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(epoch.to_string());
        let trained = train_epoch(&net, &mut opt, &batches, |loss| {
            bar.set_message(format!("{loss:.4}"));
            bar.inc(1);
        })?;
        bar.finish_and_clear();
        let tested = evaluate(&net, &test_batches)?;
        println!(
            "epoch {epoch:2}: train loss {:.4}, train accuracy {:.2}%, test accuracy {:.2}%",
            trained.loss,
            100.0 * trained.accuracy,
            100.0 * tested.accuracy
        );
    }
    println!("trained in {:.1} s", started.elapsed().as_secs_f64());

    let score = evaluate(&net, &test_batches)?;
    let path = std::env::temp_dir().join("kiln_train_digits.safetensors");
    net.save(&path)?;
    let reloaded = DigitsNet::new(&dev)?;
    reloaded.load(&path)?;
    let again = evaluate(&reloaded, &test_batches)?;
    println!(
        "checkpoint {}: reloaded model scores {:.2}%",
        path.display(),
        100.0 * again.accuracy
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
