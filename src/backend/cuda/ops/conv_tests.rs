//! The SIMT f16/bf16 convolution kernels serve GPUs below compute capability 8.0, so a
//! build for 8.0 never launches them through `ConvOps`: run all three passes here on
//! the emulated device, against the CPU, on a 3-d convolution.

use super::*;
use crate::backend::cpu::CpuStorage;
use crate::backend::cuda::runtime::emulator;
use crate::backend::BackendStorage;
use half::{bf16, f16};

/// x (2, 6, 3, 7, 6), w (5, 6, 2, 3, 3), stride (1, 2, 1), padding (0, 1, 1).
fn params() -> ConvParams {
    ConvParams {
        n: 2,
        c_in: 6,
        c_out: 5,
        groups: 1,
        input: [3, 7, 6],
        kernel: [2, 3, 3],
        stride: [1, 2, 1],
        pad: [0, 1, 1],
        dilation: [1, 1, 1],
        output: [2, 4, 6],
    }
}

/// `len` values in [-2, 2) with few mantissa bits (exact in bf16).
fn values(len: usize, seed: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 37 + seed * 11) % 64) as f32 / 16.0 - 2.0)
        .collect()
}

fn halves(v: &[f32], bf: bool) -> CpuStorage {
    if bf {
        CpuStorage::BF16(v.iter().map(|&x| bf16::from_f32(x)).collect())
    } else {
        CpuStorage::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
    }
}

fn f32s(s: CpuStorage) -> Vec<f32> {
    match s.convert(DType::F32).unwrap() {
        CpuStorage::F32(v) => v,
        _ => unreachable!("converted to f32"),
    }
}

#[test]
fn the_simt_half_kernels_match_the_cpu() {
    let (exec, mem) = emulator::open();
    let dev = Arc::new(CudaDevice::new(0, Box::new(exec), Box::new(mem)));
    let p = params();
    let [d, h, w] = p.input;
    let [kd, kh, kw] = p.kernel;
    let [od, oh, ow] = p.output;
    let (xl, wl) = (
        Layout::contiguous(&[p.n, p.c_in, d, h, w]),
        Layout::contiguous(&[p.c_out, p.c_in, kd, kh, kw]),
    );
    let yl = Layout::contiguous(&[p.n, p.c_out, od, oh, ow]);
    for bf in [false, true] {
        let x = halves(&values(p.input_len(), 1), bf);
        let w = halves(&values(p.weight_len(), 2), bf);
        let gy = halves(&values(p.output_len(), 3), bf);
        let up = |s: &CpuStorage| CudaStorage::from_cpu(&dev, s).unwrap();
        let (dx, dw, dgy) = (up(&x), up(&w), up(&gy));
        let pairs = [
            (
                dx.conv_on(&xl, &dw, &wl, None, &p, false).unwrap(),
                x.conv(&xl, &w, &wl, None, &p).unwrap(),
                &yl,
            ),
            (
                dgy.conv_backward_input_on(&yl, &dw, &wl, None, &p, false)
                    .unwrap(),
                gy.conv_backward_input(&yl, &w, &wl, None, &p).unwrap(),
                &xl,
            ),
            (
                dx.conv_backward_weight_on(&xl, &dgy, &yl, &p, false)
                    .unwrap(),
                x.conv_backward_weight(&xl, &gy, &yl, &p).unwrap(),
                &wl,
            ),
        ];
        // Both sum exact products in f32 and round once: at most one rounding apart.
        let tol = if bf { 1.6e-2 } else { 2e-3 };
        for (pass, (got, want, layout)) in pairs.into_iter().enumerate() {
            let (got, want) = (f32s(got.to_cpu(layout).unwrap()), f32s(want));
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= tol * (1.0 + w.abs()),
                    "bf16 {bf}, pass {pass}, element {i}: {g} vs {w}"
                );
            }
        }
    }
    let counts = emulator::launch_counts();
    for name in [
        "conv_fwd_f16",
        "conv_fwd_bf16",
        "conv_bwd_input_f16",
        "conv_bwd_input_bf16",
        "conv_bwd_weight_f16",
        "conv_bwd_weight_bf16",
    ] {
        assert!(
            counts.iter().any(|&(k, n)| k == name && n > 0),
            "{name} ran"
        );
    }
}
