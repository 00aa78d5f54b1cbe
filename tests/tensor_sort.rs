//! The sort family (`sort`, `argsort`, `topk`) against PyTorch on every device: values,
//! indices, gradients, ties, NaN and infinities, empty and strided inputs, rows longer
//! than one CUDA tile; f64 gradchecks; errors; and the CUDA kernels against the CPU
//! backend in every dtype, with every kernel of kernels/sort.cu launched.
//!
//! The fixture is written by `scripts/golden/sort.py`; the PyTorch expression of each
//! case is the comment above it here and there. `a` is the case's input `in0`.

mod common;

use common::rng::{unit, Xorshift};
use common::{golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{DType, Device, Error, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("sort"))
}

golden_cases! {
    // a (4,7).sort(1)
    sort_d1(1) => |x| Ok(x[0].sort(1, false)?.0);
    sort_d1_indices(1) => |x| Ok(x[0].sort(1, false)?.1);
    // a (6,3).sort(0, descending)
    sort_desc_d0(1) => |x| Ok(x[0].sort(0, true)?.0);
    sort_desc_d0_indices(1) => |x| Ok(x[0].sort(0, true)?.1);
    // a (5,4).t().sort(1)
    sort_transposed(1) => |x| Ok(x[0].transpose(0, 1)?.sort(1, false)?.0);
    sort_transposed_indices(1) => |x| Ok(x[0].transpose(0, 1)?.sort(1, false)?.1);
    // a (3,9) with ties, NaN, ±inf, ±0 .sort(1)
    sort_ties_nan(1) => |x| Ok(x[0].sort(1, false)?.0);
    sort_ties_nan_indices(1) => |x| Ok(x[0].sort(1, false)?.1);
    // the same kind of a .sort(1, descending)
    sort_ties_nan_desc(1) => |x| Ok(x[0].sort(1, true)?.0);
    sort_ties_nan_desc_indices(1) => |x| Ok(x[0].sort(1, true)?.1);
    // a (3,33) float32 .sort(1, descending)
    sort_f32(1) => |x| Ok(x[0].sort(1, true)?.0);
    sort_f32_indices(1) => |x| Ok(x[0].sort(1, true)?.1);
    // a (2,11) int64 .sort(1)
    sort_i64(1) => |x| Ok(x[0].sort(1, false)?.0);
    sort_i64_indices(1) => |x| Ok(x[0].sort(1, false)?.1);
    // a (2,10) uint8 .sort(1, descending)
    sort_u8(1) => |x| Ok(x[0].sort(1, true)?.0);
    sort_u8_indices(1) => |x| Ok(x[0].sort(1, true)?.1);
    // a (3,0).sort(1)
    sort_empty_len(1) => |x| Ok(x[0].sort(1, false)?.0);
    // a (0,4).sort(1)
    sort_empty_lines(1) => |x| Ok(x[0].sort(1, false)?.0);
    // a ().sort(0)
    sort_scalar(1) => |x| Ok(x[0].sort(0, false)?.0);
    // a (1,2100) float32 integers .sort(1): longer than one CUDA tile, ties across tiles
    sort_long(1) => |x| Ok(x[0].sort(1, false)?.0);
    sort_long_indices(1) => |x| Ok(x[0].sort(1, false)?.1);
    // a (4,5) with ties .argsort(1, descending)
    argsort_desc(1) => |x| x[0].argsort(1, true);
    // a (4,9).topk(3, 1)
    topk_largest(1) => |x| Ok(x[0].topk(3, 1, true, true)?.0);
    topk_largest_indices(1) => |x| Ok(x[0].topk(3, 1, true, true)?.1);
    // a (7,3).topk(2, 0, largest=False)
    topk_smallest_d0(1) => |x| Ok(x[0].topk(2, 0, false, true)?.0);
    topk_smallest_d0_indices(1) => |x| Ok(x[0].topk(2, 0, false, true)?.1);
    // a (6,5).t().topk(4, 1)
    topk_transposed(1) => |x| Ok(x[0].transpose(0, 1)?.topk(4, 1, true, true)?.0);
    topk_transposed_indices(1) => |x| Ok(x[0].transpose(0, 1)?.topk(4, 1, true, true)?.1);
    // a (3,9) with ties, NaN, ±inf, ±0 .topk(4, 1): the stable order
    topk_ties_nan(1) => |x| Ok(x[0].topk(4, 1, true, true)?.0);
    topk_ties_nan_indices(1) => |x| Ok(x[0].topk(4, 1, true, true)?.1);
    // the same kind of a .topk(5, 1, largest=False)
    topk_ties_smallest(1) => |x| Ok(x[0].topk(5, 1, false, true)?.0);
    topk_ties_smallest_indices(1) => |x| Ok(x[0].topk(5, 1, false, true)?.1);
    // a (3,4).topk(0, 1)
    topk_k0(1) => |x| Ok(x[0].topk(0, 1, true, true)?.0);
    // a (2,5).topk(5, 1, sorted=False): kiln's order is the sorted one
    topk_all_unsorted(1) => |x| Ok(x[0].topk(5, 1, true, false)?.0);
    // a (1,2100) float32 .topk(7, 1)
    topk_long_f32(1) => |x| Ok(x[0].topk(7, 1, true, true)?.0);
    topk_long_f32_indices(1) => |x| Ok(x[0].topk(7, 1, true, true)?.1);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("sort"), tested);
}

/// Deterministic distinct-ish f64 values in (-4, 4) (`levels` > 0: integers in
/// `[0, levels)`, so lines hold ties).
fn values(n: usize, seed: u64, levels: u64) -> Vec<f64> {
    let mut rng = Xorshift::new(seed);
    (0..n)
        .map(|_| {
            let s = rng.next_bits();
            match levels {
                0 => 8.0 * unit(s) - 4.0,
                l => ((s >> 11) % l) as f64,
            }
        })
        .collect()
}

fn f64s(shape: &[usize], seed: u64, levels: u64, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(values(n, seed, levels), shape, dev).unwrap()
}

common::device_test! {
    /// Finite differences agree with the gradients of sort's and topk's values, along
    /// each dim and through a strided view (distinct values: the order is smooth).
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let x = f64s(&[3, 4, 5], 1, 0, dev).requires_grad();
        for dim in 0..3 {
            for desc in [false, true] {
                gradcheck(|t| Ok(t[0].sort(dim, desc)?.0), std::slice::from_ref(&x), opts()).unwrap();
                gradcheck(|t| Ok(t[0].topk(2, dim, desc, true)?.0), std::slice::from_ref(&x), opts()).unwrap();
            }
        }
        let xt = f64s(&[6, 4], 2, 0, dev).transpose(0, 1).unwrap().requires_grad();
        gradcheck(|t| Ok(t[0].topk(3, 1, false, true)?.0), &[xt], opts()).unwrap();
    }

    /// A dim past the rank and a k past the dimension are `Err`s naming them; integer
    /// sorts record no gradient; argsort is sort's indices.
    fn errors_and_edges(dev) {
        let x = f64s(&[2, 3], 3, 0, dev);
        assert!(matches!(x.sort(2, false), Err(Error::DimOutOfRange { .. })));
        assert!(matches!(x.argsort(5, true), Err(Error::DimOutOfRange { .. })));
        match x.topk(4, 1, true, true) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "k"),
            other => panic!("topk with k past the dimension: {other:?}"),
        }
        let (_, idx) = x.sort(1, true).unwrap();
        assert_eq!(host(&x.argsort(1, true).unwrap()), host(&idx));
        let ints = x.to_dtype(DType::I64).unwrap();
        assert!(!ints.sort(1, false).unwrap().0.requires_grad_flag());
        let s = Tensor::from_vec(vec![2.5f64], &[], dev).unwrap();
        assert_eq!(host(&s.topk(1, 0, true, true).unwrap().1), [0.0]);
        match s.topk(0, 0, true, true) {
            Err(Error::InvalidArgument { name, .. }) => assert_eq!(name, "k"),
            other => panic!("topk(0) of a 0-d tensor: {other:?}"),
        }
    }
}

/// Inputs of the parity sweep: shape, sorted dim, transposed (strided) view.
const SWEEP: [(&[usize], usize, bool); 5] = [
    (&[3, 37, 5], 1, false),
    (&[5, 2049], 1, false),
    (&[2, 9000], 1, false),
    (&[7, 11], 0, true),
    (&[1, 1, 1], 2, false),
];

/// The CUDA sort against the CPU backend in every dtype, element for element (the
/// order is total, so both give the stable sort's result): odd lengths, one line
/// just over a tile and one of several merge stages, a strided view, ties (integer
/// values), both directions, topk's cut, and the gradient's scatter.
#[test]
fn cuda_sort_matches_the_cpu_in_every_dtype() {
    let Some(gpu) = common::cuda_or_skip("cuda_sort_matches_the_cpu_in_every_dtype") else {
        return;
    };
    for (shape, dim, transposed) in SWEEP {
        for dtype in common::parity::ALL {
            // Floats distinct-ish with NaNs and ties; integers in [0, 20).
            let levels = if dtype.is_float() { 0 } else { 20 };
            let mut x = f64s(shape, 4, levels, &Device::Cpu);
            if dtype.is_float() {
                x = x.masked_fill(&x.gt_scalar(3.7).unwrap(), f64::NAN).unwrap();
                x = x.mul_scalar(4.0).unwrap().add_scalar(0.5).unwrap();
            }
            let mut x = x.to_dtype(dtype).unwrap();
            if transposed {
                x = x.transpose(0, 1).unwrap();
            }
            let on_gpu = x.to_device(&gpu).unwrap();
            let len = x.shape()[dim];
            for (desc, k) in [(false, len), (true, len), (true, len.min(5))] {
                let what = format!("{dtype:?} {shape:?} dim {dim} desc {desc} k {k}");
                let (cv, ci) = x.topk(k, dim, desc, true).unwrap();
                let (gv, gi) = on_gpu.topk(k, dim, desc, true).unwrap();
                assert_eq!(gi.device(), gpu, "{what}");
                let same = |a: &f64, b: &f64| a == b || (a.is_nan() && b.is_nan());
                assert!(
                    host(&gv).iter().zip(&host(&cv)).all(|(a, b)| same(a, b)),
                    "{what}"
                );
                assert_eq!(host(&gi), host(&ci), "{what}");
            }
            if !dtype.is_float() {
                continue;
            }
            let grads = [&x, &on_gpu].map(|t| {
                let leaf = t.detach().requires_grad();
                let (v, _) = leaf.topk(len.min(7), dim, true, true).unwrap();
                let gout = f64s(v.shape(), 5, 0, &Device::Cpu).to_dtype(dtype).unwrap();
                let gout = gout.to_device(&t.device()).unwrap();
                v.mul(&gout).unwrap().sum_all().unwrap().backward().unwrap();
                host(&leaf.grad().unwrap())
            });
            assert_eq!(grads[1], grads[0], "{dtype:?} {shape:?} gradient");
        }
    }
}

/// On the emulated device, the sweep above launches every kernel of kernels/sort.cu.
#[test]
fn every_sort_kernel_is_launched() {
    let suite: [fn(); 1] = [cuda_sort_matches_the_cpu_in_every_dtype];
    common::parity::assert_every_kernel_launched("sort", &suite, &[]);
}
