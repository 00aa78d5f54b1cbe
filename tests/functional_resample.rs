//! Resampling against PyTorch (tests/data/resample.safetensors, written by
//! scripts/golden/resample.py): pixel_shuffle / pixel_unshuffle and interpolate, values
//! and gradients in f64 and f32, contiguous and not; finite differences; empty inputs;
//! argument errors; the modules; and the CUDA parity sweep of kernels/upsample.cu.

mod common;

use common::{assert_close, device_test, strided, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional::{Interp, InterpMode};
use kiln::nn::{self, functional as F, Forward};
use kiln::{DType, Device, Error, Tensor};

/// The dtypes every case runs in, with their tolerances on the CPU.
const DTYPES: [(DType, f64); 2] = [(DType::F64, 1e-12), (DType::F32, 1e-5)];

/// The golden input of case `name` as `dtype` on `dev`: contiguous, or (with
/// `as_view`) the same values as a non-contiguous view.
fn input(g: &Golden, name: &str, dtype: DType, dev: &Device, as_view: bool) -> Tensor {
    let x = g.on(&format!("{name}.x"), dev).to_dtype(dtype).unwrap();
    if as_view { strided(&x) } else { x }.requires_grad()
}

/// Runs `f` on case `name` in every dtype of [`DTYPES`], contiguous and strided, on
/// `dev`; compares the output and the input's gradient with PyTorch's.
fn check_case(name: &str, dev: &Device, f: impl Fn(&Tensor) -> kiln::Result<Tensor>) {
    let g = Golden::load("resample");
    let key = |k: &str| format!("{name}.{k}");
    for (dtype, tol) in DTYPES {
        for as_view in [false, true] {
            let x = input(&g, name, dtype, dev, as_view);
            let y = f(&x).unwrap();
            assert_eq!(y.dtype(), dtype);
            assert_close(&y, &g.get(&key("out")), dev, tol, tol);
            let gy = g.on(&key("gy"), dev).to_dtype(dtype).unwrap();
            y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
            assert_close(&x.grad().unwrap(), &g.get(&key("grad_x")), dev, tol, tol);
        }
    }
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F64, &Device::Cpu).unwrap()
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

// ------------------------------------------------------------------ pixel (un)shuffle

/// One device test per golden case of a pixel shuffle: `name: "case", op, factor;`.
macro_rules! shuffles {
    ($($test:ident: $name:literal, $op:path, $r:expr;)*) => {
        mod pixel_shuffle {
            use super::*;
            device_test! {
                $(fn $test(dev) {
                    check_case($name, dev, |x| $op(x, $r));
                })*
            }
        }
    };
}

shuffles! {
    // F.pixel_shuffle(x[2,8,3,5], 2)
    r2: "shuffle_r2", F::pixel_shuffle, 2;
    // F.pixel_shuffle(x[2,1,9,2,3], 3)   (two batch dimensions)
    r3_two_batch_dims: "shuffle_r3_two_batch_dims", F::pixel_shuffle, 3;
    // F.pixel_shuffle(x[1,3,2,2], 1)
    r1: "shuffle_r1", F::pixel_shuffle, 1;
    // F.pixel_shuffle(x[12,2,3], 2)   (unbatched)
    unbatched: "shuffle_unbatched", F::pixel_shuffle, 2;
    // F.pixel_unshuffle(x[2,3,4,6], 2)
    unshuffle_r2: "unshuffle_r2", F::pixel_unshuffle, 2;
    // F.pixel_unshuffle(x[1,2,6,9], 3)
    unshuffle_r3: "unshuffle_r3", F::pixel_unshuffle, 3;
    // F.pixel_unshuffle(x[2,2,2,4,2], 2)
    unshuffle_two_batch_dims: "unshuffle_two_batch_dims", F::pixel_unshuffle, 2;
    // F.pixel_unshuffle(x[3,2,4], 2)   (unbatched)
    unshuffle_unbatched: "unshuffle_unbatched", F::pixel_unshuffle, 2;
}

device_test! {
    fn pixel_shuffle_of_empty_inputs_has_pytorchs_shapes(dev) {
        let x = Tensor::zeros(&[0, 4, 0, 3], DType::F32, dev).unwrap();
        assert_eq!(F::pixel_shuffle(&x, 2).unwrap().shape(), &[0, 1, 0, 6]);
        let x = Tensor::zeros(&[2, 0, 4, 6], DType::F32, dev).unwrap();
        assert_eq!(F::pixel_unshuffle(&x, 2).unwrap().shape(), &[2, 0, 2, 3]);
        assert_eq!(F::pixel_shuffle(&x, 2).unwrap().shape(), &[2, 0, 8, 12]);
    }

    fn pixel_shuffle_moves_integers_and_round_trips(dev) {
        // Channel c·4 + i·2 + j of (1, 8, 1, 1) lands at [c, i, j].
        let x = Tensor::from_vec((0..8i64).collect(), &[1, 8, 1, 1], dev).unwrap();
        let y = F::pixel_shuffle(&x, 2).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2, 2]);
        assert_eq!(y.to_vec::<i64>().unwrap(), (0..8).collect::<Vec<_>>());
        let x = Tensor::from_vec((0..72i64).collect(), &[2, 4, 3, 3], dev).unwrap();
        let back = F::pixel_unshuffle(&F::pixel_shuffle(&x, 2).unwrap(), 2).unwrap();
        assert_eq!(back.to_vec::<i64>().unwrap(), x.to_vec::<i64>().unwrap());
    }

    fn pixel_shuffle_modules_call_the_functions(dev) {
        kiln::manual_seed(3);
        let x = randn(&[2, 9, 2, 3]).to_device(dev).unwrap();
        let shuffled = nn::PixelShuffle::new(3).forward(&x).unwrap();
        assert_close(&shuffled, &F::pixel_shuffle(&x, 3).unwrap(), dev, 0.0, 0.0);
        let back = nn::PixelUnshuffle::new(3).forward(&shuffled).unwrap();
        assert_close(&back, &x, dev, 0.0, 0.0);
    }
}

#[test]
fn pixel_shuffle_modules_print_like_pytorch() {
    assert_eq!(
        nn::repr(&nn::PixelShuffle::new(2)),
        "PixelShuffle(upscale_factor=2)"
    );
    assert_eq!(
        nn::repr(&nn::PixelUnshuffle::new(3)),
        "PixelUnshuffle(downscale_factor=3)"
    );
}

#[test]
fn gradcheck_pixel_shuffle() {
    kiln::manual_seed(11);
    let opts = GradcheckOpts::default();
    let x = [randn(&[2, 8, 3, 2])];
    gradcheck(|t| F::pixel_shuffle(&t[0], 2), &x, opts).unwrap();
    let x = [randn(&[1, 2, 6, 3])];
    gradcheck(|t| F::pixel_unshuffle(&t[0], 3), &x, opts).unwrap();
}

#[test]
fn pixel_shuffle_argument_errors() {
    let x = randn(&[1, 8, 3, 3]);
    assert_eq!(
        arg_name(F::pixel_shuffle(&x, 0).unwrap_err()),
        "upscale_factor"
    );
    // 8 channels are not a multiple of 3² = 9.
    assert_eq!(arg_name(F::pixel_shuffle(&x, 3).unwrap_err()), "input");
    assert_eq!(
        arg_name(F::pixel_shuffle(&randn(&[4, 4]), 2).unwrap_err()),
        "input"
    );
    assert_eq!(
        arg_name(F::pixel_unshuffle(&x, 0).unwrap_err()),
        "downscale_factor"
    );
    // Height 3 is not a multiple of 2; then width 5 (height 4 is).
    assert_eq!(arg_name(F::pixel_unshuffle(&x, 2).unwrap_err()), "input");
    let wide = randn(&[1, 1, 4, 5]);
    assert_eq!(arg_name(F::pixel_unshuffle(&wide, 2).unwrap_err()), "input");
    assert_eq!(
        arg_name(F::pixel_unshuffle(&randn(&[3]), 1).unwrap_err()),
        "input"
    );
}

// ------------------------------------------------------------------ interpolate

/// One device test per golden case of `F::interpolate`: `name: "case" => options;`.
macro_rules! interpolations {
    ($($test:ident => $opts:expr;)*) => {
        mod interpolate {
            use super::*;
            device_test! {
                $(fn $test(dev) {
                    check_case(stringify!($test), dev, |x| F::interpolate(x, $opts));
                })*
            }
        }
    };
}

use InterpMode::{Bilinear, Linear, Trilinear};

interpolations! {
    // F.interpolate(x[2,3,5,7], size=(8,11))
    nearest_size => Interp::size(&[8, 11]);
    // F.interpolate(x[1,2,4,5], scale_factor=2)
    nearest_scale2 => Interp::scale(2.0);
    // F.interpolate(x[2,2,5,6], scale_factor=1.7): reads at o / 1.7, not o · 5/8
    nearest_scale_frac => Interp::scale(1.7);
    // F.interpolate(x[1,3,9,8], size=(4,3))
    nearest_down => Interp::size(&[4, 3]);
    // F.interpolate(x[1,2,6,5], scale_factor=(0.5, 2.5))
    nearest_scales_hw => Interp::scales(&[0.5, 2.5]);
    // F.interpolate(x[2,3,5,7], size=(8,11), mode="bilinear")
    bilinear_size => Interp::size(&[8, 11]).mode(Bilinear);
    // ... align_corners=True
    bilinear_size_align => Interp::size(&[8, 11]).mode(Bilinear).align_corners(true);
    // F.interpolate(x[2,2,5,6], scale_factor=1.7, mode="bilinear")
    bilinear_scale_frac => Interp::scale(1.7).mode(Bilinear).align_corners(false);
    // ... align_corners=True (the scale is (in - 1) / (out - 1) then)
    bilinear_scale_frac_align => Interp::scale(1.7).mode(Bilinear).align_corners(true);
    // F.interpolate(x[1,3,9,8], size=(4,3), mode="bilinear")
    bilinear_down => Interp::size(&[4, 3]).mode(Bilinear);
    // ... align_corners=True
    bilinear_down_align => Interp::size(&[4, 3]).mode(Bilinear).align_corners(true);
    // F.interpolate(x[1,2,1,5], size=(3,1), mode="bilinear", align_corners=True)
    bilinear_to_one_align => Interp::size(&[3, 1]).mode(Bilinear).align_corners(true);
    // F.interpolate(x[1,2,6,4], scale_factor=(1.1, 2.25), mode="bilinear"): 6 rows stay 6
    bilinear_same_h => Interp::scales(&[1.1, 2.25]).mode(Bilinear);
    // F.interpolate(x[2,3,7], size=12, mode="linear")
    linear_size => Interp::size(&[12]).mode(Linear);
    // ... align_corners=True
    linear_align => Interp::size(&[12]).mode(Linear).align_corners(true);
    // F.interpolate(x[2,3,7], scale_factor=2.5, mode="linear")
    linear_scale => Interp::scale(2.5).mode(Linear);
    // F.interpolate(x[2,2,7], scale_factor=1.5)
    nearest1d_scale => Interp::scale(1.5);
    // F.interpolate(x[1,2,3,4,5], size=(5,3,7), mode="trilinear")
    trilinear_size => Interp::size(&[5, 3, 7]).mode(Trilinear);
    // ... align_corners=True
    trilinear_align => Interp::size(&[5, 3, 7]).mode(Trilinear).align_corners(true);
    // F.interpolate(x[1,1,3,4,2], scale_factor=1.5, mode="trilinear")
    trilinear_scale => Interp::scale(1.5).mode(Trilinear);
    // F.interpolate(x[1,2,3,4,5], size=(4,6,3))
    nearest3d_size => Interp::size(&[4, 6, 3]);
}

device_test! {
    fn interpolate_of_an_empty_batch(dev) {
        let x = Tensor::zeros(&[0, 3, 4, 5], DType::F32, dev).unwrap().requires_grad();
        let y = F::interpolate(&x, Interp::scale(2.0).mode(Bilinear)).unwrap();
        assert_eq!(y.shape(), &[0, 3, 8, 10]);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().shape(), &[0, 3, 4, 5]);
        let x = Tensor::zeros(&[2, 0, 3], DType::F64, dev).unwrap();
        assert_eq!(F::interpolate(&x, Interp::size(&[5])).unwrap().shape(), &[2, 0, 5]);
    }

    fn upsample_module_calls_interpolate(dev) {
        kiln::manual_seed(4);
        let x = randn(&[2, 3, 4, 5]).to_device(dev).unwrap();
        let opts = Interp::scale(1.5).mode(Bilinear).align_corners(true);
        let got = nn::Upsample::new(opts.clone()).forward(&x).unwrap();
        assert_close(&got, &F::interpolate(&x, opts).unwrap(), dev, 0.0, 0.0);
    }

    fn half_precision_interpolation(dev) {
        for dtype in [DType::F16, DType::BF16] {
            let g = Golden::load("resample");
            let x = input(&g, "bilinear_size", dtype, dev, false);
            let y = F::interpolate(&x, Interp::size(&[8, 11]).mode(Bilinear)).unwrap();
            assert_eq!(y.dtype(), dtype);
            assert_close(&y, &g.get("bilinear_size.out"), dev, 0.05, 0.05);
        }
    }
}

#[test]
fn upsample_prints_like_pytorch() {
    assert_eq!(
        nn::repr(&nn::Upsample::new(Interp::scale(2.0).mode(Bilinear))),
        "Upsample(scale_factor=2.0, mode='bilinear')"
    );
    assert_eq!(
        nn::repr(&nn::Upsample::new(Interp::size(&[4, 6]))),
        "Upsample(size=(4, 6), mode='nearest')"
    );
}

#[test]
fn gradcheck_interpolate() {
    kiln::manual_seed(12);
    let opts = GradcheckOpts::default();
    let x = [randn(&[1, 2, 4, 5])];
    for o in [
        Interp::size(&[7, 3]).mode(Bilinear),
        Interp::scale(1.7).mode(Bilinear).align_corners(true),
        Interp::scales(&[0.6, 2.2]),
    ] {
        gradcheck(|t| F::interpolate(&t[0], o.clone()), &x, opts).unwrap();
    }
    let x = [randn(&[1, 2, 5])];
    gradcheck(
        |t| F::interpolate(&t[0], Interp::size(&[8]).mode(Linear)),
        &x,
        opts,
    )
    .unwrap();
    let x = [randn(&[1, 1, 2, 3, 4])];
    let o = Interp::scale(1.5).mode(Trilinear);
    gradcheck(|t| F::interpolate(&t[0], o.clone()), &x, opts).unwrap();
}

#[test]
fn interpolate_argument_errors() {
    let x = randn(&[1, 2, 4, 4]);
    let err = |x: &Tensor, o: Interp| arg_name(F::interpolate(x, o).unwrap_err());
    assert_eq!(err(&randn(&[2, 4]), Interp::scale(2.0)), "input");
    assert_eq!(err(&randn(&[1, 2, 0, 4]), Interp::scale(2.0)), "input");
    assert_eq!(err(&x, Interp::size(&[])), "size");
    assert_eq!(err(&x, Interp::size(&[3, 4, 5])), "size");
    assert_eq!(err(&x, Interp::size(&[0, 4])), "size");
    assert_eq!(err(&x, Interp::scale(0.0)), "scale_factor");
    assert_eq!(err(&x, Interp::scale(-1.0)), "scale_factor");
    assert_eq!(err(&x, Interp::scale(f64::NAN)), "scale_factor");
    // 4 · 0.2 rows floor to 0.
    assert_eq!(err(&x, Interp::scale(0.2)), "scale_factor");
    assert_eq!(err(&x, Interp::size(&[8]).mode(Linear)), "mode");
    assert_eq!(err(&x, Interp::size(&[8]).mode(Trilinear)), "mode");
    assert_eq!(
        err(&x, Interp::size(&[8]).align_corners(false)),
        "align_corners"
    );
    let xi = Tensor::zeros(&[1, 1, 4, 4], DType::I64, &Device::Cpu).unwrap();
    assert!(matches!(
        F::interpolate(&xi, Interp::scale(2.0)).unwrap_err(),
        Error::UnsupportedDType { .. }
    ));
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The resampling kernels on every float dtype, forward and backward, against the CPU
/// backend (tests/common/parity.rs), and the check that these tests launch every kernel
/// of kernels/upsample.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, pair_t, tol, values, FLOATS,
    };
    use kiln::nn::functional::{self as F, Interp, InterpMode};
    use kiln::{Device, Tensor};

    /// Nearest and linear in 1, 2 and 3 spatial dims, up and down, by size and by
    /// scale, with and without align_corners, on odd sizes and transposed (non-
    /// contiguous) inputs, and an output larger than one grid; every float dtype.
    #[test]
    fn interpolation_matches_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("interpolation_matches_the_cpu");
        use InterpMode::{Bilinear, Linear, Nearest, Trilinear};
        let cases: [(&[usize], Interp); 9] = [
            (&[2, 3, 7, 5], Interp::size(&[11, 3])),
            (&[2, 3, 7, 5], Interp::scale(1.7)),
            (&[2, 3, 7, 5], Interp::size(&[11, 3]).mode(Bilinear)),
            (
                &[2, 3, 7, 5],
                Interp::scales(&[0.6, 2.3])
                    .mode(Bilinear)
                    .align_corners(true),
            ),
            (&[3, 2, 9], Interp::scale(2.5).mode(Linear)),
            (&[3, 2, 9], Interp::size(&[4]).mode(Nearest)),
            (
                &[1, 2, 3, 5, 4],
                Interp::size(&[5, 3, 7]).mode(Trilinear).align_corners(true),
            ),
            (&[1, 2, 3, 5, 4], Interp::scale(1.5)),
            (&[1, 2, 40, 30], Interp::scale(3.1).mode(Bilinear)),
        ];
        for (shape, opts) in cases {
            for dtype in FLOATS {
                let what = format!("{shape:?} {opts:?} {dtype:?}");
                let (xc, xg) = pair_t(shape, dtype, 70, &dev);
                let run = |x: Tensor, d: &Device| {
                    let x = x.requires_grad();
                    let y = F::interpolate(&x, opts.clone()).unwrap();
                    let up = values(y.shape(), dtype, 71).to_device(d).unwrap();
                    y.mul(&up).unwrap().sum_all().unwrap().backward().unwrap();
                    (y, x.grad().unwrap())
                };
                let (yc, gc) = run(xc, &Device::Cpu);
                let (yg, gg) = run(xg, &dev);
                let (atol, rtol) = tol(dtype);
                assert_close(&format!("{what} value"), &yg, &yc, atol, rtol);
                assert_close(&format!("{what} grad"), &gg, &gc, atol, rtol);
            }
        }
    }

    /// On the emulated device: the parity test above launches every kernel of
    /// kernels/upsample.cu.
    #[test]
    fn every_upsample_kernel_is_launched() {
        let suite: [fn(); 1] = [interpolation_matches_the_cpu];
        assert_every_kernel_launched("upsample", &suite, &[]);
    }
}
