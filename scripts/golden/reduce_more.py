#!/usr/bin/env python3
"""Golden values for kiln's composed reductions: logsumexp, std, norm
(torch.linalg.vector_norm), prod, max/min along a dim with indices, any/all — values
and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/reduce_more.py

and commit the regenerated tests/data/reduce_more.safetensors; tests/tensor_reduce_more.rs
reads it. Keys as in common.case; each case's PyTorch expression is the comment above
it, and tests/tensor_reduce_more.rs repeats it above its case.
"""
import torch

from common import F32, F64, case, randn, save

torch.manual_seed(0)
inf, nan = float("inf"), float("nan")


def with_zeros(*shape):
    """float64 values whose lines (along dim 1) hold no, one and two zeros."""
    x = randn(*shape)
    x[1, 2] = 0.0
    x[2, 0] = 0.0
    x[2, 3] = 0.0
    return x


def ties():
    """(3,5) float64 small integers: lines with repeated maxima and minima."""
    return torch.tensor([[1, 3, 3, 0, 0], [2, 2, 2, 2, 2], [-1, 4, -1, 4, 0]], dtype=F64)


# logsumexp_d1: torch.logsumexp(a (3,5), [1])
case("logsumexp_d1", lambda a: torch.logsumexp(a, [1]), randn(3, 5))
# logsumexp_02_keep: torch.logsumexp(a (2,3,4), [0, 2], keepdim=True)
case("logsumexp_02_keep", lambda a: torch.logsumexp(a, [0, 2], keepdim=True), randn(2, 3, 4))
# logsumexp_all: torch.logsumexp(a (3,4), [0, 1])   (kiln: dims &[])
case("logsumexp_all", lambda a: torch.logsumexp(a, [0, 1]), randn(3, 4))
# logsumexp_t_f32: torch.logsumexp(a (5,4) f32 .t(), [1])   (strided)
case("logsumexp_t_f32", lambda a: torch.logsumexp(a.t(), [1]), randn(5, 4, dtype=F32))
# logsumexp_neg_inf: torch.logsumexp(a, [1]) with -inf entries (no line all -inf)
case("logsumexp_neg_inf", lambda a: torch.logsumexp(a, [1]),
     torch.tensor([[-inf, 0.5, 1.0], [2.0, -inf, -3.0]], dtype=F64))
# logsumexp_large: torch.logsumexp(a * 1000, [1])   (overflows without the max taken out)
case("logsumexp_large", lambda a: torch.logsumexp(a * 1000, [1]), randn(2, 3))
# logsumexp_empty: torch.logsumexp(a (0,3), [0])   (-inf)
case("logsumexp_empty", lambda a: torch.logsumexp(a, [0]), randn(0, 3))

# std_d1: a (4,6).std(1, correction=1)
case("std_d1", lambda a: a.std(1, correction=1), randn(4, 6))
# std_t_biased_keep: a (5,3).t().std(1, correction=0, keepdim=True)
case("std_t_biased_keep", lambda a: a.t().std(1, correction=0, keepdim=True), randn(5, 3))
# std_constant_line: a.std(1) where line 0 is constant (gradient 0 there)
case("std_constant_line", lambda a: a.std(1), torch.tensor([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]], dtype=F64))
# std_f32: a (3,7) f32 .std(0)
case("std_f32", lambda a: a.std(0), randn(3, 7, dtype=F32))

# norm_2_d1: torch.linalg.vector_norm(a (3,5), 2, [1])
case("norm_2_d1", lambda a: torch.linalg.vector_norm(a, 2, [1]), randn(3, 5))
# norm_2_zero_line: torch.linalg.vector_norm(a, 2, [1]) with line 0 all zeros (gradient 0)
case("norm_2_zero_line", lambda a: torch.linalg.vector_norm(a, 2, [1]),
     torch.cat([torch.zeros(1, 4, dtype=F64), randn(2, 4)]))
# norm_1_all: torch.linalg.vector_norm(with_zeros(3,5), 1)   (kiln: dims &[])
case("norm_1_all", lambda a: torch.linalg.vector_norm(a, 1), with_zeros(3, 5))
# norm_3_keep: torch.linalg.vector_norm(a (2,3,4), 3, [0, 2], keepdim=True)
case("norm_3_keep", lambda a: torch.linalg.vector_norm(a, 3, [0, 2], keepdim=True), randn(2, 3, 4))
# norm_half_zeros: torch.linalg.vector_norm(with_zeros(3,5), 0.5, [1])
case("norm_half_zeros", lambda a: torch.linalg.vector_norm(a, 0.5, [1]), with_zeros(3, 5))
# norm_inf_ties: torch.linalg.vector_norm(a, inf, [1]) of lines with tied |maxima|
case("norm_inf_ties", lambda a: torch.linalg.vector_norm(a, inf, [1]), ties())
# norm_neg_inf_t: torch.linalg.vector_norm(a (5,3).t(), -inf, [1])
case("norm_neg_inf_t", lambda a: torch.linalg.vector_norm(a.t(), -inf, [1]), randn(5, 3))
# norm_0: torch.linalg.vector_norm(with_zeros(3,5), 0, [1])   (counts non-zeros; PyTorch
# leaves no gradient, kiln's is zeros: the case adds 0 * a.sum(1) to record those zeros)
case("norm_0", lambda a: torch.linalg.vector_norm(a, 0, [1]) + 0 * a.sum(1), with_zeros(3, 5))
# norm_f32: torch.linalg.vector_norm(a (4,3) f32, 2, [0])
case("norm_f32", lambda a: torch.linalg.vector_norm(a, 2, [0]), randn(4, 3, dtype=F32))

# prod_d1: a (3,5).prod(1)
case("prod_d1", lambda a: a.prod(1), randn(3, 5))
# prod_zeros: with_zeros(3,5).prod(1)   (lines with no, one and two zeros)
case("prod_zeros", lambda a: a.prod(1), with_zeros(3, 5))
# prod_zeros_t_keep: with_zeros(3,5).t().prod(0, keepdim=True)   (strided)
case("prod_zeros_t_keep", lambda a: a.t().prod(0, keepdim=True), with_zeros(3, 5))
# prod_empty: a (2,0).prod(1)   (ones)
case("prod_empty", lambda a: a.prod(1), randn(2, 0))
# prod_f32: a (4,3) f32 .prod(0)
case("prod_f32", lambda a: a.prod(0), randn(4, 3, dtype=F32))
# prod_i64: a (2,5) int64 in [-3, 4) .prod(1)
case("prod_i64", lambda a: a.prod(1), torch.randint(-3, 4, (2, 5)))
# prod_u8: a (2,4) uint8 in [0, 5) .prod(1)   (int64)
case("prod_u8", lambda a: a.prod(1), torch.randint(0, 5, (2, 4), dtype=torch.uint8))

# max_values: torch.max(ties(), 1).values   (the gradient goes to the index)
case("max_values", lambda a: torch.max(a, 1).values, ties())
# max_indices: torch.max(ties(), 1).indices   (the first maximum)
case("max_indices", lambda a: torch.max(a, 1).indices, ties())
# max_values_t_keep: torch.max(a (4,3).t(), 1, keepdim=True).values
case("max_values_t_keep", lambda a: torch.max(a.t(), 1, keepdim=True).values, randn(4, 3))
# max_indices_nan: torch.max(a, 1).indices with NaNs (the first NaN)
case("max_indices_nan", lambda a: torch.max(a, 1).indices,
     torch.tensor([[1.0, nan, 3.0, nan], [0.0, 2.0, 2.0, -1.0]], dtype=F64))
# max_values_nan: torch.max(a, 1).values with a NaN (NaN; its gradient to the NaN)
case("max_values_nan", lambda a: torch.max(a, 1).values,
     torch.tensor([[1.0, nan, 3.0, nan], [0.0, 2.0, 2.0, -1.0]], dtype=F64))
# min_values: torch.min(ties(), 0).values
case("min_values", lambda a: torch.min(a, 0).values, ties())
# min_indices: torch.min(ties(), 1).indices   (the first minimum)
case("min_indices", lambda a: torch.min(a, 1).indices, ties())
# min_indices_i64: torch.min(a (3,4) int64, 1).indices
case("min_indices_i64", lambda a: torch.min(a, 1).indices, torch.randint(-2, 2, (3, 4)))

# any_dim: a.any(1).to(uint8) of a (3,4) float64 with an all-zero line and a NaN
BOOLS = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, nan, 0.0, 0.0], [1.0, 2.0, 0.5, -1.0]], dtype=F64)
case("any_dim", lambda a: a.any(1).to(torch.uint8), BOOLS)
# all_dim_keep: a.all(1, keepdim=True).to(uint8)
case("all_dim_keep", lambda a: a.all(1, keepdim=True).to(torch.uint8), BOOLS)
# all_dim_t: a.t().all(0).to(uint8)
case("all_dim_t", lambda a: a.t().all(0).to(torch.uint8), BOOLS)
# any_all_u8: a (2,3) uint8 .any().to(uint8)
case("any_u8", lambda a: a.any().to(torch.uint8), torch.tensor([[0, 0, 0], [0, 7, 0]], dtype=torch.uint8))
# all_i64: a (2,3) int64 .all().to(uint8)
case("all_i64", lambda a: a.all().to(torch.uint8), torch.tensor([[1, -2, 3], [4, 0, 6]]))
# any_empty: a (0,3).any(0).to(uint8)   (zeros)
case("any_empty", lambda a: a.any(0).to(torch.uint8), randn(0, 3))
# all_empty: a (0,3).all(0).to(uint8)   (ones)
case("all_empty", lambda a: a.all(0).to(torch.uint8), randn(0, 3))

save("reduce_more")
