//! Fits a line `y = w·x + b` to noisy points with autograd and plain gradient descent.
//!
//! `cargo run --release --example fit_line` — runs on the GPU when one is usable,
//! otherwise on the CPU.

use kiln::{DType, Device, Result, Tensor};

fn main() -> Result<()> {
    kiln::manual_seed(0);
    let dev = Device::cuda_if_available(0);
    println!("device: {dev}");

    // 256 points on y = 3x + 2 with a little noise.
    let x = Tensor::rand(&[256, 1], DType::F32, &dev)?
        .mul_scalar(4.0)?
        .sub_scalar(2.0)?;
    let noise = Tensor::randn(&[256, 1], DType::F32, &dev)?.mul_scalar(0.1)?;
    let y = x.mul_scalar(3.0)?.add_scalar(2.0)?.add(&noise)?;

    let w = Tensor::zeros(&[1, 1], DType::F32, &dev)?.requires_grad();
    let b = Tensor::zeros(&[1], DType::F32, &dev)?.requires_grad();
    let lr = 0.1;
    for step in 0..=200 {
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
