//! Pooling against PyTorch (tests/data/pool.safetensors, written by
//! scripts/golden/pool.py), finite differences, and argument errors.

mod common;

use common::{assert_close, device_test, strided, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional::{self as F, Pool2dOpts};
use kiln::nn::{self, Forward};
use kiln::{DType, Device, Error, Tensor};

/// Runs `f` on case `name` in `dtype` on `dev`, on the input as it is and as a
/// non-contiguous view; compares output and input gradient.
fn check_case(
    name: &str,
    dtype: DType,
    tol: f64,
    dev: &Device,
    f: impl Fn(&Tensor) -> kiln::Result<Tensor>,
) {
    let g = Golden::load("pool");
    let key = |k: &str| format!("{name}.{k}");
    let x = g.on(&key("x"), dev).to_dtype(dtype).unwrap();
    for x in [strided(&x), x] {
        let x = x.requires_grad();
        let y = f(&x).unwrap();
        assert_eq!(y.dtype(), dtype);
        assert_close(&y, &g.get(&key("out")), dev, tol, tol);
        let gy = g.on(&key("gy"), dev).to_dtype(dtype).unwrap();
        y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&x.grad().unwrap(), &g.get(&key("grad_x")), dev, tol, tol);
    }
}

/// The dtypes every case runs in, with their tolerances on the CPU.
const DTYPES: [(DType, f64); 2] = [(DType::F64, 1e-12), (DType::F32, 1e-5)];

/// For each window case and device: max and avg, each in f64 and f32.
macro_rules! windows {
    ($($test:ident: $name:literal, $k:expr, $s:expr, $p:expr;)*) => {
        mod max_pool {
            use super::*;
            device_test! {
                $(fn $test(dev) {
                    for (dtype, tol) in DTYPES {
                        check_case(concat!("max_", $name), dtype, tol, dev, |x| F::max_pool2d(x, $k, $s, $p));
                    }
                })*
            }
        }
        mod avg_pool {
            use super::*;
            device_test! {
                $(fn $test(dev) {
                    for (dtype, tol) in DTYPES {
                        check_case(concat!("avg_", $name), dtype, tol, dev, |x| F::avg_pool2d(x, $k, $s, $p));
                    }
                })*
            }
        }
    };
}

windows! {
    // F.max_pool2d(x[2,3,8,9], 2, 2, 0) / F.avg_pool2d(...)
    k2s2: "k2s2", 2, 2, 0;
    // F.max_pool2d(x[2,2,7,8], (3,2), (2,1), (1,0))
    k3x2_s2x1_p1x0: "k3x2_s2x1_p1x0", (3, 2), (2, 1), (1, 0);
    // F.max_pool2d(x[1,3,9,9], 3, 2, 1)
    k3s2p1: "k3s2p1", 3, 2, 1;
    // F.max_pool2d(x[2,2,8,9], (2,3), (3,2), 1)
    k2x3_s3x2_p1: "k2x3_s3x2_p1", (2, 3), (3, 2), 1;
    // F.max_pool2d(x[1,2,6,5], 5, 1, 2)
    k5s1p2: "k5s1p2", 5, 1, 2;
    // F.max_pool2d(x[3,5,7], 2, 1, 0)   (unbatched)
    unbatched_k2s1: "unbatched_k2s1", 2, 1, 0;
}

/// For each case with options and device, in f64 and f32: `test: "case" => op;`.
macro_rules! with_options {
    ($($test:ident: $name:literal => $op:expr;)*) => {
        mod pool_options {
            use super::*;
            device_test! {
                $(fn $test(dev) {
                    for (dtype, tol) in DTYPES {
                        check_case($name, dtype, tol, dev, $op);
                    }
                })*
            }
        }
    };
}

with_options! {
    // F.max_pool2d(x[2,2,9,10], 3, 1, 1, dilation=2)
    max_dil2: "max_dil2" => |x| F::max_pool2d_with(x, Pool2dOpts::new(3).stride(1).padding(1).dilation(2));
    // F.max_pool2d(x[1,3,11,9], (2,3), 2, 1, dilation=(3,2))
    max_k2x3_d3x2_s2_p1: "max_k2x3_d3x2_s2_p1" => |x| {
        F::max_pool2d_with(x, Pool2dOpts::new((2, 3)).stride(2).padding(1).dilation((3, 2)))
    };
    // F.max_pool2d(x[2,2,8,7], 3, 2, ceil_mode=True): the last windows overhang
    max_ceil_overhang: "max_ceil_overhang" => |x| F::max_pool2d_with(x, Pool2dOpts::new(3).stride(2).ceil_mode(true));
    // F.max_pool2d(x[1,2,5,6], 2, 2, 1, ceil_mode=True): a last row of windows that
    // would start in the bottom padding is dropped
    max_ceil_drop: "max_ceil_drop" => |x| {
        F::max_pool2d_with(x, Pool2dOpts::new(2).stride(2).padding(1).ceil_mode(true))
    };
    // F.max_pool2d(x[2,1,8,9], 3, 2, 1, dilation=2, ceil_mode=True)
    max_ceil_dil2: "max_ceil_dil2" => |x| {
        F::max_pool2d_with(x, Pool2dOpts::new(3).stride(2).padding(1).dilation(2).ceil_mode(true))
    };
    // F.max_pool2d(x[1,2,2,3], 3, 2, ceil_mode=True): one window, larger than the input
    max_ceil_kernel_past_input: "max_ceil_kernel_past_input" => |x| {
        F::max_pool2d_with(x, Pool2dOpts::new(3).stride(2).ceil_mode(true))
    };
    // F.max_pool2d(x[1,2,7,8], 3): stride defaults to the kernel
    max_default_stride: "max_default_stride" => |x| F::max_pool2d_with(x, Pool2dOpts::new(3));
    // F.avg_pool2d(x[2,2,8,7], 3, 2, ceil_mode=True): the overhang is not in the divisor
    avg_ceil_overhang: "avg_ceil_overhang" => |x| F::avg_pool2d_with(x, Pool2dOpts::new(3).stride(2).ceil_mode(true));
    // F.avg_pool2d(x[1,2,5,6], 2, 2, 1, ceil_mode=True)
    avg_ceil_drop: "avg_ceil_drop" => |x| {
        F::avg_pool2d_with(x, Pool2dOpts::new(2).stride(2).padding(1).ceil_mode(true))
    };
    // F.avg_pool2d(x[1,1,5,5], 3, 2, 1, ceil_mode=True): padding in the divisor
    avg_ceil_pad_divisor: "avg_ceil_pad_divisor" => |x| {
        F::avg_pool2d_with(x, Pool2dOpts::new(3).stride(2).padding(1).ceil_mode(true))
    };
    // F.avg_pool2d(x[1,3,9,8], 3, 2, 1, count_include_pad=False)
    avg_exclude_pad: "avg_exclude_pad" => |x| {
        F::avg_pool2d_with(x, Pool2dOpts::new(3).stride(2).padding(1).count_include_pad(false))
    };
    // F.avg_pool2d(x[2,2,7,9], (3,2), (2,3), 1, ceil_mode=True, count_include_pad=False)
    avg_ceil_exclude_pad: "avg_ceil_exclude_pad" => |x| {
        let o = Pool2dOpts::new((3, 2)).stride((2, 3)).padding(1);
        F::avg_pool2d_with(x, o.ceil_mode(true).count_include_pad(false))
    };
    // F.avg_pool2d(x[1,2,7,7], 3, ceil_mode=True): stride defaults to the kernel
    avg_default_stride_ceil: "avg_default_stride_ceil" => |x| {
        F::avg_pool2d_with(x, Pool2dOpts::new(3).ceil_mode(true))
    };
}

device_test! {
    fn pool_modules_take_the_options(dev) {
        kiln::manual_seed(12);
        let x = randn(&[2, 3, 9, 8]).to_device(dev).unwrap();
        let max = nn::MaxPool2d::new(3, 2).padding(1).dilation(2).ceil_mode(true);
        let want = F::max_pool2d_with(&x, Pool2dOpts::new(3).stride(2).padding(1).dilation(2).ceil_mode(true));
        assert_close(&max.forward(&x).unwrap(), &want.unwrap(), dev, 0.0, 0.0);
        let avg = nn::AvgPool2d::new(3, 2).padding(1).ceil_mode(true).count_include_pad(false);
        let o = Pool2dOpts::new(3).stride(2).padding(1).ceil_mode(true);
        let want = F::avg_pool2d_with(&x, o.count_include_pad(false)).unwrap();
        assert_close(&avg.forward(&x).unwrap(), &want, dev, 0.0, 0.0);
        // With the padding in the divisor the border windows average less.
        let with_pad = F::avg_pool2d_with(&x, o).unwrap();
        assert_ne!(common::host(&with_pad), common::host(&want));
    }

    fn pools_with_options_of_an_empty_batch(dev) {
        let x = Tensor::zeros(&[0, 2, 5, 6], DType::F32, dev).unwrap();
        let o = Pool2dOpts::new(2).stride(2).padding(1).ceil_mode(true);
        assert_eq!(F::max_pool2d_with(&x, o.dilation(2)).unwrap().shape(), &[0, 2, 3, 4]);
        assert_eq!(F::avg_pool2d_with(&x, o).unwrap().shape(), &[0, 2, 3, 4]);
    }
}

#[test]
fn pool_modules_print_like_pytorch() {
    assert_eq!(
        nn::repr(&nn::MaxPool2d::new(3, 2).padding(1).ceil_mode(true)),
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)"
    );
    assert_eq!(
        nn::repr(&nn::MaxPool2d::new(2, 2).dilation((2, 3))),
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=(2, 3), ceil_mode=False)"
    );
    assert_eq!(
        nn::repr(
            &nn::AvgPool2d::new(3, 2)
                .ceil_mode(true)
                .count_include_pad(false)
        ),
        "AvgPool2d(kernel_size=3, stride=2, padding=0)"
    );
}

device_test! {
    fn max_pool_ties_route_the_gradient_like_pytorch(dev) {
        // x = randint(0, 3, (2,2,7,8)); F.max_pool2d(x, 3, 2, 1)
        check_case("max_ties", DType::F64, 1e-12, dev, |x| F::max_pool2d(x, 3, 2, 1));
    }
}

/// For each adaptive case and device, in f64 and f32.
macro_rules! adaptive {
    ($($test:ident: $name:literal, $size:expr;)*) => {
        mod adaptive_avg_pool {
            use super::*;
            device_test! {
                $(fn $test(dev) {
                    for (dtype, tol) in DTYPES {
                        check_case($name, dtype, tol, dev, |x| F::adaptive_avg_pool2d(x, $size));
                    }
                })*
            }
        }
    };
}

adaptive! {
    // F.adaptive_avg_pool2d(x[2,3,7,9], (3,4))
    to_3x4: "adaptive_3x4", (3, 4);
    // F.adaptive_avg_pool2d(x[2,3,8,8], (1,1))
    to_1x1: "adaptive_1x1", 1;
    // F.adaptive_avg_pool2d(x[1,2,5,7], (5,7))
    identity: "adaptive_identity", (5, 7);
    // F.adaptive_avg_pool2d(x[2,2,10,7], (4,3))
    to_4x3: "adaptive_4x3", (4, 3);
    // F.adaptive_avg_pool2d(x[1,2,3,2], (5,4))   (output larger than input)
    upsample: "adaptive_upsample", (5, 4);
    // F.adaptive_avg_pool2d(x[3,6,5], (4,2))   (unbatched)
    unbatched: "adaptive_unbatched", (4, 2);
}

device_test! {
    fn half_precision_pools(dev) {
        for dtype in [DType::F16, DType::BF16] {
            check_case("avg_k3s2p1", dtype, 0.05, dev, |x| F::avg_pool2d(x, 3, 2, 1));
            check_case("adaptive_3x4", dtype, 0.05, dev, |x| {
                F::adaptive_avg_pool2d(x, (3, 4))
            });
        }
    }
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F64, &Device::Cpu).unwrap()
}

#[test]
fn gradcheck_pools() {
    kiln::manual_seed(9);
    let x = [randn(&[2, 2, 5, 6])];
    let opts = GradcheckOpts::default();
    // Random inputs have no ties, so max pooling is differentiable at x.
    gradcheck(|t| F::max_pool2d(&t[0], (3, 2), (2, 1), (1, 0)), &x, opts).unwrap();
    gradcheck(|t| F::avg_pool2d(&t[0], (3, 2), (2, 1), (1, 1)), &x, opts).unwrap();
    gradcheck(|t| F::adaptive_avg_pool2d(&t[0], (3, 4)), &x, opts).unwrap();
    gradcheck(|t| F::adaptive_avg_pool2d(&t[0], (7, 8)), &x, opts).unwrap();
    let o = Pool2dOpts::new(3).stride(2).padding(1).ceil_mode(true);
    gradcheck(|t| F::max_pool2d_with(&t[0], o.dilation(2)), &x, opts).unwrap();
    gradcheck(|t| F::avg_pool2d_with(&t[0], o), &x, opts).unwrap();
    let o = o.count_include_pad(false);
    gradcheck(|t| F::avg_pool2d_with(&t[0], o), &x, opts).unwrap();
}

device_test! {
    fn large_inputs_take_the_parallel_path_and_agree(dev) {
    kiln::manual_seed(10);
    // 2·8·48·48 elements: past the parallel threshold; compare with per-plane runs.
    let x = randn(&[2, 8, 48, 48]).to_device(dev).unwrap();
    let whole = F::max_pool2d(&x, 3, 2, 1).unwrap();
    let first = F::max_pool2d(
        &x.narrow(0, 0, 1).unwrap().narrow(1, 0, 1).unwrap(),
        3,
        2,
        1,
    )
    .unwrap();
    assert_close(
        &whole.narrow(0, 0, 1).unwrap().narrow(1, 0, 1).unwrap(),
        &first,
        dev,
        0.0,
        0.0,
    );
    let avg = F::avg_pool2d(&x, 2, 2, 0).unwrap();
    let manual = x
        .reshape(&[2, 8, 24, 2, 24, 2])
        .unwrap()
        .sum(5, false)
        .unwrap()
        .sum(3, false)
        .unwrap()
        .div_scalar(4.0)
        .unwrap();
    assert_close(&avg, &manual, dev, 1e-12, 1e-12);
    }
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn argument_errors() {
    let x = randn(&[1, 2, 5, 5]);
    assert_eq!(arg_name(F::max_pool2d(&x, 0, 1, 0).unwrap_err()), "kernel");
    assert_eq!(
        arg_name(F::max_pool2d(&x, 2, (1, 0), 0).unwrap_err()),
        "stride"
    );
    // A 6x6 window does not fit the 5x5 input (padding 0).
    assert_eq!(arg_name(F::avg_pool2d(&x, 6, 1, 0).unwrap_err()), "kernel");
    // Padding 1 gives 7x7, still smaller than an 8x8 window.
    assert_eq!(arg_name(F::max_pool2d(&x, 8, 1, 1).unwrap_err()), "kernel");
    assert_eq!(arg_name(F::avg_pool2d(&x, 3, 1, 2).unwrap_err()), "padding");
    assert_eq!(
        arg_name(F::max_pool2d(&randn(&[5, 5]), 2, 2, 0).unwrap_err()),
        "input"
    );
    assert_eq!(
        arg_name(F::adaptive_avg_pool2d(&x, (0, 1)).unwrap_err()),
        "output_size"
    );
    assert_eq!(
        arg_name(F::adaptive_avg_pool2d(&randn(&[1, 1, 2, 5, 5]), 1).unwrap_err()),
        "input"
    );
    let o = Pool2dOpts::new(3);
    assert_eq!(
        arg_name(F::max_pool2d_with(&x, o.dilation((1, 0))).unwrap_err()),
        "dilation"
    );
    // PyTorch's average pooling has no dilation.
    assert_eq!(
        arg_name(F::avg_pool2d_with(&x, o.dilation(2)).unwrap_err()),
        "dilation"
    );
    // The dilated window spans 9 > 5 + 2·1 rows: no window fits.
    let o = o.padding(1).dilation(4);
    assert_eq!(arg_name(F::max_pool2d_with(&x, o).unwrap_err()), "kernel");
    let xi = Tensor::zeros(&[1, 1, 4, 4], DType::I64, &Device::Cpu).unwrap();
    assert!(matches!(
        F::max_pool2d(&xi, 2, 2, 0).unwrap_err(),
        Error::UnsupportedDType { .. }
    ));
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The pooling kernels on every float dtype, forward and backward, against the CPU
/// backend (tests/common/parity.rs), and the check that these tests launch every kernel
/// of kernels/pool.cu.
mod cuda_parity {
    use crate::common::host;
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::nn::functional::{self as F, Pool1dOpts, Pool2dOpts, Pool3dOpts};
    use kiln::{DType, Device, Result, Tensor};

    /// (N, C, H, W) as a 1-d pooling's (N, C·H, W).
    fn flat(x: &Tensor) -> Result<Tensor> {
        let s = x.shape();
        x.reshape(&[s[0], s[1] * s[2], s[3]])
    }

    /// One pooling of `pools_match_the_cpu`: its name, whether the CUDA result must equal
    /// the CPU's exactly (max only selects), and the op.
    type PoolCase = (&'static str, bool, fn(&Tensor) -> Result<Tensor>);

    /// One input of `pools_match_the_cpu`: its name, values, shape and the dtypes to try.
    type PoolInput<'a> = (&'a str, &'a [f64], [usize; 4], &'a [DType]);

    /// Every pooling primitive, forward and backward, for every float dtype against the
    /// CPU, in 1, 2 and 3 dimensions, fixed and adaptive windows: odd sizes, overlapping
    /// windows (kernel 3, stride 2), padding, unequal strides, dilation, ceil mode's
    /// overhanging windows, padding left out of the divisor, adaptive windows that do not divide the input (or outnumber its rows); max pooling
    /// on ties and NaNs too, where the gradient shows which element each window took; and
    /// a plane larger than one grid, so the grid-stride loops wrap.
    #[test]
    fn pools_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("pools_match_the_cpu");
        let pools: [PoolCase; 23] = [
            ("max k2 s2", true, |x| F::max_pool2d(x, 2, 2, 0)),
            ("max k3 s2 p1", true, |x| F::max_pool2d(x, 3, 2, 1)),
            ("max k(3,2) s(1,2) p(1,1)", true, |x| {
                F::max_pool2d(x, (3, 2), (1, 2), (1, 1))
            }),
            ("max k3 s2 p1 d2 ceil", true, |x| {
                let o = Pool2dOpts::new(3).stride(2).padding(1);
                F::max_pool2d_with(x, o.dilation(2).ceil_mode(true))
            }),
            ("max k(2,3) s(3,2) d(3,1) ceil", true, |x| {
                let o = Pool2dOpts::new((2, 3)).stride((3, 2)).dilation((3, 1));
                F::max_pool2d_with(x, o.ceil_mode(true))
            }),
            ("avg k2 s2", false, |x| F::avg_pool2d(x, 2, 2, 0)),
            ("avg k3 s2 p1 ceil", false, |x| {
                F::avg_pool2d_with(x, Pool2dOpts::new(3).stride(2).padding(1).ceil_mode(true))
            }),
            ("avg k(3,2) s2 p1 ceil, padding not counted", false, |x| {
                let o = Pool2dOpts::new((3, 2)).stride(2).padding(1).ceil_mode(true);
                F::avg_pool2d_with(x, o.count_include_pad(false))
            }),
            ("avg k3 s2 p1", false, |x| F::avg_pool2d(x, 3, 2, 1)),
            ("avg k(3,2) s(1,2) p(1,1)", false, |x| {
                F::avg_pool2d(x, (3, 2), (1, 2), (1, 1))
            }),
            ("adaptive (3,4)", false, |x| {
                F::adaptive_avg_pool2d(x, (3, 4))
            }),
            ("adaptive (1,1)", false, |x| F::adaptive_avg_pool2d(x, 1)),
            ("adaptive (10,5)", false, |x| {
                F::adaptive_avg_pool2d(x, (10, 5))
            }),
            ("adaptive (7,9)", false, |x| {
                F::adaptive_avg_pool2d(x, (7, 9))
            }),
            // The other ranks and adaptive max: the same kernels over other geometries
            // (1-d: (N, C·H, W); 3-d: (1, N, C, H, W), so the depth is odd too).
            ("max1d k3 s2 p1 d2 ceil", true, |x| {
                let o = Pool1dOpts::new(3).stride(2).padding(1).dilation(2);
                F::max_pool1d_with(&flat(x)?, o.ceil_mode(true))
            }),
            ("avg1d k3 s2 p1 ceil, padding not counted", false, |x| {
                let o = Pool1dOpts::new(3).stride(2).padding(1).ceil_mode(true);
                F::avg_pool1d_with(&flat(x)?, o.count_include_pad(false))
            }),
            ("max3d k(2,3,2) s2 p1 d(1,2,1) ceil", true, |x| {
                let o = Pool3dOpts::new((2, 3, 2)).stride(2).padding(1);
                F::max_pool3d_with(&x.unsqueeze(0)?, o.dilation((1, 2, 1)).ceil_mode(true))
            }),
            ("avg3d k3 s(1,2,2) p1 ceil", false, |x| {
                let o = Pool3dOpts::new(3).stride((1, 2, 2)).padding(1);
                F::avg_pool3d_with(&x.unsqueeze(0)?, o.ceil_mode(true))
            }),
            ("adaptive max (3,4)", true, |x| {
                F::adaptive_max_pool2d(x, (3, 4))
            }),
            ("adaptive max (10,5)", true, |x| {
                F::adaptive_max_pool2d(x, (10, 5))
            }),
            ("adaptive max 3-d (2,4,5)", true, |x| {
                F::adaptive_max_pool3d(&x.unsqueeze(0)?, (2, 4, 5))
            }),
            ("adaptive avg 1-d 4", false, |x| {
                F::adaptive_avg_pool1d(&flat(x)?, 4)
            }),
            ("adaptive avg 3-d (3,5,4)", false, |x| {
                F::adaptive_avg_pool3d(&x.unsqueeze(0)?, (3, 5, 4))
            }),
        ];
        let smooth = host(&values(&[2, 3, 7, 9], DType::F64, 90));
        // Whole numbers in [-4, 4): most windows hold ties; and a NaN every 13 elements.
        let ties: Vec<f64> = smooth
            .iter()
            .enumerate()
            .map(|(i, v)| if i % 13 == 4 { f64::NAN } else { v.floor() })
            .collect();
        let run = |data: &[f64],
                   shape: &[usize],
                   dtype: DType,
                   pool: fn(&Tensor) -> Result<Tensor>,
                   d: &Device|
         -> Result<(Tensor, Tensor)> {
            let x = Tensor::from_vec(data.to_vec(), shape, &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(d)?
                .requires_grad();
            let y = pool(&x)?;
            let upstream = values(y.shape(), dtype, 91).to_device(d)?;
            y.mul(&upstream)?.sum_all()?.backward()?;
            Ok((y, x.grad().expect("grad")))
        };
        let big = host(&values(&[1, 2, 50, 91], DType::F64, 92));
        let inputs: [PoolInput; 3] = [
            ("smooth", &smooth, [2, 3, 7, 9], &FLOATS),
            ("ties and NaN", &ties, [2, 3, 7, 9], &FLOATS),
            ("larger than a grid", &big, [1, 2, 50, 91], &[DType::F32]),
        ];
        for (input, data, shape, dtypes) in inputs {
            for &dtype in dtypes {
                for (name, exact, pool) in pools {
                    let what = format!("{name} {input} {dtype:?}");
                    let (yg, gg) = run(data, &shape, dtype, pool, &dev).unwrap();
                    let (yc, gc) = run(data, &shape, dtype, pool, &Device::Cpu).unwrap();
                    let (atol, rtol) = if exact { (0.0, 0.0) } else { tol(dtype) };
                    assert_close(&format!("{what} value"), &yg, &yc, atol, rtol);
                    assert_close(&format!("{what} grad"), &gg, &gc, atol, rtol);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/pool.cu.
    #[test]
    fn every_pool_kernel_is_launched() {
        let suite: [fn(); 1] = [pools_match_the_cpu];
        assert_every_kernel_launched("pool", &suite, &[]);
    }
}
