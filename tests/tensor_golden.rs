//! Core tensor ops against PyTorch: the forward result and the gradient of every
//! input, for the cases in `tests/data/tensor.safetensors`.
//!
//! The fixture is written by `scripts/golden/tensor.py`; the PyTorch expression of
//! each case is the comment above it here and above its `case(...)` line there.
//! `a`, `b`, `c` are the case's inputs `in0`, `in1`, `in2`. Backward is checked by
//! feeding PyTorch's upstream gradient `gout`: `sum(out * gout)` has exactly the
//! input gradients of `out.backward(gout)`.

mod common;

use common::{golden_case_names, golden_cases, Golden};
use kiln::Tensor;
use std::sync::OnceLock;

/// The `-1` of PyTorch's `reshape`.
const INFER: usize = usize::MAX;

fn golden() -> &'static Golden {
    static GOLDEN: OnceLock<Golden> = OnceLock::new();
    GOLDEN.get_or_init(|| Golden::load("tensor"))
}

golden_cases! {
    // ---------------------------------------------------------- broadcast arithmetic
    // a (2,3,5) + b (3,1)
    add_bcast(2) => |x| x[0].add(&x[1]);
    // a (3,1,5) + b (2,1,4,1)  -> (2,3,4,5)
    add_lead(2) => |x| x[0].add(&x[1]);
    // a (3,7) + b (3,7)
    add_same(2) => |x| x[0].add(&x[1]);
    // a (1,4,3) - b (5,1,3)
    sub_bcast(2) => |x| x[0].sub(&x[1]);
    // a (3,) - b (2,4,3)
    sub_lead(2) => |x| x[0].sub(&x[1]);
    // a (2,1,5) * b (3,1)
    mul_bcast(2) => |x| x[0].mul(&x[1]);
    // a (3,4) * b ()
    mul_rank0(2) => |x| x[0].mul(&x[1]);
    // a (4,1,3) / b (1,5,3)
    div_bcast(2) => |x| x[0].div(&x[1]);
    // a (2,3,4) / b (4,)
    div_lead(2) => |x| x[0].div(&x[1]);
    // a (4,) / b (2,3,4)
    div_lead_rhs(2) => |x| x[0].div(&x[1]);
    // torch.maximum(a (3,4), b (4,))
    maximum_bcast(2) => |x| x[0].maximum(&x[1]);
    // torch.minimum(a (2,1,3), b (4,3))
    minimum_bcast(2) => |x| x[0].minimum(&x[1]);
    // a (2,3,5) + b (3,1), float32
    add_bcast_f32(2) => |x| x[0].add(&x[1]);
    // a (5,) * b (3,2,5), float32
    mul_lead_f32(2) => |x| x[0].mul(&x[1]);
    // a (3,4) / b (3,1), float32
    div_bcast_f32(2) => |x| x[0].div(&x[1]);

    // ---------------------------------------------------------- unary
    // -a
    neg(1) => |x| x[0].neg();
    // a.exp()
    exp(1) => |x| x[0].exp();
    // a.log()
    log(1) => |x| x[0].log();
    // a.sqrt()
    sqrt(1) => |x| x[0].sqrt();
    // a.relu(), with exact zeros in a
    relu(1) => |x| x[0].relu();
    // a.sigmoid()
    sigmoid(1) => |x| x[0].sigmoid();
    // a.tanh()
    tanh(1) => |x| x[0].tanh();
    // a.abs(), with an exact zero in a
    abs(1) => |x| x[0].abs();
    // a.pow(2.5)
    powf_frac(1) => |x| x[0].powf(2.5);
    // a.pow(-1.5)
    powf_neg(1) => |x| x[0].powf(-1.5);
    // a.pow(3.0)
    powf_int(1) => |x| x[0].powf(3.0);
    // a.exp(), float32
    exp_f32(1) => |x| x[0].exp();
    // a.sigmoid(), float32
    sigmoid_f32(1) => |x| x[0].sigmoid();
    // a.tanh(), float32
    tanh_f32(1) => |x| x[0].tanh();
    // (a (3,4).exp() * b (4,)).sigmoid().log()
    unary_chain(2) => |x| x[0].exp()?.mul(&x[1])?.sigmoid()?.log();

    // ---------------------------------------------------------- scalar ops
    // a + 2.5
    add_scalar(1) => |x| x[0].add_scalar(2.5);
    // a - 1.25
    sub_scalar(1) => |x| x[0].sub_scalar(1.25);
    // a * -3.0
    mul_scalar(1) => |x| x[0].mul_scalar(-3.0);
    // a / 4.0
    div_scalar(1) => |x| x[0].div_scalar(4.0);

    // ---------------------------------------------------------- reductions
    // a (2,3,4).sum(1)
    sum_d1(1) => |x| x[0].sum(1, false);
    // a (2,3,4).sum(0, keepdim=True)
    sum_d0_keep(1) => |x| x[0].sum(0, true);
    // a (2,3,4).sum(2, keepdim=True)
    sum_d2_keep(1) => |x| x[0].sum(2, true);
    // a (2,3,4).transpose(0, 2).sum(1)
    sum_transposed(1) => |x| x[0].transpose(0, 2)?.sum(1, false);
    // a (2,3,4).mean(2)
    mean_d2(1) => |x| x[0].mean(2, false);
    // a (2,3,4).mean(0, keepdim=True)
    mean_d0_keep(1) => |x| x[0].mean(0, true);
    // a (2,3,4).max(1).values
    max_d1(1) => |x| x[0].max(1, false);
    // a (2,3,4).max(2, keepdim=True).values
    max_d2_keep(1) => |x| x[0].max(2, true);
    // a (2,3,4).min(0).values
    min_d0(1) => |x| x[0].min(0, false);
    // a (2,3,4).min(2, keepdim=True).values
    min_d2_keep(1) => |x| x[0].min(2, true);
    // a (2,3,4).argmax(1)
    argmax_d1(1) => |x| x[0].argmax(1, false);
    // a (2,3,4).argmax(0, keepdim=True)
    argmax_d0_keep(1) => |x| x[0].argmax(0, true);
    // a (2,3,4).argmin(2)
    argmin_d2(1) => |x| x[0].argmin(2, false);
    // a (2,3,4).argmin(1, keepdim=True)
    argmin_d1_keep(1) => |x| x[0].argmin(1, true);
    // a (2,3,4).sum()
    sum_all(1) => |x| x[0].sum_all();
    // a (2,3,4).mean()
    mean_all(1) => |x| x[0].mean_all();
    // a (3,5).t().mean()
    mean_all_transposed(1) => |x| x[0].transpose(0, 1)?.mean_all();
    // a (2,3,4).sum(1), float32
    sum_d1_f32(1) => |x| x[0].sum(1, false);
    // a (2,3,4).mean(), float32
    mean_all_f32(1) => |x| x[0].mean_all();
    // a (4,3).max(0).values, float32
    max_d0_f32(1) => |x| x[0].max(0, false);

    // ---------------------------------------------------------- matmul
    // a (3,4) @ b (4,5)
    mm(2) => |x| x[0].matmul(&x[1]);
    // a (2,3,4) @ b (2,4,5)
    bmm(2) => |x| x[0].matmul(&x[1]);
    // a (2,1,3,4) @ b (5,4,2)  -> (2,5,3,2)
    matmul_bcast(2) => |x| x[0].matmul(&x[1]);
    // a (3,4) @ b (2,4,5)  -> (2,3,5)
    matmul_2d_3d(2) => |x| x[0].matmul(&x[1]);
    // a (3,4) @ b (4,)
    mv(2) => |x| x[0].matmul(&x[1]);
    // a (4,) @ b (4,5)
    vm(2) => |x| x[0].matmul(&x[1]);
    // a (4,) @ b (4,)
    dot(2) => |x| x[0].matmul(&x[1]);
    // a (4,) @ b (2,4,3)
    v_batched(2) => |x| x[0].matmul(&x[1]);
    // a (2,3,4) @ b (4,)
    batched_v(2) => |x| x[0].matmul(&x[1]);
    // a (4,3).t() @ b (5,4).t()
    mm_tt(2) => |x| x[0].transpose(0, 1)?.matmul(&x[1].transpose(0, 1)?);
    // a (2,4,3).transpose(1, 2) @ b (2,5,4).transpose(1, 2)
    bmm_mt(2) => |x| x[0].transpose(1, 2)?.matmul(&x[1].transpose(1, 2)?);
    // a (3,2,4).permute(1, 0, 2) @ b (4,5)
    matmul_permuted_batch(2) => |x| x[0].permute(&[1, 0, 2])?.matmul(&x[1]);
    // a (3,6).narrow(1, 1, 4) @ b (4,2)
    mm_narrow(2) => |x| x[0].narrow(1, 1, 4)?.matmul(&x[1]);
    // a (5,7) @ b (7,3), float32
    mm_f32(2) => |x| x[0].matmul(&x[1]);
    // a (2,3,4) @ b (4,6), float32
    bmm_bcast_f32(2) => |x| x[0].matmul(&x[1]);

    // ---------------------------------------------------------- views + a downstream op
    // a (2,3,4).transpose(0, 2) * b (4,3,2)
    transpose_mul(2) => |x| x[0].transpose(0, 2)?.mul(&x[1]);
    // a (2,3,4).permute(2, 0, 1).exp()
    permute_exp(1) => |x| x[0].permute(&[2, 0, 1])?.exp();
    // a (2,3,4,5).permute(3, 1, 0, 2) + b (5,1,2,1)
    permute_add(2) => |x| x[0].permute(&[3, 1, 0, 2])?.add(&x[1]);
    // a (3,7).narrow(1, 2, 4).tanh()
    narrow_tanh(1) => |x| x[0].narrow(1, 2, 4)?.tanh();
    // a (5,3).narrow(0, 1, 3) * b (3,3)
    narrow_d0_mul(2) => |x| x[0].narrow(0, 1, 3)?.mul(&x[1]);
    // a (4,6).t().narrow(0, 3, 2).exp()
    narrow_of_transpose(1) => |x| x[0].transpose(0, 1)?.narrow(0, 3, 2)?.exp();
    // a (2,3,4).reshape(6, 4) @ b (4,3)
    reshape_mm(2) => |x| x[0].reshape(&[6, 4])?.matmul(&x[1]);
    // a (3,4).t().reshape(2, 6).sigmoid()
    reshape_transposed(1) => |x| x[0].transpose(0, 1)?.reshape(&[2, 6])?.sigmoid();
    // a (2,3,4).reshape(-1, 3) * b (3,)
    reshape_infer(2) => |x| x[0].reshape(&[INFER, 3])?.mul(&x[1]);
    // a (2,3,4,5).flatten(1, 2) * b (12,5)
    flatten_mul(2) => |x| x[0].flatten(1, 2)?.mul(&x[1]);
    // torch.cat([a (2,3), b (2,5), c (2,1)], 1).exp()
    cat_d1_exp(3) => |x| Tensor::cat(&[&x[0], &x[1], &x[2]], 1)?.exp();
    // torch.cat([a (3,4).t(), b (2,3)], 0) * c (6,3)
    cat_d0_transposed(3) => |x| Tensor::cat(&[&x[0].transpose(0, 1)?, &x[1]], 0)?.mul(&x[2]);
    // a (3,4).unsqueeze(1) * b (5,1)
    unsqueeze_mul(2) => |x| x[0].unsqueeze(1)?.mul(&x[1]);
    // a (3,1,4).squeeze(1) @ b (4,2)
    squeeze_mm(2) => |x| x[0].squeeze(1)?.matmul(&x[1]);
    // a (3,4).t().contiguous() * b (4,3)
    contiguous_mul(2) => |x| x[0].transpose(0, 1)?.contiguous()?.mul(&x[1]);
    // a (3,1).expand(3, 4) * b (3,4)
    expand_mul(2) => |x| x[0].broadcast_as(&[3, 4])?.mul(&x[1]);
    // a (2,3,4).transpose(0, 2) * b (4,3,2), float32
    transpose_mul_f32(2) => |x| x[0].transpose(0, 2)?.mul(&x[1]);
    // (a (5,4) @ b (3,4).t() + c (3,)).relu().sum(1).mean()
    mlp(3) => |x| x[0]
        .matmul(&x[1].transpose(0, 1)?)?
        .add(&x[2])?
        .relu()?
        .sum(1, false)?
        .mean_all();
}

/// Every case in the fixture has a test above, and every test has its case.
#[test]
fn every_fixture_case_is_checked() {
    let mut tested: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(golden_case_names("tensor"), tested);
}
