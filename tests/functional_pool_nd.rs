//! 1-d and 3-d max/avg pooling and the adaptive poolings (max 1-d/2-d/3-d with
//! indices, avg 1-d/3-d) against PyTorch (tests/data/pool_nd.safetensors, written by
//! scripts/golden/pool_nd.py), finite differences, modules and argument errors. The
//! CUDA parity sweep of the whole pool family is in tests/functional_pool.rs.

mod common;

use common::{assert_close, device_test, host, strided, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::functional::{self as F, Pool1dOpts, Pool3dOpts};
use kiln::nn::{self, Forward};
use kiln::{DType, Device, Error, Tensor};

/// The dtypes every case runs in, with their tolerances on the CPU.
const DTYPES: [(DType, f64); 2] = [(DType::F64, 1e-12), (DType::F32, 1e-5)];

/// Runs `f` on case `name` on `dev` in f64 and f32, on the input as it is and as a
/// non-contiguous view; compares the output and the input's gradient, and, where the
/// case has them, the indices (exactly).
fn check_case(
    name: &str,
    dev: &Device,
    f: impl Fn(&Tensor) -> kiln::Result<(Tensor, Option<Tensor>)>,
) {
    let g = Golden::load("pool_nd");
    let key = |k: &str| format!("{name}.{k}");
    for (dtype, tol) in DTYPES {
        let x = g.on(&key("x"), dev).to_dtype(dtype).unwrap();
        for x in [strided(&x), x] {
            let x = x.requires_grad();
            let (y, indices) = f(&x).unwrap();
            assert_eq!(y.dtype(), dtype);
            assert_close(&y, &g.get(&key("out")), dev, tol, tol);
            if let Some(indices) = indices {
                assert_eq!(indices.dtype(), DType::I64);
                assert_close(&indices, &g.get(&key("indices")), dev, 0.0, 0.0);
            }
            let gy = g.on(&key("gy"), dev).to_dtype(dtype).unwrap();
            y.mul(&gy).unwrap().sum_all().unwrap().backward().unwrap();
            assert_close(&x.grad().unwrap(), &g.get(&key("grad_x")), dev, tol, tol);
        }
    }
}

/// For each case and device: `test: "case" => op` (an op giving the output alone).
macro_rules! cases {
    ($($test:ident: $name:literal => $op:expr;)*) => {
        device_test! {
            $(fn $test(dev) {
                check_case($name, dev, |x| Ok(($op(x)?, None)));
            })*
        }
    };
}

mod pool1d {
    use super::*;
    cases! {
        // F.max_pool1d(x[2,3,11], 3, 2, 1) / F.avg_pool1d(...)
        max_k3s2p1: "max1d_k3s2p1" => |x| F::max_pool1d(x, 3, 2, 1);
        avg_k3s2p1: "avg1d_k3s2p1" => |x| F::avg_pool1d(x, 3, 2, 1);
        // F.max_pool1d(x[1,2,9], 2): the stride defaults to the kernel
        max_default_stride: "max1d_k2_default_stride" => |x| F::max_pool1d_with(x, Pool1dOpts::new(2));
        avg_default_stride: "avg1d_k2_default_stride" => |x| F::avg_pool1d_with(x, Pool1dOpts::new(2));
        // F.max_pool1d(x[2,2,8], 3, 2, ceil_mode=True): the last window overhangs
        max_ceil: "max1d_k3s2_ceil" => |x| F::max_pool1d_with(x, Pool1dOpts::new(3).stride(2).ceil_mode(true));
        avg_ceil: "avg1d_k3s2_ceil" => |x| F::avg_pool1d_with(x, Pool1dOpts::new(3).stride(2).ceil_mode(true));
        // F.max_pool1d(x[1,2,5], 2, 2, 1, ceil_mode=True): a window starting in the
        // right padding is dropped
        max_ceil_drop: "max1d_k2s2p1_ceil_drop" => |x| {
            F::max_pool1d_with(x, Pool1dOpts::new(2).stride(2).padding(1).ceil_mode(true))
        };
        avg_ceil_drop: "avg1d_k2s2p1_ceil_drop" => |x| {
            F::avg_pool1d_with(x, Pool1dOpts::new(2).stride(2).padding(1).ceil_mode(true))
        };
        // F.max_pool1d(x[3,7], 3, 1, 1)   (unbatched)
        max_unbatched: "max1d_unbatched_k3s1p1" => |x| F::max_pool1d(x, 3, 1, 1);
        avg_unbatched: "avg1d_unbatched_k3s1p1" => |x| F::avg_pool1d(x, 3, 1, 1);
        // F.max_pool1d(x[2,2,12], 3, 2, 1, dilation=2, ceil_mode=True)
        max_dil2_ceil: "max1d_dil2_ceil" => |x| {
            F::max_pool1d_with(x, Pool1dOpts::new(3).stride(2).padding(1).dilation(2).ceil_mode(true))
        };
        // F.avg_pool1d(x[2,2,10], 3, 2, 1, ceil_mode=True, count_include_pad=False)
        avg_exclude_pad_ceil: "avg1d_exclude_pad_ceil" => |x| {
            let o = Pool1dOpts::new(3).stride(2).padding(1).ceil_mode(true);
            F::avg_pool1d_with(x, o.count_include_pad(false))
        };
        // F.max_pool1d(randint(0, 3, [2,2,13]), 3, 2, 1): the first maximum takes the gradient
        max_ties: "max1d_ties" => |x| F::max_pool1d(x, 3, 2, 1);
    }
}

mod pool3d {
    use super::*;
    cases! {
        // F.max_pool3d(x[2,2,4,6,5], 2, 2) / F.avg_pool3d(...)
        max_k2s2: "max3d_k2s2" => |x| F::max_pool3d(x, 2, 2, 0);
        avg_k2s2: "avg3d_k2s2" => |x| F::avg_pool3d(x, 2, 2, 0);
        // F.max_pool3d(x[1,2,3,7,6], (1,3,3), (1,2,2), (0,1,1))
        max_k133: "max3d_k133_s122_p011" => |x| F::max_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1));
        avg_k133: "avg3d_k133_s122_p011" => |x| F::avg_pool3d(x, (1, 3, 3), (1, 2, 2), (0, 1, 1));
        // F.max_pool3d(x[1,2,5,6,7], 3, 2, 1, ceil_mode=True)
        max_ceil: "max3d_k3s2p1_ceil" => |x| {
            F::max_pool3d_with(x, Pool3dOpts::new(3).stride(2).padding(1).ceil_mode(true))
        };
        avg_ceil: "avg3d_k3s2p1_ceil" => |x| {
            F::avg_pool3d_with(x, Pool3dOpts::new(3).stride(2).padding(1).ceil_mode(true))
        };
        // F.max_pool3d(x[2,3,4,5], 2, 1)   (unbatched)
        max_unbatched: "max3d_unbatched_k2s1" => |x| F::max_pool3d(x, 2, 1, 0);
        avg_unbatched: "avg3d_unbatched_k2s1" => |x| F::avg_pool3d(x, 2, 1, 0);
        // F.max_pool3d(x[1,2,7,8,9], (2,3,2), 2, 1, dilation=(2,1,3), ceil_mode=True)
        max_dil_ceil: "max3d_dil_ceil" => |x| {
            let o = Pool3dOpts::new((2, 3, 2)).stride(2).padding(1);
            F::max_pool3d_with(x, o.dilation((2, 1, 3)).ceil_mode(true))
        };
        // F.avg_pool3d(x[2,1,5,7,6], 3, (2,2,3), 1, ceil_mode=True, count_include_pad=False)
        avg_exclude_pad_ceil: "avg3d_exclude_pad_ceil" => |x| {
            let o = Pool3dOpts::new(3).stride((2, 2, 3)).padding(1).ceil_mode(true);
            F::avg_pool3d_with(x, o.count_include_pad(false))
        };
        // F.max_pool3d(randint(0, 3, [1,2,4,5,6]), 3, 2, 1)
        max_ties: "max3d_ties" => |x| F::max_pool3d(x, 3, 2, 1);
    }
}

/// For each adaptive max case and device: values, indices and gradient.
macro_rules! adaptive_max {
    ($($test:ident: $name:literal => $op:expr;)*) => {
        device_test! {
            $(fn $test(dev) {
                check_case($name, dev, |x| {
                    let (v, i) = $op(x)?;
                    Ok((v, Some(i)))
                });
            })*
        }
    };
}

mod adaptive_max_pool {
    use super::*;
    adaptive_max! {
        // F.adaptive_max_pool2d(x[2,3,7,9], (3,4), return_indices=True)
        to_3x4: "amax2d_3x4" => |x| F::adaptive_max_pool2d_with_indices(x, (3, 4));
        // F.adaptive_max_pool2d(x[2,2,5,6], 1, ...)
        to_1x1: "amax2d_1x1" => |x| F::adaptive_max_pool2d_with_indices(x, 1);
        // F.adaptive_max_pool2d(x[1,2,4,5], (4,5), ...)
        identity: "amax2d_identity" => |x| F::adaptive_max_pool2d_with_indices(x, (4, 5));
        // F.adaptive_max_pool2d(x[1,2,3,2], (5,4), ...)   (windows overlap)
        upsample: "amax2d_upsample" => |x| F::adaptive_max_pool2d_with_indices(x, (5, 4));
        // F.adaptive_max_pool2d(x[3,6,5], (4,2), ...)   (unbatched)
        unbatched: "amax2d_unbatched" => |x| F::adaptive_max_pool2d_with_indices(x, (4, 2));
        // F.adaptive_max_pool2d(randint(0, 3, [2,2,7,8]), (3,3), ...): ties
        ties: "amax2d_ties" => |x| F::adaptive_max_pool2d_with_indices(x, (3, 3));
        // F.adaptive_max_pool1d(x[2,3,11], 5, ...)
        len_5: "amax1d_5" => |x| F::adaptive_max_pool1d_with_indices(x, 5);
        // F.adaptive_max_pool1d(x[3,4], 7, ...)   (unbatched, more outputs than inputs)
        unbatched_1d: "amax1d_unbatched" => |x| F::adaptive_max_pool1d_with_indices(x, 7);
        // F.adaptive_max_pool3d(x[2,2,5,7,4], (2,3,2), ...)
        to_2x3x2: "amax3d_2x3x2" => |x| F::adaptive_max_pool3d_with_indices(x, (2, 3, 2));
        // F.adaptive_max_pool3d(x[2,3,4,5], (4,2,3), ...)   (unbatched)
        unbatched_3d: "amax3d_unbatched" => |x| F::adaptive_max_pool3d_with_indices(x, (4, 2, 3));
    }
}

mod adaptive_avg_pool {
    use super::*;
    cases! {
        // F.adaptive_avg_pool1d(x[2,3,10], 4)
        len_4: "aavg1d_4" => |x| F::adaptive_avg_pool1d(x, 4);
        // F.adaptive_avg_pool1d(x[1,2,3], 5)
        upsample_1d: "aavg1d_upsample" => |x| F::adaptive_avg_pool1d(x, 5);
        // F.adaptive_avg_pool1d(x[3,9], 1)   (unbatched)
        unbatched_1d: "aavg1d_unbatched" => |x| F::adaptive_avg_pool1d(x, 1);
        // F.adaptive_avg_pool3d(x[2,2,5,7,4], (2,3,2))
        to_2x3x2: "aavg3d_2x3x2" => |x| F::adaptive_avg_pool3d(x, (2, 3, 2));
        // F.adaptive_avg_pool3d(x[1,3,4,4,5], 1)
        to_1: "aavg3d_1" => |x| F::adaptive_avg_pool3d(x, 1);
        // F.adaptive_avg_pool3d(x[2,3,4,5], (4,2,3))   (unbatched)
        unbatched_3d: "aavg3d_unbatched" => |x| F::adaptive_avg_pool3d(x, (4, 2, 3));
    }
}

device_test! {
    fn modules_match_the_functions(dev) {
        kiln::manual_seed(31);
        let x1 = randn(&[2, 3, 11]).to_device(dev).unwrap();
        let x2 = randn(&[2, 3, 7, 9]).to_device(dev).unwrap();
        let x3 = randn(&[1, 2, 5, 6, 7]).to_device(dev).unwrap();
        let o1 = Pool1dOpts::new(3).stride(2).padding(1).ceil_mode(true);
        let o3 = Pool3dOpts::new(3).stride(2).padding(1).ceil_mode(true);
        let same = |a: kiln::Result<Tensor>, b: kiln::Result<Tensor>| {
            assert_close(&a.unwrap(), &b.unwrap(), dev, 0.0, 0.0);
        };
        let m = nn::MaxPool1d::new(3, 2).padding(1).dilation(2).ceil_mode(true);
        same(m.forward(&x1), F::max_pool1d_with(&x1, o1.dilation(2)));
        let m = nn::AvgPool1d::new(3, 2).padding(1).ceil_mode(true).count_include_pad(false);
        same(m.forward(&x1), F::avg_pool1d_with(&x1, o1.count_include_pad(false)));
        let m = nn::MaxPool3d::new(3, 2).padding(1).dilation(2).ceil_mode(true);
        same(m.forward(&x3), F::max_pool3d_with(&x3, o3.dilation(2)));
        let m = nn::AvgPool3d::new(3, 2).padding(1).ceil_mode(true).count_include_pad(false);
        same(m.forward(&x3), F::avg_pool3d_with(&x3, o3.count_include_pad(false)));
        same(nn::AdaptiveMaxPool1d::new(4).forward(&x1), F::adaptive_max_pool1d(&x1, 4));
        same(nn::AdaptiveMaxPool2d::new((3, 4)).forward(&x2), F::adaptive_max_pool2d(&x2, (3, 4)));
        same(nn::AdaptiveMaxPool3d::new((2, 3, 4)).forward(&x3), F::adaptive_max_pool3d(&x3, (2, 3, 4)));
        same(nn::AdaptiveAvgPool1d::new(4).forward(&x1), F::adaptive_avg_pool1d(&x1, 4));
        same(nn::AdaptiveAvgPool3d::new((2, 3, 4)).forward(&x3), F::adaptive_avg_pool3d(&x3, (2, 3, 4)));
        // The output alone is the first of the pair.
        let (v, _) = F::adaptive_max_pool2d_with_indices(&x2, (3, 4)).unwrap();
        same(Ok(v), F::adaptive_max_pool2d(&x2, (3, 4)));
    }

    fn empty_batches(dev) {
        let z = |shape: &[usize]| Tensor::zeros(shape, DType::F32, dev).unwrap();
        let o1 = Pool1dOpts::new(2).stride(2).padding(1).ceil_mode(true);
        assert_eq!(F::max_pool1d_with(&z(&[0, 2, 5]), o1).unwrap().shape(), &[0, 2, 3]);
        assert_eq!(F::avg_pool1d_with(&z(&[0, 2, 5]), o1).unwrap().shape(), &[0, 2, 3]);
        let x3 = z(&[0, 2, 3, 5, 6]);
        assert_eq!(F::max_pool3d(&x3, 2, 2, 1).unwrap().shape(), &[0, 2, 2, 3, 4]);
        assert_eq!(F::avg_pool3d(&x3, 2, 2, 0).unwrap().shape(), &[0, 2, 1, 2, 3]);
        let (v, i) = F::adaptive_max_pool2d_with_indices(&z(&[0, 3, 5, 6]), (2, 4)).unwrap();
        assert_eq!((v.shape(), i.shape()), (&[0, 3, 2, 4][..], &[0, 3, 2, 4][..]));
        assert_eq!(F::adaptive_avg_pool1d(&z(&[0, 2, 5]), 3).unwrap().shape(), &[0, 2, 3]);
        assert_eq!(F::adaptive_avg_pool3d(&x3, (1, 2, 2)).unwrap().shape(), &[0, 2, 1, 2, 2]);
        // Backward through an empty batch gives an empty gradient.
        let x = z(&[0, 2, 5]).requires_grad();
        F::max_pool1d(&x, 2, 2, 0).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(x.grad().unwrap().shape(), &[0, 2, 5]);
    }

    fn half_precision(dev) {
        let g = Golden::load("pool_nd");
        for dtype in [DType::F16, DType::BF16] {
            let x = g.on("avg3d_k3s2p1_ceil.x", dev).to_dtype(dtype).unwrap();
            let o = Pool3dOpts::new(3).stride(2).padding(1).ceil_mode(true);
            let y = F::avg_pool3d_with(&x, o).unwrap();
            assert_eq!(y.dtype(), dtype);
            assert_close(&y, &g.get("avg3d_k3s2p1_ceil.out"), dev, 0.05, 0.05);
            let x = g.on("amax2d_3x4.x", dev).to_dtype(dtype).unwrap();
            let y = F::adaptive_max_pool2d(&x, (3, 4)).unwrap();
            assert_close(&y, &g.get("amax2d_3x4.out"), dev, 0.05, 0.05);
        }
    }
}

#[test]
fn modules_print_like_pytorch() {
    let cases = [
        (
            nn::repr(&nn::MaxPool1d::new(3, 2).padding(1)),
            "MaxPool1d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)",
        ),
        (
            nn::repr(&nn::AvgPool1d::new(3, 2).padding(1)),
            "AvgPool1d(kernel_size=(3,), stride=(2,), padding=(1,))",
        ),
        (
            nn::repr(&nn::MaxPool3d::new((1, 3, 3), 2)),
            "MaxPool3d(kernel_size=(1, 3, 3), stride=2, padding=0, dilation=1, ceil_mode=False)",
        ),
        (
            nn::repr(&nn::AvgPool3d::new(3, 2).padding(1)),
            "AvgPool3d(kernel_size=3, stride=2, padding=1)",
        ),
        (
            nn::repr(&nn::AdaptiveMaxPool2d::new((3, 4))),
            "AdaptiveMaxPool2d(output_size=(3, 4))",
        ),
        (
            nn::repr(&nn::AdaptiveAvgPool1d::new(5)),
            "AdaptiveAvgPool1d(output_size=5)",
        ),
        (
            nn::repr(&nn::AdaptiveAvgPool3d::new((1, 2, 3))),
            "AdaptiveAvgPool3d(output_size=(1, 2, 3))",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

fn randn(shape: &[usize]) -> Tensor {
    Tensor::randn(shape, DType::F64, &Device::Cpu).unwrap()
}

#[test]
fn gradcheck_pools() {
    kiln::manual_seed(19);
    let opts = GradcheckOpts::default();
    // Random inputs have no ties, so max pooling is differentiable at x.
    let x1 = [randn(&[2, 2, 9])];
    let o1 = Pool1dOpts::new(3).stride(2).padding(1).ceil_mode(true);
    gradcheck(|t| F::max_pool1d_with(&t[0], o1.dilation(2)), &x1, opts).unwrap();
    gradcheck(|t| F::avg_pool1d_with(&t[0], o1), &x1, opts).unwrap();
    gradcheck(
        |t| F::avg_pool1d_with(&t[0], o1.count_include_pad(false)),
        &x1,
        opts,
    )
    .unwrap();
    gradcheck(|t| F::adaptive_max_pool1d(&t[0], 4), &x1, opts).unwrap();
    gradcheck(|t| F::adaptive_avg_pool1d(&t[0], 4), &x1, opts).unwrap();
    let x2 = [randn(&[1, 2, 5, 7])];
    gradcheck(|t| F::adaptive_max_pool2d(&t[0], (3, 4)), &x2, opts).unwrap();
    gradcheck(|t| F::adaptive_max_pool2d(&t[0], (7, 9)), &x2, opts).unwrap();
    let x3 = [randn(&[1, 2, 4, 5, 3])];
    let o3 = Pool3dOpts::new((2, 3, 2))
        .stride(2)
        .padding(1)
        .ceil_mode(true);
    gradcheck(|t| F::max_pool3d_with(&t[0], o3), &x3, opts).unwrap();
    gradcheck(|t| F::avg_pool3d_with(&t[0], o3), &x3, opts).unwrap();
    gradcheck(
        |t| F::avg_pool3d_with(&t[0], o3.count_include_pad(false)),
        &x3,
        opts,
    )
    .unwrap();
    gradcheck(|t| F::adaptive_max_pool3d(&t[0], (3, 2, 2)), &x3, opts).unwrap();
    gradcheck(|t| F::adaptive_avg_pool3d(&t[0], (3, 2, 2)), &x3, opts).unwrap();
}

fn arg_name(e: Error) -> &'static str {
    match e {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

/// Each argument PyTorch rejects is an error naming it.
#[test]
fn argument_errors() {
    let x1 = randn(&[1, 2, 5]);
    let x3 = randn(&[1, 2, 4, 5, 5]);
    let err1 = |o: Pool1dOpts| arg_name(F::max_pool1d_with(&x1, o).unwrap_err());
    assert_eq!(err1(Pool1dOpts::new(0)), "kernel");
    assert_eq!(err1(Pool1dOpts::new(2).stride(0)), "stride");
    assert_eq!(err1(Pool1dOpts::new(2).dilation(0)), "dilation");
    assert_eq!(err1(Pool1dOpts::new(3).padding(2)), "padding");
    // A 6-wide window does not fit 5 elements.
    assert_eq!(err1(Pool1dOpts::new(6)), "kernel");
    let avg_dil = F::avg_pool1d_with(&x1, Pool1dOpts::new(2).dilation(2));
    assert_eq!(arg_name(avg_dil.unwrap_err()), "dilation");
    // Rank: 1-d pooling takes (N, C, L) or (C, L).
    assert_eq!(
        arg_name(F::max_pool1d(&randn(&[5]), 2, 2, 0).unwrap_err()),
        "input"
    );
    assert_eq!(arg_name(F::avg_pool1d(&x3, 2, 2, 0).unwrap_err()), "input");
    // Empty channels or spatial axes (only the batch may be empty).
    let empty = Tensor::zeros(&[1, 0, 5], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(
        arg_name(F::max_pool1d(&empty, 2, 2, 0).unwrap_err()),
        "input"
    );
    let err3 = |o: Pool3dOpts| arg_name(F::avg_pool3d_with(&x3, o).unwrap_err());
    assert_eq!(err3(Pool3dOpts::new((2, 0, 2))), "kernel");
    assert_eq!(err3(Pool3dOpts::new(2).stride((1, 1, 0))), "stride");
    assert_eq!(err3(Pool3dOpts::new(2).padding((0, 2, 0))), "padding");
    // Depth 4 holds no 5-deep window.
    assert_eq!(err3(Pool3dOpts::new((5, 1, 1))), "kernel");
    assert_eq!(arg_name(F::max_pool3d(&x1, 2, 2, 0).unwrap_err()), "input");
    // Adaptive: a zero output size, an empty pooled axis, the wrong rank.
    let amax = F::adaptive_max_pool2d_with_indices(&randn(&[1, 2, 4, 4]), (0, 2));
    assert_eq!(arg_name(amax.unwrap_err()), "output_size");
    assert_eq!(
        arg_name(F::adaptive_avg_pool1d(&x1, 0).unwrap_err()),
        "output_size"
    );
    assert_eq!(
        arg_name(F::adaptive_avg_pool3d(&x3, (1, 0, 1)).unwrap_err()),
        "output_size"
    );
    let flat = Tensor::zeros(&[1, 2, 0], DType::F64, &Device::Cpu).unwrap();
    assert_eq!(
        arg_name(F::adaptive_max_pool1d(&flat, 2).unwrap_err()),
        "input"
    );
    assert_eq!(
        arg_name(F::adaptive_max_pool2d(&x3, 2).unwrap_err()),
        "input"
    );
    assert_eq!(
        arg_name(F::adaptive_avg_pool3d(&x1, 2).unwrap_err()),
        "input"
    );
    let xi = Tensor::zeros(&[1, 1, 4], DType::I64, &Device::Cpu).unwrap();
    assert!(matches!(
        F::adaptive_max_pool1d(&xi, 2).unwrap_err(),
        Error::UnsupportedDType { .. }
    ));
    // The indices are not differentiable: only the values carry the gradient.
    let (_, i) =
        F::adaptive_max_pool2d_with_indices(&randn(&[1, 1, 4, 4]).requires_grad(), 2).unwrap();
    assert!(!i.requires_grad_flag());
    assert!(host(&i).iter().all(|&at| (0.0..16.0).contains(&at)));
}
