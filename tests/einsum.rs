//! `kiln::einsum` against `torch.einsum` on every device (values and every operand's
//! gradient), an f64 gradcheck, and the errors of malformed equations.
//!
//! The fixture is written by `scripts/golden/einsum.py`; each case's equation is the
//! comment above it here and there; operands are the case's inputs in order.

mod common;

use common::{assert_err, golden_case_names, golden_cases, Golden};
use kiln::autograd::{gradcheck, GradcheckOpts};
use kiln::{einsum, DType, Device, Error, Tensor};
use std::sync::OnceLock;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("einsum"))
}

/// `einsum(eq)` of all the inputs.
fn ein(eq: &str, x: &[Tensor]) -> kiln::Result<Tensor> {
    einsum(eq, &x.iter().collect::<Vec<_>>())
}

golden_cases! {
    // "bij,bjk->bik"
    bmm(2) => |x| ein("bij,bjk->bik", x);
    // "ij,jk"
    implicit(2) => |x| ein("ij,jk", x);
    // "kj,ji" (output "ik")
    implicit_order(2) => |x| ein("kj,ji", x);
    // "ii"
    trace(1) => |x| ein("ii", x);
    // "ii->i"
    diag(1) => |x| ein("ii->i", x);
    // "bii->bi"
    batch_diag(1) => |x| ein("bii->bi", x);
    // "i,j->ij"
    outer(2) => |x| ein("i,j->ij", x);
    // "ij->ji"
    transpose(1) => |x| ein("ij->ji", x);
    // "ij->"
    sum_all(1) => |x| ein("ij->", x);
    // "i,i->"
    dot(2) => |x| ein("i,i->", x);
    // "...ij,...jk->...ik", a (2,1,3,4), b (5,4,2)
    ellipsis_broadcast(2) => |x| ein("...ij,...jk->...ik", x);
    // "bhqd,bhkd->bhqk"
    attention(2) => |x| ein("bhqd, bhkd -> bhqk", x);
    // "ij,jk,kl->il"
    three(3) => |x| ein("ij,jk,kl->il", x);
    // "ijk,jl->il"
    only_in_one(2) => |x| ein("ijk,jl->il", x);
    // "ij,ij->ij", a (3,1), b (1,4)
    size_one_broadcast(2) => |x| ein("ij,ij->ij", x);
    // "bi,bi->bi"
    batch_kept_hadamard(2) => |x| ein("bi,bi->bi", x);
    // "ij,jk->ik" with a.t() (f32)
    strided_f32(2) => |x| einsum("ij,jk->ik", &[&x[0].transpose(0, 1)?, &x[1]]);
    // "ij,jk->ik", a (2,0), b (0,3)
    empty_k(2) => |x| ein("ij,jk->ik", x);
    // "ij,jk->ik", a (0,3), b (3,2)
    empty_i(2) => |x| ein("ij,jk->ik", x);
}

/// Every case in the fixture has a test here, and every test its case.
#[test]
fn every_fixture_case_is_tested() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("einsum"), tested);
}

fn f64s(shape: &[usize], seed: usize, dev: &Device) -> Tensor {
    let n: usize = shape.iter().product();
    let v = (0..n)
        .map(|i| (((i + seed) * 37 % 23) as f64 - 11.0) / 7.0)
        .collect();
    Tensor::from_vec(v, shape, dev).unwrap()
}

common::device_test! {
    /// Finite differences agree with every operand's gradient: a batched contraction
    /// through a strided operand, a diagonal, an ellipsis broadcast, three operands.
    fn gradchecks(dev) {
        let opts = GradcheckOpts::default;
        let a = f64s(&[4, 2, 3], 1, dev).permute(&[1, 2, 0]).unwrap().requires_grad(); // (2,3,4)
        let b = f64s(&[2, 4, 5], 2, dev).requires_grad();
        let ab = [a.clone(), b.clone()];
        gradcheck(|t| einsum("bij,bjk->bki", &[&t[0], &t[1]]), &ab, opts()).unwrap();
        gradcheck(|t| einsum("bij,bjk->k", &[&t[0], &t[1]]), &ab, opts()).unwrap();
        let sq = f64s(&[2, 3, 3], 3, dev).requires_grad();
        gradcheck(|t| einsum("bii->b", &[&t[0]]), &[sq], opts()).unwrap();
        let e = f64s(&[3, 1, 4], 4, dev).requires_grad();
        let f = f64s(&[2, 4], 5, dev).requires_grad();
        gradcheck(|t| einsum("...j,...j->...", &[&t[0], &t[1]]), &[e, f], opts()).unwrap();
        let c = f64s(&[5, 2], 6, dev).requires_grad();
        gradcheck(|t| einsum("bij,bjk,kl->il", &[&t[0], &t[1], &t[2]]), &[a, b, c], opts())
            .unwrap();
    }

    /// Malformed equations are `Err`s naming `equation`; operands that do not fit
    /// them are `Err`s naming `operands`.
    fn errors(dev) {
        let a = f64s(&[2, 3], 1, dev);
        let b = f64s(&[3, 4], 2, dev);
        let eq = |e: &str, ops: &[&Tensor]| einsum(e, ops);
        assert_err!(eq("ij,jk->iz", &[&a, &b]), Error::InvalidArgument { name: "equation", .. });
        assert_err!(eq("ij,jk->ii", &[&a, &b]), Error::InvalidArgument { name: "equation", .. });
        assert_err!(eq("i1,jk->ik", &[&a, &b]), Error::InvalidArgument { name: "equation", .. });
        assert_err!(eq("i...j...,jk", &[&a, &b]), Error::InvalidArgument { name: "equation", .. });
        assert_err!(eq("ij,jk->ik->i", &[&a, &b]), Error::InvalidArgument { name: "equation", .. });
        assert_err!(eq("ij,jk->ik", &[&a]), Error::InvalidArgument { name: "operands", .. });
        assert_err!(eq("ijk,jk->ik", &[&a, &b]), Error::InvalidArgument { name: "operands", .. });
        assert_err!(eq("ij,kj->ik", &[&a, &b]), Error::InvalidArgument { name: "operands", .. });
        assert_err!(eq("ii", &[&a]), Error::InvalidArgument { name: "operands", .. });
        let f = b.to_dtype(DType::F32).unwrap();
        assert!(eq("ij,jk->ik", &[&a, &f]).is_err());
    }
}
