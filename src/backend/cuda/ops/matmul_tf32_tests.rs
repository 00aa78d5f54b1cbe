//! The TF32 tensor-core GEMM (`gemm_tc_tf32`) on the emulated device, reached through
//! `CudaStorage::gemm` (no public switch selects it yet): within TF32's error bound of
//! the exact product and measurably outside f32's (so it did round to TF32), while with
//! TF32 off f32 products keep f32's bound.

use super::*;
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::device::CudaDevice;
use crate::backend::cuda::runtime::emulator;
use crate::backend::BackendStorage;
use std::sync::Arc;

/// A (batch, rows, cols) operand in some layout, with its values in logical order.
pub(super) struct Operand {
    pub(super) layout: Layout,
    pub(super) stored: Vec<f32>,
    pub(super) logical: Vec<f64>,
}

/// `n` values with full 24-bit mantissas in [-4, 4) (TF32 keeps 11 bits of them).
pub(super) fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 * 8.0 - 4.0
        })
        .collect()
}

/// The operand at `offset` with `strides` (batch, row, col) in storage of `len`
/// elements.
pub(super) fn strided_operand(
    shape: [usize; 3],
    strides: [usize; 3],
    offset: usize,
    len: usize,
    seed: u64,
) -> Operand {
    let [batch, rows, cols] = shape;
    let stored = values(len, seed);
    let mut logical = Vec::with_capacity(batch * rows * cols);
    for z in 0..batch {
        for r in 0..rows {
            for c in 0..cols {
                let at = offset + z * strides[0] + r * strides[1] + c * strides[2];
                logical.push(stored[at] as f64);
            }
        }
    }
    let layout = Layout {
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        offset,
    };
    Operand {
        layout,
        stored,
        logical,
    }
}

/// A contiguous operand, or one stored transposed (a transposed view).
pub(super) fn operand(
    batch: usize,
    rows: usize,
    cols: usize,
    transposed: bool,
    seed: u64,
) -> Operand {
    let strides = if transposed {
        [rows * cols, 1, rows]
    } else {
        [rows * cols, cols, 1]
    };
    strided_operand([batch, rows, cols], strides, 0, batch * rows * cols, seed)
}

/// The exact (f64) element `[z, r, c]` of the product `a`·`b`, and Σ|a b| over its
/// terms (the scale of the error bounds).
pub(super) fn exact_element(a: &Operand, b: &Operand, [z, r, c]: [usize; 3]) -> (f64, f64) {
    let [_, m, k] = a.layout.shape[..] else {
        unreachable!("3-D")
    };
    let n = b.layout.shape[2];
    (0..k)
        .map(|kk| a.logical[(z * m + r) * k + kk] * b.logical[(z * k + kk) * n + c])
        .fold((0.0, 0.0), |(exact, size), p| (exact + p, size + p.abs()))
}

/// `a`·`b` (uploaded as `ga`, `gb`) by `CudaStorage::gemm` with `kernels` and `ep`,
/// back on the host.
pub(super) fn gemm_f32(
    ga: &CudaStorage,
    a: &Operand,
    gb: &CudaStorage,
    b: &Operand,
    kernels: Kernels,
    ep: Epilogue,
) -> Vec<f32> {
    let [batch, m, k] = a.layout.shape[..] else {
        unreachable!("3-D")
    };
    let n = b.layout.shape[2];
    let dims = MatmulDims { batch, m, n, k };
    let got = ga
        .gemm(&a.layout, gb, &b.layout, dims, kernels, ep)
        .unwrap();
    let CpuStorage::F32(got) = got.to_cpu(&Layout::contiguous(&[batch, m, n])).unwrap() else {
        unreachable!("an f32 product")
    };
    got
}

#[test]
fn tf32_products_round_their_inputs_and_f32_products_stay_exact() {
    let (exec, mem) = emulator::open();
    let dev = Arc::new(CudaDevice::new(0, Box::new(exec), Box::new(mem)));
    // (batch, m, k, n, A transposed, B transposed)
    let cases = [
        (1, 1, 1, 1, false, false),
        (2, 129, 200, 136, false, false),
        (1, 70, 33, 65, false, true),
        (1, 130, 17, 129, true, false),
    ];
    let mut outside_f32_bound = 0;
    for (i, &(batch, m, k, n, at, bt)) in cases.iter().enumerate() {
        let a = operand(batch, m, k, at, 2 * i as u64 + 1);
        let b = operand(batch, k, n, bt, 2 * i as u64 + 2);
        let ga = CudaStorage::from_cpu(&dev, &CpuStorage::F32(a.stored.clone())).unwrap();
        let gb = CudaStorage::from_cpu(&dev, &CpuStorage::F32(b.stored.clone())).unwrap();
        for tf32 in [true, false] {
            let kernels = Kernels {
                tensor_cores: true,
                tf32,
            };
            let got = gemm_f32(&ga, &a, &gb, &b, kernels, Epilogue::default());
            for z in 0..batch {
                for r in 0..m {
                    for c in 0..n {
                        let (exact, size) = exact_element(&a, &b, [z, r, c]);
                        // f32 accumulation: (k + 2)·2^-23·Σ|a b|; TF32 inputs (2^-11
                        // each, rounded to nearest) add 2^-10·Σ|a b|.
                        let f32_bound = (k + 2) as f64 * 2f64.powi(-23) * size;
                        let bound = if tf32 {
                            f32_bound + 2f64.powi(-10) * size
                        } else {
                            f32_bound
                        };
                        let err = (got[(z * m + r) * n + c] as f64 - exact).abs();
                        assert!(
                            err <= bound,
                            "tf32 {tf32}, case {i}, element ({z}, {r}, {c}): error {err:e} > {bound:e}"
                        );
                        if tf32 && err > f32_bound {
                            outside_f32_bound += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(
        outside_f32_bound > 1000,
        "TF32 rounding shows in {outside_f32_bound} elements only"
    );
    let counts = emulator::launch_counts();
    assert!(
        counts.iter().any(|&(k, n)| k == "gemm_tc_tf32" && n > 0),
        "gemm_tc_tf32 ran"
    );
}
