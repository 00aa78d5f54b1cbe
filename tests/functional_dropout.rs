//! `F::dropout`: the Philox mask of docs/ARCHITECTURE.md, its statistics, reproducibility,
//! backward regenerating the same mask, the special cases and argument errors; and
//! `F::stochastic_depth` / `nn::StochasticDepth` (torchvision's, whole samples dropped).

mod common;

use common::{assert_close, device_test, host, seeded};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::internals::{keep_threshold, PhiloxStream};
use kiln::nn::functional as F;
use kiln::{DType, Device, Error, Tensor};

/// Every draw of this binary goes through `seeded`: its tests compare masks by seed.
fn randn(shape: &[usize], dtype: DType, dev: &Device) -> Tensor {
    seeded(0, || Tensor::randn(shape, dtype, dev)).unwrap()
}

fn ones(n: usize, dtype: DType, dev: &Device) -> Tensor {
    Tensor::ones(&[n], dtype, dev).unwrap()
}

device_test! {
    fn kept_fraction_within_four_sigma_and_kept_values_scaled(dev) {
        let n = 1_000_000;
        for p in [0.1, 0.5, 0.8] {
            let y = seeded(42, || F::dropout(&ones(n, DType::F32, dev), p, true)).unwrap();
            assert_eq!(y.device(), *dev);
            let y = y.to_vec::<f32>().unwrap();
            let scale = (1.0 / (1.0 - p)) as f32;
            let kept = y.iter().filter(|&&v| v != 0.0).count() as f64;
            assert!(
                y.iter().all(|&v| v == 0.0 || v == scale),
                "p={p}: values other than 0 and {scale}"
            );
            let (mean, sigma) = (n as f64 * (1.0 - p), (n as f64 * p * (1.0 - p)).sqrt());
            assert!(
                (kept - mean).abs() < 4.0 * sigma,
                "p={p}: kept {kept}, expected {mean} ± 4·{sigma}"
            );
        }
    }

    fn mask_is_the_philox_mapping_of_design_md(dev) {
        let (seed, n, p) = (1234, 4099, 0.3);
        let (first, second) = seeded(seed, || {
            let a = F::dropout(&ones(n, DType::F64, dev), p, true).unwrap();
            let b = F::dropout(&ones(n, DType::F64, dev), p, true).unwrap();
            assert_eq!((a.device(), b.device()), (*dev, *dev));
            (a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap())
        });
        let threshold = keep_threshold(p);
        assert_eq!(threshold, 3_006_477_107); // floor(0.7 · 2^32)
                                              // The first call uses counters from offset 0; the second starts past ceil(n/4).
        for (values, offset) in [(&first, 0), (&second, n.div_ceil(4) as u64)] {
            let stream = PhiloxStream { seed, offset };
            for (i, &v) in values.iter().enumerate() {
                let keep = u64::from(stream.word(i)) < threshold;
                assert_eq!(v != 0.0, keep, "element {i} at offset {offset}");
            }
        }
    }

    fn same_seed_same_mask_other_seed_other_mask(dev) {
        let x = Tensor::arange(10_000, DType::F32, dev)
            .unwrap()
            .add_scalar(1.0)
            .unwrap();
        let run = |seed| {
            seeded(seed, || {
                F::dropout(&x, 0.5, true).unwrap().to_vec::<f32>().unwrap()
            })
        };
        assert_eq!(run(7), run(7));
        // The mask is the Philox mapping on every device: the CPU's is the reference.
        if !dev.is_cpu() {
            let cpu = x.to_device(&Device::Cpu).unwrap();
            let on_cpu = seeded(7, || F::dropout(&cpu, 0.5, true)).unwrap();
            assert_eq!(run(7), on_cpu.to_vec::<f32>().unwrap());
        }
        assert_ne!(run(7), run(8));
    }

    fn backward_regenerates_the_forward_mask(dev) {
        let x = ones(10_001, DType::F32, dev).requires_grad();
        let y = seeded(99, || F::dropout(&x, 0.4, true)).unwrap();
        assert_eq!(y.device(), *dev);
        // Other random ops between forward and backward must not change the mask.
        let _noise = seeded(1, || Tensor::randn(&[1000], DType::F32, dev)).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        // d(sum y)/dx = mask·scale = y, since x is all ones.
        assert_eq!(
            x.grad().unwrap().to_vec::<f32>().unwrap(),
            y.to_vec::<f32>().unwrap()
        );
    }

    fn non_contiguous_input_uses_the_logical_order(dev) {
        let x = randn(&[6, 7], DType::F32, dev);
        let t = x.transpose(0, 1).unwrap();
        let a = seeded(5, || F::dropout(&t, 0.5, true)).unwrap();
        let b = seeded(5, || F::dropout(&t.contiguous().unwrap(), 0.5, true)).unwrap();
        assert_close(&a, &b, dev, 0.0, 0.0);
    }

    fn p_zero_and_eval_return_the_input(dev) {
        let x = randn(&[4, 5], DType::F32, dev).requires_grad();
        for y in [
            F::dropout(&x, 0.0, true).unwrap(),
            F::dropout(&x, 0.7, false).unwrap(),
        ] {
            assert_eq!(y.id(), x.id());
            assert_eq!(y.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        }
    }

    fn p_one_gives_zeros_and_zero_gradient(dev) {
        let x = randn(&[4, 5], DType::F32, dev).requires_grad();
        let y = F::dropout(&x, 1.0, true).unwrap();
        assert_eq!(y.device(), *dev);
        assert!(y.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0));
        y.sum_all().unwrap().backward().unwrap();
        assert!(x
            .grad()
            .unwrap()
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .all(|&v| v == 0.0));
    }

    fn half_precision_is_masked_and_scaled(dev) {
        for dtype in [DType::F16, DType::BF16] {
            let y = seeded(3, || F::dropout(&ones(4096, dtype, dev), 0.5, true)).unwrap();
            assert_eq!((y.dtype(), y.device()), (dtype, *dev));
            let v = y.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap();
            assert!(v.iter().all(|&v| v == 0.0 || v == 2.0));
            let f32_mask = seeded(3, || F::dropout(&ones(4096, DType::F32, dev), 0.5, true)).unwrap();
            assert_eq!(v, f32_mask.to_vec::<f32>().unwrap());
        }
    }
}

#[test]
fn gradient_matches_finite_differences() {
    let x = [randn(&[3, 5], DType::F64, &Device::Cpu)];
    // Reseeding inside f makes every evaluation use one mask.
    let f = |t: &[Tensor]| seeded(17, || F::dropout(&t[0], 0.3, true));
    gradcheck(f, &x, GradcheckOpts::default()).unwrap();
}

#[test]
fn p_outside_unit_interval_is_an_error_naming_p() {
    let x = ones(4, DType::F32, &Device::Cpu);
    for p in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        match F::dropout(&x, p, true) {
            Err(Error::InvalidArgument { name: "p", .. }) => {}
            other => panic!("p={p}: expected an error naming p, got {other:?}"),
        }
        // Checked in eval mode too: a bad p is a bug whatever the mode.
        assert!(F::dropout(&x, p, false).is_err());
    }
    let xi = Tensor::zeros(&[4], DType::I64, &Device::Cpu).unwrap();
    assert!(matches!(
        F::dropout(&xi, 0.5, true),
        Err(Error::UnsupportedDType { .. })
    ));
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The dropout kernels on every float dtype against the CPU backend, masks bit for
/// bit (tests/common/parity.rs), and the check that these tests launch every kernel of
/// kernels/dropout.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, assert_exact, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{Result, Tensor};

    /// One view of `dropout_matches_the_cpu_in_every_float_dtype`: its name, the leaf's
    /// shape and the view of the leaf that dropout runs on.
    type DropoutView = (
        &'static str,
        &'static [usize],
        fn(&Tensor) -> Result<Tensor>,
    );

    /// Dropout masks are bit-identical on both devices for the same seed (the Philox
    /// mapping in docs/ARCHITECTURE.md) in every float dtype, on both kernels: contiguous
    /// inputs (`dropout_contig_*`: vector accesses, a partial last block, views starting
    /// off a pack boundary) and a permuted view (`dropout_*`, the strided kernel). The
    /// gradients are contiguous, so the backward passes take the contiguous kernel.
    #[test]
    fn dropout_matches_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("dropout_matches_the_cpu_in_every_float_dtype");
        let views: [DropoutView; 5] = [
            ("contiguous, 4k elements", &[8, 64], |t| Ok(t.clone())),
            ("contiguous, 4k+3 elements", &[4099], |t| Ok(t.clone())),
            // Offset 1: no dtype's pack is aligned; offset 4: f32's and f16's are.
            ("narrow at 1", &[4103], |t| t.narrow(0, 1, 4098)),
            ("narrow at 4", &[4103], |t| t.narrow(0, 4, 4097)),
            ("permuted", &[3, 37, 5, 2], |t| t.permute(&[1, 0, 3, 2])),
        ];
        for dtype in FLOATS {
            for (i, (what, shape, view)) in views.into_iter().enumerate() {
                let cpu = values(shape, dtype, 80 + i as u64);
                let gpu = cpu.to_device(&dev).unwrap();
                let drop = |t: &Tensor| -> Result<(Tensor, Tensor)> {
                    let _own = crate::common::own_generator();
                    kiln::manual_seed(1234);
                    let leaf = t.clone().requires_grad();
                    let y = F::dropout(&view(&leaf)?, 0.3, true)?;
                    y.mul(&y.detach())?.sum_all()?.backward()?;
                    Ok((y, leaf.grad().expect("grad")))
                };
                let ((yc, gc), (yg, gg)) = (drop(&cpu).unwrap(), drop(&gpu).unwrap());
                assert_exact(&format!("dropout {what} {dtype:?}"), &yg, &yc);
                let (atol, rtol) = tol(dtype);
                assert_close(
                    &format!("dropout grad {what} {dtype:?}"),
                    &gg,
                    &gc,
                    atol,
                    rtol,
                );
            }
        }
    }

    /// bias_dropout_add in every float dtype, training (masked) and eval (not), on a
    /// transposed residual: output and the gradients of x, bias and residual.
    #[test]
    fn bias_dropout_add_matches_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("bias_dropout_add_matches_the_cpu_in_every_float_dtype");
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for training in [true, false] {
                let run = |d: &kiln::Device| -> Result<Vec<Tensor>> {
                    let _own = crate::common::own_generator();
                    kiln::manual_seed(77);
                    let x = values(&[9, 37], dtype, 83).to_device(d)?.requires_grad();
                    let b = values(&[37], dtype, 84).to_device(d)?.requires_grad();
                    let r = values(&[37, 9], dtype, 85).to_device(d)?.requires_grad();
                    let y = F::bias_dropout_add(&x, &b, &r.transpose(0, 1)?, 0.3, training)?;
                    let gout = values(&[9, 37], dtype, 86).to_device(d)?;
                    y.mul(&gout)?.sum_all()?.backward()?;
                    Ok([&x, &b, &r]
                        .into_iter()
                        .map(|t| t.grad().expect("grad"))
                        .chain([y])
                        .collect())
                };
                let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&kiln::Device::Cpu).unwrap());
                for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                    let what =
                        format!("bias_dropout_add {dtype:?} training {training}: output {i}");
                    assert_close(&what, g, c, atol, rtol);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/dropout.cu.
    #[test]
    fn every_dropout_kernel_is_launched() {
        let suite: [fn(); 2] = [
            dropout_matches_the_cpu_in_every_float_dtype,
            bias_dropout_add_matches_the_cpu_in_every_float_dtype,
        ];
        assert_every_kernel_launched("dropout", &suite, &[]);
    }
}

/// The rows of `y` (a `(rows, ..)` tensor from an input of ones): each row is all 0
/// or all `1/(1-p)`; returns how many were kept.
fn kept_rows(y: &Tensor, p: f64) -> usize {
    let rows = y.shape()[0];
    let y = y.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    let scale = 1.0 / (1.0 - p);
    y.chunks(y.len() / rows)
        .filter(|row| {
            let kept = row[0] != 0.0;
            let want = if kept { scale } else { 0.0 };
            assert!(
                row.iter().all(|&v| (v - want).abs() < 1e-6),
                "row mixes values: {row:?}"
            );
            kept
        })
        .count()
}

device_test! {
    /// torchvision's `stochastic_depth(x, p, "row", True)`: whole samples dropped,
    /// the rest scaled by 1/(1-p); the gradient is the same per-sample noise.
    fn stochastic_depth_row_drops_whole_samples(dev) {
        let (rows, p) = (400, 0.3);
        let x = Tensor::ones(&[rows, 3, 2, 2], DType::F32, dev).unwrap().requires_grad();
        let y = seeded(5, || F::stochastic_depth(&x, p, F::StochasticDepthMode::Row, true))
            .unwrap();
        assert_eq!((y.shape(), y.device()), (x.shape(), *dev));
        let kept = kept_rows(&y, p) as f64;
        let (mean, sigma) = (rows as f64 * (1.0 - p), (rows as f64 * p * (1.0 - p)).sqrt());
        assert!((kept - mean).abs() < 4.0 * sigma, "kept {kept} of {rows}");
        assert!(kept < rows as f64, "some rows must be dropped");
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(host(&x.grad().unwrap()), host(&y), "d(sum y)/dx is the noise");
    }

    fn stochastic_depth_batch_mode_keeps_or_drops_everything(dev) {
        let x = Tensor::ones(&[3, 4], DType::F64, dev).unwrap();
        let mut seen = [false, false];
        for seed in 0..40 {
            let y = seeded(seed, || {
                F::stochastic_depth(&x, 0.5, F::StochasticDepthMode::Batch, true)
            })
            .unwrap();
            let v = host(&y);
            assert!(v.iter().all(|&e| e == v[0]) && (v[0] == 0.0 || v[0] == 2.0), "{v:?}");
            seen[usize::from(v[0] != 0.0)] = true;
        }
        assert_eq!(seen, [true, true], "40 draws at p = 0.5 give both outcomes");
    }

    fn stochastic_depth_identity_cases_and_p_one(dev) {
        let x = randn(&[4, 5], DType::F32, dev);
        let row = F::StochasticDepthMode::Row;
        for (p, training) in [(0.7, false), (0.0, true)] {
            let y = F::stochastic_depth(&x, p, row, training).unwrap();
            assert_eq!(host(&y), host(&x), "p={p} training={training}");
        }
        let y = seeded(2, || F::stochastic_depth(&x, 1.0, row, true)).unwrap();
        assert!(host(&y).iter().all(|&v| v == 0.0));
        let empty = Tensor::zeros(&[0, 3], DType::F32, dev).unwrap();
        assert_eq!(F::stochastic_depth(&empty, 0.5, row, true).unwrap().shape(), &[0, 3]);
        // Non-contiguous input: rows of the transposed view.
        let t = randn(&[5, 4], DType::F32, dev).transpose(0, 1).unwrap();
        let y = seeded(1, || F::stochastic_depth(&t, 0.5, row, true)).unwrap();
        for (yr, xr) in host(&y).chunks(5).zip(host(&t).chunks(5)) {
            let kept = yr.iter().zip(xr).all(|(a, b)| (a - 2.0 * b).abs() < 1e-6);
            assert!(kept || yr.iter().all(|&v| v == 0.0), "{yr:?} from {xr:?}");
        }
    }

    fn stochastic_depth_module_follows_train_and_eval(dev) {
        use kiln::nn::{Forward, Module};
        let sd = kiln::nn::StochasticDepth::new(1.0, F::StochasticDepthMode::Row).unwrap();
        let x = Tensor::ones(&[2, 3], DType::F32, dev).unwrap();
        let y = seeded(3, || sd.forward(&x)).unwrap();
        assert!(host(&y).iter().all(|&v| v == 0.0));
        sd.eval();
        assert_eq!(host(&sd.forward(&x).unwrap()), host(&x));
    }
}

#[test]
fn stochastic_depth_bad_arguments_are_errors_naming_them() {
    let cpu = Device::Cpu;
    let x = Tensor::ones(&[2, 3], DType::F32, &cpu).unwrap();
    let row = F::StochasticDepthMode::Row;
    for p in [-0.1, 1.5, f64::NAN] {
        assert!(matches!(
            F::stochastic_depth(&x, p, row, true),
            Err(Error::InvalidArgument { name: "p", .. })
        ));
        assert!(matches!(
            kiln::nn::StochasticDepth::new(p, row),
            Err(Error::InvalidArgument { name: "p", .. })
        ));
    }
    let scalar = Tensor::ones(&[], DType::F32, &cpu).unwrap();
    assert!(matches!(
        F::stochastic_depth(&scalar, 0.5, row, true),
        Err(Error::InvalidArgument { name: "input", .. })
    ));
    let ints = Tensor::zeros(&[2, 3], DType::I64, &cpu).unwrap();
    assert!(F::stochastic_depth(&ints, 0.5, row, true).is_err());
}
