//! The composed reductions — `logsumexp`, `std`, `norm`, `prod`, `max_dim`/`min_dim`,
//! `any`/`all` — against PyTorch on every device, f64 gradchecks (norms at zero and
//! products with zeros included), and their errors.
//!
//! The fixture is written by `scripts/golden/reduce_more.py`; the PyTorch expression of
//! each case is the comment above it here and above its `case(...)` line there. `a` is
//! the case's input `in0`; views are taken inside the op.

mod common;

use common::rng::signed_away_from_zero;
use common::{assert_err, golden_case_names, golden_cases, host, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{DType, Device, Error, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("reduce_more"))
}

const INF: f64 = f64::INFINITY;

golden_cases! {
    // torch.logsumexp(a (3,5), [1])
    logsumexp_d1(1) => |x| x[0].logsumexp(&[1], false);
    // torch.logsumexp(a (2,3,4), [0, 2], keepdim=True)
    logsumexp_02_keep(1) => |x| x[0].logsumexp(&[2, 0], true);
    // torch.logsumexp(a (3,4), [0, 1])
    logsumexp_all(1) => |x| x[0].logsumexp(&[], false);
    // torch.logsumexp(a (5,4) f32 .t(), [1])
    logsumexp_t_f32(1) => |x| x[0].transpose(0, 1)?.logsumexp(&[1], false);
    // torch.logsumexp(a, [1]) with -inf entries
    logsumexp_neg_inf(1) => |x| x[0].logsumexp(&[1], false);
    // torch.logsumexp(a * 1000, [1])
    logsumexp_large(1) => |x| x[0].mul_scalar(1000.0)?.logsumexp(&[1], false);
    // torch.logsumexp(a (0,3), [0])
    logsumexp_empty(1) => |x| x[0].logsumexp(&[0], false);
    // a (4,6).std(1, correction=1)
    std_d1(1) => |x| x[0].std(1, true, false);
    // a (5,3).t().std(1, correction=0, keepdim=True)
    std_t_biased_keep(1) => |x| x[0].transpose(0, 1)?.std(1, false, true);
    // a.std(1), line 0 constant
    std_constant_line(1) => |x| x[0].std(1, true, false);
    // a (3,7) f32 .std(0)
    std_f32(1) => |x| x[0].std(0, true, false);
    // torch.linalg.vector_norm(a (3,5), 2, [1])
    norm_2_d1(1) => |x| x[0].norm(2.0, &[1], false);
    // torch.linalg.vector_norm(a, 2, [1]), line 0 zeros
    norm_2_zero_line(1) => |x| x[0].norm(2.0, &[1], false);
    // torch.linalg.vector_norm(with_zeros(3,5), 1)
    norm_1_all(1) => |x| x[0].norm(1.0, &[], false);
    // torch.linalg.vector_norm(a (2,3,4), 3, [0, 2], keepdim=True)
    norm_3_keep(1) => |x| x[0].norm(3.0, &[0, 2], true);
    // torch.linalg.vector_norm(with_zeros(3,5), 0.5, [1])
    norm_half_zeros(1) => |x| x[0].norm(0.5, &[1], false);
    // torch.linalg.vector_norm(ties(), inf, [1])
    norm_inf_ties(1) => |x| x[0].norm(INF, &[1], false);
    // torch.linalg.vector_norm(a (5,3).t(), -inf, [1])
    norm_neg_inf_t(1) => |x| x[0].transpose(0, 1)?.norm(-INF, &[1], false);
    // torch.linalg.vector_norm(with_zeros(3,5), 0, [1]) + 0 * a.sum(1)
    norm_0(1) => |x| x[0].norm(0.0, &[1], false)?.add(&x[0].sum(1, false)?.mul_scalar(0.0)?);
    // torch.linalg.vector_norm(a (4,3) f32, 2, [0])
    norm_f32(1) => |x| x[0].norm(2.0, &[0], false);
    // a (3,5).prod(1)
    prod_d1(1) => |x| x[0].prod(1, false);
    // with_zeros(3,5).prod(1)
    prod_zeros(1) => |x| x[0].prod(1, false);
    // with_zeros(3,5).t().prod(0, keepdim=True)
    prod_zeros_t_keep(1) => |x| x[0].transpose(0, 1)?.prod(0, true);
    // a (2,0).prod(1)
    prod_empty(1) => |x| x[0].prod(1, false);
    // a (4,3) f32 .prod(0)
    prod_f32(1) => |x| x[0].prod(0, false);
    // a (2,5) int64 .prod(1)
    prod_i64(1) => |x| x[0].prod(1, false);
    // a (2,4) uint8 .prod(1): int64
    prod_u8(1) => |x| x[0].prod(1, false);
    // torch.max(ties(), 1).values
    max_values(1) => |x| Ok(x[0].max_dim(1, false)?.0);
    // torch.max(ties(), 1).indices
    max_indices(1) => |x| Ok(x[0].max_dim(1, false)?.1);
    // torch.max(a (4,3).t(), 1, keepdim=True).values
    max_values_t_keep(1) => |x| Ok(x[0].transpose(0, 1)?.max_dim(1, true)?.0);
    // torch.max(a, 1).indices with NaNs
    max_indices_nan(1) => |x| Ok(x[0].max_dim(1, false)?.1);
    // torch.max(a, 1).values with NaNs
    max_values_nan(1) => |x| Ok(x[0].max_dim(1, false)?.0);
    // torch.min(ties(), 0).values
    min_values(1) => |x| Ok(x[0].min_dim(0, false)?.0);
    // torch.min(ties(), 1).indices
    min_indices(1) => |x| Ok(x[0].min_dim(1, false)?.1);
    // torch.min(a (3,4) int64, 1).indices
    min_indices_i64(1) => |x| Ok(x[0].min_dim(1, false)?.1);
    // a.any(1)
    any_dim(1) => |x| x[0].any_dim(1, false);
    // a.all(1, keepdim=True)
    all_dim_keep(1) => |x| x[0].all_dim(1, true);
    // a.t().all(0)
    all_dim_t(1) => |x| x[0].transpose(0, 1)?.all_dim(0, false);
    // a (2,3) uint8 .any()
    any_u8(1) => |x| x[0].any();
    // a (2,3) int64 .all()
    all_i64(1) => |x| x[0].all();
    // a (0,3).any(0)
    any_empty(1) => |x| x[0].any_dim(0, false);
    // a (0,3).all(0)
    all_empty(1) => |x| x[0].all_dim(0, false);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("reduce_more"), tested);
}

/// Deterministic f64 values in (-2, 2) with |v| >= 0.1, every `zero_every`-th one 0.
fn f64s(shape: &[usize], seed: u64, zero_every: usize, dev: &Device) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(signed_away_from_zero(n, seed, zero_every), shape, dev).unwrap()
}

common::device_test! {
    /// Finite differences agree with every gradient, through strided views; prod on
    /// lines with one and two zeros.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let x = f64s(&[3, 4, 5], 1, usize::MAX, dev).requires_grad();
        let xs = std::slice::from_ref(&x);
        gradcheck(|t| t[0].logsumexp(&[0, 2], false), xs, opts()).unwrap();
        gradcheck(|t| t[0].logsumexp(&[], true), xs, opts()).unwrap();
        for dim in 0..3 {
            gradcheck(|t| t[0].std(dim, true, false), xs, opts()).unwrap();
            gradcheck(|t| t[0].prod(dim, true), xs, opts()).unwrap();
            gradcheck(|t| Ok(t[0].max_dim(dim, false)?.0), xs, opts()).unwrap();
            gradcheck(|t| Ok(t[0].min_dim(dim, true)?.0), xs, opts()).unwrap();
        }
        for p in [1.0, 2.0, 3.0, 0.5, INF, -INF] {
            gradcheck(|t| t[0].norm(p, &[1, 2], false), xs, opts()).unwrap();
        }
        let xt = f64s(&[6, 4], 2, usize::MAX, dev).transpose(0, 1).unwrap().requires_grad();
        gradcheck(|t| t[0].norm(2.0, &[1], true), std::slice::from_ref(&xt), opts()).unwrap();
        gradcheck(|t| t[0].std(1, false, true), &[xt], opts()).unwrap();
        // Every third value 0: lines of 7 hold two zeros, of 4 one or none.
        let z = f64s(&[4, 7], 3, 3, dev).requires_grad();
        gradcheck(|t| t[0].prod(1, false), std::slice::from_ref(&z), opts()).unwrap();
        gradcheck(|t| t[0].prod(0, false), &[z], opts()).unwrap();
    }

    /// Bad dims, p and dtypes are `Err`s naming them; integer inputs where only floats
    /// make sense are refused; `any`/`all` of every dtype give U8.
    fn errors_and_dtypes(dev) {
        let x = f64s(&[2, 3], 4, usize::MAX, dev);
        assert_err!(x.logsumexp(&[2], false), Error::DimOutOfRange { rank: 2, .. });
        assert_err!(x.logsumexp(&[1, 1], false), Error::InvalidArgument { name: "dims", .. });
        assert_err!(x.std(2, true, false), Error::DimOutOfRange { rank: 2, .. });
        assert_err!(x.norm(f64::NAN, &[0], false), Error::InvalidArgument { name: "p", .. });
        assert_err!(x.norm(2.0, &[3], false), Error::DimOutOfRange { rank: 2, .. });
        assert_err!(x.prod(2, false), Error::DimOutOfRange { rank: 2, .. });
        assert_err!(x.max_dim(2, false), Error::DimOutOfRange { rank: 2, .. });
        assert_err!(x.any_dim(2, false), Error::DimOutOfRange { rank: 2, .. });
        assert_err!(x.all_dim(3, false), Error::DimOutOfRange { rank: 2, .. });
        let e = f64s(&[2, 0], 4, usize::MAX, dev);
        assert!(e.max_dim(1, false).is_err(), "max over nothing has no answer");
        let i = x.to_dtype(DType::I64).unwrap();
        assert!(i.logsumexp(&[0], false).is_err());
        assert!(i.norm(2.0, &[0], false).is_err());
        assert!(i.std(0, true, false).is_err());
        for t in [&x, &i, &x.to_dtype(DType::U8).unwrap(), &x.to_dtype(DType::F16).unwrap()] {
            assert_eq!(t.any().unwrap().dtype(), DType::U8);
            assert_eq!(t.all_dim(0, true).unwrap().shape(), &[1, 3]);
        }
        let (v, idx) = x.max_dim(0, true).unwrap();
        assert_eq!((v.shape(), idx.dtype()), (&[1usize, 3][..], DType::I64));
    }

    /// logsumexp of lines that are all -inf is -inf, of a +inf line +inf; a 0-d
    /// input reduces over nothing but itself.
    fn infinite_lines(dev) {
        let x = Tensor::from_vec(vec![-INF, -INF, INF, 1.0], &[2, 2], dev).unwrap();
        assert_eq!(host(&x.logsumexp(&[1], false).unwrap()), [-INF, INF]);
        let s = Tensor::from_vec(vec![2.5f64], &[], dev).unwrap();
        assert_eq!(host(&s.logsumexp(&[], false).unwrap()), [2.5]);
        assert_eq!(host(&s.norm(2.0, &[], false).unwrap()), [2.5]);
        assert_eq!(host(&s.any().unwrap()), [1.0]);
    }
}
