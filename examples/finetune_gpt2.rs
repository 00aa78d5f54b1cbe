//! Fine-tunes a GPT-2-architecture model from a Hugging Face folder on the King James
//! Version's first five books (`data/kjv/pentateuch.txt`), then saves it in the hub's
//! format (`config.json`, `model.safetensors`, and the folder's `tokenizer.json`), which
//! `transformers`' `GPT2LMHeadModel.from_pretrained` and kiln's `Gpt2::from_pretrained`
//! load.
//!
//! AdamW (weight decay on the matrices only), linear warm-up then cosine decay,
//! gradient clipping at norm 1, BF16 autocast on CUDA; the validation loss before and
//! after, and a sample.
//!
//! ```sh
//! cargo run --release --example finetune_gpt2 -- --model tests/data/hf/gpt2 --out /tmp/gpt2-kjv
//! cargo run --release --example finetune_gpt2 -- --model ~/models/gpt2 --out gpt2-kjv \
//!     --device cuda --steps 1000 --batch-size 16 --block-size 256 --lr 1e-4
//! ```

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use kiln::models::gpt2::Gpt2;
use kiln::models::{generate, GenerateOpts, Tokenizer};
use kiln::nn::{functional as F, Forward, Module};
use kiln::optim::lr_scheduler::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
use kiln::optim::{AdamW, Optimizer, ParamGroup};
use kiln::{DType, Device, Error, Result, Tensor};
use std::path::PathBuf;
use std::time::Instant;

/// Fine-tunes a GPT-2 model folder on the KJV Pentateuch and saves it in the hub's format.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The model folder to start from (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// Where to save the fine-tuned model.
    #[arg(long)]
    out: PathBuf,
    /// Optimizer steps.
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Sequences per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Tokens per sequence (at most the model's n_positions).
    #[arg(long, default_value_t = 64)]
    block_size: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 3e-4)]
    lr: f64,
    #[command(flatten)]
    common: common::DeviceArgs,
}

/// `n` random windows of `block + 1` tokens of `data` (xorshift on `state`): inputs and
/// next-token targets.
fn batch(
    data: &[i64],
    n: usize,
    block: usize,
    state: &mut u64,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let at = (*state % (data.len() - block - 1) as u64) as usize;
        x.extend_from_slice(&data[at..at + block]);
        y.extend_from_slice(&data[at + 1..at + block + 1]);
    }
    Ok((
        Tensor::from_vec(x, &[n, block], dev)?,
        Tensor::from_vec(y, &[n * block], dev)?,
    ))
}

/// The mean next-token cross-entropy of `model` on a batch, in BF16 autocast on CUDA.
fn loss(model: &Gpt2, (x, y): (&Tensor, &Tensor)) -> Result<Tensor> {
    let logits = {
        let _ac = x
            .device()
            .is_cuda()
            .then(|| kiln::autocast(DType::BF16))
            .transpose()?;
        model.forward(x)?
    };
    let v = logits.shape()[2];
    F::cross_entropy(&logits.reshape(&[usize::MAX, v])?.to_dtype(DType::F32)?, y)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dev = args.common.setup();
    let model = Gpt2::from_pretrained(&args.model, DType::F32, &dev)?;
    if args.block_size > model.config().n_positions {
        return Err(Error::InvalidArgument {
            name: "--block-size",
            msg: format!(
                "exceeds the model's n_positions {}",
                model.config().n_positions
            ),
        });
    }
    let tokenizer_path = args.model.join("tokenizer.json");
    let tokenizer = Tokenizer::from_file(&tokenizer_path)?;
    let text_path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/kjv/pentateuch.txt");
    let text = std::fs::read_to_string(text_path).map_err(|source| Error::Io {
        path: text_path.into(),
        source,
    })?;
    let ids: Vec<i64> = tokenizer
        .encode(&text)?
        .into_iter()
        .map(i64::from)
        .collect();
    let split = ids.len() * 9 / 10;
    let (train, val) = (&ids[..split], &ids[split..]);
    println!(
        "{} tokens of KJV text, {} parameters",
        ids.len(),
        model.parameters().iter().map(|p| p.numel()).sum::<usize>()
    );

    let mut state = args.common.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let val_batch = batch(val, args.batch_size, args.block_size, &mut state, &dev)?;
    let val_loss = |m: &Gpt2| -> Result<f32> {
        let _no_grad = kiln::no_grad();
        m.eval();
        let l = loss(m, (&val_batch.0, &val_batch.1))?.item::<f32>();
        m.train();
        l
    };
    println!("validation loss before: {:.4}", val_loss(&model)?);

    let (decay, no_decay): (Vec<_>, Vec<_>) = model
        .named_parameters()
        .into_iter()
        .partition(|(name, p)| p.rank() == 2 && !name.contains(".wte.") && !name.contains(".wpe."));
    let mut opt = AdamW::new(decay, args.lr)?.weight_decay(0.1);
    opt.add_param_group(ParamGroup::new(no_decay).weight_decay(0.0))?;
    let warmup = (args.steps / 10).max(1);
    let cosine = CosineAnnealingLr::new(&opt, args.steps.saturating_sub(warmup).max(1))?
        .eta_min(args.lr * 0.1);
    let mut sched = SequentialLr::new(
        &opt,
        vec![
            Box::new(LinearLr::new(&opt, 0.01, 1.0, warmup)?),
            Box::new(cosine),
        ],
        &[warmup],
    )?;
    model.train();
    let started = Instant::now();
    for step in 1..=args.steps {
        let (x, y) = batch(train, args.batch_size, args.block_size, &mut state, &dev)?;
        opt.zero_grad();
        let l = loss(&model, (&x, &y))?;
        l.backward()?;
        kiln::nn::utils::clip_grad_norm(&model.parameters(), 1.0)?;
        opt.step()?;
        sched.step(&mut opt)?;
        if step % 20 == 0 || step == args.steps {
            let tokens = step * args.batch_size * args.block_size;
            println!(
                "step {step:>5}  loss {:.4}  {:.0} tokens/s",
                l.item::<f32>()?,
                tokens as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    println!("validation loss after: {:.4}", val_loss(&model)?);

    model.save_pretrained(&args.out)?;
    std::fs::copy(&tokenizer_path, args.out.join("tokenizer.json")).map_err(|source| {
        Error::Io {
            path: args.out.join("tokenizer.json").display().to_string(),
            source,
        }
    })?;
    println!(
        "saved to {} (config.json, model.safetensors, tokenizer.json)",
        args.out.display()
    );

    model.eval();
    let prompt_ids: Vec<i64> = tokenizer
        .encode("And the LORD said")?
        .into_iter()
        .map(i64::from)
        .collect();
    let prompt = Tensor::from_vec(prompt_ids.clone(), &[1, prompt_ids.len()], &dev)?;
    let max_new = (model.config().n_positions - prompt_ids.len()).min(40);
    let out = generate(
        &model,
        &prompt,
        GenerateOpts::new()
            .max_new_tokens(max_new)
            .temperature(0.8)
            .top_k(40)
            .seed(args.common.seed),
    )?;
    let out: Vec<u32> = out.to_vec::<i64>()?.into_iter().map(|i| i as u32).collect();
    println!("sample: {}", tokenizer.decode(&out)?);
    Ok(())
}
