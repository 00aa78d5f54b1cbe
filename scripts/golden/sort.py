#!/usr/bin/env python3
"""Golden values for kiln's sort family: torch.sort (stable), torch.argsort and
torch.topk — values, indices, and the gradient of the values.

Run from the repository root:

    .venv/bin/python scripts/golden/sort.py

and commit the regenerated tests/data/sort.safetensors; tests/tensor_sort.rs reads it.

Keys, per case `<c>` (see common.case): `<c>.in0` the input (contiguous; views are
taken inside the op), `<c>.out`, and for float outputs `<c>.gout` and `<c>.grad0`.
Cases ending in `_indices` store the indices of the same call as their output. Each
case's PyTorch expression is the comment above it; tests/tensor_sort.rs repeats it.

Ties: torch.sort(stable=True) orders equal values by position, and kiln's sort and
topk always do. torch.topk leaves the order of equal values unspecified (its CPU
kernel returns [1., 3., 3., 2., 3.].topk(2) as indices [2, 4]), so topk cases with
ties take the first k of the stable sort as the reference, after checking that
torch.topk gives the same values.
"""
import torch

from common import F32, F64, case, randn, save

torch.manual_seed(0)
NAN, INF = float("nan"), float("inf")


def special(*shape):
    """float64 integers in [-3, 3] (ties everywhere) with NaNs, infinities and -0.0."""
    x = torch.randint(-3, 4, shape).to(F64)
    flat = x.view(-1)
    for at, v in [(0, NAN), (4, INF), (6, -0.0), (7, 0.0), (11, NAN), (13, -INF), (20, NAN)]:
        flat[at % flat.numel()] = v
    return x


def both(name, fn, x):
    """Case `name` with the values of `fn(x)` and `name_indices` with its indices."""
    case(name, lambda a: fn(a)[0], x)
    case(f"{name}_indices", lambda a: fn(a)[1], x)


def stable_topk(a, k, dim, largest):
    """topk as the first k of the stable sort, checked against torch.topk's values."""
    v, i = torch.sort(a, dim=dim, descending=largest, stable=True)
    v, i = v.narrow(dim, 0, k), i.narrow(dim, 0, k)
    want = torch.topk(a.detach(), k, dim, largest=largest).values
    assert torch.equal(v.detach().nan_to_num(), want.nan_to_num()), "topk values differ"
    return v, i


def sort(dim, descending=False):
    return lambda a: torch.sort(a, dim=dim, descending=descending, stable=True)


# sort_d1: a (4,7).sort(1)   (+ _indices)
both("sort_d1", sort(1), randn(4, 7))
# sort_desc_d0: a (6,3).sort(0, descending)   (+ _indices)
both("sort_desc_d0", sort(0, True), randn(6, 3))
# sort_transposed: a (5,4).t().sort(1)   (+ _indices; a strided input)
both("sort_transposed", lambda a: torch.sort(a.t(), dim=1, stable=True), randn(5, 4))
# sort_ties_nan: a (3,9) with ties, NaN, ±inf, ±0 .sort(1)   (+ _indices)
both("sort_ties_nan", sort(1), special(3, 9))
# sort_ties_nan_desc: the same kind of a .sort(1, descending)   (+ _indices)
both("sort_ties_nan_desc", sort(1, True), special(3, 9))
# sort_f32: a (3,33) float32 .sort(1, descending)   (+ _indices)
both("sort_f32", sort(1, True), randn(3, 33, dtype=F32))
# sort_i64: a (2,11) int64 in [-2, 3) .sort(1)   (+ _indices; ties)
both("sort_i64", sort(1), torch.randint(-2, 3, (2, 11)))
# sort_u8: a (2,10) uint8 in [0, 4) .sort(1, descending)   (+ _indices; ties)
both("sort_u8", sort(1, True), torch.randint(0, 4, (2, 10), dtype=torch.uint8))
# sort_empty_len: a (3,0).sort(1)
case("sort_empty_len", lambda a: sort(1)(a)[0], randn(3, 0))
# sort_empty_lines: a (0,4).sort(1)
case("sort_empty_lines", lambda a: sort(1)(a)[0], randn(0, 4))
# sort_scalar: a ().sort(0)
case("sort_scalar", lambda a: sort(0)(a)[0], randn())
# sort_long: a (1,2100) float32 integers in [0, 50) .sort(1)   (+ _indices; rows longer
# than one CUDA tile, with ties across tiles)
both("sort_long", sort(1), torch.randint(0, 50, (1, 2100)).to(F32))
# argsort_desc: a (4,5) with ties .argsort(1, descending)
case("argsort_desc", lambda a: torch.argsort(a, dim=1, descending=True, stable=True), special(4, 5))

# topk_largest: a (4,9).topk(3, 1)   (+ _indices)
both("topk_largest", lambda a: torch.topk(a, 3, 1), randn(4, 9))
# topk_smallest_d0: a (7,3).topk(2, 0, largest=False)   (+ _indices)
both("topk_smallest_d0", lambda a: torch.topk(a, 2, 0, largest=False), randn(7, 3))
# topk_transposed: a (6,5).t().topk(4, 1)   (+ _indices)
both("topk_transposed", lambda a: torch.topk(a.t(), 4, 1), randn(6, 5))
# topk_ties_nan: a (3,9) with ties, NaN, ±inf, ±0 .topk(4, 1)   (+ _indices; stable order)
both("topk_ties_nan", lambda a: stable_topk(a, 4, 1, True), special(3, 9))
# topk_ties_smallest: the same kind of a .topk(5, 1, largest=False)   (+ _indices)
both("topk_ties_smallest", lambda a: stable_topk(a, 5, 1, False), special(3, 9))
# topk_k0: a (3,4).topk(0, 1)
case("topk_k0", lambda a: torch.topk(a, 0, 1)[0], randn(3, 4))
# topk_all_unsorted: a (2,5).topk(5, 1, sorted=False) — kiln returns the sorted order
case("topk_all_unsorted", lambda a: torch.topk(a, 5, 1, sorted=True)[0], randn(2, 5))
# topk_long_f32: a (1,2100) float32 .topk(7, 1)   (+ _indices)
both("topk_long_f32", lambda a: torch.topk(a, 7, 1), randn(1, 2100, dtype=F32))

save("sort")
