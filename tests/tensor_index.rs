//! Index, selection and math ops of issue 16 against PyTorch, on every device:
//! gather, index_select, scatter_add, where_cond, masked_fill, tril/triu, sin, cos,
//! clamp, pow_scalar, rsqrt, var, stack, arange_range, the `std::ops` operators and
//! `F::embedding` / `nn::Embedding`. Then f64 gradchecks, empty and non-contiguous
//! inputs, out-of-range indices (an `Err` naming the argument on every device) and
//! the determinism of scatter_add.
//!
//! The fixture is written by `scripts/golden/tensor_index.py`; the PyTorch expression
//! of each case is the comment above it here and above its `case(...)` line there.
//! `a`, `b`, `c` are the case's inputs `in0`, `in1`, `in2`; views (transposes,
//! slices) are taken inside the op, so strided operands are exercised. Backward is
//! checked by feeding PyTorch's upstream gradient `gout`.

mod common;

use common::rng::signed_away_from_zero;
use common::{
    assert_close, assert_values, device_test, golden_case_names, golden_cases, golden_tolerance,
    host, Golden,
};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::nn::{self, functional as F, Forward, Module};
use kiln::{DType, Device, Error, Result, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("tensor_index"))
}

golden_cases! {
    // ------------------------------------------------------------------ gather
    // a (3,5).gather(1, b (3,4))
    gather_d1(2) => |x| x[0].gather(1, &x[1]);
    // a (4,3,2).gather(0, b (6,2,1)): the index is smaller on dims 1 and 2
    gather_d0_small(2) => |x| x[0].gather(0, &x[1]);
    // a (5,3).t().gather(0, b (4,5))
    gather_transposed(2) => |x| x[0].transpose(0, 1)?.gather(0, &x[1]);
    // a (2,6).gather(1, b (2,3)), float32
    gather_f32(2) => |x| x[0].gather(1, &x[1]);
    // ------------------------------------------------------------------ index_select
    // a (5,3).index_select(0, [4, 0, 4, 2])
    index_select_d0(2) => |x| x[0].index_select(0, &x[1]);
    // a (3,6).t().index_select(1, [2, 0])
    index_select_d1_transposed(2) => |x| x[0].transpose(0, 1)?.index_select(1, &x[1]);
    // a (2,4,3).index_select(1, [3, 3, 1, 0, 3])
    index_select_3d(2) => |x| x[0].index_select(1, &x[1]);
    // a (4,5).index_select(1, b (7,)), float32
    index_select_f32(2) => |x| x[0].index_select(1, &x[1]);
    // ------------------------------------------------------------------ scatter_add
    // a (4,3).scatter_add(0, b (5,3), c (5,3))
    scatter_add_d0(3) => |x| x[0].scatter_add(0, &x[1], &x[2]);
    // a (3,5).scatter_add(1, b (2,6), c (2,6))
    scatter_add_d1(3) => |x| x[0].scatter_add(1, &x[1], &x[2]);
    // a (3,4).t().scatter_add(1, b (4,5), c (6,4).t()[:, :5])
    scatter_add_transposed(3) => |x| {
        let src = x[2].transpose(0, 1)?.narrow(1, 0, 5)?;
        x[0].transpose(0, 1)?.scatter_add(1, &x[1], &src)
    };
    // a (2,3).scatter_add(1, b (2,7), c (2,7)), float32
    scatter_add_f32(3) => |x| x[0].scatter_add(1, &x[1], &x[2]);
    // ------------------------------------------------------------------ where, masked_fill
    // torch.where(a (3,1).bool(), b (3,4), c (4,))
    where_bcast(3) => |x| x[0].where_cond(&x[1], &x[2]);
    // torch.where(a (4,3).bool(), b (3,4).t(), c (1,3))
    where_transposed(3) => |x| x[0].where_cond(&x[1].transpose(0, 1)?, &x[2]);
    // torch.where(a (2,5).bool(), b (2,5), c (2,1)), float32
    where_f32(3) => |x| x[0].where_cond(&x[1], &x[2]);
    // a (2,3,4).masked_fill(b (3,1).bool(), -2.5)
    masked_fill_bcast(2) => |x| x[0].masked_fill(&x[1], -2.5);
    // a (4,3).t().masked_fill(b (3,4).bool(), -inf)
    masked_fill_neg_inf(2) => |x| x[0].transpose(0, 1)?.masked_fill(&x[1], f64::NEG_INFINITY);
    // a (3,3).masked_fill(b (3,3).bool(), 7.0), float32
    masked_fill_f32(2) => |x| x[0].masked_fill(&x[1], 7.0);
    // ------------------------------------------------------------------ tril, triu
    // a (4,5).tril(0)
    tril_k0(1) => |x| x[0].tril(0);
    // a (2,3,4,4).tril(-1)
    tril_neg_batched(1) => |x| x[0].tril(-1);
    // a (5,3).triu(1)
    triu_k1(1) => |x| x[0].triu(1);
    // a (2,4,3).transpose(1, 2).triu(-1)
    triu_transposed(1) => |x| x[0].transpose(1, 2)?.triu(-1);
    // a (3,6).tril(2), float32
    tril_f32(1) => |x| x[0].tril(2);
    // ------------------------------------------------------------------ sin, cos, pow, rsqrt
    // a (3,4).sin()
    sin(1) => |x| x[0].sin();
    // a (4,2).t().cos()
    cos_transposed(1) => |x| x[0].transpose(0, 1)?.cos();
    // a (5,).sin(), float32
    sin_f32(1) => |x| x[0].sin();
    // a (5,).cos(), float32
    cos_f32(1) => |x| x[0].cos();
    // a (3,4) ** 2.5
    pow_frac(1) => |x| x[0].pow_scalar(2.5);
    // a (2,3) ** -1.5
    pow_neg(1) => |x| x[0].pow_scalar(-1.5);
    // a (3,3) ** 3, negative bases
    pow_int(1) => |x| x[0].pow_scalar(3.0);
    // a (3,4).rsqrt()
    rsqrt(1) => |x| x[0].rsqrt();
    // a (6,).rsqrt(), float32
    rsqrt_f32(1) => |x| x[0].rsqrt();
    // ------------------------------------------------------------------ clamp
    // a (2,4).clamp(-0.5, 0.5), a holds both bounds exactly: PyTorch 2.15's gradient is 0 there
    clamp_both(1) => |x| x[0].clamp(-0.5, 0.5);
    // a (3,4).clamp(min=0.1)
    clamp_min(1) => |x| x[0].clamp(0.1, None);
    // a (4,3).t().clamp(max=-0.2)
    clamp_max_transposed(1) => |x| x[0].transpose(0, 1)?.clamp(None, -0.2);
    // a (5,).clamp(1.0, -1.0): min > max, every element is max
    clamp_inverted(1) => |x| x[0].clamp(1.0, -1.0);
    // a (2,4).clamp(-0.5, 0.5), float32
    clamp_f32(1) => |x| x[0].clamp(Some(-0.5), Some(0.5));
    // ------------------------------------------------------------------ var
    // a (3,5).var(1)
    var_d1(1) => |x| x[0].var(1, true, false);
    // a (4,3).var(0, unbiased=False, keepdim=True)
    var_d0_biased_keepdim(1) => |x| x[0].var(0, false, true);
    // a (5,2,3).transpose(0, 2).var(2)
    var_transposed(1) => |x| x[0].transpose(0, 2)?.var(2, true, false);
    // a (2,6).var(1), float32
    var_f32(1) => |x| x[0].var(1, true, false);
    // ------------------------------------------------------------------ stack
    // torch.stack([a (2,3), b (2,3)], 0)
    stack_d0(2) => |x| Tensor::stack(&[&x[0], &x[1]], 0);
    // torch.stack([a, b, c] (2,3), 2)
    stack_last(3) => |x| Tensor::stack(&[&x[0], &x[1], &x[2]], 2);
    // torch.stack([a (3,2).t(), b (2,3)], 1)
    stack_transposed(2) => |x| Tensor::stack(&[&x[0].transpose(0, 1)?, &x[1]], 1);
    // ------------------------------------------------------------------ operators
    // (-(a + b) * 2.0 - a / b + 3.0) * (a - 1.5) / 0.5 + (b + 0.25) - 4.0
    operators(2) => |x| {
        let (a, b) = (&x[0], &x[1]);
        let left = (((-(a + b)?)? * 2.0)? - (a / b)?)?;
        let left = (((left + 3.0)? * (a - 1.5)?)? / 0.5)?;
        (left + (b + 0.25)?)? - 4.0
    };
    // ------------------------------------------------------------------ embedding
    // F.embedding(a (2,3), b (7,4))
    embedding_2d(2) => |x| F::embedding(&x[0], &x[1]);
    // F.embedding([1, 1, 0, 4, 1], b (5,3))
    embedding_1d_repeats(2) => |x| F::embedding(&x[0], &x[1]);
    // F.embedding(a (3,2,2), b (6,5)), float32
    embedding_f32(2) => |x| F::embedding(&x[0], &x[1]);
    // F.embedding([[2, 0, 2], [1, 2, 3]], b (4,3), padding_idx=2): row 2 gets no gradient
    embedding_padding(2) => |x| F::embedding_with(&x[0], &x[1], F::EmbeddingOpts::new().padding_idx(2));
}

/// `torch.arange(start, end, step, dtype)`, forward only.
fn check_arange(case: &str, (start, end, step): (f64, f64, f64), dtype: DType, dev: &Device) {
    let got = Tensor::arange_range(start, end, step, dtype, dev).unwrap();
    let want = golden().get(&format!("{case}.out"));
    assert_eq!(got.dtype(), want.dtype(), "{case}: dtype");
    let (atol, rtol) = golden_tolerance(dtype);
    assert_close(&got, &want, dev, atol, rtol);
}

device_test! {
    /// torch.arange(3, 10, 1, dtype=float32)
    fn arange_unit_f32(dev) { check_arange("arange_unit_f32", (3.0, 10.0, 1.0), DType::F32, dev); }
    /// torch.arange(0, 1, 0.3, dtype=float64): ceil(1/0.3) = 4 elements
    fn arange_frac_f64(dev) { check_arange("arange_frac_f64", (0.0, 1.0, 0.3), DType::F64, dev); }
    /// torch.arange(10, 3, -2, dtype=int64)
    fn arange_down_i64(dev) { check_arange("arange_down_i64", (10.0, 3.0, -2.0), DType::I64, dev); }
    /// torch.arange(-1.5, 2.0, 0.5, dtype=float32)
    fn arange_neg_f32(dev) { check_arange("arange_neg_f32", (-1.5, 2.0, 0.5), DType::F32, dev); }
    /// torch.arange(2.0, 2.0, 1.0, dtype=float64): empty
    fn arange_empty_f64(dev) { check_arange("arange_empty_f64", (2.0, 2.0, 1.0), DType::F64, dev); }
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut in_file = golden_case_names("tensor_index");
    in_file.retain(|k| !k.starts_with("arange_"));
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(in_file, tested);
}

// ---------------------------------------------------------------------- gradcheck

/// An f64 tensor of `shape` on `dev`, values in (-2, 2) with |v| >= 0.1.
fn t(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(signed_away_from_zero(n, seed, usize::MAX), shape, dev).unwrap()
}

/// An f64 tensor of `shape` on `dev` that is a transposed (non-contiguous) view.
fn tt(shape: &[usize], seed: u64, dev: &Device) -> Tensor {
    let r = shape.len();
    let mut s = shape.to_vec();
    s.swap(r - 2, r - 1);
    let v = t(&s, seed, dev).transpose(r - 2, r - 1).unwrap();
    assert!(!v.is_contiguous());
    v
}

/// An I64 tensor on `dev`.
fn idx(v: &[i64], shape: &[usize], dev: &Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, dev).unwrap()
}

/// A U8 tensor on `dev`.
fn u8s(v: &[u8], shape: &[usize], dev: &Device) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, dev).unwrap()
}

#[track_caller]
fn grad_ok(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[Tensor]) {
    if let Err(e) = gradcheck(f, inputs, GradcheckOpts::default()) {
        let shapes: Vec<_> = inputs.iter().map(|x| x.shape().to_vec()).collect();
        panic!("inputs {shapes:?}: {e}");
    }
}

device_test! {
    fn gradcheck_gather(dev) {
        let i = idx(&[2, 0, 2, 1, 1, 1, 0, 2], &[2, 4], dev);
        grad_ok(|x| x[0].gather(0, &x[1]), &[t(&[3, 4], 1, dev), i.clone()]);
        grad_ok(|x| x[0].gather(0, &x[1]), &[tt(&[3, 4], 2, dev), i]);
    }

    fn gradcheck_index_select(dev) {
        let i = idx(&[3, 0, 3, 1], &[4], dev);
        grad_ok(|x| x[0].index_select(1, &x[1]), &[t(&[2, 4], 3, dev), i.clone()]);
        grad_ok(|x| x[0].index_select(0, &x[1]), &[tt(&[4, 3], 4, dev), i]);
    }

    fn gradcheck_scatter_add(dev) {
        let i = idx(&[1, 0, 1, 1, 2, 0], &[2, 3], dev);
        grad_ok(
            |x| x[0].scatter_add(1, &x[1], &x[2]),
            &[t(&[2, 3], 5, dev), i.clone(), tt(&[2, 3], 6, dev)],
        );
        // src larger than the index: its extra elements get no gradient.
        grad_ok(
            |x| x[0].scatter_add(1, &x[1], &x[2]),
            &[t(&[3, 3], 7, dev), i, t(&[2, 5], 8, dev)],
        );
    }

    fn gradcheck_where_masked_fill_tri(dev) {
        let c = u8s(&[1, 0, 0, 1, 1, 0], &[2, 3], dev);
        grad_ok(|x| x[0].where_cond(&x[1], &x[2]), &[c.clone(), tt(&[2, 3], 9, dev), t(&[3], 10, dev)]);
        grad_ok(|x| x[0].masked_fill(&x[1], 3.0), &[tt(&[2, 3], 11, dev), c]);
        grad_ok(|x| x[0].tril(0)?.add(&x[0].triu(2)?), &[tt(&[2, 3, 4], 12, dev)]);
    }

    fn gradcheck_math(dev) {
        grad_ok(|x| x[0].sin()?.mul(&x[0].cos()?), &[tt(&[3, 2], 13, dev)]);
        grad_ok(|x| x[0].abs()?.add_scalar(0.5)?.rsqrt(), &[t(&[5], 14, dev)]);
        grad_ok(|x| x[0].abs()?.add_scalar(0.5)?.pow_scalar(-1.7), &[tt(&[2, 3], 15, dev)]);
        grad_ok(|x| x[0].clamp(-0.5, 0.7), &[tt(&[3, 4], 16, dev)]);
        grad_ok(|x| x[0].var(1, true, false), &[tt(&[3, 4], 17, dev)]);
        grad_ok(|x| x[0].var(0, false, true), &[t(&[4, 2], 18, dev)]);
        grad_ok(|x| Tensor::stack(&[&x[0], &x[1]], 1), &[tt(&[2, 3], 19, dev), t(&[2, 3], 20, dev)]);
        grad_ok(|x| ((&x[0] * &x[1])? - (-&x[1])?)? / 2.0, &[t(&[2, 3], 21, dev), t(&[3], 22, dev)]);
    }

    fn gradcheck_embedding(dev) {
        let ids = idx(&[2, 0, 2, 3, 2, 1], &[3, 2], dev);
        grad_ok(|x| F::embedding(&x[0], &x[1]), &[ids, t(&[4, 3], 23, dev)]);
    }
}

// ---------------------------------------------------------------------- edge cases

/// The `InvalidArgument` name of an error, or a panic naming what came instead.
#[track_caller]
fn arg_name(r: Result<Tensor>) -> &'static str {
    match r {
        Err(Error::InvalidArgument { name, .. }) => name,
        Err(e) => panic!("expected InvalidArgument, got {e:?}"),
        Ok(t) => panic!("expected an error, got {t:?}"),
    }
}

device_test! {
    /// Negative and too-large indices are an Err naming the index, on every device
    /// (checked on the device on CUDA), for every op that takes one.
    fn out_of_range_indices_are_errors(dev) {
        let x = t(&[3, 4], 30, dev);
        for bad in [-1i64, 3, 100] {
            let i = idx(&[0, bad, 1, 2], &[1, 4], dev);
            assert_eq!(arg_name(x.gather(0, &i)), "index");
            assert_eq!(arg_name(x.scatter_add(0, &i, &t(&[1, 4], 31, dev))), "index");
            let i1 = idx(&[0, bad], &[2], dev);
            assert_eq!(arg_name(x.index_select(0, &i1)), "index");
            let ids = idx(&[1, bad], &[1, 2], dev);
            assert_eq!(arg_name(F::embedding(&ids, &x)), "input");
        }
        // The message names the bad value.
        let err = x.index_select(1, &idx(&[4], &[1], dev)).unwrap_err().to_string();
        assert!(err.contains('4') && err.contains("out of range"), "{err}");
    }

    /// Wrong dtypes, shapes and arguments are Errs naming the argument.
    fn bad_arguments_are_errors(dev) {
        let x = t(&[3, 4], 32, dev);
        let f_idx = t(&[3, 4], 33, dev);
        assert_eq!(arg_name(x.gather(0, &f_idx)), "index");
        assert_eq!(arg_name(x.gather(0, &idx(&[0; 5], &[5], dev))), "index"); // rank
        assert_eq!(arg_name(x.gather(1, &idx(&[0; 8], &[4, 2], dev))), "index"); // too big
        assert_eq!(arg_name(x.index_select(0, &idx(&[0; 4], &[2, 2], dev))), "index");
        assert_eq!(arg_name(x.where_cond(&x, &x)), "condition");
        let m = u8s(&[1, 0], &[2, 1, 1], dev); // broadcasts to (2, 3, 4), not (3, 4)
        assert_eq!(arg_name(x.masked_fill(&m, 1.0)), "mask");
        assert_eq!(arg_name(x.masked_fill(&f_idx, 1.0)), "mask");
        assert_eq!(arg_name(t(&[4], 34, dev).tril(0)), "self");
        assert_eq!(arg_name(x.clamp(None, None)), "min");
        assert_eq!(arg_name(Tensor::stack(&[], 0)), "tensors");
        assert_eq!(arg_name(Tensor::stack(&[&x, &x.transpose(0, 1).unwrap()], 0)), "tensors");
        assert!(matches!(Tensor::stack(&[&x], 3), Err(Error::DimOutOfRange { .. })));
        assert!(matches!(x.gather(2, &idx(&[0], &[1, 1], dev)), Err(Error::DimOutOfRange { .. })));
        let ar = |a, b, s| Tensor::arange_range(a, b, s, DType::F32, dev);
        assert_eq!(arg_name(ar(0.0, 5.0, 0.0)), "step");
        assert_eq!(arg_name(ar(0.0, 5.0, -1.0)), "step");
        assert_eq!(arg_name(ar(5.0, 0.0, 1.0)), "step");
        assert_eq!(arg_name(ar(f64::NAN, 0.0, 1.0)), "start");
        assert_eq!(arg_name(ar(0.0, f64::INFINITY, 1.0)), "end");
        assert_eq!(arg_name(F::embedding(&x, &x)), "input");
        assert_eq!(arg_name(F::embedding(&idx(&[0], &[1], dev), &t(&[3], 35, dev))), "weight");
        // Integer tensors have no sin (like the other transcendental unary ops).
        assert!(idx(&[1], &[1], dev).sin().is_err());
    }

    /// Empty indices and empty tensors give empty results of the right shape, and
    /// their gradients are zeros.
    fn empty_inputs(dev) {
        let x = t(&[3, 4], 40, dev).requires_grad();
        let none = idx(&[], &[0], dev);
        let sel = x.index_select(1, &none).unwrap();
        assert_eq!(sel.shape(), &[3, 0]);
        let g = x.gather(1, &idx(&[], &[3, 0], dev)).unwrap();
        assert_eq!(g.shape(), &[3, 0]);
        sel.sum_all().unwrap().add(&g.sum_all().unwrap()).unwrap().backward().unwrap();
        assert_eq!(host(&x.grad().unwrap()), vec![0.0; 12]);
        let s = x.scatter_add(0, &idx(&[], &[0, 4], dev), &t(&[0, 4], 41, dev)).unwrap();
        assert_values("scatter_add of nothing", &s, &x, 0.0, 0.0);
        let e = F::embedding(&idx(&[], &[2, 0], dev), &x).unwrap();
        assert_eq!(e.shape(), &[2, 0, 4]);
        let empty = t(&[0, 3], 42, dev);
        assert_eq!(empty.tril(0).unwrap().shape(), &[0, 3]);
        assert_eq!(empty.sin().unwrap().shape(), &[0, 3]);
        assert_eq!(empty.clamp(0.0, 1.0).unwrap().shape(), &[0, 3]);
        let c = u8s(&[], &[0, 1], dev);
        assert_eq!(c.where_cond(&empty, &empty).unwrap().shape(), &[0, 3]);
        assert_eq!(Tensor::stack(&[&empty, &empty], 1).unwrap().shape(), &[0, 2, 3]);
    }

    /// gather and where select any dtype, bit for bit; index ops take strided
    /// (transposed, broadcast) index tensors.
    fn integer_and_strided_indices(dev) {
        let x = idx(&[10, 11, 12, 13, 14, 15], &[2, 3], dev);
        let i = idx(&[2, 0, 1, 1], &[2, 2], dev).transpose(0, 1).unwrap(); // [[2,1],[0,1]]
        let got = x.gather(1, &i).unwrap();
        assert_eq!(got.to_vec::<i64>().unwrap(), vec![12, 11, 13, 14]);
        let c = u8s(&[1, 0, 1], &[3], dev);
        let w = c.where_cond(&x, &idx(&[0], &[], dev)).unwrap();
        assert_eq!(w.to_vec::<i64>().unwrap(), vec![10, 0, 12, 13, 0, 15]);
        // A 0-d index keeps its dimension with size 1, as in PyTorch.
        let one = x.index_select(1, &idx(&[2], &[], dev)).unwrap();
        assert_eq!(one.shape(), &[2, 1]);
        assert_eq!(one.to_vec::<i64>().unwrap(), vec![12, 15]);
        let tri = u8s(&[1; 9], &[3, 3], dev).triu(1).unwrap();
        assert_eq!(tri.to_vec::<u8>().unwrap(), vec![0, 1, 1, 0, 0, 1, 0, 0, 0]);
        let h = t(&[2, 3], 43, dev).to_dtype(DType::F16).unwrap();
        let picked = h.index_select(1, &idx(&[2, 2, 0], &[3], dev)).unwrap();
        assert_eq!(picked.dtype(), DType::F16);
        let want = h.to_dtype(DType::F64).unwrap().index_select(1, &idx(&[2, 2, 0], &[3], dev)).unwrap();
        assert_values("f16 index_select", &picked, &want, 0.0, 0.0);
    }

    /// scatter_add sums in a fixed order: the same bits on every run and on every
    /// device (the CPU backend sums in the CUDA kernel's order), with many
    /// collisions on few outputs.
    fn scatter_add_is_deterministic(dev) {
        let n = 600;
        let ids: Vec<i64> = (0..n).map(|i| (i * 7 % 3) as i64).collect();
        let src_host = Tensor::randn(&[n, 5], DType::F32, &Device::Cpu).unwrap();
        let ids_t = idx(&ids, &[n], dev);
        let src = src_host.to_device(dev).unwrap();
        let base = Tensor::zeros(&[3, 5], DType::F32, dev).unwrap();
        let expanded = ids_t.reshape(&[n, 1]).unwrap().broadcast_as(&[n, 5]).unwrap();
        let a = base.scatter_add(0, &expanded, &src).unwrap();
        let b = base.scatter_add(0, &expanded, &src).unwrap();
        assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        let cpu = Tensor::zeros(&[3, 5], DType::F32, &Device::Cpu)
            .unwrap()
            .scatter_add(0, &expanded.to_device(&Device::Cpu).unwrap(), &src_host)
            .unwrap();
        assert_eq!(a.to_vec::<f32>().unwrap(), cpu.to_vec::<f32>().unwrap());
    }

    /// nn::Embedding: a "weight" parameter of (vocab, dim), N(0, 1) like PyTorch, and a
    /// forward equal to F::embedding whose gradient reaches the weight.
    fn embedding_module(dev) {
        kiln::manual_seed(7);
        let emb = nn::Embedding::new(500, 40, dev).unwrap();
        assert_eq!((emb.num_embeddings(), emb.embedding_dim()), (500, 40));
        let names: Vec<String> = emb.named_parameters().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["weight".to_string()]);
        let w = host(&emb.weight);
        let mean = w.iter().sum::<f64>() / w.len() as f64;
        let var = w.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / w.len() as f64;
        assert!(mean.abs() < 0.02 && (var - 1.0).abs() < 0.03, "mean {mean}, var {var}");
        let ids = idx(&[3, 499, 3, 0], &[2, 2], dev);
        let y = emb.forward(&ids).unwrap();
        assert_eq!(y.shape(), &[2, 2, 40]);
        assert_values("forward", &y, &F::embedding(&ids, &emb.weight).unwrap(), 0.0, 0.0);
        y.sum_all().unwrap().backward().unwrap();
        let g = host(&emb.weight.grad().unwrap());
        assert_eq!(g[3 * 40], 2.0);
        assert_eq!(g[499 * 40 + 39], 1.0);
        assert_eq!(g[40], 0.0);
        // padding_idx: that row starts at zero and never trains.
        let opts = F::EmbeddingOpts::new().padding_idx(1);
        let padded = nn::Embedding::new_with(4, 3, opts, dev).unwrap();
        assert_eq!(host(&padded.weight)[3..6], [0.0; 3]);
        let y = padded.forward(&idx(&[1, 2, 1], &[3], dev)).unwrap();
        y.sum_all().unwrap().backward().unwrap();
        let g = host(&padded.weight.grad().unwrap());
        assert_eq!((g[3], g[6], g[9]), (0.0, 1.0, 0.0));
        let bad = F::EmbeddingOpts::new().padding_idx(4);
        assert!(matches!(
            nn::Embedding::new_with(4, 3, bad, dev),
            Err(Error::InvalidArgument { name: "padding_idx", .. })
        ));
        assert!(nn::Embedding::new(0, 3, dev).is_err());
        assert!(nn::Embedding::new(3, 0, dev).is_err());
    }
}
