//! Trains a character-level GPT (`kiln::models::gpt`) on the King James Version's
//! first five books (`data/kjv/pentateuch.txt`, public domain; see data/kjv/README.md),
//! then prints the validation loss and a sample of generated text.
//!
//! AdamW with two parameter groups (weight decay on the matrices of the linear maps;
//! none on biases, norms and embeddings), linear warm-up then cosine decay,
//! gradient clipping at norm 1, and BF16 autocast on CUDA. `--profile` profiles three
//! steps after a warm-up step instead (`kiln::profiler`): it prints the table of the ops
//! and writes a Chrome trace.
//!
//! ```sh
//! cargo run --release --example train_gpt                          # CPU, the defaults
//! cargo run --release --example train_gpt -- --device cuda --steps 3000 --batch-size 64
//! cargo run --release --example train_gpt -- --help
//! ```

#[path = "common/profile.rs"]
mod profile;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kiln::models::gpt::{Gpt, GptConfig};
use kiln::nn::{functional as F, Forward, Module};
use kiln::optim::lr_scheduler::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
use kiln::optim::{AdamW, Optimizer, ParamGroup};
use kiln::{DType, Device, Result, Tensor};
use std::time::Instant;

/// Trains a character-level GPT on the KJV Pentateuch.
#[derive(Parser, Debug)]
#[command(
    version,
    about = "Trains a character-level GPT on the KJV Pentateuch (data/kjv/), then prints the validation loss and a sample"
)]
struct Args {
    /// Where to train: `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Optimizer steps.
    #[arg(long, default_value_t = 600)]
    steps: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Seed of the weights, the batches and the sample.
    #[arg(long, default_value_t = 1337)]
    seed: u64,
    /// Context length (characters).
    #[arg(long, default_value_t = 64)]
    block_size: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    n_layer: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    n_head: usize,
    /// Model width.
    #[arg(long, default_value_t = 96)]
    n_embd: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    /// Characters to generate after training.
    #[arg(long, default_value_t = 300)]
    sample_len: usize,
    /// Profile a few training steps after a warm-up step, print the ops' table and
    /// write a Chrome trace, then exit.
    #[arg(long)]
    profile: bool,
}

/// The text as token ids, and the characters they stand for.
struct Corpus {
    chars: Vec<char>,
    train: Vec<i64>,
    val: Vec<i64>,
}

fn load_corpus() -> std::io::Result<Corpus> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/kjv/pentateuch.txt");
    let text = std::fs::read_to_string(path)?;
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let ids: Vec<i64> = text
        .chars()
        .map(|c| chars.binary_search(&c).map_or(0, |i| i as i64))
        .collect();
    let split = ids.len() * 9 / 10;
    Ok(Corpus {
        chars,
        val: ids[split..].to_vec(),
        train: ids[..split].to_vec(),
    })
}

/// A small deterministic generator for batch offsets and sampling (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `batch` random windows of `block + 1` ids: inputs and next-character targets.
fn batch(
    data: &[i64],
    batch: usize,
    block: usize,
    rng: &mut Rng,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let (mut x, mut y) = (
        Vec::with_capacity(batch * block),
        Vec::with_capacity(batch * block),
    );
    for _ in 0..batch {
        let at = rng.below(data.len() - block - 1);
        x.extend_from_slice(&data[at..at + block]);
        y.extend_from_slice(&data[at + 1..at + block + 1]);
    }
    Ok((
        Tensor::from_vec(x, &[batch, block], dev)?,
        Tensor::from_vec(y, &[batch * block], dev)?,
    ))
}

/// The mean cross-entropy (nats per character) of `model` on `batches` batches.
fn loss_on(model: &Gpt, ids: (&Tensor, &Tensor), autocast: bool) -> Result<Tensor> {
    let logits = {
        let _ac = autocast.then(|| kiln::autocast(DType::BF16)).transpose()?;
        model.forward(ids.0)?
    };
    let v = logits.shape()[2];
    F::cross_entropy(
        &logits.reshape(&[usize::MAX, v])?.to_dtype(DType::F32)?,
        ids.1,
    )
}

fn parse_device(s: &str) -> Result<Device> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Device::cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => Device::cuda(n),
            None => Err(kiln::Error::InvalidArgument {
                name: "--device",
                msg: format!("expected cpu, cuda or cuda:N, got {other}"),
            }),
        },
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dev = parse_device(&args.device)?;
    let corpus = load_corpus().map_err(|e| kiln::Error::Io {
        path: "data/kjv/pentateuch.txt".into(),
        source: e,
    })?;
    kiln::manual_seed(args.seed);
    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let config = GptConfig {
        vocab_size: corpus.chars.len(),
        block_size: args.block_size,
        n_layer: args.n_layer,
        n_head: args.n_head,
        n_embd: args.n_embd,
        tie_weights: false,
    };
    let model = Gpt::new(config, &dev)?;
    let n_params: usize = model.parameters().iter().map(|p| p.numel()).sum();
    println!(
        "{} characters ({} distinct), {} parameters, on {dev}",
        corpus.train.len() + corpus.val.len(),
        corpus.chars.len(),
        n_params
    );

    // Weight decay on the matrices of linear maps only.
    let (decay, no_decay): (Vec<_>, Vec<_>) =
        model.named_parameters().into_iter().partition(|(name, p)| {
            p.rank() == 2 && !name.starts_with("wte") && !name.starts_with("wpe")
        });
    let mut opt = AdamW::new(decay, args.lr)?.weight_decay(0.1);
    opt.add_param_group(ParamGroup::new(no_decay).weight_decay(0.0))?;
    let warmup = (args.steps / 10).max(1);
    let mut sched = SequentialLr::new(
        &opt,
        vec![
            Box::new(LinearLr::new(&opt, 0.01, 1.0, warmup)?),
            Box::new(
                CosineAnnealingLr::new(&opt, args.steps.saturating_sub(warmup).max(1))?
                    .eta_min(args.lr * 0.1),
            ),
        ],
        &[warmup],
    )?;
    let params = model.parameters();
    let autocast = dev.is_cuda();

    let bar = ProgressBar::new(args.steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} [{elapsed_precise}] {msg}")
            .expect("a valid template"),
    );
    let mut train_step = || -> Result<Tensor> {
        let (x, y) = batch(
            &corpus.train,
            args.batch_size,
            args.block_size,
            &mut rng,
            &dev,
        )?;
        let loss = loss_on(&model, (&x, &y), autocast)?;
        opt.zero_grad();
        loss.backward()?;
        kiln::nn::utils::clip_grad_norm(&params, 1.0)?;
        opt.step()?;
        sched.step(&mut opt)?;
        Ok(loss)
    };
    if args.profile {
        train_step()?.item::<f32>()?; // the warm-up step
        return profile::profile("train_gpt", train_step);
    }
    let start = Instant::now();
    for step in 0..args.steps {
        let loss = train_step()?;
        if step % 20 == 0 || step + 1 == args.steps {
            bar.set_message(format!("loss {:.3}", loss.item::<f32>()?));
        }
        bar.inc(1);
    }
    bar.finish();
    let train_secs = start.elapsed().as_secs_f64();

    model.eval();
    let val_loss = {
        let _no_grad = kiln::no_grad();
        let mut total = 0.0;
        let rounds = 20;
        for _ in 0..rounds {
            let (x, y) = batch(
                &corpus.val,
                args.batch_size,
                args.block_size,
                &mut rng,
                &dev,
            )?;
            total += f64::from(loss_on(&model, (&x, &y), autocast)?.item::<f32>()?);
        }
        total / rounds as f64
    };
    println!(
        "validation loss {val_loss:.3} nats/char after {} steps in {train_secs:.1} s",
        args.steps
    );

    // Generation: the last `block_size` characters in, one sampled character out.
    let _no_grad = kiln::no_grad();
    let prompt = "And God said";
    let mut ids: Vec<i64> = prompt
        .chars()
        .map(|c| corpus.chars.binary_search(&c).map_or(0, |i| i as i64))
        .collect();
    for _ in 0..args.sample_len {
        let ctx = &ids[ids.len().saturating_sub(args.block_size)..];
        let x = Tensor::from_vec(ctx.to_vec(), &[1, ctx.len()], &dev)?;
        let logits = model.forward(&x)?.narrow(1, ctx.len() - 1, 1)?;
        let probs: Vec<f32> =
            F::softmax(&logits.to_dtype(DType::F32)?.div_scalar(0.8)?, 2)?.to_vec()?;
        let mut r = rng.uniform() as f32;
        let next = probs
            .iter()
            .position(|&p| {
                r -= p;
                r <= 0.0
            })
            .unwrap_or(probs.len() - 1);
        ids.push(next as i64);
    }
    let text: String = ids.iter().map(|&i| corpus.chars[i as usize]).collect();
    println!("---\n{text}\n---");
    Ok(())
}
