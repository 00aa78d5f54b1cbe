//! kiln's 128x128 f32 GEMMs — the SIMT kernel (`gemm_big_f32`) and the TF32 tensor-core
//! kernel — on the emulated device, with forced split-K parts so that every fetch path,
//! split-K and the epilogue run whatever the device's size: within f32's (TF32's) error
//! bound of the exact product for contiguous, transposed, strided, misaligned and
//! broadcast operands, odd sizes and k tails; split-K deterministic; bias and ReLU
//! applied; and the host's split rule.

use super::tf32_tests::{exact_element, gemm_f32, operand, strided_operand, values, Operand};
use super::*;
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::device::CudaDevice;
use crate::backend::cuda::runtime::emulator;
use std::sync::Arc;

/// One product: operands, split-K parts, bias (its values and offset), ReLU.
struct Case {
    a: Operand,
    b: Operand,
    splits: usize,
    bias: Option<(Vec<f32>, usize)>,
    relu: bool,
}

/// Runs `case` on the 128x128 kernel `tf32` selects, checks every element against the
/// exact product (bias and ReLU applied), and returns the result.
fn run(dev: &Arc<CudaDevice>, name: &str, case: &Case, tf32: bool) -> Vec<f32> {
    let [batch, m, k] = case.a.layout.shape[..] else {
        unreachable!("3-D")
    };
    let n = case.b.layout.shape[2];
    let up = |v: &[f32]| CudaStorage::from_cpu(dev, &CpuStorage::F32(v.to_vec())).unwrap();
    let (ga, gb) = (up(&case.a.stored), up(&case.b.stored));
    let gbias = case.bias.as_ref().map(|(v, _)| up(v));
    let ep = Epilogue {
        splits: Some(case.splits),
        bias: gbias
            .as_ref()
            .zip(case.bias.as_ref())
            .map(|(g, (_, o))| (g, *o)),
        act: if case.relu {
            Activation::Relu
        } else {
            Activation::None
        },
    };
    let kernels = Kernels {
        tensor_cores: true,
        tf32,
    };
    let got = gemm_f32(&ga, &case.a, &gb, &case.b, kernels, ep);
    for z in 0..batch {
        for r in 0..m {
            for c in 0..n {
                let (mut exact, mut size) = exact_element(&case.a, &case.b, [z, r, c]);
                if let Some((v, o)) = &case.bias {
                    exact += v[o + c] as f64;
                    size += (v[o + c] as f64).abs();
                }
                if case.relu && exact <= 0.0 {
                    exact = 0.0; // ReLU moves no value further from the exact one
                }
                // f32 accumulation over k, the partials' sum and the bias add; TF32
                // inputs (2^-11 each, rounded to nearest) add 2^-10·Σ|a b|.
                let tf32_bound = if tf32 { 2f64.powi(-10) * size } else { 0.0 };
                let bound = (k + 3 + case.splits) as f64 * 2f64.powi(-23) * size + tf32_bound;
                let g = got[(z * m + r) * n + c];
                let err = (g as f64 - exact).abs();
                assert!(
                    err <= bound && !(case.relu && g < 0.0),
                    "{name}, tf32 {tf32}, element ({z}, {r}, {c}): {g} vs {exact}, error {err:e} > {bound:e}"
                );
            }
        }
    }
    got
}

fn row_major(batch: usize, rows: usize, cols: usize, seed: u64) -> Operand {
    operand(batch, rows, cols, false, seed)
}

fn transposed(batch: usize, rows: usize, cols: usize, seed: u64) -> Operand {
    operand(batch, rows, cols, true, seed)
}

#[test]
fn the_128x128_f32_kernels_are_within_bounds_for_every_layout_split_and_epilogue() {
    let (exec, mem) = emulator::open();
    let dev = Arc::new(CudaDevice::new(0, Box::new(exec), Box::new(mem)));
    let plain = |a, b| Case {
        a,
        b,
        splits: 1,
        bias: None,
        relu: false,
    };
    let cases = [
        // A k-contiguous and aligned (16-byte loads, transposed into shared memory);
        // B n-contiguous and aligned (cp.async). Partial tiles in m and n.
        (
            "row-major, aligned",
            plain(row_major(1, 130, 72, 1), row_major(1, 72, 260, 2)),
        ),
        // A m-contiguous, B k-contiguous, both misaligned (4-scalar fetches), batched,
        // bias and ReLU.
        (
            "transposed, misaligned, bias + relu",
            Case {
                bias: Some((values(260, 3), 0)),
                relu: true,
                ..plain(transposed(2, 130, 70, 4), transposed(2, 70, 260, 5))
            },
        ),
        // A m-contiguous and aligned (cp.async), B k-contiguous and aligned (16-byte
        // loads), a k tail (68 = 8·8 + 4) split in 3 uneven parts, a misaligned bias.
        (
            "transposed, aligned, split-K 3",
            Case {
                splits: 3,
                bias: Some((values(130, 6), 1)),
                relu: true,
                ..plain(transposed(2, 132, 68, 7), transposed(2, 68, 129, 8))
            },
        ),
        // A strided both ways with a broadcast batch; B row-major at a misaligned
        // offset; split-K 2 without epilogue.
        (
            "strided, broadcast, offset, split-K 2",
            Case {
                splits: 2,
                ..plain(
                    strided_operand([2, 129, 33], [0, 66, 2], 0, 129 * 66, 9),
                    strided_operand([2, 33, 132], [33 * 132, 132, 1], 1, 2 * 33 * 132 + 1, 10),
                )
            },
        ),
        // More parts than k slices (empty parts add zeros); a single element.
        (
            "1x1x1, split-K 4",
            Case {
                splits: 4,
                ..plain(row_major(1, 1, 1, 11), row_major(1, 1, 1, 12))
            },
        ),
        // k = 0: the bias alone, through ReLU.
        (
            "k = 0, bias + relu",
            Case {
                bias: Some((values(7, 13), 0)),
                relu: true,
                ..plain(row_major(1, 5, 0, 14), row_major(1, 0, 7, 15))
            },
        ),
    ];
    for tf32 in [false, true] {
        for (name, case) in &cases {
            run(&dev, name, case, tf32);
        }
        // Split-K sums its parts in a fixed order: the same bits every run.
        let (name, split) = &cases[2];
        assert_eq!(
            run(&dev, name, split, tf32),
            run(&dev, name, split, tf32),
            "{name}, tf32 {tf32}, twice"
        );
    }
    let counts = emulator::launch_counts();
    for name in ["gemm_big_f32", "gemm_tc_tf32", "gemm_splitk_reduce_f32"] {
        assert!(
            counts.iter().any(|&(k, n)| k == name && n > 0),
            "{name} ran"
        );
    }
}

#[test]
fn split_k_fills_the_multiprocessors_and_keeps_parts_long() {
    let tiles = |m: usize, n: usize| m.div_ceil(128) * n.div_ceil(128);
    // H200 (132 SMs): a 4096-row linear from 1024 to 4096 features: dW, dX, forward.
    assert_eq!(split_k(tiles(1024, 4096), 4096, 132), 1);
    assert_eq!(split_k(tiles(4096, 1024), 4096, 132), 1);
    assert_eq!(split_k(tiles(4096, 4096), 1024, 132), 1);
    // 16 tiles: ⌈132/16⌉ = 9 parts of 8192/9 ≥ 256 of k.
    assert_eq!(split_k(tiles(512, 512), 8192, 132), 9);
    // Parts capped by k (2 · 256 ≤ 600 < 3 · 256) and by 16.
    assert_eq!(split_k(tiles(100, 100), 600, 132), 2);
    assert_eq!(split_k(tiles(128, 128), 1 << 20, 132), 16);
    assert_eq!(split_k(tiles(100, 100), 500, 132), 1);
    // f32 too short to split takes the 64x64 kernel; halves stay on tensor cores.
    let dims = MatmulDims {
        batch: 1,
        m: 100,
        n: 100,
        k: 500,
    };
    let kernels = Kernels {
        tensor_cores: true,
        tf32: false,
    };
    let pick = |dtype, dims| choose(dtype, dims, kernels, None, 132).unwrap();
    assert_eq!(pick(DType::F32, dims), (KernelId::GemmF32, None));
    assert_eq!(pick(DType::BF16, dims), (KernelId::GemmTcBf16, Some(1)));
    let long = MatmulDims { k: 600, ..dims };
    assert_eq!(pick(DType::F32, long), (KernelId::GemmBigF32, Some(2)));
}
