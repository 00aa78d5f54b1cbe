//! Fits a line `y = w·x + b` to noisy points with autograd and plain gradient descent.
//!
//! `cargo run --release --example fit_line` — runs on the GPU when one is usable,
//! otherwise on the CPU (`-- --help` lists the options).

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use kiln::{DType, Result, Tensor};

/// Fits y = w·x + b to noisy points with autograd and gradient descent.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    device: common::DeviceArgs,
    /// Gradient-descent steps.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 0.1)]
    lr: f64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dev = cli.device.setup();

    // 256 points on y = 3x + 2 with a little noise.
    let x = Tensor::rand(&[256, 1], DType::F32, &dev)?
        .mul_scalar(4.0)?
        .sub_scalar(2.0)?;
    let noise = Tensor::randn(&[256, 1], DType::F32, &dev)?.mul_scalar(0.1)?;
    let y = x.mul_scalar(3.0)?.add_scalar(2.0)?.add(&noise)?;

    let w = Tensor::zeros(&[1, 1], DType::F32, &dev)?.requires_grad();
    let b = Tensor::zeros(&[1], DType::F32, &dev)?.requires_grad();
    let lr = cli.lr;
    for step in 0..=cli.steps {
        let pred = x.matmul(&w)?.add(&b)?;
        let loss = pred.sub(&y)?.powf(2.0)?.mean_all()?;
        w.zero_grad();
        b.zero_grad();
        loss.backward()?;
        // The update itself must not be recorded in the graph.
        let _guard = kiln::no_grad();
        for p in [&w, &b] {
            let g = p.grad().expect("backward reached every parameter");
            p.copy_(&p.sub(&g.mul_scalar(lr)?)?)?;
        }
        if step % 50 == 0 {
            println!("step {step:3}: loss {:.5}", loss.item::<f32>()?);
        }
    }
    let (w, b) = (w.item::<f32>()?, b.item::<f32>()?);
    println!("fitted y = {w:.3}·x + {b:.3} (true: y = 3·x + 2)");
    Ok(())
}
