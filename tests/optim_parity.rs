//! The optim family's CUDA parity sweep: the fused SGD and Adam/AdamW steps on every
//! float dtype and option against the CPU backend (tests/common/parity.rs), with the
//! check that it launches every kernel of kernels/optim.cu. The golden tests are in
//! tests/optim.rs, which this file keeps under ~600 lines.

mod common;

/// Fused optimizer steps on the device against the CPU.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, gpu_or_skip, tol, values, FLOATS,
    };
    use kiln::optim::{Adam, AdamW, Optimizer, Sgd};
    use kiln::{DType, Device, Result, Tensor};

    /// One optimizer configuration of [`fused_optimizer_steps_match_the_cpu`].
    type MakeOptimizer = fn(Vec<Tensor>) -> Result<Box<dyn Optimizer>>;

    /// The fused SGD and Adam/AdamW kernels follow the CPU reference for three steps, in
    /// every float dtype, for each option (momentum, dampening, Nesterov, weight decay,
    /// AMSGrad, decoupled decay), on a contiguous and a transposed parameter.
    #[test]
    fn fused_optimizer_steps_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("fused_optimizer_steps_match_the_cpu");
        let configs: [(&str, MakeOptimizer); 8] = [
            ("sgd", |p| Ok(Box::new(Sgd::new(p, 0.1)?))),
            ("sgd momentum", |p| {
                Ok(Box::new(Sgd::new(p, 0.1)?.momentum(0.9)))
            }),
            ("sgd dampening wd", |p| {
                Ok(Box::new(
                    Sgd::new(p, 0.1)?
                        .momentum(0.9)
                        .dampening(0.1)
                        .weight_decay(0.01),
                ))
            }),
            ("sgd nesterov", |p| {
                Ok(Box::new(
                    Sgd::new(p, 0.05)?
                        .momentum(0.9)
                        .nesterov(true)
                        .weight_decay(5e-4),
                ))
            }),
            ("adam", |p| Ok(Box::new(Adam::new(p, 1e-2)?))),
            ("adam wd amsgrad", |p| {
                Ok(Box::new(
                    Adam::new(p, 1e-2)?.weight_decay(0.1).amsgrad(true),
                ))
            }),
            ("adamw", |p| Ok(Box::new(AdamW::new(p, 1e-2)?))),
            ("adamw amsgrad", |p| {
                Ok(Box::new(
                    AdamW::new(p, 3e-3)?
                        .betas(0.8, 0.99)
                        .eps(1e-6)
                        .weight_decay(0.05)
                        .amsgrad(true),
                ))
            }),
        ];
        let run = |make: MakeOptimizer, dtype: DType, d: &Device| -> Result<Vec<Tensor>> {
            // A contiguous parameter of odd size and a transposed (strided) one.
            let a = values(&[7, 37], dtype, 1).to_device(d)?.requires_grad();
            let b = values(&[5, 3], dtype, 2)
                .to_device(d)?
                .transpose(0, 1)?
                .requires_grad();
            let (ca, cb) = (
                values(&[7, 37], dtype, 3).to_device(d)?,
                values(&[3, 5], dtype, 4).to_device(d)?,
            );
            let mut opt = make(vec![a.clone(), b.clone()])?;
            for _ in 0..3 {
                opt.zero_grad();
                // Gradients 2·p·c: they change with the parameter, step by step.
                let loss = a
                    .mul(&a)?
                    .mul(&ca)?
                    .sum_all()?
                    .add(&b.mul(&b)?.mul(&cb)?.sum_all()?)?;
                loss.backward()?;
                opt.step()?;
            }
            Ok(vec![a, b])
        };
        for (name, make) in configs {
            for dtype in FLOATS {
                let cpu = run(make, dtype, &Device::Cpu).unwrap();
                let gpu = run(make, dtype, &dev).unwrap();
                let (atol, rtol) = tol(dtype);
                for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                    let what = format!("{name} {dtype:?} parameter {i}");
                    assert_close(&what, g, c, 4.0 * atol, 4.0 * rtol);
                }
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/optim.cu.
    #[test]
    fn every_optim_kernel_is_launched() {
        let suite: [fn(); 1] = [fused_optimizer_steps_match_the_cpu];
        assert_every_kernel_launched("optim", &suite, &[]);
    }
}
