#!/usr/bin/env python3
"""Golden values for kiln's index, selection and math ops (issue 16): gather,
index_select, scatter_add, where, masked_fill, tril/triu, sin, cos, clamp, pow,
rsqrt, var, stack, arange, the arithmetic operators and F.embedding.

Run from the repository root:

    .venv/bin/python scripts/golden/tensor_index.py

and commit the regenerated tests/data/tensor_index.safetensors; tests/tensor_index.rs
reads it.

Keys, per case `<c>`:
  <c>.in0, <c>.in1, ...   inputs (contiguous; views are taken inside the op). Index
                          inputs are int64, conditions and masks uint8 (bool in
                          PyTorch: the lambdas call .bool()).
  <c>.out                 the op's result
  <c>.gout                the upstream gradient fed to `out.backward(gout)`
  <c>.grad0, ...          the gradient of each float input

Each case's PyTorch snippet is the comment above it; the same expression is the
lambda that computes it. `a`, `b`, `c` are in0, in1, in2. Most cases are float64
(tight comparison); the `_f32` cases check the float32 paths.
"""
import torch
import torch.nn.functional as F

from common import F32, F64, OUT, case, positive, randn, save

torch.manual_seed(0)


def ints(high, *shape):
    """int64 indices in [0, high), repeats likely."""
    return torch.randint(0, high, shape, dtype=torch.int64)


def mask(*shape):
    return (torch.rand(shape) < 0.5).to(torch.uint8)


# ---------------------------------------------------------------- gather
# gather_d1: a (3,5).gather(1, b (3,4) in [0,5))
case("gather_d1", lambda a, b: a.gather(1, b), randn(3, 5), ints(5, 3, 4))
# gather_d0_small: a (4,3,2).gather(0, b (6,2,1) in [0,4))   index smaller on dims 1, 2
case("gather_d0_small", lambda a, b: a.gather(0, b), randn(4, 3, 2), ints(4, 6, 2, 1))
# gather_transposed: a (5,3).t().gather(0, b (4,5) in [0,3))
case("gather_transposed", lambda a, b: a.t().gather(0, b), randn(5, 3), ints(3, 4, 5))
# gather_f32: a (2,6).gather(1, b (2,3) in [0,6)), float32
case("gather_f32", lambda a, b: a.gather(1, b), randn(2, 6, dtype=F32), ints(6, 2, 3))

# ---------------------------------------------------------------- index_select
# index_select_d0: a (5,3).index_select(0, b = [4, 0, 4, 2])
case("index_select_d0", lambda a, b: a.index_select(0, b), randn(5, 3), torch.tensor([4, 0, 4, 2]))
# index_select_d1_transposed: a (3,6).t().index_select(1, b = [2, 0])
case("index_select_d1_transposed", lambda a, b: a.t().index_select(1, b), randn(3, 6), torch.tensor([2, 0]))
# index_select_3d: a (2,4,3).index_select(1, b = [3, 3, 1, 0, 3])
case("index_select_3d", lambda a, b: a.index_select(1, b), randn(2, 4, 3), torch.tensor([3, 3, 1, 0, 3]))
# index_select_f32: a (4,5).index_select(1, b (7,) in [0,5)), float32
case("index_select_f32", lambda a, b: a.index_select(1, b), randn(4, 5, dtype=F32), ints(5, 7))

# ---------------------------------------------------------------- scatter_add
# scatter_add_d0: a (4,3).scatter_add(0, b (5,3) in [0,4), c (5,3))
case("scatter_add_d0", lambda a, b, c: a.scatter_add(0, b, c), randn(4, 3), ints(4, 5, 3), randn(5, 3))
# scatter_add_d1: a (3,5).scatter_add(1, b (2,6) in [0,5), c (2,6))   index shorter on dim 0
case("scatter_add_d1", lambda a, b, c: a.scatter_add(1, b, c), randn(3, 5), ints(5, 2, 6), randn(2, 6))
# scatter_add_transposed: a (3,4).t().scatter_add(1, b (4,5) in [0,3), c (6,4).t()[:, :5])   (strided self and src)
case("scatter_add_transposed", lambda a, b, c: a.t().scatter_add(1, b, c.t()[:, :5]), randn(3, 4), ints(3, 4, 5), randn(6, 4))
# scatter_add_f32: a (2,3).scatter_add(1, b (2,7) in [0,3), c (2,7)), float32
case("scatter_add_f32", lambda a, b, c: a.scatter_add(1, b, c), randn(2, 3, dtype=F32), ints(3, 2, 7), randn(2, 7, dtype=F32))

# ---------------------------------------------------------------- where, masked_fill
# where_bcast: torch.where(a (3,1).bool(), b (3,4), c (4,))
case("where_bcast", lambda a, b, c: torch.where(a.bool(), b, c), mask(3, 1), randn(3, 4), randn(4))
# where_transposed: torch.where(a (4,3).bool(), b (3,4).t(), c (1,3))
case("where_transposed", lambda a, b, c: torch.where(a.bool(), b.t(), c), mask(4, 3), randn(3, 4), randn(1, 3))
# where_f32: torch.where(a (2,5).bool(), b (2,5), c (2,1)), float32
case("where_f32", lambda a, b, c: torch.where(a.bool(), b, c), mask(2, 5), randn(2, 5, dtype=F32), randn(2, 1, dtype=F32))
# masked_fill_bcast: a (2,3,4).masked_fill(b (3,1).bool(), -2.5)
case("masked_fill_bcast", lambda a, b: a.masked_fill(b.bool(), -2.5), randn(2, 3, 4), mask(3, 1))
# masked_fill_neg_inf: a (4,3).t().masked_fill(b (3,4).bool(), -inf)   (attention's causal fill)
case("masked_fill_neg_inf", lambda a, b: a.t().masked_fill(b.bool(), float("-inf")), randn(4, 3), mask(3, 4))
# masked_fill_f32: a (3,3).masked_fill(b (3,3).bool(), 7.0), float32
case("masked_fill_f32", lambda a, b: a.masked_fill(b.bool(), 7.0), randn(3, 3, dtype=F32), mask(3, 3))

# ---------------------------------------------------------------- tril, triu
# tril_k0: a (4,5).tril(0)
case("tril_k0", lambda a: a.tril(0), randn(4, 5))
# tril_neg_batched: a (2,3,4,4).tril(-1)
case("tril_neg_batched", lambda a: a.tril(-1), randn(2, 3, 4, 4))
# triu_k1: a (5,3).triu(1)
case("triu_k1", lambda a: a.triu(1), randn(5, 3))
# triu_transposed: a (2,4,3).transpose(1, 2).triu(-1)
case("triu_transposed", lambda a: a.transpose(1, 2).triu(-1), randn(2, 4, 3))
# tril_f32: a (3,6).tril(2), float32
case("tril_f32", lambda a: a.tril(2), randn(3, 6, dtype=F32))

# ---------------------------------------------------------------- sin, cos, pow, rsqrt
# sin: a (3,4).sin() with a ~ 3·N(0,1)
case("sin", lambda a: a.sin(), randn(3, 4) * 3)
# cos_transposed: a (4,2).t().cos() with a ~ 3·N(0,1)
case("cos_transposed", lambda a: a.t().cos(), randn(4, 2) * 3)
# sin_f32, cos_f32: a (5,).sin(), a (5,).cos(), float32
case("sin_f32", lambda a: a.sin(), randn(5, dtype=F32))
case("cos_f32", lambda a: a.cos(), randn(5, dtype=F32))
# pow_frac: a (3,4) ** 2.5, a in [0.5, 2)
case("pow_frac", lambda a: a ** 2.5, positive(3, 4))
# pow_neg: a (2,3) ** -1.5, a in [0.5, 2)
case("pow_neg", lambda a: a ** -1.5, positive(2, 3))
# pow_int: a (3,3) ** 3 (negative bases)
case("pow_int", lambda a: a ** 3, randn(3, 3))
# rsqrt: a (3,4).rsqrt(), a in [0.5, 2)
case("rsqrt", lambda a: a.rsqrt(), positive(3, 4))
# rsqrt_f32: a (6,).rsqrt(), float32
case("rsqrt_f32", lambda a: a.rsqrt(), positive(6, dtype=F32))

# ---------------------------------------------------------------- clamp
BOUNDARY = torch.tensor([[-0.5, 0.5, -1.2, 0.1], [0.5, -0.5, 2.0, -0.49]], dtype=F64)
# clamp_both: a (2,4).clamp(-0.5, 0.5), a holds both bounds exactly (PyTorch 2.15: gradient 0 there)
case("clamp_both", lambda a: a.clamp(-0.5, 0.5), BOUNDARY)
# clamp_min: a (3,4).clamp(min=0.1)
case("clamp_min", lambda a: a.clamp(min=0.1), randn(3, 4))
# clamp_max_transposed: a (4,3).t().clamp(max=-0.2)
case("clamp_max_transposed", lambda a: a.t().clamp(max=-0.2), randn(4, 3))
# clamp_inverted: a (5,).clamp(1.0, -1.0)  (min > max: every element is max)
case("clamp_inverted", lambda a: a.clamp(1.0, -1.0), randn(5))
# clamp_f32: a (2,4).clamp(-0.5, 0.5), float32
case("clamp_f32", lambda a: a.clamp(-0.5, 0.5), BOUNDARY.to(F32))

# ---------------------------------------------------------------- var
# var_d1: a (3,5).var(1)  (unbiased)
case("var_d1", lambda a: a.var(1), randn(3, 5))
# var_d0_biased_keepdim: a (4,3).var(0, unbiased=False, keepdim=True)
case("var_d0_biased_keepdim", lambda a: a.var(0, unbiased=False, keepdim=True), randn(4, 3))
# var_transposed: a (5,2,3).transpose(0, 2).var(2)
case("var_transposed", lambda a: a.transpose(0, 2).var(2), randn(5, 2, 3))
# var_f32: a (2,6).var(1), float32
case("var_f32", lambda a: a.var(1), randn(2, 6, dtype=F32))

# ---------------------------------------------------------------- stack
# stack_d0: torch.stack([a (2,3), b (2,3)], 0)
case("stack_d0", lambda a, b: torch.stack([a, b], 0), randn(2, 3), randn(2, 3))
# stack_last: torch.stack([a (2,3), b (2,3), c (2,3)], 2)
case("stack_last", lambda a, b, c: torch.stack([a, b, c], 2), randn(2, 3), randn(2, 3), randn(2, 3))
# stack_transposed: torch.stack([a (3,2).t(), b (2,3)], 1)
case("stack_transposed", lambda a, b: torch.stack([a.t(), b], 1), randn(3, 2), randn(2, 3))

# ---------------------------------------------------------------- operators
# operators: (-(a + b) * 2.0 - a / b + 3.0) * (a - 1.5) / 0.5 + (b + 0.25) - 4.0
case("operators", lambda a, b: (-(a + b) * 2.0 - a / b + 3.0) * (a - 1.5) / 0.5 + (b + 0.25) - 4.0, randn(3, 4), positive(4))

# ---------------------------------------------------------------- embedding
# embedding_2d: F.embedding(a (2,3) in [0,7), b (7,4))
case("embedding_2d", lambda a, b: F.embedding(a, b), ints(7, 2, 3), randn(7, 4))
# embedding_1d_repeats: F.embedding(a = [1, 1, 0, 4, 1], b (5,3))
case("embedding_1d_repeats", lambda a, b: F.embedding(a, b), torch.tensor([1, 1, 0, 4, 1]), randn(5, 3))
# embedding_f32: F.embedding(a (3,2,2) in [0,6), b (6,5)), float32
case("embedding_f32", lambda a, b: F.embedding(a, b), ints(6, 3, 2, 2), randn(6, 5, dtype=F32))
# embedding_padding: F.embedding(a = [[2, 0, 2], [1, 2, 3]], b (4,3), padding_idx=2)   (row 2 gets no gradient)
case("embedding_padding", lambda a, b: F.embedding(a, b, padding_idx=2), torch.tensor([[2, 0, 2], [1, 2, 3]]), randn(4, 3))

# ---------------------------------------------------------------- arange (forward only)
# arange_unit_f32: torch.arange(3, 10, 1, dtype=float32)
OUT["arange_unit_f32.out"] = torch.arange(3.0, 10.0, 1.0, dtype=F32)
# arange_frac_f64: torch.arange(0, 1, 0.3, dtype=float64)   (4 elements: ceil(1/0.3))
OUT["arange_frac_f64.out"] = torch.arange(0.0, 1.0, 0.3, dtype=F64)
# arange_down_i64: torch.arange(10, 3, -2, dtype=int64)
OUT["arange_down_i64.out"] = torch.arange(10, 3, -2, dtype=torch.int64)
# arange_neg_f32: torch.arange(-1.5, 2.0, 0.5, dtype=float32)
OUT["arange_neg_f32.out"] = torch.arange(-1.5, 2.0, 0.5, dtype=F32)
# arange_empty_f64: torch.arange(2.0, 2.0, 1.0, dtype=float64)
OUT["arange_empty_f64.out"] = torch.arange(2.0, 2.0, 1.0, dtype=F64)

save("tensor_index")
