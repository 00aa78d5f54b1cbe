//! The CUDA parity sweeps of the copy kernels (conversions between every pair of dtypes,
//! views made contiguous, `cat`, in-place copies) and of the fill family (creation,
//! random draws and the Philox stream on the device) against the CPU backend
//! (tests/common/parity.rs), with the checks that they launch every kernel of
//! kernels/copy.cu and kernels/fill.cu. Their golden and CPU tests are in
//! tests/tensor_basics.rs, which this file keeps under ~600 lines.

mod common;

/// Conversions, copies and creation on the device against the CPU.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, assert_exact, gpu_or_skip, pair_t, tol, ALL,
    };
    use kiln::{DType, Device, Tensor};

    #[test]
    fn conversions_between_all_dtypes_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("conversions_between_all_dtypes_match_the_cpu");
        let special = Tensor::from_vec(
            vec![
                300.7f64,
                -5.5,
                f64::NAN,
                1e20,
                -1e20,
                255.9,
                0.49,
                -0.0,
                65504.0,
                1e-8,
                3.0e38,
                -7.0,
            ],
            &[3, 4],
            &Device::Cpu,
        )
        .unwrap();
        for src in ALL {
            let (cpu, gpu) = pair_t(&[7, 11, 3], src, 40, &dev);
            let s_cpu = special.to_dtype(src).unwrap().transpose(0, 1).unwrap();
            let s_gpu = special
                .to_device(&dev)
                .unwrap()
                .to_dtype(src)
                .unwrap()
                .transpose(0, 1)
                .unwrap();
            for dst in ALL {
                let what = format!("{src:?} -> {dst:?}");
                assert_exact(
                    &what,
                    &gpu.to_dtype(dst).unwrap(),
                    &cpu.to_dtype(dst).unwrap(),
                );
                assert_exact(
                    &what,
                    &s_gpu.to_dtype(dst).unwrap(),
                    &s_cpu.to_dtype(dst).unwrap(),
                );
            }
        }
    }

    #[test]
    fn views_contiguous_cat_and_in_place_copies() {
        let (dev, _gpu) = gpu_or_skip!("views_contiguous_cat_and_in_place_copies");
        for dtype in ALL {
            let (cpu, gpu) = pair_t(&[4, 9, 6], dtype, 50, &dev);
            let what = format!("{dtype:?}");
            assert_exact(
                &what,
                &gpu.contiguous().unwrap(),
                &cpu.contiguous().unwrap(),
            );
            let n = |t: &Tensor| t.narrow(1, 2, 5).unwrap().transpose(0, 2).unwrap();
            assert_exact(
                &what,
                &n(&gpu).contiguous().unwrap(),
                &n(&cpu).contiguous().unwrap(),
            );
            let cat = |a: &Tensor| {
                Tensor::cat(
                    &[
                        &a.narrow(1, 0, 3).unwrap(),
                        a,
                        &n(a).transpose(0, 2).unwrap(),
                    ],
                    1,
                )
            };
            assert_exact(&what, &cat(&gpu).unwrap(), &cat(&cpu).unwrap());
            let z_cpu = Tensor::zeros(&[6, 9, 4], dtype, &Device::Cpu).unwrap();
            let z_gpu = Tensor::zeros(&[6, 9, 4], dtype, &dev).unwrap();
            let src_c = cpu.transpose(0, 2).unwrap().narrow(1, 1, 4).unwrap();
            let src_g = gpu.transpose(0, 2).unwrap().narrow(1, 1, 4).unwrap();
            z_cpu
                .narrow(1, 3, 4)
                .unwrap()
                .copy_(&src_c.to_dtype(DType::F64).unwrap())
                .unwrap();
            z_gpu
                .narrow(1, 3, 4)
                .unwrap()
                .copy_(&src_g.to_dtype(DType::F64).unwrap())
                .unwrap();
            assert_exact(&what, &z_gpu, &z_cpu);
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/copy.cu.
    #[test]
    fn every_copy_kernel_is_launched() {
        let suite: [fn(); 2] = [
            conversions_between_all_dtypes_match_the_cpu,
            views_contiguous_cat_and_in_place_copies,
        ];
        assert_every_kernel_launched("copy", &suite, &[]);
    }

    /// `full`, `zeros`, `ones` and `arange` are made on the device with the CPU's values
    /// for every dtype; `rand` and `randn` draw the same Philox numbers as the CPU for the
    /// same seed (`rand` bit for bit, `randn` through the same Box–Muller mapping) and
    /// advance the generator as much.
    #[test]
    fn creation_on_the_device_matches_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("creation_on_the_device_matches_the_cpu");
        for dtype in ALL {
            for (value, shape) in [
                (2.5, vec![3, 5]),
                (-0.0, vec![4099]),
                (250.7, vec![1]),
                (7.0, vec![0, 2]),
            ] {
                let c = Tensor::full(&shape, value, dtype, &Device::Cpu).unwrap();
                let g = Tensor::full(&shape, value, dtype, &dev).unwrap();
                assert_exact(&format!("full({value}) {dtype:?}"), &g, &c);
            }
            // A value the dtype cannot hold is refused on every device alike.
            let too_big = if dtype == DType::F64 { f64::MAX } else { 1e39 };
            let refused = |d: &Device| Tensor::full(&[2], too_big, dtype, d).is_err();
            assert_eq!(refused(&dev), refused(&Device::Cpu), "{dtype:?}");
            assert_eq!(refused(&dev), dtype != DType::F64);
            let pairs = [
                (
                    Tensor::zeros(&[9], dtype, &dev),
                    Tensor::zeros(&[9], dtype, &Device::Cpu),
                ),
                (
                    Tensor::ones(&[9], dtype, &dev),
                    Tensor::ones(&[9], dtype, &Device::Cpu),
                ),
                (
                    Tensor::arange(1001, dtype, &dev),
                    Tensor::arange(1001, dtype, &Device::Cpu),
                ),
            ];
            for (k, (g, c)) in pairs.into_iter().enumerate() {
                assert_exact(
                    &format!("zeros/ones/arange #{k} {dtype:?}"),
                    &g.unwrap(),
                    &c.unwrap(),
                );
            }
            if !dtype.is_float() {
                assert!(Tensor::rand(&[3], dtype, &dev).is_err());
                continue;
            }
            let draw = |d: &Device| -> Vec<Tensor> {
                let _own = crate::common::own_generator();
                kiln::manual_seed(11);
                let shapes: [&[usize]; 3] = [&[4099], &[3, 3], &[1]];
                let mut out = Vec::new();
                for shape in shapes {
                    out.push(Tensor::rand(shape, dtype, d).unwrap());
                    out.push(Tensor::randn(shape, dtype, d).unwrap());
                }
                out
            };
            let (cpu, gpu) = (draw(&Device::Cpu), draw(&dev));
            let (atol, rtol) = tol(dtype);
            for (k, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
                let what = format!("random draw {k} {dtype:?}");
                if k % 2 == 0 {
                    assert_exact(&what, g, c);
                } else {
                    assert_close(&what, g, c, atol, rtol);
                }
            }
        }
    }

    /// `kiln::cuda::philox_words` (the `philox_words` kernel) gives the CPU's Philox
    /// stream bit for bit, for seeds and offsets at the ends of their range.
    #[test]
    fn philox_on_the_device_matches_the_cpu_bit_for_bit() {
        let (_dev, _gpu) = gpu_or_skip!("philox_on_the_device_matches_the_cpu_bit_for_bit");
        for (seed, offset, n) in [
            (0u64, 0u64, 13usize),
            (42, 7, 4099),
            (u64::MAX, u64::MAX - 1, 1000),
        ] {
            let stream = kiln::internals::PhiloxStream { seed, offset };
            assert_eq!(
                kiln::cuda::philox_words(0, stream, n).unwrap(),
                stream.words(n)
            );
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/fill.cu.
    #[test]
    fn every_fill_kernel_is_launched() {
        let suite: [fn(); 2] = [
            creation_on_the_device_matches_the_cpu,
            philox_on_the_device_matches_the_cpu_bit_for_bit,
        ];
        assert_every_kernel_launched("fill", &suite, &[]);
    }
}
