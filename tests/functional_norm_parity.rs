//! The norm family's CUDA parity sweep: batch, layer, RMS and group norm on every float dtype,
//! forward and every gradient, against the CPU backend (tests/common/parity.rs), with
//! the check that it launches every kernel of kernels/norm.cu. The golden tests are in
//! tests/functional_norm.rs, which this file keeps under ~600 lines.

mod common;

/// Batch, layer and RMS norm on the device against the CPU.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{Device, Result, Tensor};

    /// Batch norm in every float dtype, training and eval, with and without affine
    /// parameters: S = 1 with many rows ((37, 5)), and a large S through a permuted view
    /// ((3, 7, 40, 13): 520 values per sample and channel). Output, the running
    /// statistics updated in place, and the gradients of x, weight and bias.
    #[test]
    fn batch_norm_matches_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("batch_norm_matches_the_cpu_in_every_float_dtype");
        // (leaf shape, permutation giving the (N, C, *) input)
        let cases: [(&[usize], &[usize]); 2] =
            [(&[37, 5], &[0, 1]), (&[13, 40, 7, 3], &[3, 2, 1, 0])];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (case, &(shape, perm)) in cases.iter().enumerate() {
                for (training, affine) in
                    [(true, true), (true, false), (false, true), (false, false)]
                {
                    let run = |d: &Device| -> Result<Vec<Tensor>> {
                        let leaf = values(shape, dtype, 90 + case as u64)
                            .to_device(d)?
                            .requires_grad();
                        let x = leaf.permute(perm)?;
                        let c = x.shape()[1];
                        let rm = values(&[c], dtype, 91).to_device(d)?;
                        let rv = values(&[c], dtype, 92)
                            .abs()?
                            .add_scalar(0.5)?
                            .to_device(d)?;
                        let param = |seed| {
                            values(&[c], dtype, seed)
                                .to_device(d)
                                .map(Tensor::requires_grad)
                        };
                        let (w, b) = if affine {
                            (Some(param(93)?), Some(param(94)?))
                        } else {
                            (None, None)
                        };
                        let y = F::batch_norm(
                            &x,
                            &rm,
                            &rv,
                            w.as_ref(),
                            b.as_ref(),
                            training,
                            0.1,
                            1e-5,
                        )?;
                        let gout = values(y.shape(), dtype, 95).to_device(d)?;
                        y.mul(&gout)?.sum_all()?.backward()?;
                        let mut out = vec![y, rm, rv, leaf.grad().expect("x grad")];
                        out.extend(w.iter().chain(&b).map(|p| p.grad().expect("param grad")));
                        Ok(out)
                    };
                    let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                    for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                        let what = format!("batch_norm case {case} {dtype:?} training {training} affine {affine}: output {i}");
                        assert_close(&what, g, c, atol, rtol);
                    }
                }
            }
        }
    }

    /// batch_norm_act (batch norm, residual add, ReLU fused) in every float dtype,
    /// training and eval, with and without a (transposed) residual: output, running
    /// statistics and the gradients of x, weight, bias and residual.
    #[test]
    fn batch_norm_act_matches_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("batch_norm_act_matches_the_cpu_in_every_float_dtype");
        let shape = [6, 5, 9, 7];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (training, with_residual) in [(true, true), (true, false), (false, true)] {
                let run = |d: &Device| -> Result<Vec<Tensor>> {
                    let x = values(&shape, dtype, 96).to_device(d)?.requires_grad();
                    let r = values(&[6, 5, 7, 9], dtype, 97)
                        .to_device(d)?
                        .requires_grad();
                    let residual = r.transpose(2, 3)?;
                    let rm = values(&[5], dtype, 91).to_device(d)?;
                    let rv = values(&[5], dtype, 92)
                        .abs()?
                        .add_scalar(0.5)?
                        .to_device(d)?;
                    let w = values(&[5], dtype, 93).to_device(d)?.requires_grad();
                    let b = values(&[5], dtype, 94).to_device(d)?.requires_grad();
                    let y = F::batch_norm_act(
                        &x,
                        &rm,
                        &rv,
                        Some(&w),
                        Some(&b),
                        with_residual.then_some(&residual),
                        training,
                        0.1,
                        1e-5,
                    )?;
                    let gout = values(y.shape(), dtype, 95).to_device(d)?;
                    y.mul(&gout)?.sum_all()?.backward()?;
                    let mut out = vec![y, rm, rv];
                    out.extend([&x, &w, &b].map(|t| t.grad().expect("grad")));
                    out.extend(with_residual.then(|| r.grad().expect("residual grad")));
                    Ok(out)
                };
                let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                    let what = format!("batch_norm_act {dtype:?} training {training} residual {with_residual}: output {i}");
                    assert_close(&what, g, c, atol, rtol);
                }
            }
        }
    }

    /// layer_norm and rms_norm, forward and the gradients of x, weight and bias, with and
    /// without affine parameters, on contiguous and transposed inputs (rows wider and
    /// narrower than a block, and more rows than the backward's partial-sum blocks), in
    /// every float dtype.
    #[test]
    fn layer_norm_and_rms_norm_match_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) =
            gpu_or_skip!("layer_norm_and_rms_norm_match_the_cpu_in_every_float_dtype");
        // (leaf shape, transposed dims, normalized_shape)
        type Case = (&'static [usize], (usize, usize), &'static [usize]);
        let cases: [Case; 3] = [
            (&[300, 37], (0, 0), &[37]),
            (&[5, 3, 7], (0, 1), &[5, 7]),
            (&[2, 700], (0, 0), &[700]),
        ];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (case, &(shape, (d0, d1), norm)) in cases.iter().enumerate() {
                for (rms, affine) in [(false, true), (false, false), (true, true), (true, false)] {
                    let run = |d: &Device| -> Result<Vec<Tensor>> {
                        let leaf = values(shape, dtype, 51 + case as u64)
                            .to_device(d)?
                            .requires_grad();
                        let x = leaf.transpose(d0, d1)?;
                        let param = |seed| {
                            values(norm, dtype, seed)
                                .to_device(d)
                                .map(Tensor::requires_grad)
                        };
                        let (w, b) = if affine {
                            (Some(param(52)?), Some(param(53)?))
                        } else {
                            (None, None)
                        };
                        let y = if rms {
                            F::rms_norm(&x, norm, w.as_ref(), None)?
                        } else {
                            F::layer_norm(&x, norm, w.as_ref(), b.as_ref(), 1e-5)?
                        };
                        let gout = values(y.shape(), dtype, 54).to_device(d)?;
                        y.mul(&gout)?.sum_all()?.backward()?;
                        let mut out = vec![y, leaf.grad().expect("x grad")];
                        let params = if rms {
                            w.iter().collect::<Vec<_>>()
                        } else {
                            w.iter().chain(&b).collect()
                        };
                        out.extend(params.into_iter().map(|p| p.grad().expect("param grad")));
                        Ok(out)
                    };
                    let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                    assert_eq!(on_gpu.len(), on_cpu.len());
                    for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                        let what = format!(
                            "norm case {case} {dtype:?} rms {rms} affine {affine}: output {i}"
                        );
                        // Weight/bias gradients sum hundreds of rows: allow their rounding.
                        let k = if i >= 2 { 8.0 } else { 1.0 };
                        assert_close(&what, g, c, atol * k, rtol * k);
                    }
                }
            }
        }
    }

    /// group_norm (and so instance_norm, its one-channel-per-group case), forward and
    /// the gradients of x, weight and bias, with and without affine parameters, in every
    /// float dtype: several channels per group through a permuted view, one channel per
    /// group, no spatial dims, and rows longer than a block.
    #[test]
    fn group_norm_matches_the_cpu_in_every_float_dtype() {
        let (dev, _gpu) = gpu_or_skip!("group_norm_matches_the_cpu_in_every_float_dtype");
        // (leaf shape, permutation giving the (N, C, *) input, groups)
        type Case = (&'static [usize], &'static [usize], usize);
        let cases: [Case; 4] = [
            (&[3, 37, 6], &[0, 2, 1], 3),
            (&[2, 12, 5, 3], &[0, 1, 2, 3], 12),
            (&[5, 12], &[0, 1], 4),
            (&[1, 4, 700], &[0, 1, 2], 1),
        ];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (case, &(shape, perm, groups)) in cases.iter().enumerate() {
                for affine in [true, false] {
                    let run = |d: &Device| -> Result<Vec<Tensor>> {
                        let leaf = values(shape, dtype, 61 + case as u64)
                            .to_device(d)?
                            .requires_grad();
                        let x = leaf.permute(perm)?;
                        let c = x.shape()[1];
                        let param = |seed| {
                            values(&[c], dtype, seed)
                                .to_device(d)
                                .map(Tensor::requires_grad)
                        };
                        let (w, b) = if affine {
                            (Some(param(62)?), Some(param(63)?))
                        } else {
                            (None, None)
                        };
                        let y = F::group_norm(&x, groups, w.as_ref(), b.as_ref(), 1e-5)?;
                        let gout = values(y.shape(), dtype, 64).to_device(d)?;
                        y.mul(&gout)?.sum_all()?.backward()?;
                        let mut out = vec![y, leaf.grad().expect("x grad")];
                        out.extend(w.iter().chain(&b).map(|p| p.grad().expect("param grad")));
                        Ok(out)
                    };
                    let (on_gpu, on_cpu) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                    assert_eq!(on_gpu.len(), on_cpu.len());
                    for (i, (g, c)) in on_gpu.iter().zip(&on_cpu).enumerate() {
                        let what =
                            format!("group_norm case {case} {dtype:?} affine {affine}: output {i}");
                        // Weight/bias gradients sum many values: allow their rounding.
                        let k = if i >= 2 { 8.0 } else { 1.0 };
                        assert_close(&what, g, c, atol * k, rtol * k);
                    }
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/norm.cu.
    #[test]
    fn every_norm_kernel_is_launched() {
        let suite: [fn(); 4] = [
            batch_norm_matches_the_cpu_in_every_float_dtype,
            batch_norm_act_matches_the_cpu_in_every_float_dtype,
            layer_norm_and_rms_norm_match_the_cpu_in_every_float_dtype,
            group_norm_matches_the_cpu_in_every_float_dtype,
        ];
        assert_every_kernel_launched("norm", &suite, &[]);
    }
}
