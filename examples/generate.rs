//! Continues a prompt with a Hugging Face model folder: GPT-2 or a Llama-family model
//! (`config.json`, `model.safetensors` or its shards, `tokenizer.json`), loaded with
//! `from_pretrained` and run by `kiln::models::generate` with a key/value cache.
//!
//! ```sh
//! cargo run --release --example generate -- --model tests/data/hf/gpt2 --prompt "In the beginning"
//! cargo run --release --example generate -- --model ~/models/TinyLlama-1.1B-Chat-v1.0 \
//!     --prompt "The capital of France is" --dtype bf16 --temperature 0 --max-new-tokens 32
//! ```
//!
//! (The folder under tests/data/hf/gpt2 is a tiny GPT-2 with random weights: its text is
//! noise, but every step runs.)

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use kiln::models::gpt2::Gpt2;
use kiln::models::llama::Llama;
use kiln::models::{generate, CausalLm, GenerateOpts, Tokenizer};
use kiln::{DType, Result, Tensor};
use std::path::PathBuf;
use std::time::Instant;

/// Continues a prompt with a Hugging Face GPT-2 or Llama-family model folder.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The model folder (config.json, model.safetensors, tokenizer.json).
    #[arg(long)]
    model: PathBuf,
    /// The text to continue.
    #[arg(long)]
    prompt: String,
    /// Tokens to add.
    #[arg(long, default_value_t = 48)]
    max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Sample among the k most likely tokens.
    #[arg(long)]
    top_k: Option<usize>,
    /// Sample among the most likely tokens holding this much probability.
    #[arg(long, default_value_t = 0.95)]
    top_p: f64,
    /// The weights' dtype: f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    #[command(flatten)]
    common: common::DeviceArgs,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dev = args.common.setup();
    let dtype = match args.dtype.as_str() {
        "f32" => DType::F32,
        "bf16" => DType::BF16,
        "f16" => DType::F16,
        other => {
            return Err(kiln::Error::InvalidArgument {
                name: "--dtype",
                msg: format!("expected f32, bf16 or f16, got {other}"),
            })
        }
    };
    let tokenizer = Tokenizer::from_file(args.model.join("tokenizer.json"))?;
    let config = std::fs::read_to_string(args.model.join("config.json")).map_err(|source| {
        kiln::Error::Io {
            path: args.model.join("config.json").display().to_string(),
            source,
        }
    })?;
    let started = Instant::now();
    let (model, eos): (Box<dyn CausalLm>, Vec<u32>) = if config.contains("\"gpt2\"") {
        let m = Gpt2::from_pretrained(&args.model, dtype, &dev)?;
        let eos = m.eos_token_ids()?;
        (Box::new(m), eos)
    } else {
        let m = Llama::from_pretrained(&args.model, dtype, &dev)?;
        let eos = m.eos_token_ids()?;
        (Box::new(m), eos)
    };
    println!(
        "loaded {} in {:.1} s",
        args.model.display(),
        started.elapsed().as_secs_f64()
    );

    let ids: Vec<i64> = tokenizer
        .encode(&args.prompt)?
        .into_iter()
        .map(i64::from)
        .collect();
    let prompt = Tensor::from_vec(ids.clone(), &[1, ids.len()], &dev)?;
    let mut opts = GenerateOpts::new()
        .max_new_tokens(args.max_new_tokens)
        .temperature(args.temperature)
        .top_p(args.top_p)
        .seed(args.common.seed)
        .stop_tokens(&eos);
    if let Some(k) = args.top_k {
        opts = opts.top_k(k);
    }
    let started = Instant::now();
    let out = generate(model.as_ref(), &prompt, opts)?;
    let secs = started.elapsed().as_secs_f64();
    let out: Vec<u32> = out.to_vec::<i64>()?.into_iter().map(|i| i as u32).collect();
    let new = out.len() - ids.len();
    println!("{}", tokenizer.decode(&out)?);
    println!(
        "({new} new tokens in {secs:.2} s: {:.1} tokens/s)",
        new as f64 / secs
    );
    Ok(())
}
