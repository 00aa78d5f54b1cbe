#!/usr/bin/env python3
"""Golden values for kiln's elementwise math: floor, ceil, round, trunc, sign, erf,
log1p, expm1, reciprocal, square, exp2, log2 and atan2, values and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/tensor_math.py

and commit the regenerated tests/data/tensor_math.safetensors; tests/tensor_math.rs
reads it.

Keys, per case `<c>` (see common.case): `<c>.in0`, `<c>.in1` the inputs (contiguous;
views are taken inside the op), `<c>.out`, and for float cases `<c>.gout` (the upstream
gradient) and `<c>.grad0`, `<c>.grad1`. Each case's PyTorch expression is the comment
above it and the lambda that computes it; tests/tensor_math.rs repeats the expression
above its case. `a`, `b` are in0, in1.
"""
import math

import torch

from common import F32, F64, case, positive, randn, save

torch.manual_seed(0)
INF, NAN = math.inf, math.nan


def edges(*extra, dtype=F64):
    """The values where rounding and sign have their branches: halves (ties to even),
    signed zeros, infinities and NaN, then `extra`."""
    base = [-2.5, -1.5, -0.5, -0.0, 0.0, 0.5, 1.5, 2.5, 0.49999999999999994, -3.7, 3.7, INF, -INF, NAN]
    return torch.tensor(base + list(extra), dtype=dtype)


# ---------------------------------------------------------------- rounding and sign
# floor_edges: a (14 edge values).floor()
case("floor_edges", lambda a: a.floor(), edges())
# ceil_edges: a.ceil()
case("ceil_edges", lambda a: a.ceil(), edges())
# round_edges: a.round()   (halves to even: -2.5 -> -2, 0.5 -> 0, 2.5 -> 2)
case("round_edges", lambda a: a.round(), edges())
# trunc_edges: a.trunc()
case("trunc_edges", lambda a: a.trunc(), edges())
# sign_edges: a.sign()   (0 for +-0 and NaN)
case("sign_edges", lambda a: a.sign(), edges())
# round_f32: a (float32 edge values).round()
case("round_f32", lambda a: a.round(), edges(dtype=F32))
# floor_transposed: a (5,3).t().floor()   (a strided input)
case("floor_transposed", lambda a: a.t().floor(), randn(5, 3) * 3)
# ceil_empty: a (0,3).ceil()
case("ceil_empty", lambda a: a.ceil(), randn(0, 3))
# floor_i64: a (7,) int64 .floor()   (a copy)
case("floor_i64", lambda a: a.floor(), torch.randint(-9, 9, (7,)))
# round_u8: a (5,) uint8 .round()   (a copy)
case("round_u8", lambda a: a.round(), torch.randint(0, 255, (5,), dtype=torch.uint8))
# sign_i64: a (7,) int64 .sign()
case("sign_i64", lambda a: a.sign(), torch.tensor([-5, -1, 0, 1, 7, -9223372036854775808, 9223372036854775807]))
# sign_u8: a (4,) uint8 .sign()
case("sign_u8", lambda a: a.sign(), torch.tensor([0, 1, 200, 255], dtype=torch.uint8))

# ---------------------------------------------------------------- functions
# erf: a (3,7) in N(0, 2) plus edges: a.erf()
case("erf", lambda a: a.erf(), torch.cat([randn(21) * 2, torch.tensor([0.0, 6.0, -6.0, INF, -INF, NAN], dtype=F64)]))
# erf_f32: a (4,5) float32 .erf()
case("erf_f32", lambda a: a.erf(), randn(4, 5, dtype=F32))
# log1p: a (tiny, moderate, -1, below -1, inf).log1p()
case("log1p", lambda a: a.log1p(), torch.cat([positive(9) - 0.4, torch.tensor([1e-12, -1e-12, -1.0, -2.0, INF, NAN], dtype=F64)]))
# log1p_f32: a (3,4) float32 in [0.1, 1.6) .log1p()
case("log1p_f32", lambda a: a.log1p(), positive(3, 4, dtype=F32) - 0.4)
# expm1: a (tiny, moderate, large, +-inf).expm1()
case("expm1", lambda a: a.expm1(), torch.cat([randn(9), torch.tensor([1e-12, -1e-12, 0.0, 50.0, -50.0, INF, -INF, NAN], dtype=F64)]))
# expm1_f32_transposed: a (4,3) float32 .t().expm1()
case("expm1_f32_transposed", lambda a: a.t().expm1(), randn(4, 3, dtype=F32))
# reciprocal: a (normal values, +-0, +-inf).reciprocal()
case("reciprocal", lambda a: a.reciprocal(), torch.cat([randn(7), torch.tensor([0.0, -0.0, INF, -INF, NAN], dtype=F64)]))
# reciprocal_f32: a (2,5) float32 in [0.5, 2) .reciprocal()
case("reciprocal_f32", lambda a: a.reciprocal(), positive(2, 5, dtype=F32))
# square: a (3,5).square()
case("square", lambda a: a.square(), randn(3, 5))
# square_i64: a (6,) int64 .square()   (wraps past 2^63)
case("square_i64", lambda a: a.square(), torch.tensor([-3, 0, 5, 3037000500, -4294967296, 7]))
# square_u8: a (4,) uint8 .square()   (wraps modulo 256)
case("square_u8", lambda a: a.square(), torch.tensor([0, 3, 16, 200], dtype=torch.uint8))
# exp2: a (7,) plus edges .exp2()
case("exp2", lambda a: a.exp2(), torch.cat([randn(7) * 4, torch.tensor([0.0, 1024.5, -1080.0, INF, -INF, NAN], dtype=F64)]))
# exp2_f32: a (3,3) float32 .exp2()
case("exp2_f32", lambda a: a.exp2(), randn(3, 3, dtype=F32))
# log2: a positive plus edges .log2()
case("log2", lambda a: a.log2(), torch.cat([positive(7) * 8, torch.tensor([1.0, 0.5, 0.0, -1.0, INF, NAN], dtype=F64)]))
# log2_empty: a (2,0).log2()
case("log2_empty", lambda a: a.log2(), positive(2, 0))

# ---------------------------------------------------------------- atan2
# atan2_bcast: torch.atan2(a (3,1), b (1,4))
case("atan2_bcast", lambda a, b: torch.atan2(a, b), randn(3, 1), randn(1, 4))
# atan2_edges: torch.atan2(a, b) on the signed zeros, the origin and infinities
case(
    "atan2_edges",
    lambda a, b: torch.atan2(a, b),
    torch.tensor([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, INF, INF, -INF, 2.0, NAN, 0.0], dtype=F64),
    torch.tensor([0.0, 0.0, -0.0, -0.0, 0.0, -0.0, INF, -INF, 3.0, -INF, 1.0, NAN], dtype=F64),
)
# atan2_f32_transposed: torch.atan2(a (3,5) float32 .t(), b (5,3) float32)
case("atan2_f32_transposed", lambda a, b: torch.atan2(a.t(), b), randn(3, 5, dtype=F32), randn(5, 3, dtype=F32))

save("tensor_math")
