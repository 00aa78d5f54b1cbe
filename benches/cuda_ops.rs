//! Timings of kiln on a CUDA device, for `scripts/gpu-check.sh`: prints one JSON object
//! on stdout, `{"meta": {..}, "cuda/<case>": {"median_ms": .., "min_ms": .., "max_ms":
//! .., "reps": ..}, ..}`, the format of `scripts/gpu_torch_bench.py` (same case names,
//! shapes, dtypes and method), so the two join into one table.
//!
//! Method (shared with the PyTorch script): build the case's inputs, warm up, then time
//! [`REPS`] repetitions one by one with CUDA events around each
//! (`kiln::cuda::time_ms`) and report the median and the range. Single-op rows write a
//! buffer larger than the L2 cache ([`FLUSH_BYTES`]) before each repetition, outside the
//! timed region, so every repetition reads its inputs from device memory. A "fwd_bwd"
//! row seeds its backward pass through `.sum()` in both programs.
//!
//! Precision: f32 rows are exact f32 (TF32 off for matmuls and convolutions, as the
//! PyTorch script sets its switches); `*_tf32_*` rows allow TF32 tensor cores for
//! both (PyTorch's cuDNN default), `*_bf16_*` rows run in bf16 ([`Precision`]).
//!
//! GEMM rows (matmul, bmm, linear, mlp) are timed twice: with kiln's own kernels
//! (`cuda/<case>`) and with cuBLASLt (`cuda-vendor/<case>`, skipped with a note where
//! the device has none), switched by `kiln::cuda::set_gemm_backend`.
//!
//! `cuda_ops [FILTER..]` times the cases whose name contains any filter (gpu-check.sh
//! alternates groups of cases between this and the PyTorch script).
//! `KILN_BENCH_SMOKE=1` shrinks every shape and the repetitions, to check on the
//! emulated device that every case runs (the timings then mean nothing).
//! Without a GPU it prints `{}` and a note on stderr.

#[path = "../examples/train_digits/model.rs"]
#[allow(dead_code)] // the example's training and evaluation loops are not timed here
mod model;

use kiln::cuda::GemmChoice;
use kiln::models::{ResNet, ResNetConfig, Stem};
use kiln::nn::{functional as F, Conv2dOpts, Forward, Module};
use kiln::optim::{AdamW, Optimizer, Sgd};
use kiln::{DType, Device, Result, Tensor};

/// Timed repetitions per case.
const REPS: usize = 25;
/// Untimed calls before the first timed one.
const WARMUP: usize = 3;
/// Bytes written (as f32 zeros) between repetitions of single-op rows: more than any
/// GPU's L2 (the H200 has 60 MB).
const FLUSH_BYTES: usize = 256 << 20;

/// One timed call: queues the case's work on the device.
type Step = Box<dyn FnMut() -> Result<()>>;

/// How a case is built: only the selected cases allocate their inputs.
type Build = Box<dyn Fn(&Device, &Sizes) -> Result<Step>>;

/// One case: its name (as in gpu_torch_bench.py), whether it is a single op (flush the
/// L2 before each repetition) and how to build it.
struct Case {
    name: String,
    single_op: bool,
    build: Build,
}

/// A [`Case`].
fn case(
    name: impl Into<String>,
    single_op: bool,
    build: impl Fn(&Device, &Sizes) -> Result<Step> + 'static,
) -> Case {
    Case {
        name: name.into(),
        single_op,
        build: Box::new(build),
    }
}

/// The precision of a conv2d or ResNet-18 row, the `f32`, `tf32` or `bf16` in its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precision {
    /// Exact f32: TF32 off for matmuls and convolutions.
    F32,
    /// f32 tensors, TF32 tensor cores allowed for matmuls and convolutions (PyTorch's
    /// `cudnn.allow_tf32` default).
    Tf32,
    /// bf16 tensors.
    Bf16,
}

impl Precision {
    /// The name's tag.
    fn tag(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The dtype of the row's tensors.
    fn dtype(self) -> DType {
        match self {
            Precision::Bf16 => DType::BF16,
            Precision::F32 | Precision::Tf32 => DType::F32,
        }
    }

    /// Runs `work` with the process-wide TF32 switches (matmul and conv) set for this
    /// precision, then puts back what they were, so no row's setting leaks into the
    /// next one.
    fn run(self, work: impl FnOnce() -> Result<()>) -> Result<()> {
        let before = (
            kiln::cuda::matmul_allow_tf32(),
            kiln::cuda::conv_allow_tf32(),
        );
        let tf32 = self == Precision::Tf32;
        kiln::cuda::set_matmul_allow_tf32(tf32);
        kiln::cuda::set_conv_allow_tf32(tf32);
        let r = work();
        kiln::cuda::set_matmul_allow_tf32(before.0);
        kiln::cuda::set_conv_allow_tf32(before.1);
        r
    }
}

/// Full sizes on a GPU, tiny ones with `KILN_BENCH_SMOKE=1`.
struct Sizes {
    smoke: bool,
}

impl Sizes {
    /// `full`, or `small` in a smoke run.
    fn pick<T>(&self, full: T, small: T) -> T {
        if self.smoke {
            small
        } else {
            full
        }
    }
}

fn randn(shape: &[usize], dtype: DType, d: &Device) -> Result<Tensor> {
    Tensor::randn(shape, DType::F32, d)?.to_dtype(dtype)
}

/// A leaf of normal values of `dtype` that collects a gradient.
fn leaf(shape: &[usize], dtype: DType, d: &Device) -> Result<Tensor> {
    Ok(randn(shape, dtype, d)?.requires_grad())
}

/// An f32 [`leaf`].
fn param(shape: &[usize], d: &Device) -> Result<Tensor> {
    leaf(shape, DType::F32, d)
}

/// Class labels `0..classes` for `n` rows, as i64 on `d`.
fn labels(n: usize, classes: usize, d: &Device) -> Result<Tensor> {
    let v: Vec<i64> = (0..n).map(|i| ((i * 7919) % classes) as i64).collect();
    Tensor::from_vec(v, &[n], &Device::Cpu)?.to_device(d)
}

/// The parameter shapes of torchvision's `resnet18()` (11,689,512 values), in its
/// `parameters()` order: stem, four stages of two basic blocks (a 1×1 downsample
/// with its batch norm in the first block of stages 2–4), classifier.
fn resnet18_shapes() -> Vec<Vec<usize>> {
    let mut shapes = vec![vec![64, 3, 7, 7], vec![64], vec![64]];
    let mut cin = 64;
    for (stage, cout) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let first_in = if block == 0 { cin } else { cout };
            shapes.extend([vec![cout, first_in, 3, 3], vec![cout], vec![cout]]);
            shapes.extend([vec![cout, cout, 3, 3], vec![cout], vec![cout]]);
            if block == 0 && stage > 0 {
                shapes.extend([vec![cout, cin, 1, 1], vec![cout], vec![cout]]);
            }
        }
        cin = cout;
    }
    shapes.extend([vec![1000, 512], vec![1000]]);
    shapes
}

/// A convolution of torchvision's ResNet-18 on 224² images (no bias, padding k/2).
#[derive(Debug, Clone, Copy)]
struct ConvShape {
    /// The name's kind: `stem7x7s2`, `3x3` (a stage's, channels kept), `3x3s2` and
    /// `1x1s2` (the first block of stages 2–4 and its downsample: the plane halved,
    /// the channels doubled).
    kind: &'static str,
    cin: usize,
    cout: usize,
    /// The input plane's side.
    side: usize,
    kernel: usize,
    stride: usize,
}

/// Every convolution shape of ResNet-18 at 224²: the stem (224² in, 112² out), the
/// stages' 3×3 at 56², 28², 14², 7² (after the max pool), and the stride-2 3×3 and
/// 1×1 downsample convolutions that enter stages 2–4.
const RESNET18_CONVS: [ConvShape; 11] = {
    const fn conv(
        kind: &'static str,
        (cin, cout, side): (usize, usize, usize),
        (kernel, stride): (usize, usize),
    ) -> ConvShape {
        ConvShape {
            kind,
            cin,
            cout,
            side,
            kernel,
            stride,
        }
    }
    [
        conv("stem7x7s2", (3, 64, 224), (7, 2)),
        conv("3x3", (64, 64, 56), (3, 1)),
        conv("3x3", (128, 128, 28), (3, 1)),
        conv("3x3", (256, 256, 14), (3, 1)),
        conv("3x3", (512, 512, 7), (3, 1)),
        conv("3x3s2", (64, 128, 56), (3, 2)),
        conv("3x3s2", (128, 256, 28), (3, 2)),
        conv("3x3s2", (256, 512, 14), (3, 2)),
        conv("1x1s2", (64, 128, 56), (1, 2)),
        conv("1x1s2", (128, 256, 28), (1, 2)),
        conv("1x1s2", (256, 512, 14), (1, 2)),
    ]
};

/// The conv2d rows, `conv2d_<kind>_fwd_bwd_<precision>_64x<cin>x<side>x<side>`: every
/// ResNet-18 convolution in TF32 and bf16, and the stages' 3×3 also in exact f32.
fn conv_cases() -> Vec<Case> {
    let mut rows = Vec::new();
    for prec in [Precision::F32, Precision::Tf32, Precision::Bf16] {
        for shape in RESNET18_CONVS {
            if prec == Precision::F32 && shape.kind != "3x3" {
                continue;
            }
            let (kind, tag, cin, side) = (shape.kind, prec.tag(), shape.cin, shape.side);
            let name = format!("conv2d_{kind}_fwd_bwd_{tag}_64x{cin}x{side}x{side}");
            rows.push(case(name, true, move |d, s| conv_case(d, s, shape, prec)));
        }
    }
    rows
}

/// A conv2d forward and backward (input and weight gradients) of `shape` at batch 64.
fn conv_case(d: &Device, s: &Sizes, shape: ConvShape, prec: Precision) -> Result<Step> {
    let n = s.pick(64, 2);
    let (cin, cout) = (s.pick(shape.cin, shape.cin.min(4)), s.pick(shape.cout, 4));
    let (k, side) = (shape.kernel, s.pick(shape.side, shape.kernel + 4));
    let (x, w) = (
        leaf(&[n, cin, side, side], prec.dtype(), d)?,
        leaf(&[cout, cin, k, k], prec.dtype(), d)?,
    );
    let opts = Conv2dOpts::new().stride(shape.stride).padding(k / 2);
    Ok(Box::new(move || {
        prec.run(|| {
            x.zero_grad();
            w.zero_grad();
            F::conv2d(&x, &w, None, opts)?.sum_all()?.backward()
        })
    }))
}

/// A training step of torchvision's ResNet-18 (ImageNet stem, 1000 classes) at batch
/// 128 on 224² images in `prec`: forward, cross-entropy, backward, SGD with momentum.
fn resnet_case(d: &Device, s: &Sizes, prec: Precision) -> Result<Step> {
    let classes = s.pick(1000, 10);
    let cfg = ResNetConfig::new(classes)
        .stem(Stem::ImageNet)
        .width(s.pick(64, 4));
    let net = ResNet::new(cfg, d)?;
    net.to_dtype(prec.dtype())?;
    let mut opt = Sgd::new(net.parameters(), 0.01)?.momentum(0.9);
    let n = s.pick(128, 2);
    let x = randn(&[n, 3, s.pick(224, 32), s.pick(224, 32)], prec.dtype(), d)?;
    let y = labels(n, classes, d)?;
    Ok(Box::new(move || {
        prec.run(|| {
            opt.zero_grad();
            F::cross_entropy(&net.forward(&x)?, &y)?.backward()?;
            opt.step()
        })
    }))
}

/// Runs `f` on two tensors and drops the result (the matmul and elementwise rows).
fn binary(a: Tensor, b: Tensor, f: fn(&Tensor, &Tensor) -> Result<Tensor>) -> Result<Step> {
    Ok(Box::new(move || f(&a, &b).map(drop)))
}

/// Runs `f` on one tensor and drops the result.
fn unary(a: Tensor, f: fn(&Tensor) -> Result<Tensor>) -> Result<Step> {
    Ok(Box::new(move || f(&a).map(drop)))
}

/// `f`'s forward and backward (through `.sum()`) into the leaf `x`.
fn fwd_bwd(x: Tensor, f: fn(&Tensor) -> Result<Tensor>) -> Result<Step> {
    Ok(Box::new(move || {
        x.zero_grad();
        f(&x)?.sum_all()?.backward()
    }))
}

/// Two square matrices of side `n` (`small` in a smoke run) multiplied.
fn matmul_case(d: &Device, s: &Sizes, dtype: DType, n: usize) -> Result<Step> {
    let n = s.pick(n, 16);
    binary(
        randn(&[n, n], dtype, d)?,
        randn(&[n, n], dtype, d)?,
        Tensor::matmul,
    )
}

/// `linear` forward and backward in `prec`, input (rows, in) to (rows, out), with
/// bias; `act` adds the activation (fused into cuBLASLt's epilogue where that applies).
fn linear_case(d: &Device, s: &Sizes, prec: Precision, act: Option<F::LinearAct>) -> Result<Step> {
    let (rows, in_f, out_f) = (s.pick(4096, 16), s.pick(1024, 8), s.pick(4096, 12));
    let new = |shape: &[usize]| leaf(shape, prec.dtype(), d);
    let (x, w, b) = (new(&[rows, in_f])?, new(&[out_f, in_f])?, new(&[out_f])?);
    Ok(Box::new(move || {
        prec.run(|| {
            for t in [&x, &w, &b] {
                t.zero_grad();
            }
            let y = match act {
                Some(act) => F::linear_act(&x, &w, Some(&b), act)?,
                None => F::linear(&x, &w, Some(&b))?,
            };
            y.sum_all()?.backward()
        })
    }))
}

/// A bf16 MLP training step: `layers` linear layers of `width` (ReLU between), batch
/// `batch`, sum loss, backward, SGD.
fn mlp_train_case(d: &Device, s: &Sizes) -> Result<Step> {
    let (width, batch, layers) = (s.pick(4096, 16), s.pick(4096, 8), 4);
    let mut params = Vec::new();
    for _ in 0..layers {
        params.push(
            randn(&[width, width], DType::BF16, d)?
                .mul_scalar(0.02)?
                .requires_grad(),
        );
        params.push(Tensor::zeros(&[width], DType::BF16, d)?.requires_grad());
    }
    let x = randn(&[batch, width], DType::BF16, d)?;
    let mut opt = Sgd::new(params.clone(), 1e-3)?;
    Ok(Box::new(move || {
        opt.zero_grad();
        let mut h = x.clone();
        for (i, wb) in params.chunks(2).enumerate() {
            h = if i + 1 < layers {
                F::linear_act(&h, &wb[0], Some(&wb[1]), F::LinearAct::Relu)?
            } else {
                F::linear(&h, &wb[0], Some(&wb[1]))?
            };
        }
        h.sum_all()?.backward()?;
        opt.step()
    }))
}

/// True for the rows that run GEMMs: they are timed with kiln's own GEMM (`cuda/`) and
/// with cuBLASLt (`cuda-vendor/`, where the device has it).
fn uses_gemm(name: &str) -> bool {
    ["matmul", "bmm", "linear", "mlp"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The 1024×4096 f32 matrix of the elementwise, reduction and layout rows.
fn matrix(d: &Device, s: &Sizes) -> Result<Tensor> {
    randn(&[s.pick(1024, 8), s.pick(4096, 40)], DType::F32, d)
}

/// The AdamW step over ResNet-18's parameters, gradients set once (kiln's step is
/// one fused kernel per parameter, so it times both of PyTorch's AdamW rows).
fn adamw_case(d: &Device, s: &Sizes) -> Result<Step> {
    let mut params = Vec::new();
    for shape in resnet18_shapes() {
        let shape: Vec<usize> = s.pick(shape.clone(), shape.iter().map(|&k| k.min(3)).collect());
        let p = param(&shape, d)?;
        p.mul(&randn(&shape, DType::F32, d)?)?
            .sum_all()?
            .backward()?;
        params.push(p);
    }
    let mut opt = AdamW::new(params, 1e-3)?;
    Ok(Box::new(move || opt.step()))
}

/// A training step of the digits CNN (examples/train_digits) at batch 128 on 8×8
/// images: forward, cross-entropy, backward, AdamW (the example's settings).
fn digits_case(d: &Device, s: &Sizes) -> Result<Step> {
    let net = model::DigitsNet::new(d)?;
    let mut opt = AdamW::new(net.parameters(), 1e-3)?.weight_decay(1e-4);
    let n = s.pick(128, 4);
    let x = randn(&[n, 1, 8, 8], DType::F32, d)?;
    let y = labels(n, 10, d)?;
    Ok(Box::new(move || {
        opt.zero_grad();
        F::cross_entropy(&net.forward(&x)?, &y)?.backward()?;
        opt.step()
    }))
}

/// Greedy generation with GPT-2 small (124M parameters, random weights): 32 new tokens
/// after a 128-token prompt through the KV cache, one sequence (tokens/s = 32000 / ms).
fn gpt2_generate_case(d: &Device, s: &Sizes) -> Result<Step> {
    use kiln::models::gpt2::{Gpt2, Gpt2Config};
    use kiln::models::{generate, GenerateOpts};
    let small = Gpt2Config {
        vocab_size: 500,
        n_positions: 64,
        n_embd: 32,
        n_layer: 2,
        n_head: 2,
        n_inner: 64,
        ..Gpt2Config::gpt2_small()
    };
    let model = Gpt2::new(s.pick(Gpt2Config::gpt2_small(), small), DType::F32, d)?;
    model.eval();
    let p = s.pick(128, 8);
    let ids: Vec<i64> = (0..p as i64).map(|i| i * 7919 % 500).collect();
    let prompt = Tensor::from_vec(ids, &[1, p], d)?;
    let opts = GenerateOpts::new()
        .temperature(0.0)
        .max_new_tokens(s.pick(32, 4));
    Ok(Box::new(move || {
        generate(&model, &prompt, opts.clone()).map(drop)
    }))
}

/// Every case, in the table's order.
fn cases() -> Vec<Case> {
    let mut cases = vec![
        case("matmul_f32_1024x1024x1024", true, |d, s| {
            matmul_case(d, s, DType::F32, 1024)
        }),
        case("matmul_f32_4096x4096x4096", true, |d, s| {
            matmul_case(d, s, DType::F32, 4096)
        }),
        case("matmul_f16_4096x4096x4096", true, |d, s| {
            matmul_case(d, s, DType::F16, 4096)
        }),
        case("matmul_tf32_4096x4096x4096", true, |d, s| {
            let mut step = matmul_case(d, s, DType::F32, 4096)?;
            Ok(Box::new(move || Precision::Tf32.run(&mut step)))
        }),
        case("matmul_bf16_4096x4096x4096", true, |d, s| {
            matmul_case(d, s, DType::BF16, 4096)
        }),
        case("linear_fwd_bwd_f32_4096x1024x4096", true, |d, s| {
            linear_case(d, s, Precision::F32, None)
        }),
        case("linear_fwd_bwd_tf32_4096x1024x4096", true, |d, s| {
            linear_case(d, s, Precision::Tf32, None)
        }),
        case("linear_fwd_bwd_bf16_4096x1024x4096", true, |d, s| {
            linear_case(d, s, Precision::Bf16, None)
        }),
        case(
            "linear_bias_gelu_fwd_bwd_bf16_4096x1024x4096",
            true,
            |d, s| linear_case(d, s, Precision::Bf16, Some(F::LinearAct::GeluTanh)),
        ),
        case("mlp_train_step_bf16_4x4096_b4096", false, mlp_train_case),
        case("bmm_f32_8x256x256x256", true, |d, s| {
            let n = s.pick(256, 8);
            let a = randn(&[8, n, n], DType::F32, d)?;
            binary(a, randn(&[8, n, n], DType::F32, d)?, Tensor::matmul)
        }),
        case("add_f32_1024x4096", true, |d, s| {
            binary(matrix(d, s)?, matrix(d, s)?, Tensor::add)
        }),
        case("add_bcast_row_f32_1024x4096", true, |d, s| {
            let row = randn(&[s.pick(4096, 40)], DType::F32, d)?;
            binary(matrix(d, s)?, row, Tensor::add)
        }),
        case("exp_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, Tensor::exp)
        }),
        case("sum_all_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, Tensor::sum_all)
        }),
        case("sum_dim1_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| a.sum(1, false))
        }),
        case("sum_dim0_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| a.sum(0, false))
        }),
        case("softmax_dim1_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| F::softmax(a, 1))
        }),
        case("sort_dim1_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| Ok(a.sort(1, false)?.0))
        }),
        case("topk_k16_dim1_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| Ok(a.topk(16, 1, true, true)?.0))
        }),
        case("transpose_contiguous_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| a.transpose(0, 1)?.contiguous())
        }),
        case("to_f16_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| a.to_dtype(DType::F16))
        }),
        case("mlp_fwd_bwd_f32_256x512x1024x256", false, |d, s| {
            let x = randn(&[s.pick(256, 4), 512], DType::F32, d)?;
            let w1 = param(&[512, s.pick(1024, 8)], d)?;
            let w2 = param(&[s.pick(1024, 8), 256], d)?;
            Ok(Box::new(move || {
                w1.zero_grad();
                w2.zero_grad();
                x.matmul(&w1)?.relu()?.matmul(&w2)?.sum_all()?.backward()
            }))
        }),
        case(
            "max_pool2d_k3s2p1_fwd_bwd_f32_64x64x112x112",
            true,
            |d, s| {
                let side = s.pick(112, 9);
                let x = param(&[s.pick(64, 2), s.pick(64, 3), side, side], d)?;
                Ok(Box::new(move || {
                    x.zero_grad();
                    F::max_pool2d(&x, 3, 2, 1)?.sum_all()?.backward()
                }))
            },
        ),
        case("batch_norm_train_fwd_bwd_f32_64x256x28x28", true, |d, s| {
            let (c, side) = (s.pick(256, 3), s.pick(28, 5));
            let x = param(&[s.pick(64, 2), c, side, side], d)?;
            let (w, b) = (param(&[c], d)?, param(&[c], d)?);
            let mean = Tensor::zeros(&[c], DType::F32, d)?;
            let var = Tensor::ones(&[c], DType::F32, d)?;
            Ok(Box::new(move || {
                for t in [&x, &w, &b] {
                    t.zero_grad();
                }
                F::batch_norm(&x, &mean, &var, Some(&w), Some(&b), true, 0.1, 1e-5)?
                    .sum_all()?
                    .backward()
            }))
        }),
        case("cross_entropy_fwd_bwd_f32_4096x1000", true, |d, s| {
            let (n, k) = (s.pick(4096, 5), s.pick(1000, 7));
            let (logits, target) = (param(&[n, k], d)?, labels(n, k, d)?);
            Ok(Box::new(move || {
                logits.zero_grad();
                F::cross_entropy(&logits, &target)?.backward()
            }))
        }),
        case("dropout_p0.5_fwd_bwd_f32_64M", true, |d, s| {
            let x = param(&[s.pick(64 << 20, 1001)], d)?;
            Ok(Box::new(move || {
                x.zero_grad();
                F::dropout(&x, 0.5, true)?.sum_all()?.backward()
            }))
        }),
        // GPT-2's token embedding: the gradient scatters 8192 rows into 50257.
        case("embedding_fwd_bwd_f32_50257x768_n8192", true, |d, s| {
            let (v, n) = (s.pick(50257, 11), s.pick(8192, 300));
            let (w, ids) = (param(&[v, s.pick(768, 5)], d)?, labels(n, v, d)?);
            Ok(Box::new(move || {
                w.zero_grad();
                F::embedding(&ids, &w)?.sum_all()?.backward()
            }))
        }),
        case("adamw_step_resnet18_f32", false, adamw_case),
        case("adamw_fused_step_resnet18_f32", false, adamw_case),
        case(
            "max_pool2d_k3s2_ceil_fwd_bwd_f32_64x64x112x112",
            true,
            |d, s| {
                let side = s.pick(112, 9);
                let x = param(&[s.pick(64, 2), s.pick(64, 3), side, side], d)?;
                let opts = F::Pool2dOpts::new(3).stride(2).ceil_mode(true);
                Ok(Box::new(move || {
                    x.zero_grad();
                    F::max_pool2d_with(&x, opts)?.sum_all()?.backward()
                }))
            },
        ),
        // A U-Net decoder's upsampling: the backward gathers (no atomics).
        case(
            "interpolate_bilinear_x2_fwd_bwd_f32_32x64x128x128",
            true,
            |d, s| {
                let side = s.pick(128, 7);
                let x = param(&[s.pick(32, 2), s.pick(64, 3), side, side], d)?;
                let opts = F::Interp::scale(2.0).mode(F::InterpMode::Bilinear);
                Ok(Box::new(move || {
                    x.zero_grad();
                    F::interpolate(&x, opts.clone())?.sum_all()?.backward()
                }))
            },
        ),
        case("hardswish_fwd_bwd_f32_1024x4096", true, |d, s| {
            fwd_bwd(matrix(d, s)?.requires_grad(), F::hardswish)
        }),
        case("erf_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, Tensor::erf)
        }),
        case("cumsum_dim1_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| a.cumsum(1))
        }),
        case("logsumexp_dim1_fwd_bwd_f32_1024x4096", true, |d, s| {
            fwd_bwd(matrix(d, s)?.requires_grad(), |x| x.logsumexp(&[1], false))
        }),
        case("std_dim1_f32_1024x4096", true, |d, s| {
            unary(matrix(d, s)?, |a| a.std(1, true, false))
        }),
        // Gathering rows forward, and accumulating them back (deterministically).
        case("index_rows_fwd_bwd_f32_65536x64_n65536", true, |d, s| {
            let rows = s.pick(65536, 50);
            let x = param(&[rows, s.pick(64, 3)], d)?;
            let picked = labels(rows, rows, d)?;
            Ok(Box::new(move || {
                x.zero_grad();
                x.index(&[Some(&picked)])?.sum_all()?.backward()
            }))
        }),
        case("index_put_accumulate_f32_65536x64_n262144", true, |d, s| {
            let (rows, cols) = (s.pick(65536, 50), s.pick(64, 3));
            let x = randn(&[rows, cols], DType::F32, d)?;
            let (picked, v) = (
                labels(4 * rows, rows, d)?,
                randn(&[4 * rows, cols], DType::F32, d)?,
            );
            Ok(Box::new(move || {
                x.index_put(&[Some(&picked)], &v, true).map(drop)
            }))
        }),
        case("einsum_bij_bjk_f32_8x256x256x256", true, |d, s| {
            let n = s.pick(256, 8);
            let (a, b) = (
                randn(&[8, n, n], DType::F32, d)?,
                randn(&[8, n, n], DType::F32, d)?,
            );
            Ok(Box::new(move || {
                kiln::einsum("bij,bjk->bik", &[&a, &b]).map(drop)
            }))
        }),
        case("max_pool1d_k3s2p1_fwd_bwd_f32_64x256x4096", true, |d, s| {
            let x = param(&[s.pick(64, 2), s.pick(256, 3), s.pick(4096, 17)], d)?;
            Ok(Box::new(move || {
                x.zero_grad();
                F::max_pool1d(&x, 3, 2, 1)?.sum_all()?.backward()
            }))
        }),
        case(
            "avg_pool3d_k2s2_fwd_bwd_f32_16x64x16x56x56",
            true,
            |d, s| {
                let (depth, side) = (s.pick(16, 5), s.pick(56, 7));
                let x = param(&[s.pick(16, 2), s.pick(64, 3), depth, side, side], d)?;
                Ok(Box::new(move || {
                    x.zero_grad();
                    F::avg_pool3d(&x, 2, 2, 0)?.sum_all()?.backward()
                }))
            },
        ),
        case(
            "adaptive_max_pool2d_7x7_fwd_bwd_f32_64x512x28x28",
            true,
            |d, s| {
                let side = s.pick(28, 9);
                let x = param(&[s.pick(64, 2), s.pick(512, 3), side, side], d)?;
                Ok(Box::new(move || {
                    x.zero_grad();
                    F::adaptive_max_pool2d(&x, 7)?.sum_all()?.backward()
                }))
            },
        ),
    ];
    cases.extend(conv_cases());
    cases.extend([
        case("digits_cnn_train_step_f32_b128", false, digits_case),
        case(
            "gpt2_small_generate_greedy_f32_p128_n32",
            false,
            gpt2_generate_case,
        ),
        case("copy_d2d_f32_1GiB", true, |d, s| {
            let n = s.pick(1 << 28, 1000);
            let src = randn(&[n], DType::F32, d)?;
            let dst = Tensor::zeros(&[n], DType::F32, d)?;
            Ok(Box::new(move || dst.copy_(&src)))
        }),
        case("group_norm_g32_fwd_bwd_f32_8x256x32x32", true, |d, s| {
            let (c, side) = (s.pick(256, 4), s.pick(32, 5));
            let x = param(&[s.pick(8, 2), c, side, side], d)?;
            let (w, b) = (param(&[c], d)?, param(&[c], d)?);
            let groups = s.pick(32, 2);
            Ok(Box::new(move || {
                for t in [&x, &w, &b] {
                    t.zero_grad();
                }
                F::group_norm(&x, groups, Some(&w), Some(&b), 1e-5)?
                    .sum_all()?
                    .backward()
            }))
        }),
        case("bce_with_logits_fwd_bwd_f32_1024x4096", true, |d, s| {
            let shape = [s.pick(1024, 5), s.pick(4096, 7)];
            let (z, t) = (param(&shape, d)?, Tensor::rand(&shape, DType::F32, d)?);
            Ok(Box::new(move || {
                z.zero_grad();
                F::binary_cross_entropy_with_logits(&z, &t, F::BceOpts::new())?.backward()
            }))
        }),
    ]);
    cases.extend(
        [Precision::F32, Precision::Tf32, Precision::Bf16].map(|prec| {
            let name = format!("resnet18_train_step_{}_b128", prec.tag());
            case(name, false, move |d, s| resnet_case(d, s, prec))
        }),
    );
    cases
}

/// Median, fastest and slowest of a case's repetitions, in milliseconds.
struct Timing {
    median: f64,
    min: f64,
    max: f64,
    reps: usize,
}

/// Warms `step` up, then times `reps` repetitions with events, each after an L2 flush
/// when `flush` is given.
fn time(step: &mut Step, flush: Option<&[usize]>, d: &Device, reps: usize) -> Result<Timing> {
    for _ in 0..WARMUP {
        step()?;
    }
    let mut ms = Vec::with_capacity(reps);
    for _ in 0..reps {
        if let Some(shape) = flush {
            drop(Tensor::zeros(shape, DType::F32, d)?);
        }
        ms.push(kiln::cuda::time_ms(0, &mut *step)?);
    }
    ms.sort_by(f64::total_cmp);
    Ok(Timing {
        median: (ms[(reps - 1) / 2] + ms[reps / 2]) / 2.0,
        min: ms[0],
        max: ms[reps - 1],
        reps,
    })
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let dev = match Device::cuda(0) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cuda_ops: no GPU, nothing to time: {e}");
            println!("{{}}");
            return;
        }
    };
    let sizes = Sizes {
        smoke: std::env::var("KILN_BENCH_SMOKE").is_ok_and(|v| v == "1"),
    };
    // Exact f32 unless a row asks for TF32 ([`Precision::run`]), as the PyTorch script
    // sets its switches; convolutions default to TF32 otherwise, like cuDNN.
    kiln::cuda::set_matmul_allow_tf32(false);
    kiln::cuda::set_conv_allow_tf32(false);
    let reps = sizes.pick(REPS, 3);
    let flush = [sizes.pick(FLUSH_BYTES, 1 << 16) / 4];
    let device = kiln::cuda::device_name(0).unwrap_or_default();
    let mut rows = vec![format!(
        "\"meta\": {{\"device\": {device:?}, \"emulated\": {}, \"smoke\": {}, \"matmul_allow_tf32\": false, \"conv_allow_tf32\": false, \"timer\": \"CUDA events\", \"warmup\": {WARMUP}, \"reps\": {reps}, \"l2_flush_bytes\": {}}}",
        kiln::cuda::is_emulated(),
        sizes.smoke,
        4 * flush[0],
    )];
    for case in cases() {
        if !filters.is_empty() && !filters.iter().any(|f| case.name.contains(f.as_str())) {
            continue;
        }
        let flush = case.single_op.then_some(&flush[..]);
        if !uses_gemm(&case.name) {
            rows.extend(run_case(&case, "cuda", flush, &dev, &sizes, reps));
            continue;
        }
        for (choice, prefix) in [
            (GemmChoice::Kiln, "cuda"),
            (GemmChoice::Vendor, "cuda-vendor"),
        ] {
            match kiln::cuda::set_gemm_backend(0, choice) {
                Ok(()) => rows.extend(run_case(&case, prefix, flush, &dev, &sizes, reps)),
                Err(e) => eprintln!("{prefix}/{}: skipped: {e}", case.name),
            }
        }
        if let Err(e) = kiln::cuda::set_gemm_backend(0, GemmChoice::Auto) {
            eprintln!("cuda_ops: set_gemm_backend: {e}");
        }
    }
    println!("{{{}}}", rows.join(", "));
}

/// Builds and times `case`, printing its timing on stderr; its JSON row, named
/// `<prefix>/<case>`, or `None` when it failed.
fn run_case(
    case: &Case,
    prefix: &str,
    flush: Option<&[usize]>,
    dev: &Device,
    sizes: &Sizes,
    reps: usize,
) -> Option<String> {
    let name = &case.name;
    let timing = (case.build)(dev, sizes).and_then(|mut step| time(&mut step, flush, dev, reps));
    // Free the case's inputs before the next one.
    if let Err(e) = kiln::cuda::empty_cache(0) {
        eprintln!("cuda_ops: empty_cache: {e}");
    }
    match timing {
        Ok(t) => {
            eprintln!(
                "{prefix}/{name}: median {:.4} ms (min {:.4}, max {:.4}, {} reps)",
                t.median, t.min, t.max, t.reps
            );
            Some(format!(
                "\"{prefix}/{name}\": {{\"median_ms\": {:.6}, \"min_ms\": {:.6}, \"max_ms\": {:.6}, \"reps\": {}}}",
                t.median, t.min, t.max, t.reps
            ))
        }
        Err(e) => {
            eprintln!("{prefix}/{name} failed: {e}");
            None
        }
    }
}
