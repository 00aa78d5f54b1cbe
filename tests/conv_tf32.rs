//! f32 convolutions with TF32 on (`kiln::cuda::conv_allow_tf32()`, the default, like
//! `torch.backends.cudnn.allow_tf32`): the tensor-core kernels (conv_tc.cu) round their
//! inputs to TF32 (11 significant bits) and accumulate in f32. The value and both
//! gradients stay within TF32's error bound of the exact result and, on inputs with
//! full 24-bit mantissas, outside f32's (so the TF32 kernels ran); with the switch off
//! the same convolution keeps f32's bound.
//!
//! A test binary of its own: the switch is process-wide, and `common::cuda_or_skip`
//! (used by the golden tests) turns it off. Here every test holds one lock and leaves
//! the switch on, its default, when it ends.

mod common;

use common::host;
use kiln::nn::functional as F;
use kiln::nn::Conv2dOpts;
use kiln::{DType, Device, Tensor};
use std::sync::{Mutex, MutexGuard};

/// Holds the lock on the process-wide switch; turns TF32 back on when dropped.
struct Serial {
    _guard: MutexGuard<'static, ()>,
}

impl Drop for Serial {
    fn drop(&mut self) {
        kiln::cuda::set_conv_allow_tf32(true);
    }
}

fn serial() -> Serial {
    static LOCK: Mutex<()> = Mutex::new(());
    Serial {
        _guard: LOCK.lock().unwrap_or_else(|e| e.into_inner()),
    }
}

#[test]
fn conv_tf32_is_on_by_default_and_round_trips() {
    let _s = serial();
    assert!(kiln::cuda::conv_allow_tf32(), "conv TF32 is on by default");
    kiln::cuda::set_conv_allow_tf32(false);
    assert!(!kiln::cuda::conv_allow_tf32());
    kiln::cuda::set_conv_allow_tf32(true);
    assert!(kiln::cuda::conv_allow_tf32());
}

/// One convolution: input and weight shapes, options.
struct Case {
    x: [usize; 4],
    w: [usize; 4],
    opts: Conv2dOpts,
}

impl Case {
    /// Terms of each result's sums, `[value, grad x, grad w, grad b]`: the forward's
    /// K (+1 for the bias), the input gradient's, and the weight (and bias) gradient's
    /// batch positions (+1 per batch chunk, at most one per image, for the chunk sum).
    fn terms(&self, y: &[usize]) -> [usize; 4] {
        let taps = self.w[2] * self.w[3];
        let groups = self.opts.groups;
        let positions = y[0] * y[2] * y[3];
        [
            self.w[1] * taps + 1,
            self.w[0] / groups * taps,
            positions + y[0],
            positions + y[0],
        ]
    }
}

/// The value and every gradient, `[y, grad x, grad w, grad b]`, of the convolution
/// of `x`, `w`, `b` under upstream gradient `gy`, on the device the inputs are on.
fn run(case: &Case, x: Tensor, w: Tensor, b: Tensor, gy: &Tensor) -> Vec<Tensor> {
    let (x, w, b) = (x.requires_grad(), w.requires_grad(), b.requires_grad());
    let y = F::conv2d(&x, &w, Some(&b), case.opts).unwrap();
    y.mul(gy).unwrap().sum_all().unwrap().backward().unwrap();
    vec![y, x.grad().unwrap(), w.grad().unwrap(), b.grad().unwrap()]
}

/// Per result, the largest error of the device's f32 results against the f64 ones,
/// as a fraction of the sum of absolute products behind each element, in units of
/// 2^-24 per term (the terms of each result come second): f32 accumulation stays
/// below 1, TF32's rounded inputs reach up to 2^14 / terms more.
fn scaled_errors(case: &Case, dev: &Device, tf32: bool) -> (Vec<f64>, [usize; 4]) {
    kiln::manual_seed(7);
    let randn = |s: &[usize]| Tensor::randn(s, DType::F64, &Device::Cpu).unwrap();
    let (x, w, b) = (randn(&case.x), randn(&case.w), randn(&[case.w[0]]));
    let y_shape = F::conv2d(&x, &w, None, case.opts).unwrap().shape().to_vec();
    let gy = randn(&y_shape);
    // The inputs in f32 (full 24-bit mantissas), and exactly those values in f64.
    let f32s = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let exact = |t: &Tensor| f32s(t).to_dtype(DType::F64).unwrap();
    let on_dev = |t: &Tensor| f32s(t).to_device(dev).unwrap();
    kiln::cuda::set_conv_allow_tf32(tf32);
    let got = run(case, on_dev(&x), on_dev(&w), on_dev(&b), &on_dev(&gy));
    let want = run(case, exact(&x), exact(&w), exact(&b), &exact(&gy));
    let abs = |t: &Tensor| exact(t).abs().unwrap();
    let scale = run(case, abs(&x), abs(&w), abs(&b), &abs(&gy));
    let terms = case.terms(&y_shape);
    let errors = (0..4)
        .map(|i| {
            assert_eq!(got[i].dtype(), DType::F32);
            assert_eq!(got[i].device(), *dev);
            let (g, w, s) = (host(&got[i]), host(&want[i]), host(&scale[i]));
            let unit = terms[i] as f64 * f64::powi(2.0, -24);
            g.iter()
                .zip(&w)
                .zip(&s)
                .map(|((g, w), s)| (g - w).abs() / (s * unit).max(f64::MIN_POSITIVE))
                .fold(0.0, f64::max)
        })
        .collect();
    (errors, terms)
}

/// Checks `case`'s TF32 and exact f32 errors; on the emulated device, also that the
/// TF32 forward ran as kernel `forward` and the input gradient as `input_grad`.
fn check(name: &str, [forward, input_grad]: [&str; 2], case: Case) {
    let _s = serial();
    let Some(dev) = common::cuda_or_skip(name) else {
        return;
    };
    // Every test here holds the lock, so launch counts do not interleave.
    let before = [forward, input_grad].map(common::launches);
    // TF32: each product's inputs are rounded to nearest with 11 significant bits
    // (relative error <= 2^-11 each, so <= 2^-10 + 2^-22 per product), then summed in
    // f32 (<= terms * 2^-24, relative to the sum of absolute products). In units of
    // terms * 2^-24: (2^-10 + 2^-22) / (terms * 2^-24) + 1.
    let (tf32, terms) = scaled_errors(&case, &dev, true);
    for (kernel, before) in [forward, input_grad].into_iter().zip(before) {
        if let Some(before) = before {
            assert!(
                common::launches(kernel) > Some(before),
                "{name}: {kernel} ran"
            );
        }
    }
    let (exact, _) = scaled_errors(&case, &dev, false);
    for (i, what) in ["value", "grad x", "grad w", "grad b"].iter().enumerate() {
        let bound = (f64::powi(2.0, -10) + f64::powi(2.0, -22))
            / (terms[i] as f64 * f64::powi(2.0, -24))
            + 1.0;
        assert!(
            tf32[i] <= bound,
            "{name} {what}: TF32 error {} > bound {bound}",
            tf32[i]
        );
        assert!(exact[i] <= 1.0, "{name} {what}: f32 error {}", exact[i]);
    }
    // The bias gradient is a plain f32 sum either way; the GEMMs' results must show
    // TF32's rounding: errors no f32 accumulation makes.
    for (i, what) in ["value", "grad x", "grad w"].iter().enumerate() {
        assert!(
            tf32[i] > 1.0,
            "{name} {what}: TF32 error {} within f32's (did TF32 run?)",
            tf32[i]
        );
    }
}

/// 72 output channels (a 128-row tile for the forward and the weight gradient, a
/// 64-row one for the input gradient), padding, bias; 4 input channels, a 16-byte
/// chunk of f32, so the forward runs channels-last, both operands copied by cp.async
/// (and rounded to TF32 in the fragments), and so does the input gradient (72 output
/// channels: 18 chunks), its B copied.
#[test]
fn tf32_wide_layer_is_within_tf32s_bound() {
    check(
        "tf32_wide_layer_is_within_tf32s_bound",
        ["conv_tc_fwd_nhwc_tf32", "conv_tc_bwd_input_nhwc_tf32"],
        Case {
            x: [2, 4, 6, 5],
            w: [72, 4, 3, 3],
            opts: Conv2dOpts::new().padding(1),
        },
    );
}

/// Stride 2, dilation, groups 2; K = 18, so the forward gathers the weights (and,
/// with 2 channels per group, the input, in NCHW).
#[test]
fn tf32_strided_grouped_is_within_tf32s_bound() {
    check(
        "tf32_strided_grouped_is_within_tf32s_bound",
        ["conv_tc_fwd_tf32", "conv_tc_bwd_input_tf32"],
        Case {
            x: [2, 4, 9, 8],
            w: [6, 2, 3, 3],
            opts: Conv2dOpts::new()
                .stride(2)
                .padding(2)
                .dilation((2, 1))
                .groups(2),
        },
    );
}

/// The channels-last forward in TF32 (8 channels per group, two chunks of f32): stride
/// 2, padding, groups 2, K = 72 (a 16-float slice cut at a chunk).
#[test]
fn tf32_channels_last_is_within_tf32s_bound() {
    check(
        "tf32_channels_last_is_within_tf32s_bound",
        ["conv_tc_fwd_nhwc_tf32", "conv_tc_bwd_input_tf32"],
        Case {
            x: [2, 16, 9, 8],
            w: [12, 8, 3, 3],
            opts: Conv2dOpts::new().stride(2).padding(1).groups(2),
        },
    );
}

/// The channels-last input gradient in TF32 (8 output channels per group, two chunks
/// of f32; 3 input channels, so the forward gathers in NCHW): stride 2 (phases, one of
/// them tapless in x through dilation 2), padding, groups 2.
#[test]
fn tf32_channels_last_input_gradient_is_within_tf32s_bound() {
    check(
        "tf32_channels_last_input_gradient_is_within_tf32s_bound",
        ["conv_tc_fwd_tf32", "conv_tc_bwd_input_nhwc_tf32"],
        Case {
            x: [2, 6, 9, 8],
            w: [16, 3, 3, 3],
            opts: Conv2dOpts::new()
                .stride(2)
                .padding((1, 2))
                .dilation((1, 2))
                .groups(2),
        },
    );
}
