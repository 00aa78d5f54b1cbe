//! Timings of kiln's CUDA kernels, for `scripts/gpu-check.sh`: prints one JSON object
//! `{"cuda/<case>": mean_ms, ...}` on stdout, the format of `scripts/gpu_torch_bench.py`
//! (same case names, shapes and dtypes), so the two join into one table.
//!
//! A plain timer (harness = false): warm up, then time batches of calls, each batch
//! ended by a device synchronize, and report the fastest batch's mean per call.
//! Without a GPU it prints `{}` and a note on stderr.

use kiln::nn::functional as F;
use kiln::{DType, Device, Result, Tensor};
use std::time::Instant;

type Step = Box<dyn FnMut() -> Result<Tensor>>;

fn randn(shape: &[usize], dtype: DType, d: &Device) -> Result<Tensor> {
    Tensor::randn(shape, DType::F32, d)?.to_dtype(dtype)
}

fn cases(d: &Device) -> Result<Vec<(&'static str, Step)>> {
    let (r, c) = (1024, 4096);
    let a = randn(&[r, c], DType::F32, d)?;
    let b = randn(&[r, c], DType::F32, d)?;
    let row = randn(&[c], DType::F32, d)?;
    let m1 = randn(&[1024, 1024], DType::F32, d)?;
    let m2 = randn(&[1024, 1024], DType::F32, d)?;
    let g1 = randn(&[4096, 4096], DType::F32, d)?;
    let g2 = randn(&[4096, 4096], DType::F32, d)?;
    let h1 = randn(&[4096, 4096], DType::F16, d)?;
    let h2 = randn(&[4096, 4096], DType::F16, d)?;
    let b1 = randn(&[8, 256, 256], DType::F32, d)?;
    let b2 = randn(&[8, 256, 256], DType::F32, d)?;
    let x = randn(&[256, 512], DType::F32, d)?;
    let w1 = randn(&[512, 1024], DType::F32, d)?.requires_grad();
    let w2 = randn(&[1024, 256], DType::F32, d)?.requires_grad();
    let (a2, a3, a4, a5, a6, a7, a8, a9) = (
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
        a.clone(),
    );
    Ok(vec![
        (
            "matmul_f32_1024x1024x1024",
            Box::new(move || m1.matmul(&m2)),
        ),
        (
            "matmul_f32_4096x4096x4096",
            Box::new(move || g1.matmul(&g2)),
        ),
        (
            "matmul_f16_4096x4096x4096",
            Box::new(move || h1.matmul(&h2)),
        ),
        ("bmm_f32_8x256x256x256", Box::new(move || b1.matmul(&b2))),
        ("add_f32_1024x4096", Box::new(move || a.add(&b))),
        (
            "add_bcast_row_f32_1024x4096",
            Box::new(move || a2.add(&row)),
        ),
        ("exp_f32_1024x4096", Box::new(move || a3.exp())),
        ("sum_all_f32_1024x4096", Box::new(move || a4.sum_all())),
        ("sum_dim1_f32_1024x4096", Box::new(move || a5.sum(1, false))),
        ("sum_dim0_f32_1024x4096", Box::new(move || a6.sum(0, false))),
        (
            "softmax_dim1_f32_1024x4096",
            Box::new(move || F::softmax(&a7, 1)),
        ),
        (
            "transpose_contiguous_f32_1024x4096",
            Box::new(move || a8.transpose(0, 1)?.contiguous()),
        ),
        (
            "to_f16_f32_1024x4096",
            Box::new(move || a9.to_dtype(DType::F16)),
        ),
        (
            "mlp_fwd_bwd_f32_256x512x1024x256",
            Box::new(move || {
                w1.zero_grad();
                w2.zero_grad();
                let loss = x.matmul(&w1)?.relu()?.matmul(&w2)?.sum_all()?;
                loss.backward()?;
                Ok(loss)
            }),
        ),
    ])
}

fn time(step: &mut Step) -> Result<f64> {
    for _ in 0..3 {
        step()?;
    }
    kiln::cuda::synchronize(0)?;
    // Calls per batch: enough for ~20 ms, at least 3.
    let t = Instant::now();
    step()?;
    kiln::cuda::synchronize(0)?;
    let once = t.elapsed().as_secs_f64();
    let calls = ((0.02 / once.max(1e-6)) as usize).clamp(3, 1000);
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..calls {
            step()?;
        }
        kiln::cuda::synchronize(0)?;
        best = best.min(t.elapsed().as_secs_f64() / calls as f64);
    }
    Ok(best * 1e3)
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let dev = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cuda_ops: no GPU, nothing to time: {e}");
            println!("{{}}");
            return;
        }
    };
    let mut rows = Vec::new();
    match cases(&dev) {
        Ok(all) => {
            for (name, mut step) in all {
                if filter.as_deref().is_some_and(|f| !name.contains(f)) {
                    continue;
                }
                match time(&mut step) {
                    Ok(ms) => {
                        eprintln!("cuda/{name}: {ms:.4} ms");
                        rows.push(format!("\"cuda/{name}\": {ms:.6}"));
                    }
                    Err(e) => eprintln!("cuda/{name} failed: {e}"),
                }
            }
        }
        Err(e) => eprintln!("cuda_ops: building inputs failed: {e}"),
    }
    println!("{{{}}}", rows.join(", "));
}
