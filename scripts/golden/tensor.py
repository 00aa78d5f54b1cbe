#!/usr/bin/env python3
"""Golden values for kiln's core tensor ops: forward and the gradient of every input.

Run from the repository root:

    .venv/bin/python scripts/golden/tensor.py

and commit the regenerated tests/data/tensor.safetensors. tests/tensor_golden.rs
reads it.

Keys, per case `<c>`:
  <c>.in0, <c>.in1, ...   inputs (contiguous; views are taken inside the op)
  <c>.out                 the op's result
  <c>.gout                the upstream gradient fed to `out.backward(gout)`
                          (absent for integer results such as argmax)
  <c>.grad0, <c>.grad1... the gradient of each input

Each case's PyTorch snippet is the comment above it; the same expression is the
lambda that computes it. `a`, `b`, `c` are in0, in1, in2. Shapes are odd and
non-square so a swapped dimension cannot go unnoticed. Most cases are float64
(tight comparison); the `_f32` cases check the float32 paths.
"""
import torch

from common import F32, F64, case, positive, randn, save

torch.manual_seed(0)


def away_from_zero(*shape, dtype=F64):
    """Values with |x| >= 0.2 (no kink of relu/abs within reach of rounding)."""
    x = randn(*shape, dtype=dtype)
    return torch.where(x.abs() < 0.2, x.sign() * 0.2 + x, x)


# ---------------------------------------------------------------- broadcast arithmetic
# add_bcast: a (2,3,5) + b (3,1)
case("add_bcast", lambda a, b: a + b, randn(2, 3, 5), randn(3, 1))
# add_lead: a (3,1,5) + b (2,1,4,1)  -> (2,3,4,5); both sides stretch, a gains a leading dim
case("add_lead", lambda a, b: a + b, randn(3, 1, 5), randn(2, 1, 4, 1))
# add_same: a (3,7) + b (3,7)
case("add_same", lambda a, b: a + b, randn(3, 7), randn(3, 7))
# sub_bcast: a (1,4,3) - b (5,1,3)
case("sub_bcast", lambda a, b: a - b, randn(1, 4, 3), randn(5, 1, 3))
# sub_lead: a (3,) - b (2,4,3)
case("sub_lead", lambda a, b: a - b, randn(3), randn(2, 4, 3))
# mul_bcast: a (2,1,5) * b (3,1)
case("mul_bcast", lambda a, b: a * b, randn(2, 1, 5), randn(3, 1))
# mul_rank0: a (3,4) * b ()   (a rank-0 operand)
case("mul_rank0", lambda a, b: a * b, randn(3, 4), randn())
# div_bcast: a (4,1,3) / b (1,5,3)
case("div_bcast", lambda a, b: a / b, randn(4, 1, 3), positive(1, 5, 3))
# div_lead: a (2,3,4) / b (4,)
case("div_lead", lambda a, b: a / b, randn(2, 3, 4), positive(4))
# div_lead_rhs: a (4,) / b (2,3,4)   (the broadcast operand is the numerator)
case("div_lead_rhs", lambda a, b: a / b, randn(4), positive(2, 3, 4))
# maximum_bcast: torch.maximum(a (3,4), b (4,))
case("maximum_bcast", lambda a, b: torch.maximum(a, b), randn(3, 4), randn(4))
# minimum_bcast: torch.minimum(a (2,1,3), b (4,3))
case("minimum_bcast", lambda a, b: torch.minimum(a, b), randn(2, 1, 3), randn(4, 3))
# add_bcast_f32: a (2,3,5) + b (3,1), float32
case("add_bcast_f32", lambda a, b: a + b, randn(2, 3, 5, dtype=F32), randn(3, 1, dtype=F32))
# mul_lead_f32: a (5,) * b (3,2,5), float32
case("mul_lead_f32", lambda a, b: a * b, randn(5, dtype=F32), randn(3, 2, 5, dtype=F32))
# div_bcast_f32: a (3,4) / b (3,1), float32
case("div_bcast_f32", lambda a, b: a / b, randn(3, 4, dtype=F32), positive(3, 1, dtype=F32))

# ---------------------------------------------------------------- unary
# neg: -a
case("neg", lambda a: -a, randn(3, 5))
# exp: a.exp()
case("exp", lambda a: a.exp(), randn(2, 3, 4))
# log: a.log()  (a in [0.5, 2))
case("log", lambda a: a.log(), positive(3, 5))
# sqrt: a.sqrt()
case("sqrt", lambda a: a.sqrt(), positive(5, 3))
# relu: a.relu(); two elements are exactly 0 (PyTorch's gradient there is 0)
relu_in = away_from_zero(3, 5)
relu_in[0, 1] = 0.0
relu_in[2, 4] = 0.0
case("relu", lambda a: a.relu(), relu_in)
# sigmoid: a.sigmoid()
case("sigmoid", lambda a: a.sigmoid(), randn(4, 3) * 3)
# tanh: a.tanh()
case("tanh", lambda a: a.tanh(), randn(3, 4) * 2)
# abs: a.abs(); one element is exactly 0 (gradient sign(0) = 0)
abs_in = away_from_zero(2, 7)
abs_in[1, 3] = 0.0
case("abs", lambda a: a.abs(), abs_in)
# powf_frac: a.pow(2.5)  (a positive)
case("powf_frac", lambda a: a.pow(2.5), positive(3, 5))
# powf_neg: a.pow(-1.5)  (a positive)
case("powf_neg", lambda a: a.pow(-1.5), positive(4, 3))
# powf_int: a.pow(3.0)  (mixed signs)
case("powf_int", lambda a: a.pow(3.0), randn(3, 4))
# exp_f32: a.exp(), float32
case("exp_f32", lambda a: a.exp(), randn(3, 5, dtype=F32))
# sigmoid_f32: a.sigmoid(), float32
case("sigmoid_f32", lambda a: a.sigmoid(), randn(5, 3, dtype=F32) * 3)
# tanh_f32: a.tanh(), float32
case("tanh_f32", lambda a: a.tanh(), randn(2, 3, 4, dtype=F32))
# unary_chain: (a.exp() * b).sigmoid().log()   -- gradients through a chain
case("unary_chain", lambda a, b: (a.exp() * b).sigmoid().log(), randn(3, 4), randn(4))

# ---------------------------------------------------------------- scalar ops
# add_scalar: a + 2.5
case("add_scalar", lambda a: a + 2.5, randn(3, 5))
# sub_scalar: a - 1.25
case("sub_scalar", lambda a: a - 1.25, randn(5, 3))
# mul_scalar: a * -3.0
case("mul_scalar", lambda a: a * -3.0, randn(2, 3, 4))
# div_scalar: a / 4.0
case("div_scalar", lambda a: a / 4.0, randn(4, 3))

# ---------------------------------------------------------------- reductions
# sum_d1: a (2,3,4).sum(1)
case("sum_d1", lambda a: a.sum(1), randn(2, 3, 4))
# sum_d0_keep: a (2,3,4).sum(0, keepdim=True)
case("sum_d0_keep", lambda a: a.sum(0, keepdim=True), randn(2, 3, 4))
# sum_d2_keep: a (2,3,4).sum(2, keepdim=True)
case("sum_d2_keep", lambda a: a.sum(2, keepdim=True), randn(2, 3, 4))
# sum_transposed: a (2,3,4).transpose(0, 2).sum(1)   (reduce a non-contiguous view)
case("sum_transposed", lambda a: a.transpose(0, 2).sum(1), randn(2, 3, 4))
# mean_d2: a (2,3,4).mean(2)
case("mean_d2", lambda a: a.mean(2), randn(2, 3, 4))
# mean_d0_keep: a (2,3,4).mean(0, keepdim=True)
case("mean_d0_keep", lambda a: a.mean(0, keepdim=True), randn(2, 3, 4))
# max_d1: a (2,3,4).max(1).values
case("max_d1", lambda a: a.max(1).values, randn(2, 3, 4))
# max_d2_keep: a (2,3,4).max(2, keepdim=True).values
case("max_d2_keep", lambda a: a.max(2, keepdim=True).values, randn(2, 3, 4))
# min_d0: a (2,3,4).min(0).values
case("min_d0", lambda a: a.min(0).values, randn(2, 3, 4))
# min_d2_keep: a (2,3,4).min(2, keepdim=True).values
case("min_d2_keep", lambda a: a.min(2, keepdim=True).values, randn(2, 3, 4))
# argmax_d1: a (2,3,4).argmax(1)
case("argmax_d1", lambda a: a.argmax(1), randn(2, 3, 4))
# argmax_d0_keep: a (2,3,4).argmax(0, keepdim=True)
case("argmax_d0_keep", lambda a: a.argmax(0, keepdim=True), randn(2, 3, 4))
# argmin_d2: a (2,3,4).argmin(2)
case("argmin_d2", lambda a: a.argmin(2), randn(2, 3, 4))
# argmin_d1_keep: a (2,3,4).argmin(1, keepdim=True)
case("argmin_d1_keep", lambda a: a.argmin(1, keepdim=True), randn(2, 3, 4))
# sum_all: a (2,3,4).sum()
case("sum_all", lambda a: a.sum(), randn(2, 3, 4))
# mean_all: a (2,3,4).mean()
case("mean_all", lambda a: a.mean(), randn(2, 3, 4))
# mean_all_transposed: a (3,5).t().mean()
case("mean_all_transposed", lambda a: a.t().mean(), randn(3, 5))
# sum_d1_f32: a (2,3,4).sum(1), float32
case("sum_d1_f32", lambda a: a.sum(1), randn(2, 3, 4, dtype=F32))
# mean_all_f32: a (2,3,4).mean(), float32
case("mean_all_f32", lambda a: a.mean(), randn(2, 3, 4, dtype=F32))
# max_d0_f32: a (4,3).max(0).values, float32
case("max_d0_f32", lambda a: a.max(0).values, randn(4, 3, dtype=F32))

# ---------------------------------------------------------------- matmul
# mm: a (3,4) @ b (4,5)
case("mm", lambda a, b: a @ b, randn(3, 4), randn(4, 5))
# bmm: a (2,3,4) @ b (2,4,5)
case("bmm", lambda a, b: a @ b, randn(2, 3, 4), randn(2, 4, 5))
# matmul_bcast: a (2,1,3,4) @ b (5,4,2)  -> (2,5,3,2)
case("matmul_bcast", lambda a, b: a @ b, randn(2, 1, 3, 4), randn(5, 4, 2))
# matmul_2d_3d: a (3,4) @ b (2,4,5)  -> (2,3,5)
case("matmul_2d_3d", lambda a, b: a @ b, randn(3, 4), randn(2, 4, 5))
# mv: a (3,4) @ b (4,)  -> (3,)
case("mv", lambda a, b: a @ b, randn(3, 4), randn(4))
# vm: a (4,) @ b (4,5)  -> (5,)
case("vm", lambda a, b: a @ b, randn(4), randn(4, 5))
# dot: a (4,) @ b (4,)  -> ()
case("dot", lambda a, b: a @ b, randn(4), randn(4))
# v_batched: a (4,) @ b (2,4,3)  -> (2,3)
case("v_batched", lambda a, b: a @ b, randn(4), randn(2, 4, 3))
# batched_v: a (2,3,4) @ b (4,)  -> (2,3)
case("batched_v", lambda a, b: a @ b, randn(2, 3, 4), randn(4))
# mm_tt: a (4,3).t() @ b (5,4).t()  -> (3,5); both operands transposed views
case("mm_tt", lambda a, b: a.t() @ b.t(), randn(4, 3), randn(5, 4))
# bmm_mt: a (2,4,3).transpose(1, 2) @ b (2,5,4).transpose(1, 2)  -> (2,3,5); batched, both transposed
case("bmm_mt", lambda a, b: a.transpose(1, 2) @ b.transpose(1, 2), randn(2, 4, 3), randn(2, 5, 4))
# matmul_permuted_batch: a (3,2,4).permute(1, 0, 2) @ b (4,5)  -> (2,3,5); strided batch
case("matmul_permuted_batch", lambda a, b: a.permute(1, 0, 2) @ b, randn(3, 2, 4), randn(4, 5))
# mm_narrow: a (3,6).narrow(1, 1, 4) @ b (4,2)
case("mm_narrow", lambda a, b: a.narrow(1, 1, 4) @ b, randn(3, 6), randn(4, 2))
# mm_f32: a (5,7) @ b (7,3), float32
case("mm_f32", lambda a, b: a @ b, randn(5, 7, dtype=F32), randn(7, 3, dtype=F32))
# bmm_bcast_f32: a (2,3,4) @ b (4,6)  -> (2,3,6); float32, b broadcast over the batch
case("bmm_bcast_f32", lambda a, b: a @ b, randn(2, 3, 4, dtype=F32), randn(4, 6, dtype=F32))

# ---------------------------------------------------------------- views + a downstream op
# transpose_mul: a (2,3,4).transpose(0, 2) * b (4,3,2)
case("transpose_mul", lambda a, b: a.transpose(0, 2) * b, randn(2, 3, 4), randn(4, 3, 2))
# permute_exp: a (2,3,4).permute(2, 0, 1).exp()
case("permute_exp", lambda a: a.permute(2, 0, 1).exp(), randn(2, 3, 4))
# permute_add: a (2,3,4,5).permute(3, 1, 0, 2) + b (5,1,2,1)
case("permute_add", lambda a, b: a.permute(3, 1, 0, 2) + b, randn(2, 3, 4, 5), randn(5, 1, 2, 1))
# narrow_tanh: a (3,7).narrow(1, 2, 4).tanh()
case("narrow_tanh", lambda a: a.narrow(1, 2, 4).tanh(), randn(3, 7))
# narrow_d0_mul: a (5,3).narrow(0, 1, 3) * b (3,3)
case("narrow_d0_mul", lambda a, b: a.narrow(0, 1, 3) * b, randn(5, 3), randn(3, 3))
# narrow_of_transpose: a (4,6).t().narrow(0, 3, 2).exp()   (narrow a non-contiguous view)
case("narrow_of_transpose", lambda a: a.t().narrow(0, 3, 2).exp(), randn(4, 6))
# reshape_mm: a (2,3,4).reshape(6, 4) @ b (4,3)
case("reshape_mm", lambda a, b: a.reshape(6, 4) @ b, randn(2, 3, 4), randn(4, 3))
# reshape_transposed: a (3,4).t().reshape(2, 6).sigmoid()   (reshape must copy)
case("reshape_transposed", lambda a: a.t().reshape(2, 6).sigmoid(), randn(3, 4))
# reshape_infer: a (2,3,4).reshape(-1, 3) * b (3,)
case("reshape_infer", lambda a, b: a.reshape(-1, 3) * b, randn(2, 3, 4), randn(3))
# flatten_mul: a (2,3,4,5).flatten(1, 2) * b (12,5)
case("flatten_mul", lambda a, b: a.flatten(1, 2) * b, randn(2, 3, 4, 5), randn(12, 5))
# cat_d1_exp: torch.cat([a (2,3), b (2,5), c (2,1)], 1).exp()
case("cat_d1_exp", lambda a, b, c: torch.cat([a, b, c], 1).exp(), randn(2, 3), randn(2, 5), randn(2, 1))
# cat_d0_transposed: torch.cat([a (3,4).t(), b (2,3)], 0) * c (6,3)
case("cat_d0_transposed", lambda a, b, c: torch.cat([a.t(), b], 0) * c, randn(3, 4), randn(2, 3), randn(6, 3))
# unsqueeze_mul: a (3,4).unsqueeze(1) * b (5,1)  -> (3,5,4)
case("unsqueeze_mul", lambda a, b: a.unsqueeze(1) * b, randn(3, 4), randn(5, 1))
# squeeze_mm: a (3,1,4).squeeze(1) @ b (4,2)
case("squeeze_mm", lambda a, b: a.squeeze(1) @ b, randn(3, 1, 4), randn(4, 2))
# contiguous_mul: a (3,4).t().contiguous() * b (4,3)
case("contiguous_mul", lambda a, b: a.t().contiguous() * b, randn(3, 4), randn(4, 3))
# expand_mul: a (3,1).expand(3, 4) * b (3,4)   (kiln: broadcast_as)
case("expand_mul", lambda a, b: a.expand(3, 4) * b, randn(3, 1), randn(3, 4))
# transpose_mul_f32: a (2,3,4).transpose(0, 2) * b (4,3,2), float32
case("transpose_mul_f32", lambda a, b: a.transpose(0, 2) * b, randn(2, 3, 4, dtype=F32), randn(4, 3, 2, dtype=F32))
# mlp: ((a (5,4) @ b (3,4).t() + c (3,)).relu().sum(1) ).mean()  -- a small graph end to end
case("mlp", lambda a, b, c: (a @ b.t() + c).relu().sum(1).mean(), randn(5, 4), randn(3, 4), randn(3))

save("tensor")
