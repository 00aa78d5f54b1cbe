//! The two questions PyTorch beginners ask, answered by running kiln.
//!
//! 1. `nn.Dropout` or `F.dropout`? Both work, but the functional form must be told the
//!    mode. In PyTorch `F.dropout(x, p)` defaults to `training=True`, so a model that
//!    calls it stays random after `model.eval()`. kiln's `F::dropout` has no default.
//! 2. Build a layer in `__init__` or in `forward`? In the constructor. A layer built in
//!    `forward` gets fresh random weights on every call and never learns; kiln's
//!    optimizer notices and says so.
//!
//! `cargo run --release --example nn_vs_functional` (`-- --help` lists the options)

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use kiln::data::{DataLoader, ImageDataset};
use kiln::nn::{self, functional as F, Conv2dOpts, Forward, Module};
use kiln::optim::{Optimizer, Sgd};
use kiln::{data, DType, Result, Tensor};

/// Dropout as module or function, and layers built in the constructor or in forward.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    device: common::DeviceArgs,
    /// Training epochs of the model with its layer in the constructor.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// SGD learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
}

/// Dropout as a module: it follows the model's `train()` / `eval()`.
#[derive(nn::Module)]
struct Model1 {
    dropout: nn::Dropout,
}
impl Forward for Model1 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.dropout.forward(x)
    }
}

// Model2, PyTorch's `F.dropout(x, 0.5)` with the mode left out, cannot be written:
// `F::dropout(x, 0.5)` does not compile, because `training` is a required argument.

/// Dropout as a function: the model passes its own mode.
#[derive(nn::Module, Default)]
struct Model3 {
    mode: nn::Mode,
}
impl Forward for Model3 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        F::dropout(x, 0.5, self.is_training())
    }
}

/// The share of elements that dropout zeroed.
fn zeroed(y: &Tensor) -> Result<f64> {
    let zeros = y.eq_scalar(0.0)?.to_dtype(DType::F32)?.mean_all()?;
    Ok(f64::from(zeros.item::<f32>()?))
}

fn show_dropout(name: &str, model: &(impl Module + Forward), x: &Tensor) -> Result<()> {
    let train = zeroed(&model.forward(x)?)?;
    model.eval();
    let eval = zeroed(&model.forward(x)?)?;
    model.train();
    println!(
        "{name}: zeroed {:.0}% in train mode, {:.0}% after eval()",
        100.0 * train,
        100.0 * eval
    );
    Ok(())
}

/// WRONG: the convolution is built inside `forward`, so every call has new weights.
#[derive(nn::Module)]
struct LayerInForward {
    head: nn::Linear,
}
impl Forward for LayerInForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let conv = nn::Conv2d::new(1, 4, 3, Conv2dOpts::new().padding(1), &x.device())?;
        self.head
            .forward(&F::relu(&conv.forward(x)?)?.flatten(1, 3)?)
    }
}

/// RIGHT: the convolution is built once, in the constructor.
#[derive(nn::Module)]
struct LayerInConstructor {
    conv: nn::Conv2d,
    head: nn::Linear,
}
impl Forward for LayerInConstructor {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.head
            .forward(&F::relu(&self.conv.forward(x)?)?.flatten(1, 3)?)
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dev = cli.device.setup();
    let x = Tensor::ones(&[4, 1000], DType::F32, &dev)?;
    show_dropout(
        "Model1 (nn::Dropout)         ",
        &Model1 {
            dropout: nn::Dropout::new(0.5)?,
        },
        &x,
    )?;
    show_dropout("Model3 (F::dropout with mode)", &Model3::default(), &x)?;

    let digits: ImageDataset = data::load_digits(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/digits/digits.csv.gz"
    ))?;
    let loader = DataLoader::new(&digits, cli.batch_size)
        .shuffle(true)
        .device(&dev);
    let first = loader.iter()?.next().expect("the digits are not empty")?;
    let (xb, yb) = (&first[0], &first[1]);

    println!("\nA layer built inside forward:");
    let wrong = LayerInForward {
        head: nn::Linear::new(4 * 8 * 8, 10, &dev)?,
    };
    let mut opt = Sgd::new(wrong.parameters(), cli.lr)?;
    opt.zero_grad();
    F::cross_entropy(&wrong.forward(xb)?, yb)?.backward()?;
    match opt.step() {
        Err(e) => println!("  step() refused: {e}"),
        Ok(()) => println!("  step() accepted it (unexpected)"),
    }

    println!("\nThe same model with the layer built in the constructor:");
    let right = LayerInConstructor {
        conv: nn::Conv2d::new(1, 4, 3, Conv2dOpts::new().padding(1), &dev)?,
        head: nn::Linear::new(4 * 8 * 8, 10, &dev)?,
    };
    let mut opt = Sgd::new(right.parameters(), cli.lr)?.momentum(0.9);
    for epoch in 1..=cli.epochs {
        let mut total = 0.0;
        for batch in loader.iter()? {
            let batch = batch?;
            opt.zero_grad();
            let loss = F::cross_entropy(&right.forward(&batch[0])?, &batch[1])?;
            loss.backward()?;
            opt.step()?;
            total += f64::from(loss.item::<f32>()?);
        }
        println!(
            "  epoch {epoch}: mean loss {:.4}",
            total / loader.len() as f64
        );
    }
    Ok(())
}
