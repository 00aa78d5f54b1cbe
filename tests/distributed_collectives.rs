//! `ProcessGroup`'s collectives: 2 and 3 ranks, each a child process of this test
//! binary on its own emulated CUDA device (`KILN_CUDA_EMULATE_DEVICES`), exchanging
//! through the emulated NCCL; every collective and reduction in every dtype against
//! values computed here, the argument errors, and a rank that dies making the others
//! fail with its name within the timeout. Without the emulated device (a CPU-only build
//! or run), the tests check the `Err` that says why there are no collectives.

mod common;

use common::ranks::{
    assert_no_group_without_a_device, child_mode, emulated, join, outcomes, run_on_ranks,
    spawn_ranks,
};
use kiln::distributed::{self as dist, ProcessGroup, ReduceOp};
use kiln::{DType, Device, Tensor};
use std::time::Duration;

const DTYPES: [DType; 5] = [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64];
const SHAPE: [usize; 2] = [3, 5];

/// Rank `rank`'s element `i` for `salt`: small integers, exact in every dtype.
fn value(rank: usize, i: usize, salt: usize) -> f64 {
    ((rank * 7 + i * 3 + salt) % 11) as f64 - 5.0
}

/// Rank `rank`'s tensor of `shape` for `salt` on `dev`.
fn input(rank: usize, shape: &[usize], salt: usize, dtype: DType, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| value(rank, i, salt)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(dev)
        .unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// Asserts `got` equals `want` to `dtype`'s rounding.
fn assert_close(what: &str, dtype: DType, got: &[f64], want: &[f64]) {
    let eps = match dtype {
        DType::F16 => 1e-3,
        DType::BF16 => 8e-3,
        DType::F32 => 1e-7,
        _ => 1e-15,
    };
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= eps * w.abs(),
            "{what} {dtype:?}: {got:?} != {want:?}"
        );
    }
}

/// The reduction `op` of `world` ranks' `value(_, i, salt)` for element `i`.
fn reduced(op: ReduceOp, world: usize, i: usize, salt: usize) -> f64 {
    let all = (0..world).map(|r| value(r, i, salt));
    match op {
        ReduceOp::Sum => all.sum(),
        ReduceOp::Avg => all.sum::<f64>() / world as f64,
        ReduceOp::Max => all.fold(f64::MIN, f64::max),
        ReduceOp::Min => all.fold(f64::MAX, f64::min),
    }
}

/// Every collective in every dtype on this rank, against the values computed here.
fn exercise_collectives(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    assert_eq!(dev, Device::cuda(pg.local_rank()).unwrap());
    let n: usize = SHAPE.iter().product();
    for dtype in DTYPES {
        for (salt, op) in [ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min]
            .into_iter()
            .enumerate()
        {
            let t = input(rank, &SHAPE, salt, dtype, &dev);
            if op == ReduceOp::Avg && dtype == DType::I64 {
                let err = pg.all_reduce(&t, op).unwrap_err().to_string();
                assert!(err.contains("op") && err.contains("Avg"), "{err}");
                continue;
            }
            pg.all_reduce(&t, op).unwrap();
            let want: Vec<f64> = (0..n).map(|i| reduced(op, world, i, salt)).collect();
            assert_close(&format!("all_reduce {op:?}"), dtype, &values(&t), &want);
        }
        // Two async collectives queued before either is waited for.
        let (a, b) = (
            input(rank, &SHAPE, 5, dtype, &dev),
            input(rank, &SHAPE, 6, dtype, &dev),
        );
        let (wa, wb) = (
            pg.all_reduce_async(&a, ReduceOp::Sum).unwrap(),
            pg.all_reduce_async(&b, ReduceOp::Max).unwrap(),
        );
        wb.wait().unwrap();
        wa.wait().unwrap();
        let want = |op, salt| {
            (0..n)
                .map(|i| reduced(op, world, i, salt))
                .collect::<Vec<_>>()
        };
        assert_close(
            "all_reduce_async",
            dtype,
            &values(&a),
            &want(ReduceOp::Sum, 5),
        );
        assert_close(
            "all_reduce_async",
            dtype,
            &values(&b),
            &want(ReduceOp::Max, 6),
        );

        let t = input(rank, &SHAPE, 7, dtype, &dev);
        pg.broadcast(&t, world - 1).unwrap();
        let root: Vec<f64> = (0..n).map(|i| value(world - 1, i, 7)).collect();
        assert_close("broadcast", dtype, &values(&t), &root);

        let parts = pg.all_gather(&input(rank, &SHAPE, 8, dtype, &dev)).unwrap();
        assert_eq!(parts.len(), world);
        for (r, part) in parts.iter().enumerate() {
            assert_eq!(
                (part.shape(), part.dtype(), part.device()),
                (&SHAPE[..], dtype, dev)
            );
            let want: Vec<f64> = (0..n).map(|i| value(r, i, 8)).collect();
            assert_close("all_gather", dtype, &values(part), &want);
        }

        let big = [world * 2, 3];
        let out = Tensor::zeros(&[2, 3], dtype, &dev).unwrap();
        pg.reduce_scatter(&out, &input(rank, &big, 9, dtype, &dev), ReduceOp::Sum)
            .unwrap();
        let want: Vec<f64> = (0..6)
            .map(|i| reduced(ReduceOp::Sum, world, rank * 6 + i, 9))
            .collect();
        assert_close("reduce_scatter", dtype, &values(&out), &want);
    }
    pg.barrier().unwrap();
}

/// Each bad argument is an `Err` naming it; nothing is exchanged, so the ranks stay
/// in step.
fn exercise_errors(pg: &ProcessGroup) {
    let (rank, world, dev) = (pg.rank(), pg.world_size(), pg.device());
    let err = |r: kiln::Result<()>| r.unwrap_err().to_string();
    let cpu = input(rank, &SHAPE, 0, DType::F32, &Device::Cpu);
    let e = err(pg.all_reduce(&cpu, ReduceOp::Sum));
    assert!(
        e.contains("Cpu") && e.contains("NCCL moves device memory"),
        "{e}"
    );
    let other = Device::cuda((pg.local_rank() + 1) % world).unwrap();
    let e = err(pg.broadcast(&input(rank, &SHAPE, 0, DType::F32, &other), 0));
    assert!(e.contains("this group's collectives run on"), "{e}");
    let t = input(rank, &SHAPE, 0, DType::F32, &dev);
    let e = err(pg.all_reduce(&t.transpose(0, 1).unwrap(), ReduceOp::Sum));
    assert!(e.contains("not contiguous"), "{e}");
    let e = err(pg.all_reduce(
        &Tensor::zeros(&SHAPE, DType::U8, &dev).unwrap(),
        ReduceOp::Max,
    ));
    assert!(e.contains("dtype U8"), "{e}");
    let e = err(pg.broadcast(&t, world));
    assert!(e.contains("root"), "{e}");
    let out = Tensor::zeros(&[2, 3], DType::F32, &dev).unwrap();
    let wrong = input(rank, &[world * 2 + 1, 3], 0, DType::F32, &dev);
    let e = err(pg.reduce_scatter(&out, &wrong, ReduceOp::Sum));
    assert!(e.contains("input") && e.contains("shape"), "{e}");
    let e = err(pg.reduce_scatter(
        &out,
        &input(rank, &[world * 2, 3], 0, DType::F64, &dev),
        ReduceOp::Sum,
    ));
    assert!(e.contains("dtype"), "{e}");
    // The group still works after the refused calls.
    pg.all_reduce(&t, ReduceOp::Sum).unwrap();
    pg.barrier().unwrap();
}

/// What a rank does in the parent's test.
#[test]
fn child() {
    let Some(mode) = child_mode() else { return };
    match mode.as_str() {
        "collectives" => {
            let pg = join(Duration::from_secs(120));
            let sampler = kiln::data::DistributedSampler::new(10, &pg);
            assert_eq!(
                (sampler.rank(), sampler.num_replicas()),
                (pg.rank(), pg.world_size())
            );
            exercise_collectives(&pg);
            exercise_errors(&pg);
        }
        "dies" => {
            let pg = join(Duration::from_secs(8));
            if pg.rank() == pg.world_size() - 1 {
                // Leaves without a word, as a crashed rank would.
                std::process::exit(3);
            }
            let t = Tensor::ones(&[4], DType::F32, &pg.device()).unwrap();
            let e = pg.all_reduce(&t, ReduceOp::Sum).unwrap_err().to_string();
            let last = pg.world_size() - 1;
            // "exited" comes only from the dead-process check; the timeout's error
            // says "did not reach", so this also proves it was named before the timeout.
            assert!(
                e.contains(&format!("rank {last} (pid")) && e.contains("exited"),
                "{e}"
            );
        }
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn collectives_on_two_ranks() {
    run_on_ranks("collectives", 2);
}

#[test]
fn collectives_on_three_ranks() {
    run_on_ranks("collectives", 3);
}

#[test]
fn a_rank_that_dies_is_named_by_the_others() {
    if child_mode().is_some() || !emulated() {
        return;
    }
    let out = outcomes(spawn_ranks("dies", 3));
    for (rank, (passed, text)) in out.iter().enumerate().take(2) {
        assert!(passed, "rank {rank}: {text}");
    }
    assert!(!out[2].0, "the dying rank exits without passing");
}

/// Without the emulated device (and no GPU here), joining a group is an `Err` that says
/// why there is no CUDA device, and `backend_info` says why there is no NCCL.
#[test]
fn without_a_device_the_group_is_a_clear_err() {
    assert_no_group_without_a_device();
    if child_mode().is_some() || emulated() {
        return;
    }
    match dist::backend_info() {
        Ok(info) => assert!(info.starts_with("NCCL "), "{info}"),
        Err(e) => assert!(
            e.to_string().contains("libnccl.so.2") || e.to_string().contains("cuda-emulator"),
            "{e}"
        ),
    }
}

#[test]
fn backend_info_names_the_emulated_nccl() {
    if child_mode().is_none() && emulated() {
        assert!(dist::backend_info().unwrap().contains("emulated NCCL"));
    }
}
