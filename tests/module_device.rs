//! `Module::to_device` and `Module::to_dtype`: every parameter and buffer moved or
//! cast in place (the handles an optimizer holds included), integer buffers kept,
//! and a rejected call changes nothing.

mod common;

use common::{cuda_or_skip, device_test, host};
use kiln::nn::{self, Conv2dOpts, Forward, Module};
use kiln::optim::{Adam, Optimizer, Sgd};
use kiln::{DType, Device, Error, Tensor};

/// A small CNN with every kind of state: conv and linear parameters, BatchNorm's
/// float buffers and its I64 `num_batches_tracked`.
fn net(dev: &Device) -> nn::Sequential {
    nn::Sequential::new()
        .add(nn::Conv2d::new(2, 3, 3, Conv2dOpts::new().padding(1), dev).unwrap())
        .add(nn::BatchNorm2d::new(3, dev).unwrap())
        .add(nn::ReLU)
        .add(nn::Flatten::new())
        .add(nn::Linear::new(3 * 4 * 4, 5, dev).unwrap())
}

/// Every tensor of the state dict: name, dtype, device and values (as f64).
fn snapshot(m: &dyn Module) -> Vec<(String, DType, Device, Vec<f64>)> {
    m.state_dict()
        .into_iter()
        .map(|(n, t)| (n, t.dtype(), t.device(), host(&t)))
        .collect()
}

/// Fixed values of the shape `shape`, without the global generator: the tests of this
/// file run in parallel, and a seeded draw could interleave with another test's.
fn fixed(shape: &[usize], phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i as f64 * 0.7 + phase).sin() * 0.5) as f32)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn input(dtype: DType, dev: &Device) -> Tensor {
    fixed(&[2, 2, 4, 4], 0.0)
        .to_dtype(dtype)
        .and_then(|x| x.to_device(dev))
        .unwrap()
}

device_test! {
    /// to_dtype casts float parameters and buffers in place; the handles taken
    /// before (what an optimizer holds, state_dict entries) see the cast; I64
    /// buffers stay; values are the cast values; the module runs in the new dtype.
    fn to_dtype_casts_in_place_and_keeps_integer_buffers(dev) {
        let m = net(dev);
        m.forward(&input(DType::F32, dev)).unwrap(); // num_batches_tracked = 1
        let held = m.parameters();
        let sd = m.state_dict();
        let before = snapshot(&m);
        m.to_dtype(DType::F64).unwrap();
        for ((name, t), (_, dtype, device, values)) in m.state_dict().iter().zip(&before) {
            let want = if *dtype == DType::I64 { DType::I64 } else { DType::F64 };
            assert_eq!(t.dtype(), want, "{name}");
            assert_eq!(t.device(), *device, "{name}");
            assert_eq!(&host(t), values, "{name}: an F32 → F64 cast is exact");
        }
        assert!(held.iter().all(|p| p.dtype() == DType::F64 && p.is_parameter() && p.requires_grad_flag()));
        assert!(sd.iter().all(|(n, t)| t.dtype() == if n.ends_with("num_batches_tracked") { DType::I64 } else { DType::F64 }));
        let y = m.forward(&input(DType::F64, dev)).unwrap();
        assert_eq!(y.dtype(), DType::F64);
        y.sum_all().unwrap().backward().unwrap();
        assert!(held.iter().all(|p| p.grad().unwrap().dtype() == DType::F64));
        // Grads are cast with their parameters.
        m.to_dtype(DType::BF16).unwrap();
        assert!(held.iter().all(|p| p.dtype() == DType::BF16 && p.grad().unwrap().dtype() == DType::BF16));
        let bn = m.state_dict().into_iter().find(|(n, _)| n == "1.num_batches_tracked").unwrap().1;
        assert_eq!((bn.dtype(), bn.item::<i64>().unwrap()), (DType::I64, 2));
        assert_eq!(m.forward(&input(DType::BF16, dev)).unwrap().dtype(), DType::BF16);
    }

    /// to_dtype(I64 | U8) is refused up front, naming `dtype`, and changes nothing.
    fn rejected_to_dtype_leaves_every_tensor_untouched(dev) {
        let m = net(dev);
        let before = snapshot(&m);
        for dtype in [DType::I64, DType::U8] {
            match m.to_dtype(dtype).unwrap_err() {
                Error::InvalidArgument { name, .. } => assert_eq!(name, "dtype"),
                other => panic!("{other}"),
            }
            assert_eq!(snapshot(&m), before);
        }
    }

    /// A device that cannot be used is an error, and every tensor (and grad) stays
    /// where it was with its values.
    fn to_an_unusable_device_changes_nothing(dev) {
        let m = net(dev);
        m.forward(&input(DType::F32, dev)).unwrap().sum_all().unwrap().backward().unwrap();
        let before = snapshot(&m);
        let grads: Vec<Vec<f64>> = m.parameters().iter().map(|p| host(&p.grad().unwrap())).collect();
        assert!(m.to_device(&Device::Cuda(97)).is_err());
        assert_eq!(snapshot(&m), before);
        for (p, g) in m.parameters().iter().zip(&grads) {
            assert_eq!(p.grad().unwrap().device(), *dev);
            assert_eq!(&host(&p.grad().unwrap()), g);
        }
    }

    /// A parameter shared by two fields is converted once and stays shared.
    fn shared_parameters_stay_shared(dev) {
        #[derive(nn::Module)]
        struct Tied {
            a: nn::Parameter,
            b: nn::Parameter,
        }
        let p = nn::Parameter::new(Tensor::ones(&[3], DType::F32, dev).unwrap()).unwrap();
        let tied = Tied { a: p.clone(), b: p };
        tied.to_dtype(DType::F16).unwrap();
        assert_eq!((tied.a.dtype(), tied.b.dtype()), (DType::F16, DType::F16));
        tied.a.copy_(&Tensor::full(&[3], 2.0, DType::F16, dev).unwrap()).unwrap();
        assert_eq!(host(&tied.b), [2.0; 3]);
    }
}

/// A net without BatchNorm for the optimizer test: a conv bias before BatchNorm gets
/// a gradient of rounding noise, which Adam's normalisation turns into full steps of
/// either sign, so two devices could not be compared.
/// Its weights are fixed values, not the generator's, so that two runs start equal.
fn plain_net(dev: &Device) -> nn::Sequential {
    let m = nn::Sequential::new()
        .add(nn::Conv2d::new(2, 3, 3, Conv2dOpts::new().padding(1), dev).unwrap())
        .add(nn::ReLU)
        .add(nn::Flatten::new())
        .add(nn::Linear::new(3 * 4 * 4, 5, dev).unwrap());
    let fixed_state: Vec<(String, Tensor)> = m
        .state_dict()
        .into_iter()
        .enumerate()
        .map(|(i, (name, t))| (name, fixed(t.shape(), i as f64)))
        .collect();
    m.load_state_dict(&fixed_state).unwrap();
    m
}

/// The same training run, once on the CPU and once moved to CUDA after its first
/// step: optimizers built before `to_device` keep working (their state follows the
/// parameters), and the parameters end up on the device, equal to the CPU run's.
#[test]
fn optimizers_built_before_to_device_keep_working() {
    let Some(gpu) = cuda_or_skip("optimizers_built_before_to_device_keep_working") else {
        return;
    };
    type MakeOpt = fn(Vec<nn::Parameter>) -> Box<dyn Optimizer>;
    let makers: [(&str, MakeOpt); 2] = [
        ("sgd", |p| Box::new(Sgd::new(p, 0.1).unwrap().momentum(0.9))),
        ("adam", |p| Box::new(Adam::new(p, 1e-2).unwrap())),
    ];
    // Both runs start from one copied state, not from a seed: the generator is global
    // and the other tests of this binary draw from it concurrently.
    let start = plain_net(&Device::Cpu).state_dict();
    for (name, make) in makers {
        let run = |move_after_first: bool| -> Vec<(String, DType, Device, Vec<f64>)> {
            let m = plain_net(&Device::Cpu);
            m.load_state_dict(&start).unwrap();
            let mut opt = make(m.parameters());
            let mut dev = Device::Cpu;
            for step in 0..3 {
                if step == 1 && move_after_first {
                    m.to_device(&gpu).unwrap();
                    dev = gpu;
                }
                opt.zero_grad();
                let loss = m
                    .forward(&input(DType::F32, &dev))
                    .unwrap()
                    .mul(&m.forward(&input(DType::F32, &dev)).unwrap())
                    .unwrap()
                    .mean_all()
                    .unwrap();
                loss.backward().unwrap();
                opt.step().unwrap();
            }
            snapshot(&m)
        };
        let (moved, stayed) = (run(true), run(false));
        for ((n, dt, d, got), (_, _, _, want)) in moved.iter().zip(&stayed) {
            assert_eq!(*d, gpu, "{name} {n}: on the device");
            assert_ne!(*dt, DType::U8);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-3 + 1e-3 * w.abs(),
                    "{name} {n}: {g} vs {w}"
                );
            }
        }
        // Moving back to the CPU works the same way, all the way.
        let m = net(&gpu);
        m.to_device(&Device::Cpu).unwrap();
        assert!(m
            .state_dict()
            .iter()
            .all(|(_, t)| t.device() == Device::Cpu));
    }
}

#[test]
fn to_device_moves_grads_and_views_of_parameters() {
    let Some(gpu) = cuda_or_skip("to_device_moves_grads_and_views_of_parameters") else {
        return;
    };
    let fc = nn::Linear::new(3, 2, &Device::Cpu).unwrap();
    let x = Tensor::ones(&[4, 3], DType::F32, &Device::Cpu).unwrap();
    fc.forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grad = host(&fc.weight.grad().unwrap());
    let view = fc.weight.transpose(0, 1).unwrap();
    let values = host(&fc.weight);
    fc.to_device(&gpu).unwrap();
    assert_eq!(fc.weight.device(), gpu);
    assert_eq!(host(&fc.weight), values);
    assert_eq!(fc.weight.grad().unwrap().device(), gpu);
    assert_eq!(host(&fc.weight.grad().unwrap()), grad);
    // A view shares the parameter's memory, and so moved with it.
    assert_eq!(view.device(), gpu);
    assert_eq!(host(&view.transpose(0, 1).unwrap()), values);
}
