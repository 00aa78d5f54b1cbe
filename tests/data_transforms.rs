//! Image transforms against torchvision (tests/data/transforms.safetensors, written by
//! scripts/golden/data.py) on every device, their random choices, and argument errors.

mod common;

use common::{assert_close, assert_values, device_test, own_generator, Golden};
use kiln::data::transforms::{
    functional as TF, Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform,
};
use kiln::{DType, Device, Error, Tensor};

const ALL: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

device_test! {
    /// RandomCrop with padding, and the flip, at torchvision's choices given explicitly.
    fn crop_with_padding_and_flip_match_torchvision(dev) {
        let g = Golden::load("transforms");
        for (case, size, padding) in [("crop", (4, 4), 2), ("rect", (3, 5), 1)] {
            let params = g.on(&format!("{case}.params"), dev);
            let want = g.get(&format!("{case}.out"));
            let x = g.on("x", dev);
            let got = RandomCrop::new(size, padding).apply_with(&x, &params).unwrap();
            assert_close(&got, &want, dev, 0.0, 0.0);
            // A gather commutes with a dtype conversion (which keeps 0 as 0), so the
            // crop of a converted batch is the converted crop, exactly.
            for dtype in ALL {
                let xd = x.abs().unwrap().mul_scalar(30.0).unwrap().to_dtype(dtype).unwrap();
                let got = RandomCrop::new(size, padding).apply_with(&xd, &params).unwrap();
                assert_eq!(got.dtype(), dtype);
                let want = want.abs().unwrap().mul_scalar(30.0).unwrap().to_dtype(dtype).unwrap();
                assert_close(&got, &want, dev, 0.0, 0.0);
            }
            let got = TF::crop_flip(&x, &params, size, padding).unwrap();
            assert_close(&got, &want, dev, 0.0, 0.0);
        }
    }

    /// torchvision.transforms.functional's crop (inside and partly outside) and hflip.
    fn functional_crop_and_hflip_match_torchvision(dev) {
        let g = Golden::load("transforms");
        let x = g.on("x", dev);
        assert_close(&TF::crop(&x, 1, 2, 3, 3).unwrap(), &g.get("fcrop.out"), dev, 0.0, 0.0);
        assert_close(&TF::crop(&x, -1, 4, 3, 4).unwrap(), &g.get("fcrop_out.out"), dev, 0.0, 0.0);
        assert_close(&TF::hflip(&x).unwrap(), &g.get("hflip.out"), dev, 0.0, 0.0);
        let strided = x.transpose(2, 3).unwrap().transpose(2, 3).unwrap().narrow(0, 1, 2).unwrap();
        let want = g.get("hflip.out").narrow(0, 1, 2).unwrap();
        assert_close(&TF::hflip(&strided).unwrap(), &want, dev, 0.0, 0.0);
    }

    fn normalize_matches_torchvision(dev) {
        let g = Golden::load("transforms");
        let mean = g.get("norm.mean").to_vec::<f64>().unwrap();
        let std = g.get("norm.std").to_vec::<f64>().unwrap();
        let norm = Normalize::new(&mean, &std);
        let y = norm.apply(&g.on("x", dev)).unwrap();
        assert_close(&y, &g.get("norm.out"), dev, 1e-6, 1e-6);
        let again = norm.apply(&g.on("x", dev).to_dtype(DType::F64).unwrap()).unwrap();
        assert_eq!(again.dtype(), DType::F64);
        assert_close(&again, &g.get("norm.out"), dev, 1e-6, 1e-6);
    }

    /// The random transforms draw their choices from kiln's generator: the same on
    /// every device for a seed, and exactly the crops of the drawn parameters.
    fn random_choices_are_reproducible_and_in_range(dev) {
        let _rng = own_generator();
        let x_cpu = Tensor::rand(&[300, 1, 3, 4], DType::F32, &Device::Cpu).unwrap();
        let x = x_cpu.to_device(dev).unwrap();
        let crop = RandomCrop::new((3, 3), 2);
        kiln::manual_seed(9);
        let params = crop.sample_params(&x).unwrap();
        assert_eq!(params.device(), *dev);
        kiln::manual_seed(9);
        let y = crop.apply(&x).unwrap();
        assert_close(&y, &crop.apply_with(&x, &params).unwrap(), dev, 0.0, 0.0);
        kiln::manual_seed(9);
        let on_cpu = crop.apply(&x_cpu).unwrap();
        assert_values("same choices on every device", &y, &on_cpu, 0.0, 0.0);
        let p = params.to_vec::<i64>().unwrap();
        let tops: std::collections::BTreeSet<i64> = p.iter().step_by(3).copied().collect();
        let lefts: std::collections::BTreeSet<i64> = p.iter().skip(1).step_by(3).copied().collect();
        assert_eq!(tops, (0..=4).collect(), "3 + 2·2 - 3 = 4: every top drawn");
        assert_eq!(lefts, (0..=5).collect(), "4 + 2·2 - 3 = 5: every left drawn");
        assert!(p.iter().skip(2).step_by(3).all(|&f| f == 0), "RandomCrop never flips");

        let flips = |prob: f64| -> i64 {
            let p = RandomHorizontalFlip::new(prob).sample_params(&x).unwrap();
            p.narrow(1, 2, 1).unwrap().sum_all().unwrap().item::<i64>().unwrap()
        };
        assert_eq!(flips(0.0), 0);
        assert_eq!(flips(1.0), 300);
        let half = flips(0.5);
        assert!((100..=200).contains(&half), "{half} of 300 flipped at p = 0.5");
        let aug = Compose::new()
            .add(RandomCrop::new(3, 1))
            .add(RandomHorizontalFlip::new(0.5))
            .add(Normalize::new(&[0.5], &[0.25]));
        kiln::manual_seed(3);
        let a = aug.apply(&x).unwrap();
        kiln::manual_seed(3);
        let b = aug.apply(&x_cpu).unwrap();
        assert_eq!(a.shape(), &[300, 1, 3, 3]);
        assert_values("composed", &a, &b, 1e-6, 1e-6);
    }

    fn bad_arguments_are_errors_naming_them(dev) {
        let x = Tensor::zeros(&[2, 3, 4, 4], DType::F32, dev).unwrap();
        let name = |r: kiln::Result<Tensor>| match r {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an invalid argument, got {other:?}"),
        };
        assert_eq!(name(RandomCrop::new(9, 2).apply(&x)), "size");
        assert_eq!(name(RandomCrop::new(3, 0).apply(&x.narrow(0, 0, 1).unwrap().squeeze(0).unwrap())), "x");
        assert_eq!(name(RandomHorizontalFlip::new(1.5).apply(&x)), "p");
        assert_eq!(name(RandomHorizontalFlip::new(f64::NAN).apply(&x)), "p");
        assert_eq!(name(Normalize::new(&[0.5; 2], &[1.0; 2]).apply(&x)), "mean");
        assert_eq!(name(Normalize::new(&[0.5; 3], &[1.0, 0.0, 1.0]).apply(&x)), "std");
        let wrong = Tensor::zeros(&[2, 2], DType::I64, dev).unwrap();
        assert_eq!(name(TF::crop_flip(&x, &wrong, 2, 0)), "params");
        let floats = Tensor::zeros(&[2, 3], DType::F32, dev).unwrap();
        assert_eq!(name(TF::crop_flip(&x, &floats, 2, 0)), "params");
        let bytes = x.to_dtype(DType::U8).unwrap();
        assert!(matches!(
            Normalize::new(&[0.5; 3], &[1.0; 3]).apply(&bytes),
            Err(Error::UnsupportedDType { .. })
        ));
        if dev.is_cuda() {
            let on_cpu = Tensor::zeros(&[2, 3], DType::I64, &Device::Cpu).unwrap();
            assert!(matches!(
                TF::crop_flip(&x, &on_cpu, 2, 0),
                Err(Error::DeviceMismatch { .. })
            ));
        }
    }
}

// ------------------------------------------------------------------ CUDA against the CPU

/// The image kernels on every dtype against the CPU backend (tests/common/parity.rs),
/// and the check that these tests launch every kernel of kernels/image.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_every_kernel_launched, assert_exact, gpu_or_skip, values, ALL,
    };
    use kiln::{Device, Tensor};

    /// The image transforms' crop-and-flip gather in every dtype, for contiguous and
    /// transposed batches and offsets partly outside the padded image (zeros there).
    #[test]
    fn crop_flip_matches_the_cpu_in_every_dtype() {
        use kiln::data::transforms::functional::crop_flip;
        let (dev, _gpu) = gpu_or_skip!("crop_flip_matches_the_cpu_in_every_dtype");
        let rows = vec![0i64, 0, 0, 3, 1, 1, -2, 6, 1, 5, -1, 0];
        let params = Tensor::from_vec(rows, &[4, 3], &Device::Cpu).unwrap();
        for dtype in ALL {
            let x = values(&[4, 3, 5, 7], dtype, 41);
            let xt = values(&[4, 3, 7, 5], dtype, 42).transpose(2, 3).unwrap();
            for (what, x) in [("contiguous", x), ("transposed", xt)] {
                let want = crop_flip(&x, &params, (4, 6), 2).unwrap();
                let got = crop_flip(
                    &x.to_device(&dev).unwrap(),
                    &params.to_device(&dev).unwrap(),
                    (4, 6),
                    2,
                )
                .unwrap();
                assert_exact(&format!("crop_flip {dtype:?} {what}"), &got, &want);
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/image.cu.
    #[test]
    fn every_image_kernel_is_launched() {
        let suite: [fn(); 1] = [crop_flip_matches_the_cpu_in_every_dtype];
        assert_every_kernel_launched("image", &suite, &[]);
    }
}
