//! The channel dropouts `F::dropout1d/2d/3d` and `nn::Dropout1d/2d/3d` on every device:
//! whole channels zeroed (the rest scaled by `1/(1-p)`), the mask being `F::dropout`'s
//! Philox mask of one value per channel, the backward multiplying by the same mask,
//! PyTorch's input ranks (dropout2d reads a 3-D input as `(N, C, L)`), eval mode, and
//! the errors. The values are random, so PyTorch gives no golden values here; what
//! PyTorch fixes (shapes, ranks, scaling, the identity in eval) is asserted.

mod common;

use common::{host, seeded};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};

/// Asserts an `InvalidArgument` error naming `expected`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(r: Result<T>, expected: &str) {
    match r {
        Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, expected),
        other => panic!("expected an invalid `{expected}`, got {other:?}"),
    }
}

/// 1 + the flat index: no zeros, so a zero in the output is a dropped value.
fn ramp(shape: &[usize], dev: &Device) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
    Tensor::from_vec(v, shape, dev).unwrap()
}

/// Checks that `y = op(x)` zeroes whole channels (runs of `per_channel` values) and
/// scales the others by `1/(1-p)`, and that `x`'s gradient is the same mask; returns
/// the kept-channel flags.
fn check_channels(x: &Tensor, y: &Tensor, per_channel: usize, p: f64) -> Vec<bool> {
    let (xs, ys) = (host(x), host(y));
    let scale = 1.0 / (1.0 - p);
    y.sum_all().unwrap().backward().unwrap();
    let grad = host(&x.grad().unwrap());
    let mut kept = Vec::new();
    for ((xc, yc), gc) in xs
        .chunks(per_channel)
        .zip(ys.chunks(per_channel))
        .zip(grad.chunks(per_channel))
    {
        let keep = yc[0] != 0.0;
        for ((&a, &b), &g) in xc.iter().zip(yc).zip(gc) {
            let (want, want_g) = if keep { (a * scale, scale) } else { (0.0, 0.0) };
            assert!((b - want).abs() <= 1e-12 * want.abs(), "{b} vs {want}");
            assert_eq!(g, want_g);
        }
        kept.push(keep);
    }
    kept
}

common::device_test! {
    /// Each rank PyTorch accepts: the channels are the (N, C) pairs of a batched input
    /// and the C rows of an unbatched one; odd sizes and a strided input.
    fn whole_channels_dropped(dev) {
        let p = 0.4;
        // (op, input shape, values per channel)
        type Op = fn(&Tensor, f64, bool) -> Result<Tensor>;
        let cases: [(Op, &[usize], usize); 6] = [
            (F::dropout1d, &[5, 7, 3], 3),
            (F::dropout1d, &[9, 4], 4),
            (F::dropout2d, &[3, 5, 2, 3], 6),
            (F::dropout2d, &[4, 6, 5], 5), // read as (N, C, L), as PyTorch does
            (F::dropout3d, &[2, 3, 2, 1, 3], 6),
            (F::dropout3d, &[7, 2, 2, 2], 8),
        ];
        for (i, (op, shape, per_channel)) in cases.into_iter().enumerate() {
            let x = ramp(shape, dev).requires_grad();
            let y = seeded(i as u64, || op(&x, p, true)).unwrap();
            assert_eq!(y.shape(), shape);
            assert_eq!(y.device(), *dev);
            let kept = check_channels(&x, &y, per_channel, p);
            assert!(kept.contains(&true) && kept.contains(&false), "case {i}: {kept:?}");
        }
        // A strided (transposed) input: the channels of the view, not of its storage.
        let base = ramp(&[3, 4, 6], dev);
        let x = base.transpose(0, 1).unwrap().contiguous().unwrap().transpose(0, 1).unwrap().detach().requires_grad();
        assert!(!x.is_contiguous());
        let y = seeded(7, || F::dropout1d(&x, 0.5, true)).unwrap();
        check_channels(&x, &y, 6, 0.5);
    }

    /// The mask is `F::dropout`'s on one value per channel: the same seed keeps the
    /// same channels, and the kept fraction is near 1 - p.
    fn mask_is_dropouts_per_channel(dev) {
        let (n, c, p) = (200, 50, 0.3);
        let x = Tensor::ones(&[n, c, 2], DType::F32, dev).unwrap();
        let y = seeded(11, || F::dropout1d(&x, p, true)).unwrap();
        let flat = seeded(11, || F::dropout(&Tensor::ones(&[n, c], DType::F32, dev).unwrap(), p, true)).unwrap();
        let per_channel: Vec<f64> = host(&y).chunks(2).map(|v| v[0]).collect();
        assert_eq!(per_channel, host(&flat));
        let kept = per_channel.iter().filter(|&&v| v != 0.0).count() as f64;
        let (mean, sigma) = ((n * c) as f64 * (1.0 - p), ((n * c) as f64 * p * (1.0 - p)).sqrt());
        assert!((kept - mean).abs() < 4.0 * sigma, "kept {kept}, expected {mean}");
    }

    /// Eval mode, p = 0 and empty inputs return the input; p = 1 zeroes everything.
    fn special_cases(dev) {
        let x = ramp(&[2, 3, 4], dev);
        assert_eq!(host(&F::dropout2d(&x, 0.5, false).unwrap()), host(&x));
        assert_eq!(host(&F::dropout1d(&x, 0.0, true).unwrap()), host(&x));
        assert!(host(&F::dropout1d(&x, 1.0, true).unwrap()).iter().all(|&v| v == 0.0));
        let e = Tensor::zeros(&[0, 3, 4], DType::F32, dev).unwrap();
        assert_eq!(F::dropout1d(&e, 0.5, true).unwrap().shape(), &[0, 3, 4]);
        let m = nn::Dropout2d::new(0.5).unwrap();
        m.eval();
        let x4 = ramp(&[2, 3, 2, 2], dev);
        assert_eq!(host(&m.forward(&x4).unwrap()), host(&x4));
        m.train();
        let y = seeded(3, || m.forward(&x4)).unwrap();
        let want = seeded(3, || F::dropout2d(&x4, 0.5, true)).unwrap();
        assert_eq!(host(&y), host(&want));
    }

    /// Bad probabilities, ranks PyTorch refuses (dropout1d: 2-D or 3-D) or deprecates
    /// (dropout2d: 3-D or 4-D; dropout3d: 4-D or 5-D), and integer inputs are errors.
    fn errors(dev) {
        let x = ramp(&[2, 3, 4], dev);
        for p in [-0.1, 1.5, f64::NAN] {
            assert_invalid(F::dropout1d(&x, p, true), "p");
            assert_invalid(nn::Dropout3d::new(p), "p");
        }
        let r1 = ramp(&[4], dev);
        let r4 = ramp(&[2, 3, 4, 5], dev);
        assert_invalid(F::dropout1d(&r1, 0.5, true), "input");
        assert_invalid(F::dropout1d(&r4, 0.5, true), "input");
        assert_invalid(F::dropout2d(&ramp(&[2, 3], dev), 0.5, true), "input");
        assert_invalid(F::dropout3d(&x, 0.5, true), "input");
        let i = Tensor::zeros(&[2, 3, 4], DType::I64, dev).unwrap();
        assert!(F::dropout1d(&i, 0.5, true).is_err());
    }
}

/// PyTorch's reprs.
#[test]
fn reprs_are_pytorchs() {
    assert_eq!(
        nn::repr(&nn::Dropout1d::new(0.2).unwrap()),
        "Dropout1d(p=0.2, inplace=False)"
    );
    assert_eq!(
        nn::repr(&nn::Dropout2d::new(0.5).unwrap()),
        "Dropout2d(p=0.5, inplace=False)"
    );
    assert_eq!(
        nn::repr(&nn::Dropout3d::new(0.25).unwrap()),
        "Dropout3d(p=0.25, inplace=False)"
    );
}
