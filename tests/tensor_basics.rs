//! Tensor basics: creation, dtype conversion, seeded randomness, views sharing
//! storage, and the autograd bookkeeping (no_grad, accumulation, zero_grad, detach).

mod common;

use common::own_generator;
use half::{bf16, f16};
use kiln::{DType, Device, Tensor};

const CPU: Device = Device::Cpu;

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

// ------------------------------------------------------------------ creation

#[test]
fn constants() {
    let z = Tensor::zeros(&[2, 3], DType::F32, &CPU).unwrap();
    assert_eq!(
        (z.shape(), z.dtype(), z.device()),
        (&[2, 3][..], DType::F32, CPU)
    );
    assert_eq!(z.to_vec::<f32>().unwrap(), vec![0.0; 6]);
    let o = Tensor::ones(&[3, 1, 2], DType::I64, &CPU).unwrap();
    assert_eq!(o.to_vec::<i64>().unwrap(), vec![1; 6]);
    let f = Tensor::full(&[2, 2], -2.5, DType::F64, &CPU).unwrap();
    assert_eq!(f.to_vec::<f64>().unwrap(), vec![-2.5; 4]);
    let h = Tensor::full(&[3], 0.5, DType::BF16, &CPU).unwrap();
    assert_eq!(h.to_vec::<bf16>().unwrap(), vec![bf16::from_f32(0.5); 3]);
    let u = Tensor::full(&[2], 7.0, DType::U8, &CPU).unwrap();
    assert_eq!(u.to_vec::<u8>().unwrap(), vec![7, 7]);
    let s = Tensor::zeros(&[], DType::F32, &CPU).unwrap();
    assert_eq!((s.rank(), s.numel()), (0, 1));
    let like = f.ones_like().unwrap();
    assert_eq!((like.shape(), like.dtype()), (&[2, 2][..], DType::F64));
    assert_eq!(
        f.zeros_like().unwrap().to_vec::<f64>().unwrap(),
        vec![0.0; 4]
    );
    let empty = Tensor::zeros(&[0, 3], DType::F32, &CPU).unwrap();
    assert_eq!(
        (empty.numel(), empty.to_vec::<f32>().unwrap().len()),
        (0, 0)
    );
}

#[test]
fn arange_and_from_vec() {
    let a = Tensor::arange(5, DType::I64, &CPU).unwrap();
    assert_eq!(a.to_vec::<i64>().unwrap(), vec![0, 1, 2, 3, 4]);
    let a = Tensor::arange(4, DType::F32, &CPU).unwrap();
    assert_eq!(a.to_vec::<f32>().unwrap(), vec![0., 1., 2., 3.]);
    let t = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], &[2, 3], &CPU).unwrap();
    assert_eq!((t.shape(), t.strides()), (&[2, 3][..], &[3, 1][..]));
    assert!(t.is_contiguous());
    assert_eq!(t.to_vec::<f32>().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
    // Every dtype round-trips through from_vec / to_vec unchanged.
    let v = vec![f16::from_f32(1.5), f16::from_f32(-0.25)];
    assert_eq!(
        Tensor::from_vec(v.clone(), &[2], &CPU)
            .unwrap()
            .to_vec::<f16>()
            .unwrap(),
        v
    );
    let v = vec![bf16::from_f32(3.0), bf16::from_f32(-96.0)];
    assert_eq!(
        Tensor::from_vec(v.clone(), &[2, 1], &CPU)
            .unwrap()
            .to_vec::<bf16>()
            .unwrap(),
        v
    );
    let v = vec![i64::MIN, -1, 0, i64::MAX];
    assert_eq!(
        Tensor::from_vec(v.clone(), &[4], &CPU)
            .unwrap()
            .to_vec::<i64>()
            .unwrap(),
        v
    );
    let v = vec![0u8, 128, 255];
    assert_eq!(
        Tensor::from_vec(v.clone(), &[3], &CPU)
            .unwrap()
            .to_vec::<u8>()
            .unwrap(),
        v
    );
    let v = vec![1e-300f64, -7.0];
    assert_eq!(
        Tensor::from_vec(v.clone(), &[2], &CPU)
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        v
    );
    assert_eq!(
        Tensor::scalar(2.5f64, &CPU).unwrap().item::<f64>().unwrap(),
        2.5
    );
}

#[test]
fn item_reads_one_element_tensors() {
    let t = Tensor::from_vec(vec![1f32, 2., 3., 4., 5., 6.], &[2, 3], &CPU).unwrap();
    assert_eq!(t.sum_all().unwrap().item::<f32>().unwrap(), 21.0);
    assert_eq!(
        t.narrow(1, 2, 1)
            .unwrap()
            .narrow(0, 1, 1)
            .unwrap()
            .item::<f32>()
            .unwrap(),
        6.0
    );
}

// ------------------------------------------------------------------ dtype conversion

#[test]
fn to_dtype_round_trips() {
    // Values exact in every float dtype survive float -> float -> float.
    let exact = vec![0.0, 1.5, -2.25, 1024.0, -0.125, 3.0];
    let t = Tensor::from_vec(exact.clone(), &[2, 3], &CPU).unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        let there = t.to_dtype(dtype).unwrap();
        assert_eq!(there.dtype(), dtype);
        assert_eq!(
            there.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap(),
            exact,
            "{dtype:?}"
        );
    }
    // Rounding to the narrow types agrees with the `half` crate (round to nearest even).
    let third = Tensor::from_vec(vec![1.0f32 / 3.0, 1e-3, 70000.0], &[3], &CPU).unwrap();
    let want: Vec<bf16> = [1.0f32 / 3.0, 1e-3, 70000.0].map(bf16::from_f32).to_vec();
    assert_eq!(
        third
            .to_dtype(DType::BF16)
            .unwrap()
            .to_vec::<bf16>()
            .unwrap(),
        want
    );
    let want: Vec<f16> = [1.0f32 / 3.0, 1e-3, 70000.0].map(f16::from_f32).to_vec();
    let got = third.to_dtype(DType::F16).unwrap().to_vec::<f16>().unwrap();
    assert_eq!(got, want);
    assert!(
        got[2].is_infinite(),
        "70000 overflows f16 to inf, as in PyTorch"
    );
    // Float -> integer truncates toward zero (PyTorch's .long()); integers come back exactly.
    let f = Tensor::from_vec(vec![2.7f64, -2.7, 0.4, 200.0], &[4], &CPU).unwrap();
    let i = f.to_dtype(DType::I64).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![2, -2, 0, 200]);
    assert_eq!(
        i.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(),
        vec![2., -2., 0., 200.]
    );
    let u = f.narrow(0, 2, 2).unwrap().to_dtype(DType::U8).unwrap();
    assert_eq!(u.to_vec::<u8>().unwrap(), vec![0, 200]);
    assert_eq!(
        u.to_dtype(DType::I64).unwrap().to_vec::<i64>().unwrap(),
        vec![0, 200]
    );
    // The same dtype is the same tensor, not a copy.
    assert_eq!(t.to_dtype(DType::F64).unwrap().id(), t.id());
}

#[test]
fn to_dtype_of_a_strided_view_keeps_logical_order() {
    let t = Tensor::from_vec((0..6).map(|x| x as f64).collect(), &[2, 3], &CPU).unwrap();
    let v = t.transpose(0, 1).unwrap();
    assert_eq!(
        v.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap(),
        vec![0., 3., 1., 4., 2., 5.]
    );
    assert_eq!(v.to_vec::<f64>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
}

// ------------------------------------------------------------------ randomness

#[test]
fn manual_seed_makes_rand_and_randn_reproducible() {
    let _lock = own_generator();
    let draw = || {
        let n = Tensor::randn(&[3, 5], DType::F64, &CPU)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let u = Tensor::rand(&[7], DType::F32, &CPU)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        (n, u)
    };
    kiln::manual_seed(1234);
    let first = draw();
    let second = draw();
    kiln::manual_seed(1234);
    assert_eq!(draw(), first, "same seed, same numbers");
    assert_eq!(draw(), second, "and the same sequence after them");
    assert_ne!(first, second, "successive draws differ");
    kiln::manual_seed(1235);
    assert_ne!(draw(), first, "another seed, other numbers");
    // Half-precision samples are the f64 samples rounded.
    kiln::manual_seed(9);
    let wide = Tensor::randn(&[9], DType::F64, &CPU).unwrap();
    kiln::manual_seed(9);
    let narrow = Tensor::randn(&[9], DType::BF16, &CPU).unwrap();
    assert_eq!(
        narrow.to_vec::<bf16>().unwrap(),
        wide.to_vec::<f64>()
            .unwrap()
            .into_iter()
            .map(bf16::from_f64)
            .collect::<Vec<_>>()
    );
}

/// Mean and variance of samples; with n = 200_000 their standard errors are
/// about 0.0022 (mean of N(0,1)) and 0.0032 (variance), so 6-sigma bounds below
/// fail only for a broken generator.
fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
}

#[test]
fn random_samples_have_the_right_statistics() {
    let _lock = own_generator();
    kiln::manual_seed(42);
    let n = 200_000;
    let normal = f64s(&Tensor::randn(&[n / 4, 4], DType::F32, &CPU).unwrap());
    let (mean, var) = mean_var(&normal);
    assert!(mean.abs() < 0.014, "randn mean {mean}");
    assert!((var - 1.0).abs() < 0.02, "randn variance {var}");
    let beyond_3 = normal.iter().filter(|x| x.abs() > 3.0).count() as f64 / n as f64;
    assert!(
        (beyond_3 - 0.0027).abs() < 0.0008,
        "P(|z| > 3) = {beyond_3}"
    );
    let uniform = f64s(&Tensor::rand(&[n], DType::F64, &CPU).unwrap());
    assert!(uniform.iter().all(|&u| (0.0..1.0).contains(&u)));
    let (mean, var) = mean_var(&uniform);
    assert!((mean - 0.5).abs() < 0.004, "rand mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 0.002, "rand variance {var}");
}

// ------------------------------------------------------------------ views

#[test]
fn views_share_storage() {
    let base = Tensor::zeros(&[3, 4], DType::F64, &CPU).unwrap();
    // base.t()[1:3] is (2,3): columns 1 and 2 of base.
    let view = base.transpose(0, 1).unwrap().narrow(0, 1, 2).unwrap();
    assert_eq!(view.shape(), &[2, 3]);
    let src = Tensor::from_vec(vec![1.0, 2., 3., 4., 5., 6.], &[2, 3], &CPU).unwrap();
    view.copy_(&src).unwrap();
    #[rustfmt::skip]
    let want = vec![
        0., 1., 4., 0.,
        0., 2., 5., 0.,
        0., 3., 6., 0.,
    ];
    assert_eq!(base.to_vec::<f64>().unwrap(), want);
    // A reshape of a contiguous tensor and a detached handle are views too.
    base.reshape(&[12])
        .unwrap()
        .narrow(0, 11, 1)
        .unwrap()
        .copy_(&Tensor::full(&[1], 9.0, DType::F64, &CPU).unwrap())
        .unwrap();
    assert_eq!(base.detach().to_vec::<f64>().unwrap()[11], 9.0);
    let d = base.detach();
    d.copy_(&Tensor::ones(&[3, 4], DType::F64, &CPU).unwrap())
        .unwrap();
    assert_eq!(base.to_vec::<f64>().unwrap(), vec![1.0; 12]);
    // copy_ converts the dtype of the source.
    let ints = Tensor::arange(12, DType::I64, &CPU)
        .unwrap()
        .reshape(&[3, 4])
        .unwrap();
    base.copy_(&ints).unwrap();
    assert_eq!(
        base.to_vec::<f64>().unwrap(),
        (0..12).map(f64::from).collect::<Vec<_>>()
    );
    // contiguous() of a contiguous tensor is itself; of a transpose, a copy.
    assert_eq!(base.contiguous().unwrap().id(), base.id());
    let copy = base.transpose(0, 1).unwrap().contiguous().unwrap();
    assert!(copy.is_contiguous());
    copy.copy_(&Tensor::zeros(&[4, 3], DType::F64, &CPU).unwrap())
        .unwrap();
    assert_eq!(
        base.to_vec::<f64>().unwrap()[5],
        5.0,
        "the copy does not alias"
    );
}

#[test]
fn view_ops_do_not_copy() {
    let base = Tensor::arange(24, DType::F32, &CPU)
        .unwrap()
        .reshape(&[2, 3, 4])
        .unwrap();
    let t = base.transpose(0, 2).unwrap();
    assert_eq!((t.shape(), t.strides()), (&[4, 3, 2][..], &[1, 4, 12][..]));
    let p = base.permute(&[1, 2, 0]).unwrap();
    assert_eq!((p.shape(), p.strides()), (&[3, 4, 2][..], &[4, 1, 12][..]));
    let n = base.narrow(2, 1, 2).unwrap();
    assert_eq!(
        (n.shape(), n.strides(), n.storage_offset()),
        (&[2, 3, 2][..], &[12, 4, 1][..], 1)
    );
    assert_eq!(
        n.to_vec::<f32>().unwrap(),
        vec![1., 2., 5., 6., 9., 10., 13., 14., 17., 18., 21., 22.]
    );
    let f = base.flatten(0, 1).unwrap();
    assert_eq!((f.shape(), f.strides()), (&[6, 4][..], &[4, 1][..]));
    let u = base.unsqueeze(1).unwrap().squeeze(1).unwrap();
    assert_eq!(u.shape(), base.shape());
    let b = Tensor::arange(3, DType::F32, &CPU)
        .unwrap()
        .reshape(&[3, 1])
        .unwrap()
        .broadcast_as(&[2, 3, 4])
        .unwrap();
    assert_eq!(b.strides()[0], 0);
    assert_eq!(b.to_vec::<f32>().unwrap()[4..8], [1.0; 4]);
    let c = Tensor::cat(&[&base, &n.contiguous().unwrap()], 2).unwrap();
    assert_eq!(c.shape(), &[2, 3, 6]);
    assert_eq!(c.to_vec::<f32>().unwrap()[..6], [0., 1., 2., 3., 1., 2.]);
}

// ------------------------------------------------------------------ autograd bookkeeping

fn leaf(values: &[f64]) -> Tensor {
    Tensor::from_vec(values.to_vec(), &[values.len()], &CPU)
        .unwrap()
        .requires_grad()
}

#[test]
fn no_grad_guard_disables_recording() {
    let x = leaf(&[1.0, 2.0]);
    assert!(x.requires_grad_flag() && x.is_leaf());
    assert!(kiln::is_grad_enabled());
    {
        let _outer = kiln::no_grad();
        {
            let _inner = kiln::no_grad();
            assert!(!x.mul_scalar(2.0).unwrap().requires_grad_flag());
        }
        assert!(!kiln::is_grad_enabled(), "the outer guard still holds");
        let y = x.exp().unwrap().add(&x).unwrap();
        assert!(!y.requires_grad_flag() && y.is_leaf());
    }
    assert!(kiln::is_grad_enabled());
    let y = x.mul_scalar(2.0).unwrap();
    assert!(y.requires_grad_flag() && !y.is_leaf());
}

#[test]
fn guard_is_per_thread() {
    let _guard = kiln::no_grad();
    let enabled_elsewhere = std::thread::spawn(kiln::is_grad_enabled).join().unwrap();
    assert!(enabled_elsewhere);
}

#[test]
fn gradients_accumulate_over_backward_calls() {
    let x = leaf(&[1.0, -2.0, 3.0]);
    let loss = x.mul(&x).unwrap().sum_all().unwrap(); // d/dx = 2x
    loss.backward_retain_graph().unwrap(); // as PyTorch, a graph used twice is retained
    assert_eq!(f64s(&x.grad().unwrap()), vec![2.0, -4.0, 6.0]);
    loss.backward().unwrap();
    assert_eq!(f64s(&x.grad().unwrap()), vec![4.0, -8.0, 12.0]);
    assert!(loss.backward().is_err(), "the graph was released");
    // A second graph adds to the same grad.
    x.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(f64s(&x.grad().unwrap()), vec![7.0, -5.0, 15.0]);
    // Only leaves keep a grad.
    let y = x.exp().unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert!(y.grad().is_none());
}

#[test]
fn zero_grad_clears() {
    let x = leaf(&[0.5, 1.5]);
    x.sum_all().unwrap().backward().unwrap();
    assert!(x.grad().is_some());
    x.zero_grad();
    assert!(x.grad().is_none());
    x.mul_scalar(-2.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        f64s(&x.grad().unwrap()),
        vec![-2.0, -2.0],
        "a fresh grad, not added to the old one"
    );
}

#[test]
fn detach_cuts_the_graph_and_shares_data() {
    let x = leaf(&[2.0, 3.0]);
    let d = x.detach();
    assert!(!d.requires_grad_flag());
    assert_eq!(d.to_vec::<f64>().unwrap(), vec![2.0, 3.0]);
    // Only the attached factor carries gradient: d(detach(x) * x)/dx = x.
    d.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(f64s(&x.grad().unwrap()), vec![2.0, 3.0]);
    assert!(d.grad().is_none());
    // A detached intermediate stops the flow: no gradient reaches x through it.
    x.zero_grad();
    let y = x.exp().unwrap().detach().requires_grad();
    y.sum_all().unwrap().backward().unwrap();
    assert!(x.grad().is_none());
    assert!(y.grad().is_some());
}

#[test]
fn gradient_of_a_shared_input_sums_over_uses() {
    // z = x*y + x, so dz/dx = y + 1 and dz/dy = x (checked by hand).
    let x = leaf(&[1.0, 2.0]);
    let y = leaf(&[3.0, -4.0]);
    x.mul(&y)
        .unwrap()
        .add(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(f64s(&x.grad().unwrap()), vec![4.0, -3.0]);
    assert_eq!(f64s(&y.grad().unwrap()), vec![1.0, 2.0]);
}

#[test]
fn f32_leaf_gets_an_f32_grad() {
    let w = Tensor::ones(&[2, 3], DType::F32, &CPU)
        .unwrap()
        .requires_grad();
    let x = Tensor::full(&[3], 2.0, DType::F32, &CPU).unwrap();
    w.matmul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    let g = w.grad().unwrap();
    assert_eq!((g.shape(), g.dtype()), (&[2, 3][..], DType::F32));
    assert_eq!(g.to_vec::<f32>().unwrap(), vec![2.0; 6]);
}

// ------------------------------------------------------------------ comparisons

#[test]
fn comparisons_return_u8() {
    let a = Tensor::from_vec(vec![1.0f32, 2., 3., 4., 5., 6.], &[2, 3], &CPU).unwrap();
    let b = Tensor::from_vec(vec![2.0f32, 2., 5.], &[3], &CPU).unwrap();
    let check = |t: Tensor, want: &[u8]| {
        assert_eq!((t.dtype(), t.shape()), (DType::U8, &[2, 3][..]));
        assert_eq!(t.to_vec::<u8>().unwrap(), want);
    };
    check(a.eq(&b).unwrap(), &[0, 1, 0, 0, 0, 0]);
    check(a.ne(&b).unwrap(), &[1, 0, 1, 1, 1, 1]);
    check(a.lt(&b).unwrap(), &[1, 0, 1, 0, 0, 0]);
    check(a.le(&b).unwrap(), &[1, 1, 1, 0, 0, 0]);
    check(a.gt(&b).unwrap(), &[0, 0, 0, 1, 1, 1]);
    check(a.ge(&b).unwrap(), &[0, 1, 0, 1, 1, 1]);
    check(a.gt_scalar(3.5).unwrap(), &[0, 0, 0, 1, 1, 1]);
    check(a.lt_scalar(2.0).unwrap(), &[1, 0, 0, 0, 0, 0]);
    check(a.eq_scalar(5.0).unwrap(), &[0, 0, 0, 0, 1, 0]);
    // A strided operand, and integers.
    check(
        a.transpose(0, 1)
            .unwrap()
            .transpose(0, 1)
            .unwrap()
            .ge(&b)
            .unwrap(),
        &[0, 1, 0, 1, 1, 1],
    );
    let i = Tensor::from_vec(vec![3i64, -1, 0, 7, 7, 2], &[2, 3], &CPU).unwrap();
    check(i.gt_scalar(0.0).unwrap(), &[1, 0, 0, 1, 1, 1]);
    // A fractional scalar is not rounded to the integer dtype first: in PyTorch,
    // torch.tensor([3, -1, 0, 7, 7, 2]) < 2.5 -> [F, T, T, F, F, T] and > -0.5 -> [T, F, T, T, T, T].
    check(i.lt_scalar(2.5).unwrap(), &[0, 1, 1, 0, 0, 1]);
    check(i.gt_scalar(-0.5).unwrap(), &[1, 0, 1, 1, 1, 1]);
    check(i.eq_scalar(7.5).unwrap(), &[0, 0, 0, 0, 0, 0]);
    let u = i.abs().unwrap().to_dtype(DType::U8).unwrap();
    check(u.lt_scalar(1.5).unwrap(), &[0, 1, 1, 0, 0, 0]);
    // NaN compares unequal to everything, itself included.
    let nan = Tensor::from_vec(vec![f64::NAN], &[1], &CPU).unwrap();
    assert_eq!(nan.eq(&nan).unwrap().to_vec::<u8>().unwrap(), vec![0]);
    assert_eq!(nan.ne(&nan).unwrap().to_vec::<u8>().unwrap(), vec![1]);
    // Comparisons are not differentiable: no graph.
    let x = a.requires_grad();
    assert!(!x.gt_scalar(0.0).unwrap().requires_grad_flag());
}

// ------------------------------------------------------------------ devices

#[test]
fn devices_without_a_gpu() {
    assert!(Device::Cpu.is_cpu() && !Device::Cpu.is_cuda());
    assert!(Device::Cuda(1).is_cuda());
    assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
    // The emulated device (CI's golden run) counts as one.
    let has_gpu = std::path::Path::new("/dev/nvidiactl").exists() || kiln::cuda::is_emulated();
    match Device::cuda(0) {
        Ok(dev) => {
            assert!(
                has_gpu,
                "Device::cuda(0) succeeded on a machine without a GPU or the emulator"
            );
            assert_eq!(Device::cuda_if_available(0), dev);
        }
        Err(e) => {
            assert!(
                matches!(
                    e,
                    kiln::Error::CudaUnavailable { ordinal: 0, .. }
                        | kiln::Error::CudaDriverNotFound { ordinal: 0 }
                        | kiln::Error::NoCudaDevice { ordinal: 0, .. }
                        | kiln::Error::CudaOrdinalOutOfRange { ordinal: 0, .. }
                        | kiln::Error::KernelsNotBuilt
                ),
                "{e:?}"
            );
            assert!(!e.to_string().is_empty());
            assert_eq!(Device::cuda_if_available(0), Device::Cpu);
        }
    }
    if !has_gpu {
        assert!(Device::cuda(0).is_err());
        assert_eq!(Device::cuda_if_available(0), Device::Cpu);
    }
}
