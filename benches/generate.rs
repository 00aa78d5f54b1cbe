//! Decoding speed with and without the key/value cache, on the CPU: the time of one
//! new token at a context of 512 tokens, for a GPT-2-architecture model (4 layers,
//! width 256, 8 heads, vocabulary 8192; random weights).
//!
//! * `cpu/decode_cached_ctx512`: one `forward_with_cache` of the 512th token after 511
//!   cached ones (then the cache is cut back to 511, keeping its memory);
//! * `cpu/decode_recompute_ctx512`: one `forward` of all 512 tokens, the way to decode
//!   without a cache.
//!
//! Run: `cargo bench --bench generate` — tokens/s is 1000 / the mean ms.

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::models::gpt2::{Gpt2, Gpt2Config};
use kiln::nn::Forward;
use kiln::{DType, Device, Tensor};
use std::hint::black_box;
use std::time::Duration;

const CONTEXT: usize = 512;

fn bench_decode(c: &mut Criterion) {
    let dev = Device::Cpu;
    let config = Gpt2Config {
        vocab_size: 8192,
        n_positions: 1024,
        n_embd: 256,
        n_layer: 4,
        n_head: 8,
        n_inner: 1024,
        ..Gpt2Config::gpt2_small()
    };
    kiln::manual_seed(0);
    let model = Gpt2::new(config, DType::F32, &dev).expect("model");
    kiln::nn::Module::eval(&model);
    let _no_grad = kiln::no_grad();
    let ids: Vec<i64> = (0..CONTEXT as i64).map(|i| i * 7919 % 8192).collect();
    let all = Tensor::from_vec(ids, &[1, CONTEXT], &dev).expect("ids");
    let last = all.narrow(1, CONTEXT - 1, 1).expect("last");
    let mut cache = model.kv_cache(1, CONTEXT).expect("cache");
    model
        .forward_with_cache(&all.narrow(1, 0, CONTEXT - 1).expect("prefix"), &mut cache)
        .expect("prefill");

    let mut group = c.benchmark_group("cpu");
    group.bench_function("decode_cached_ctx512", |b| {
        b.iter(|| {
            let logits = model.forward_with_cache(&last, &mut cache).expect("step");
            cache.truncate(CONTEXT - 1).expect("truncate");
            black_box(logits)
        })
    });
    group.bench_function("decode_recompute_ctx512", |b| {
        b.iter(|| black_box(model.forward(&all).expect("forward")))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = bench_decode
}
criterion_main!(benches);
