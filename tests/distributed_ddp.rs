//! `nn::parallel::DistributedDataParallel` on 2 and 4 ranks, each a child process of
//! this test binary on its own emulated CUDA device, against one process training on
//! the concatenated batch: SGD steps, `no_sync` accumulation, unused parameters (the
//! `Err` naming them, and `find_unused_parameters`), the overlap of the first bucket's
//! all-reduce with the backward pass (the emulated device's launch/enqueue order), and
//! a rank that errors making the others fail with its name. Without the emulated
//! device (a CPU-only run) there is no process group, which is an `Err` saying why.

mod common;

use common::ranks::{
    assert_no_group_without_a_device, child_mode, emulated, join, outcomes, run_on_ranks,
    spawn_ranks,
};
use kiln::distributed::ProcessGroup;
use kiln::nn::parallel::DistributedDataParallel;
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::optim::{Optimizer, Sgd};
use kiln::{Device, Tensor};
use std::time::Duration;

/// Rows of the batch each rank trains on per step.
const ROWS: usize = 3;
const IN: usize = 5;
const OUT: usize = 2;

/// A small MLP, initialised from `seed`, on `dev`.
fn mlp(seed: u64, dev: &Device) -> nn::Sequential {
    kiln::manual_seed(seed);
    nn::Sequential::new()
        .add(nn::Linear::new(IN, 6, dev).unwrap())
        .add(nn::Tanh)
        .add(nn::Linear::new(6, 4, dev).unwrap())
        .add(nn::Tanh)
        .add(nn::Linear::new(4, OUT, dev).unwrap())
}

/// The whole batch of step `step` (every rank's rows, in rank order): inputs, targets.
fn batch(step: usize, world: usize, dev: &Device) -> (Tensor, Tensor) {
    let rows = world * ROWS;
    let x: Vec<f32> = (0..rows * IN)
        .map(|i| (((i * 7 + step * 13) % 17) as f32 - 8.0) / 8.0)
        .collect();
    let y: Vec<f32> = (0..rows * OUT)
        .map(|i| (((i * 5 + step * 3) % 11) as f32 - 5.0) / 5.0)
        .collect();
    (
        Tensor::from_vec(x, &[rows, IN], dev).unwrap(),
        Tensor::from_vec(y, &[rows, OUT], dev).unwrap(),
    )
}

/// Rank `rank`'s share of a whole batch.
fn share(t: &Tensor, rank: usize) -> Tensor {
    t.narrow(0, rank * ROWS, ROWS).unwrap()
}

fn params_of(m: &dyn Module) -> Vec<Vec<f32>> {
    m.parameters()
        .iter()
        .map(|p| p.to_vec::<f32>().unwrap())
        .collect()
}

fn grads_of(m: &dyn Module) -> Vec<Vec<f32>> {
    m.parameters()
        .iter()
        .map(|p| p.grad().expect("a gradient").to_vec::<f32>().unwrap())
        .collect()
}

/// Asserts `got` equals `want` to f32 rounding (a few ulps of the largest value).
fn assert_close(what: &str, got: &[Vec<f32>], want: &[Vec<f32>]) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        let scale = w.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() <= 2e-6 * scale, "{what}: {g:?} != {w:?}");
        }
    }
}

/// Three SGD steps under DDP equal three steps of one model on the whole batches; every
/// rank starts from rank 0's weights whatever it initialised itself.
fn same_as_one_process(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    let reference = mlp(0, &dev);
    // Rank 0 has the reference's weights; the others' differ until the broadcast.
    let seed = if rank == 0 { 0 } else { 100 + rank as u64 };
    let ddp = DistributedDataParallel::new(mlp(seed, &dev), pg).unwrap();
    assert_close(
        "broadcast",
        &params_of(ddp.module()),
        &params_of(&reference),
    );
    let mut opt = Sgd::new(ddp.parameters(), 0.1).unwrap();
    let mut ref_opt = Sgd::new(reference.parameters(), 0.1).unwrap();
    for step in 0..3 {
        let (x, y) = batch(step, world, &dev);
        // Each optimizer steps right after its own backward: kiln's optimizer checks
        // the parameters of this thread's last backward.
        opt.zero_grad();
        let loss = F::mse_loss(&ddp.forward(&share(&x, rank)).unwrap(), &share(&y, rank));
        loss.unwrap().backward().unwrap();
        let averaged = grads_of(&ddp);
        opt.step().unwrap();
        ref_opt.zero_grad();
        F::mse_loss(&reference.forward(&x).unwrap(), &y)
            .unwrap()
            .backward()
            .unwrap();
        assert_close("gradients", &averaged, &grads_of(&reference));
        ref_opt.step().unwrap();
    }
    assert_close("parameters", &params_of(&ddp), &params_of(&reference));
    let keys: Vec<String> = ddp.state_dict().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys[0], "module.0.weight");
    assert_eq!(ddp.module().state_dict()[0].0, "0.weight");
}

/// Two micro-batches, the first under `no_sync`, give the gradients of the whole
/// batch of both (loss halved per micro-batch, as gradient accumulation does).
fn no_sync_accumulates(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    let reference = mlp(1, &dev);
    let ddp = DistributedDataParallel::new(mlp(1, &dev), pg).unwrap();
    let (micro, targets): (Vec<Tensor>, Vec<Tensor>) =
        (0..2).map(|s| batch(s, world, &dev)).unzip();
    let half = |l: Tensor| l.mul_scalar(0.5).unwrap();
    {
        let _acc = ddp.no_sync();
        let out = ddp.forward(&share(&micro[0], rank)).unwrap();
        half(F::mse_loss(&out, &share(&targets[0], rank)).unwrap())
            .backward()
            .unwrap();
        // No communication: rank 0's gradient is its own shard's only.
    }
    let out = ddp.forward(&share(&micro[1], rank)).unwrap();
    half(F::mse_loss(&out, &share(&targets[1], rank)).unwrap())
        .backward()
        .unwrap();
    let x = Tensor::cat(&[&micro[0], &micro[1]], 0).unwrap();
    let y = Tensor::cat(&[&targets[0], &targets[1]], 0).unwrap();
    F::mse_loss(&reference.forward(&x).unwrap(), &y)
        .unwrap()
        .backward()
        .unwrap();
    assert_close("accumulated", &grads_of(&ddp), &grads_of(&reference));
}

/// A model with a layer its forward never uses.
#[derive(nn::Module)]
struct Partly {
    used: nn::Linear,
    unused: nn::Linear,
}

impl Forward for Partly {
    fn forward(&self, x: &Tensor) -> kiln::Result<Tensor> {
        self.used.forward(x)
    }
}

fn partly(dev: &Device) -> Partly {
    kiln::manual_seed(2);
    Partly {
        used: nn::Linear::new(IN, OUT, dev).unwrap(),
        unused: nn::Linear::new(IN, OUT, dev).unwrap(),
    }
}

/// A parameter without a gradient is `backward`'s `Err` naming it; with
/// `find_unused_parameters` the used ones are averaged and the unused keep none.
fn unused_parameters(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    let (x, y) = batch(0, world, &dev);
    let ddp = DistributedDataParallel::new(partly(&dev), pg).unwrap();
    let loss = F::mse_loss(&ddp.forward(&share(&x, rank)).unwrap(), &share(&y, rank)).unwrap();
    let e = loss.backward().unwrap_err().to_string();
    assert!(
        e.contains("2 parameter(s) got no gradient in this backward: unused.weight, unused.bias."),
        "{e}"
    );
    let ddp = ddp.find_unused_parameters(true);
    ddp.zero_grad();
    let loss = F::mse_loss(&ddp.forward(&share(&x, rank)).unwrap(), &share(&y, rank)).unwrap();
    loss.backward().unwrap();
    let reference = partly(&dev);
    F::mse_loss(&reference.forward(&x).unwrap(), &y)
        .unwrap()
        .backward()
        .unwrap();
    assert_close(
        "used",
        &grads_of(&ddp.module().used),
        &grads_of(&reference.used),
    );
    assert!(ddp
        .module()
        .unused
        .parameters()
        .iter()
        .all(|p| p.grad().is_none()));
}

/// With a bucket per parameter, the first bucket's all-reduce is enqueued before
/// backward's last matmul (the first layer's gradients are computed after it), and the
/// buckets go out in bucket order: the last layer's parameters first.
#[cfg(feature = "cuda-emulator")]
fn overlap_is_visible(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    let ddp = DistributedDataParallel::new(mlp(3, &dev), pg)
        .unwrap()
        .bucket_cap_mb(1e-5)
        .unwrap();
    let buckets = ddp.bucket_names();
    assert_eq!(buckets.len(), 6, "{buckets:?}");
    assert_eq!(buckets[0], ["4.bias"]);
    assert_eq!(buckets[5], ["0.weight"]);
    let (x, y) = batch(0, world, &dev);
    let loss = F::mse_loss(&ddp.forward(&share(&x, rank)).unwrap(), &share(&y, rank)).unwrap();
    let ((), trace) = kiln::cuda::emulated_trace(|| loss.backward().unwrap());
    let reduces: Vec<usize> = (0..trace.len())
        .filter(|&i| trace[i] == "nccl:all_reduce")
        .collect();
    assert_eq!(reduces.len(), 6, "{trace:?}");
    let is_gemm = |k: &&str| k.contains("gemm") || k.contains("matmul");
    let last_gemm = trace.iter().rposition(is_gemm).expect("backward's matmuls");
    assert!(reduces[0] < last_gemm, "no overlap: {trace:?}");
}

/// A CPU model cannot be wrapped: NCCL moves device memory.
fn cpu_model_is_an_err(pg: &ProcessGroup) {
    let e = DistributedDataParallel::new(mlp(0, &Device::Cpu), pg)
        .err()
        .expect("an Err")
        .to_string();
    assert!(
        e.contains("module") && e.contains("Cpu") && e.contains("to_device"),
        "{e}"
    );
}

/// `SyncBatchNorm::convert` of a chain with a `BatchNorm1d` equals the batch norm on
/// the concatenated batch: output rows, the input's gradient, the parameters' summed
/// gradients and the running statistics; in eval mode it uses the running statistics.
fn sync_batch_norm_is_the_whole_batch(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    let bn = || {
        let layer = nn::BatchNorm1d::with_options(3, 0.3, 1e-4, &dev).unwrap();
        layer
            .weight
            .copy_(&Tensor::from_vec(vec![1.5f32, -0.5, 2.0], &[3], &dev).unwrap())
            .unwrap();
        nn::Sequential::new().add(layer)
    };
    let sync = nn::SyncBatchNorm::convert(bn(), pg).unwrap();
    let reference = bn();
    assert_eq!(sync.get(0).unwrap().type_name(), "SyncBatchNorm");
    let rows = world * 4;
    let all: Vec<f32> = (0..rows * 3 * 2)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 4.0 + (i % 3) as f32)
        .collect();
    let whole = Tensor::from_vec(all, &[rows, 3, 2], &dev).unwrap();
    let mine = whole
        .narrow(0, rank * 4, 4)
        .unwrap()
        .contiguous()
        .unwrap()
        .requires_grad();
    let whole = whole.requires_grad();
    // A loss that weighs every output differently, summed over the ranks.
    let weights = |n: usize, from: usize| {
        let w: Vec<f32> = (from * 6..(from + n) * 6)
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        Tensor::from_vec(w, &[n, 3, 2], &dev).unwrap()
    };
    let y = sync.forward(&mine).unwrap();
    y.mul(&weights(4, rank * 4))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let y_ref = reference.forward(&whole).unwrap();
    y_ref
        .mul(&weights(rows, 0))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let rows_of = |t: &Tensor| {
        vec![t
            .narrow(0, rank * 4, 4)
            .unwrap()
            .contiguous()
            .unwrap()
            .to_vec::<f32>()
            .unwrap()]
    };
    let flat = |t: &Tensor| vec![t.contiguous().unwrap().to_vec::<f32>().unwrap()];
    assert_close("output", &flat(&y), &rows_of(&y_ref));
    assert_close(
        "input grad",
        &flat(&mine.grad().unwrap()),
        &rows_of(&whole.grad().unwrap()),
    );
    for (p, r) in sync.parameters().iter().zip(reference.parameters()) {
        let g = p.grad().unwrap();
        pg.all_reduce(&g, kiln::distributed::ReduceOp::Sum).unwrap();
        assert_close("parameter grad", &flat(&g), &flat(&r.grad().unwrap()));
    }
    for ((name, b), (_, r)) in sync.named_buffers().iter().zip(reference.named_buffers()) {
        let (b, r) = (
            b.to_dtype(kiln::DType::F64).unwrap(),
            r.to_dtype(kiln::DType::F64).unwrap(),
        );
        let as_f32 = |t: &Tensor| {
            vec![t
                .to_dtype(kiln::DType::F32)
                .unwrap()
                .reshape(&[t.numel()])
                .unwrap()
                .to_vec::<f32>()
                .unwrap()]
        };
        assert_close(name, &as_f32(&b), &as_f32(&r));
    }
    sync.eval();
    reference.eval();
    let (y, y_ref) = (
        sync.forward(&mine).unwrap(),
        reference.forward(&whole).unwrap(),
    );
    assert_close("eval", &flat(&y), &rows_of(&y_ref));
}

/// What a rank does in the parent's test.
#[test]
fn child() {
    let Some(mode) = child_mode() else { return };
    match mode.as_str() {
        "train" => {
            let pg = join(Duration::from_secs(120));
            same_as_one_process(&pg);
            no_sync_accumulates(&pg);
            unused_parameters(&pg);
            sync_batch_norm_is_the_whole_batch(&pg);
            if pg.world_size() == 2 {
                #[cfg(feature = "cuda-emulator")]
                overlap_is_visible(&pg);
                cpu_model_is_an_err(&pg);
            }
            pg.barrier().unwrap();
        }
        "errs" => {
            let pg = join(Duration::from_secs(8));
            let (rank, last, dev) = (pg.rank(), pg.world_size() - 1, pg.device());
            let ddp = DistributedDataParallel::new(mlp(0, &dev), &pg).unwrap();
            let (x, y) = batch(0, pg.world_size(), &dev);
            if rank == last {
                // Its forward fails (a batch of the wrong width) and it leaves.
                let e = ddp.forward(&share(&y, rank)).unwrap_err();
                eprintln!("rank {rank} failed: {e}");
                return;
            }
            let loss = F::mse_loss(&ddp.forward(&share(&x, rank)).unwrap(), &share(&y, rank));
            let e = loss.unwrap().backward().unwrap_err().to_string();
            // "exited": named by the dead-process check, not at the timeout.
            assert!(
                e.contains(&format!("rank {last} (pid")) && e.contains("exited"),
                "{e}"
            );
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn ddp_on_two_ranks() {
    run_on_ranks("train", 2);
}

#[test]
fn ddp_on_four_ranks() {
    run_on_ranks("train", 4);
}

#[test]
fn a_rank_that_errors_is_named_by_the_others() {
    if child_mode().is_some() || !emulated() {
        return;
    }
    let out = outcomes(spawn_ranks("errs", 2));
    for (rank, (passed, text)) in out.iter().enumerate() {
        assert!(passed, "rank {rank}: {text}");
    }
}

/// Without the emulated device there is no group to wrap a model for.
#[test]
fn without_a_device_there_is_no_group() {
    assert_no_group_without_a_device();
}
