//! Criterion benchmarks of kiln's tensor ops, one row per case in [`CASES`].
//!
//! Benchmark ids are `<device>/<case>` (for example `cpu/matmul_f32_1024x1024x1024`);
//! `scripts/torch_bench.py` times the same cases in PyTorch under the same ids, and
//! `scripts/compare_torch.sh` joins the two into one table. To add a row, add a case
//! here and one with the same name to the registry in `scripts/torch_bench.py`.
//!
//! Run: `cargo bench --bench tensor_ops` (an id filter may follow `--`).

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::models::gpt::{Gpt, GptConfig};
use kiln::nn::{
    self, functional as F, Conv1dOpts, Conv2dOpts, Conv3dOpts, ConvTranspose2dOpts, Forward, Module,
};
use kiln::optim::{AdamW, Optimizer, ParamGroup};
use kiln::{DType, Device, Result, Tensor};
use std::hint::black_box;
use std::time::Duration;

/// One timed step: runs the op once and returns a tensor to keep alive past timing.
type Step = Box<dyn FnMut() -> Result<Tensor>>;

/// A benchmark case: its name (shared with the PyTorch script) and a builder that
/// makes the inputs on a device and returns the step to time.
struct Case {
    name: &'static str,
    build: fn(&Device) -> Result<Step>,
}

/// Elementwise and reduction shape: 1024 x 4096 = 4M f32 elements (16 MiB).
const ROWS: usize = 1024;
const COLS: usize = 4096;

fn randn(shape: &[usize], device: &Device) -> Result<Tensor> {
    Tensor::randn(shape, DType::F32, device)
}

/// Every case, in table order. Names must match `scripts/torch_bench.py`.
const CASES: &[Case] = &[
    Case {
        name: "matmul_f32_1024x1024x1024",
        build: |d| {
            let (a, b) = (randn(&[1024, 1024], d)?, randn(&[1024, 1024], d)?);
            Ok(Box::new(move || a.matmul(&b)))
        },
    },
    Case {
        name: "bmm_f32_8x256x256x256",
        build: |d| {
            let (a, b) = (randn(&[8, 256, 256], d)?, randn(&[8, 256, 256], d)?);
            Ok(Box::new(move || a.matmul(&b)))
        },
    },
    Case {
        name: "add_f32_1024x4096",
        build: |d| {
            let (a, b) = (randn(&[ROWS, COLS], d)?, randn(&[ROWS, COLS], d)?);
            Ok(Box::new(move || a.add(&b)))
        },
    },
    Case {
        name: "add_bcast_row_f32_1024x4096",
        build: |d| {
            let (a, b) = (randn(&[ROWS, COLS], d)?, randn(&[COLS], d)?);
            Ok(Box::new(move || a.add(&b)))
        },
    },
    Case {
        name: "mul_f32_1024x4096",
        build: |d| {
            let (a, b) = (randn(&[ROWS, COLS], d)?, randn(&[ROWS, COLS], d)?);
            Ok(Box::new(move || a.mul(&b)))
        },
    },
    Case {
        name: "relu_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.relu()))
        },
    },
    Case {
        name: "exp_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.exp()))
        },
    },
    Case {
        name: "sum_all_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.sum_all()))
        },
    },
    Case {
        name: "sum_dim1_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.sum(1, false)))
        },
    },
    Case {
        // A two-layer MLP step without biases: loss = sum(relu(x·w1)·w2), then
        // backward into w1 and w2 (grads cleared each step, like set_to_none).
        name: "mlp_fwd_bwd_f32_256x512x1024x256",
        build: |d| {
            let x = randn(&[256, 512], d)?;
            let w1 = randn(&[512, 1024], d)?.requires_grad();
            let w2 = randn(&[1024, 256], d)?.requires_grad();
            Ok(Box::new(move || {
                w1.zero_grad();
                w2.zero_grad();
                let loss = x.matmul(&w1)?.relu()?.matmul(&w2)?.sum_all()?;
                loss.backward()?;
                Ok(loss)
            }))
        },
    },
    // fwd+bwd of the seed's three layers, each as a module and as a function with the
    // same weights: the two forms must cost the same (they run the same code).
    Case {
        name: "conv2d_module_fwd_bwd_f32_32x64x32x32_k3",
        build: |d| {
            let conv = nn::Conv2d::new(64, 64, 3, Conv2dOpts::new().padding(1), d)?;
            let x = randn(&[32, 64, 32, 32], d)?.requires_grad();
            Ok(fwd_bwd(
                x,
                conv.parameters()
                    .into_iter()
                    .map(|p| p.tensor().clone())
                    .collect(),
                move |x| conv.forward(x),
            ))
        },
    },
    Case {
        name: "conv2d_functional_fwd_bwd_f32_32x64x32x32_k3",
        build: |d| {
            let (w, b) = (
                randn(&[64, 64, 3, 3], d)?.requires_grad(),
                randn(&[64], d)?.requires_grad(),
            );
            let x = randn(&[32, 64, 32, 32], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![w.clone(), b.clone()], move |x| {
                F::conv2d(x, &w, Some(&b), Conv2dOpts::new().padding(1))
            }))
        },
    },
    // The other convolutions at sizes of the models that use them: a 1-d audio
    // front-end (Whisper's 3-tap conv), a video net's 3x3x3, a U-Net's 2x2 stride-2
    // up-convolution.
    Case {
        name: "conv1d_functional_fwd_bwd_f32_16x128x512_k3",
        build: |d| {
            let (w, b) = (
                randn(&[128, 128, 3], d)?.requires_grad(),
                randn(&[128], d)?.requires_grad(),
            );
            let x = randn(&[16, 128, 512], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![w.clone(), b.clone()], move |x| {
                F::conv1d(x, &w, Some(&b), Conv1dOpts::new().padding(1))
            }))
        },
    },
    Case {
        name: "conv3d_functional_fwd_bwd_f32_4x32x8x28x28_k3",
        build: |d| {
            let (w, b) = (
                randn(&[32, 32, 3, 3, 3], d)?.requires_grad(),
                randn(&[32], d)?.requires_grad(),
            );
            let x = randn(&[4, 32, 8, 28, 28], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![w.clone(), b.clone()], move |x| {
                F::conv3d(x, &w, Some(&b), Conv3dOpts::new().padding(1))
            }))
        },
    },
    Case {
        name: "conv_transpose2d_functional_fwd_bwd_f32_16x64x32x32_k2s2",
        build: |d| {
            let (w, b) = (
                randn(&[64, 32, 2, 2], d)?.requires_grad(),
                randn(&[32], d)?.requires_grad(),
            );
            let x = randn(&[16, 64, 32, 32], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![w.clone(), b.clone()], move |x| {
                F::conv_transpose2d(x, &w, Some(&b), ConvTranspose2dOpts::new().stride(2))
            }))
        },
    },
    Case {
        name: "linear_module_fwd_bwd_f32_1024x1024x1024",
        build: |d| {
            let fc = nn::Linear::new(1024, 1024, d)?;
            let x = randn(&[1024, 1024], d)?.requires_grad();
            Ok(fwd_bwd(
                x,
                fc.parameters()
                    .into_iter()
                    .map(|p| p.tensor().clone())
                    .collect(),
                move |x| fc.forward(x),
            ))
        },
    },
    Case {
        name: "linear_functional_fwd_bwd_f32_1024x1024x1024",
        build: |d| {
            let (w, b) = (
                randn(&[1024, 1024], d)?.requires_grad(),
                randn(&[1024], d)?.requires_grad(),
            );
            let x = randn(&[1024, 1024], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![w.clone(), b.clone()], move |x| {
                F::linear(x, &w, Some(&b))
            }))
        },
    },
    Case {
        name: "dropout_module_fwd_bwd_f32_16M",
        build: |d| {
            let drop = nn::Dropout::new(0.5)?;
            let x = randn(&[16 << 20], d)?.requires_grad();
            Ok(fwd_bwd(x, Vec::new(), move |x| drop.forward(x)))
        },
    },
    Case {
        name: "dropout_functional_fwd_bwd_f32_16M",
        build: |d| {
            let x = randn(&[16 << 20], d)?.requires_grad();
            Ok(fwd_bwd(x, Vec::new(), |x| F::dropout(x, 0.5, true)))
        },
    },
    // Transformer rows: causal attention at GPT-2 small's head shape (12 heads of 64,
    // context 1024) and at examples/train_gpt.rs's (batch 32, 4 heads of 24, context
    // 64); LayerNorm and GELU at the example's and GPT-2's widths; and one whole
    // training step of the example.
    Case {
        name: "sdpa_causal_fwd_bwd_f32_1x12x1024x64",
        build: |d| sdpa_step([1, 12, 1024, 64], d),
    },
    Case {
        name: "sdpa_causal_fwd_bwd_f32_32x4x64x24",
        build: |d| sdpa_step([32, 4, 64, 24], d),
    },
    Case {
        name: "layer_norm_fwd_bwd_f32_2048x96",
        build: |d| layer_norm_step(2048, 96, d),
    },
    Case {
        name: "layer_norm_fwd_bwd_f32_4096x768",
        build: |d| layer_norm_step(4096, 768, d),
    },
    Case {
        name: "gelu_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || F::gelu(&a)))
        },
    },
    Case {
        name: "gelu_fwd_bwd_f32_2048x384",
        build: |d| {
            Ok(fwd_bwd(
                randn(&[2048, 384], d)?.requires_grad(),
                Vec::new(),
                F::gelu,
            ))
        },
    },
    Case {
        name: "train_gpt_step_f32_2x96x4_ctx64_b32",
        build: train_gpt_step,
    },
    Case {
        name: "lstm_fwd_bwd_f32_L32xN32x128_h256",
        build: |d| {
            let lstm = nn::LSTM::new(128, 256, nn::RnnOpts::new(), d)?;
            let x = randn(&[32, 32, 128], d)?.requires_grad();
            let params = lstm
                .parameters()
                .into_iter()
                .map(|p| p.tensor().clone())
                .collect();
            Ok(fwd_bwd(x, params, move |x| lstm.forward(x)))
        },
    },
    Case {
        name: "gpt2_small_forward_f32_1x64",
        build: gpt2_small_forward,
    },
    Case {
        name: "sort_dim1_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || Ok(a.sort(1, false)?.0)))
        },
    },
    Case {
        name: "topk_k16_dim1_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || Ok(a.topk(16, 1, true, true)?.0)))
        },
    },
    Case {
        name: "max_pool2d_k3s2_ceil_fwd_bwd_f32_32x64x56x56",
        build: |d| {
            let x = randn(&[32, 64, 56, 56], d)?.requires_grad();
            let opts = F::Pool2dOpts::new(3).stride(2).ceil_mode(true);
            Ok(fwd_bwd(x, vec![], move |x| F::max_pool2d_with(x, opts)))
        },
    },
    Case {
        name: "interpolate_bilinear_x2_fwd_bwd_f32_8x32x64x64",
        build: |d| {
            let x = randn(&[8, 32, 64, 64], d)?.requires_grad();
            let opts = F::Interp::scale(2.0).mode(F::InterpMode::Bilinear);
            Ok(fwd_bwd(x, vec![], move |x| F::interpolate(x, opts.clone())))
        },
    },
    Case {
        name: "pixel_shuffle_r2_fwd_bwd_f32_16x64x64x64",
        build: |d| {
            let x = randn(&[16, 64, 64, 64], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![], |x| F::pixel_shuffle(x, 2)))
        },
    },
    Case {
        name: "hardswish_fwd_bwd_f32_1024x4096",
        build: |d| {
            let x = randn(&[ROWS, COLS], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![], F::hardswish))
        },
    },
    Case {
        name: "erf_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.erf()))
        },
    },
    Case {
        name: "cumsum_dim1_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.cumsum(1)))
        },
    },
    Case {
        name: "logsumexp_dim1_fwd_bwd_f32_1024x4096",
        build: |d| {
            let x = randn(&[ROWS, COLS], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![], |x| x.logsumexp(&[1], false)))
        },
    },
    Case {
        name: "std_dim1_f32_1024x4096",
        build: |d| {
            let a = randn(&[ROWS, COLS], d)?;
            Ok(Box::new(move || a.std(1, true, false)))
        },
    },
    Case {
        name: "index_rows_fwd_bwd_f32_65536x64_n65536",
        build: |d| {
            let x = randn(&[INDEX_ROWS, 64], d)?.requires_grad();
            let rows = spread_rows(INDEX_ROWS, d)?;
            Ok(fwd_bwd(x, vec![], move |x| x.index(&[Some(&rows)])))
        },
    },
    Case {
        name: "index_put_accumulate_f32_65536x64_n262144",
        build: |d| {
            let x = randn(&[INDEX_ROWS, 64], d)?;
            let rows = spread_rows(4 * INDEX_ROWS, d)?;
            let v = randn(&[4 * INDEX_ROWS, 64], d)?;
            Ok(Box::new(move || x.index_put(&[Some(&rows)], &v, true)))
        },
    },
    Case {
        name: "einsum_bij_bjk_f32_8x256x256x256",
        build: |d| {
            let (a, b) = (randn(&[8, 256, 256], d)?, randn(&[8, 256, 256], d)?);
            Ok(Box::new(move || kiln::einsum("bij,bjk->bik", &[&a, &b])))
        },
    },
    Case {
        name: "max_pool1d_k3s2p1_fwd_bwd_f32_32x256x2048",
        build: |d| {
            let x = randn(&[32, 256, 2048], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![], |x| F::max_pool1d(x, 3, 2, 1)))
        },
    },
    Case {
        name: "avg_pool3d_k2s2_fwd_bwd_f32_4x32x16x56x56",
        build: |d| {
            let x = randn(&[4, 32, 16, 56, 56], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![], |x| F::avg_pool3d(x, 2, 2, 0)))
        },
    },
    Case {
        name: "adaptive_max_pool2d_7x7_fwd_bwd_f32_32x256x28x28",
        build: |d| {
            let x = randn(&[32, 256, 28, 28], d)?.requires_grad();
            Ok(fwd_bwd(x, vec![], |x| F::adaptive_max_pool2d(x, 7)))
        },
    },
    Case {
        name: "group_norm_g32_fwd_bwd_f32_8x256x32x32",
        build: |d| {
            let gn = nn::GroupNorm::new(32, 256, d)?;
            let params = gn
                .parameters()
                .into_iter()
                .map(|p| p.tensor().clone())
                .collect();
            let x = randn(&[8, 256, 32, 32], d)?.requires_grad();
            Ok(fwd_bwd(x, params, move |x| gn.forward(x)))
        },
    },
    Case {
        name: "bce_with_logits_fwd_bwd_f32_1024x4096",
        build: |d| {
            let t = Tensor::rand(&[ROWS, COLS], DType::F32, d)?;
            let z = randn(&[ROWS, COLS], d)?.requires_grad();
            Ok(fwd_bwd(z, vec![], move |z| {
                F::binary_cross_entropy_with_logits(z, &t, F::BceOpts::new())
            }))
        },
    },
    Case {
        name: "gru_fwd_bwd_f32_L32xN32x128_h256",
        build: |d| {
            let gru = nn::GRU::new(128, 256, nn::RnnOpts::new(), d)?;
            let x = randn(&[32, 32, 128], d)?.requires_grad();
            let params = gru
                .parameters()
                .into_iter()
                .map(|p| p.tensor().clone())
                .collect();
            Ok(fwd_bwd(x, params, move |x| gru.forward(x)))
        },
    },
];

/// Rows of the indexing cases' tables.
const INDEX_ROWS: usize = 65536;

/// `n` I64 row indices into `INDEX_ROWS` rows, spread out and repeating (as
/// torch_bench.py's `arange(n) * 7919 % rows`).
fn spread_rows(n: usize, d: &Device) -> Result<Tensor> {
    let rows: Vec<i64> = (0..n).map(|i| (i * 7919 % INDEX_ROWS) as i64).collect();
    Tensor::from_vec(rows, &[n], d)
}

/// Causal attention forward and backward into q, k and v of shape `(N, H, L, E)`.
fn sdpa_step([n, h, l, e]: [usize; 4], d: &Device) -> Result<Step> {
    let qkv = [
        randn(&[n, h, l, e], d)?,
        randn(&[n, h, l, e], d)?,
        randn(&[n, h, l, e], d)?,
    ];
    let [q, k, v] = qkv.map(|t| t.requires_grad());
    Ok(fwd_bwd(q, vec![k.clone(), v.clone()], move |q| {
        F::scaled_dot_product_attention(q, &k, &v, F::SdpaOpts::new().causal(true))
    }))
}

/// `nn::LayerNorm` forward and backward on `(rows, cols)`.
fn layer_norm_step(rows: usize, cols: usize, d: &Device) -> Result<Step> {
    let ln = nn::LayerNorm::new(cols, d)?;
    let params = ln
        .parameters()
        .into_iter()
        .map(|p| p.tensor().clone())
        .collect();
    Ok(fwd_bwd(
        randn(&[rows, cols], d)?.requires_grad(),
        params,
        move |x| ln.forward(x),
    ))
}

/// One optimizer step of examples/train_gpt.rs with its defaults (62 characters of
/// the KJV text, a fixed batch): forward, cross entropy, backward, clipping at norm
/// 1, AdamW with weight decay 0.1 on the linear maps' matrices and none on the rest.
/// The learning-rate schedule is left out, as in torch_bench.py's twin.
fn train_gpt_step(d: &Device) -> Result<Step> {
    let (vocab, block, batch) = (62, 64, 32);
    let config = GptConfig {
        vocab_size: vocab,
        block_size: block,
        n_layer: 2,
        n_head: 4,
        n_embd: 96,
        tie_weights: false,
    };
    let model = Gpt::new(config, d)?;
    let (decay, no_decay): (Vec<_>, Vec<_>) =
        model.named_parameters().into_iter().partition(|(name, p)| {
            p.rank() == 2 && !name.starts_with("wte") && !name.starts_with("wpe")
        });
    let mut opt = AdamW::new(decay, 3e-3)?.weight_decay(0.1);
    opt.add_param_group(ParamGroup::new(no_decay).weight_decay(0.0))?;
    let ids = |n: usize, seed: u64| -> Result<Tensor> {
        let mut s = seed;
        let v: Vec<i64> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                ((s >> 33) % vocab as u64) as i64
            })
            .collect();
        Tensor::from_vec(v, &[n], d)
    };
    let (x, y) = (
        ids(batch * block, 1)?.reshape(&[batch, block])?,
        ids(batch * block, 2)?,
    );
    let params = model.parameters();
    Ok(Box::new(move || {
        let logits = model.forward(&x)?.reshape(&[batch * block, vocab])?;
        let loss = F::cross_entropy(&logits, &y)?;
        opt.zero_grad();
        loss.backward()?;
        nn::utils::clip_grad_norm(&params, 1.0)?;
        opt.step()?;
        Ok(loss)
    }))
}

/// GPT-2 small (124M parameters, random weights) in eval mode: the logits of one
/// sequence of 64 tokens, no gradients.
fn gpt2_small_forward(d: &Device) -> Result<Step> {
    use kiln::models::gpt2::{Gpt2, Gpt2Config};
    let model = Gpt2::new(Gpt2Config::gpt2_small(), DType::F32, d)?;
    model.eval();
    let ids: Vec<i64> = (0..64).map(|i| i * 7919 % 50257).collect();
    let ids = Tensor::from_vec(ids, &[1, 64], d)?;
    Ok(Box::new(move || {
        let _no_grad = kiln::no_grad();
        model.forward(&ids)
    }))
}

/// A step that runs `forward` on `x` and back-propagates `sum(out)` into `x` and
/// `params`, clearing their gradients first (like `set_to_none`).
fn fwd_bwd(
    x: Tensor,
    params: Vec<Tensor>,
    forward: impl Fn(&Tensor) -> Result<Tensor> + 'static,
) -> Step {
    Box::new(move || {
        x.zero_grad();
        params.iter().for_each(Tensor::zero_grad);
        let loss = forward(&x)?.sum_all()?;
        loss.backward()?;
        Ok(loss)
    })
}

/// The devices to benchmark on: the CPU always (a CUDA device joins once the CUDA
/// backend exists; its steps must then synchronize before returning).
fn devices() -> Vec<(&'static str, Device)> {
    vec![("cpu", Device::Cpu)]
}

fn bench_tensor_ops(c: &mut Criterion) {
    for (device_name, device) in devices() {
        let mut group = c.benchmark_group(device_name);
        for case in CASES {
            // Built on first use: criterion calls the routine only for ids that pass
            // its filter, so a filtered run (and a profile of one row) does not pay
            // for every other case's inputs.
            let mut step: Option<Step> = None;
            group.bench_function(case.name, |b| {
                let step = step.get_or_insert_with(|| {
                    (case.build)(&device).unwrap_or_else(|e| {
                        panic!(
                            "{device_name}/{}: building the inputs failed: {e}",
                            case.name
                        )
                    })
                });
                b.iter(|| match step() {
                    Ok(out) => black_box(out),
                    Err(e) => panic!("{device_name}/{} failed: {e}", case.name),
                })
            });
        }
        group.finish();
    }
}

/// Short runs: the bench must stay cheap on a 2-core machine shared with builds.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_tensor_ops
}
criterion_main!(benches);
