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

// ------------------------------------------------------------------ CUDA against the CPU

/// The elementwise and reduction kernels on every dtype, odd sizes and non-contiguous
/// views against the CPU backend (tests/common/parity.rs), and the checks that these
/// tests launch every kernel of kernels/elementwise.cu and kernels/reduce.cu.
mod cuda_parity {
    use crate::common::parity::{
        assert_close, assert_every_kernel_launched, assert_exact, gpu_or_skip, pair_t, tol, values,
        ALL, FLOATS,
    };
    use kiln::nn::functional as F;
    use kiln::{DType, Device, Result, Tensor};

    #[test]
    fn unary_ops_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("unary_ops_match_the_cpu");
        type Op = (&'static str, fn(&Tensor) -> Result<Tensor>);
        let float_ops: [Op; 16] = [
            ("neg", |t| t.neg()),
            ("exp", |t| t.exp()),
            ("log", |t| t.log()),
            ("sqrt", |t| t.sqrt()),
            ("relu", |t| t.relu()),
            ("sigmoid", |t| t.sigmoid()),
            ("tanh", |t| t.tanh()),
            ("abs", |t| t.abs()),
            ("add_scalar", |t| t.add_scalar(1.25)),
            ("mul_scalar", |t| t.mul_scalar(-3.0)),
            ("div_scalar", |t| t.div_scalar(7.0)),
            ("powf", |t| t.powf(2.5)),
            ("powf_int", |t| t.powf(3.0)),
            ("gelu", F::gelu),
            ("gelu_tanh", F::gelu_tanh),
            ("sub_scalar", |t| t.sub_scalar(0.5)),
        ];
        for dtype in FLOATS {
            let (cpu, gpu) = pair_t(&[33, 7, 3], dtype, 2, &dev);
            let (atol, rtol) = tol(dtype);
            for (name, op) in float_ops {
                assert_close(
                    &format!("{name} {dtype:?}"),
                    &op(&gpu).unwrap(),
                    &op(&cpu).unwrap(),
                    atol,
                    rtol,
                );
            }
        }
        let int_ops: [Op; 5] = [
            ("neg", |t| t.neg()),
            ("relu", |t| t.relu()),
            ("abs", |t| t.abs()),
            ("add_scalar", |t| t.add_scalar(300.0)),
            ("mul_scalar", |t| t.mul_scalar(3.0)),
        ];
        for dtype in [DType::I64, DType::U8] {
            let (cpu, gpu) = pair_t(&[5, 67], dtype, 3, &dev);
            for (name, op) in int_ops {
                assert_exact(
                    &format!("{name} {dtype:?}"),
                    &op(&gpu).unwrap(),
                    &op(&cpu).unwrap(),
                );
            }
            assert!(gpu.exp().is_err(), "exp of integers is refused on CUDA too");
        }
    }

    #[test]
    fn binary_ops_and_comparisons_broadcast_like_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("binary_ops_and_comparisons_broadcast_like_the_cpu");
        type Op = (&'static str, fn(&Tensor, &Tensor) -> Result<Tensor>);
        let ops: [Op; 12] = [
            ("add", |a, b| a.add(b)),
            ("sub", |a, b| a.sub(b)),
            ("mul", |a, b| a.mul(b)),
            ("div", |a, b| a.div(b)),
            ("maximum", |a, b| a.maximum(b)),
            ("minimum", |a, b| a.minimum(b)),
            ("eq", |a, b| a.eq(b)),
            ("ne", |a, b| a.ne(b)),
            ("lt", |a, b| a.lt(b)),
            ("le", |a, b| a.le(b)),
            ("gt", |a, b| a.gt(b)),
            ("ge", |a, b| a.ge(b)),
        ];
        for dtype in ALL {
            // (9, 1, 13) transposed view against (5, 1) broadcast and a scalar-like (1,).
            let (a_cpu, a_gpu) = pair_t(&[9, 1, 13], dtype, 4, &dev);
            let (b_cpu, b_gpu) = pair_t(&[5, 1], dtype, 5, &dev);
            let c_cpu = values(&[1], dtype, 6);
            let c_gpu = c_cpu.to_device(&dev).unwrap();
            for (name, op) in ops {
                if name == "div" && !dtype.is_float() {
                    assert!(op(&a_gpu, &b_gpu).is_err(), "integer division is refused");
                    continue;
                }
                let what = format!("{name} {dtype:?}");
                // One IEEE operation (in f32 for halves) then one rounding: bit-identical.
                assert_exact(
                    &what,
                    &op(&a_gpu, &b_gpu).unwrap(),
                    &op(&a_cpu, &b_cpu).unwrap(),
                );
                assert_exact(
                    &what,
                    &op(&c_gpu, &a_gpu).unwrap(),
                    &op(&c_cpu, &a_cpu).unwrap(),
                );
            }
        }
        let nan = Tensor::from_vec(vec![f32::NAN, 1.0, 2.0], &[3], &Device::Cpu).unwrap();
        let one = Tensor::from_vec(vec![1.0f32, f32::NAN, 3.0], &[3], &Device::Cpu).unwrap();
        let (ng, og) = (nan.to_device(&dev).unwrap(), one.to_device(&dev).unwrap());
        assert_exact(
            "maximum NaN",
            &ng.maximum(&og).unwrap(),
            &nan.maximum(&one).unwrap(),
        );
        assert_exact(
            "minimum NaN",
            &ng.minimum(&og).unwrap(),
            &nan.minimum(&one).unwrap(),
        );
        assert_exact("eq NaN", &ng.eq(&og).unwrap(), &nan.eq(&one).unwrap());
    }

    /// SiLU and softplus (both sides of the threshold, β = 1 and β ≠ 1) and their
    /// gradients, on a transposed view, in every float dtype.
    #[test]
    fn silu_and_softplus_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("silu_and_softplus_match_the_cpu");
        type Op = (&'static str, fn(&Tensor) -> Result<Tensor>);
        let ops: [Op; 3] = [
            ("silu", F::silu),
            ("softplus", |t| F::softplus(t, 1.0, 1.5)),
            ("softplus_beta", |t| F::softplus(t, 2.0, 20.0)),
        ];
        for dtype in FLOATS {
            let (atol, rtol) = tol(dtype);
            for (name, op) in ops {
                let run = |d: &Device| -> Result<(Tensor, Tensor)> {
                    let leaf = values(&[7, 33, 3], dtype, 41).to_device(d)?.requires_grad();
                    let y = op(&leaf.transpose(0, 2)?)?;
                    let gout = values(y.shape(), dtype, 42).to_device(d)?;
                    y.mul(&gout)?.sum_all()?.backward()?;
                    Ok((y, leaf.grad().expect("grad")))
                };
                let ((yg, gg), (yc, gc)) = (run(&dev).unwrap(), run(&Device::Cpu).unwrap());
                assert_close(&format!("{name} {dtype:?}"), &yg, &yc, atol, rtol);
                assert_close(&format!("{name} grad {dtype:?}"), &gg, &gc, atol, rtol);
            }
        }
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/elementwise.cu.
    #[test]
    fn every_elementwise_kernel_is_launched() {
        let suite: [fn(); 3] = [
            unary_ops_match_the_cpu,
            binary_ops_and_comparisons_broadcast_like_the_cpu,
            silu_and_softplus_match_the_cpu,
        ];
        assert_every_kernel_launched("elementwise", &suite, &[]);
    }

    #[test]
    fn reductions_over_every_dim_match_the_cpu() {
        let (dev, _gpu) = gpu_or_skip!("reductions_over_every_dim_match_the_cpu");
        type Op = (&'static str, fn(&Tensor, usize) -> Result<Tensor>);
        let ops: [Op; 6] = [
            ("sum", |t, d| t.sum(d, false)),
            ("mean", |t, d| t.mean(d, true)),
            ("max", |t, d| t.max(d, false)),
            ("min", |t, d| t.min(d, false)),
            ("argmax", |t, d| t.argmax(d, false)),
            ("argmin", |t, d| t.argmin(d, true)),
        ];
        for dtype in ALL {
            for (shape, transposed) in [
                (vec![37, 129, 5], false),
                (vec![6, 300, 3], true),
                (vec![1, 1000], false),
            ] {
                let (cpu, gpu) = if transposed {
                    pair_t(&shape, dtype, 7, &dev)
                } else {
                    let c = values(&shape, dtype, 7);
                    let g = c.to_device(&dev).unwrap();
                    (c, g)
                };
                let (atol, rtol) = tol(dtype);
                for (name, op) in ops {
                    if name == "mean" && !dtype.is_float() {
                        continue;
                    }
                    for d in 0..shape.len() {
                        let what = format!(
                            "{name} dim {d} of {shape:?} {dtype:?} (transposed {transposed})"
                        );
                        let (g, c) = (op(&gpu, d).unwrap(), op(&cpu, d).unwrap());
                        match name {
                            "sum" | "mean" => assert_close(&what, &g, &c, atol * 10.0, rtol * 10.0),
                            _ => assert_exact(&what, &g, &c),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn large_and_strided_reductions_split_into_chunks() {
        let (dev, _gpu) = gpu_or_skip!("large_and_strided_reductions_split_into_chunks");
        // One output over 3M elements (block strategy with a second pass), many outputs
        // over a strided dim (thread strategy with a second pass), and argmax ties.
        let big = values(&[3_000_001], DType::F32, 8);
        let g = big.to_device(&dev).unwrap();
        assert_close(
            "sum_all 3M",
            &g.sum_all().unwrap(),
            &big.sum_all().unwrap(),
            1e-2,
            1e-4,
        );
        assert_exact(
            "max 3M",
            &g.max(0, false).unwrap(),
            &big.max(0, false).unwrap(),
        );
        assert_exact(
            "argmin 3M",
            &g.argmin(0, false).unwrap(),
            &big.argmin(0, false).unwrap(),
        );
        let tall = values(&[20_000, 33], DType::F64, 9);
        let tg = tall.to_device(&dev).unwrap();
        assert_close(
            "sum dim 0 tall",
            &tg.sum(0, false).unwrap(),
            &tall.sum(0, false).unwrap(),
            1e-9,
            1e-12,
        );
        assert_exact(
            "argmax dim 0 tall",
            &tg.argmax(0, false).unwrap(),
            &tall.argmax(0, false).unwrap(),
        );
        let ties = Tensor::from_vec(vec![1u8, 7, 7, 3, 7, 0], &[6], &Device::Cpu).unwrap();
        let tg = ties.to_device(&dev).unwrap();
        assert_eq!(
            tg.argmax(0, false).unwrap().item::<i64>().unwrap(),
            1,
            "first maximum"
        );
        assert_eq!(tg.sum_all().unwrap().dtype(), DType::I64);
        let mut v = vec![1.0f32; 5000];
        v[1234] = f32::NAN;
        v[4321] = f32::NAN;
        let nan = Tensor::from_vec(v, &[5000], &Device::Cpu).unwrap();
        let ng = nan.to_device(&dev).unwrap();
        assert_eq!(
            ng.argmax(0, false).unwrap().item::<i64>().unwrap(),
            1234,
            "first NaN wins"
        );
        assert!(ng.max(0, false).unwrap().item::<f32>().unwrap().is_nan());
        assert!(ng.sum_all().unwrap().item::<f32>().unwrap().is_nan());
    }

    /// On the emulated device: the parity tests above, run one after another, launch
    /// every kernel of kernels/reduce.cu.
    #[test]
    fn every_reduce_kernel_is_launched() {
        let suite: [fn(); 2] = [
            reductions_over_every_dim_match_the_cpu,
            large_and_strided_reductions_split_into_chunks,
        ];
        assert_every_kernel_launched("reduce", &suite, &[]);
    }
}
