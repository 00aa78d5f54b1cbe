#!/usr/bin/env python3
"""Golden values for kiln's scans: torch.cumsum and torch.cumprod, values and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/scan.py

and commit the regenerated tests/data/scan.safetensors; tests/tensor_scan.rs reads it.

Keys, per case `<c>` (see common.case): `<c>.in0` the input (contiguous; views are
taken inside the op), `<c>.out`, and for float cases `<c>.gout` (the upstream gradient)
and `<c>.grad0`. Each case's PyTorch expression is the comment above it, and the same
lambda computes it; tests/tensor_scan.rs repeats the expression above its case.
"""
import torch

from common import F32, F64, case, randn, save

torch.manual_seed(0)


def with_zeros(*shape):
    """float64 values with zeros placed so that lines hold none, one, and two of them
    (cumprod's gradient has a rule for the first zero of a line)."""
    x = randn(*shape)
    x[0, 1] = 0.0
    x[1, 0] = 0.0
    x[1, 3] = 0.0
    return x


# cumsum_d0: a (4,5).cumsum(0)
case("cumsum_d0", lambda a: a.cumsum(0), randn(4, 5))
# cumsum_d1_3d: a (2,6,3).cumsum(1)
case("cumsum_d1_3d", lambda a: a.cumsum(1), randn(2, 6, 3))
# cumsum_last_transposed: a (5,4).t().cumsum(1)   (a strided input)
case("cumsum_last_transposed", lambda a: a.t().cumsum(1), randn(5, 4))
# cumsum_f32: a (3,7).cumsum(1), float32
case("cumsum_f32", lambda a: a.cumsum(1), randn(3, 7, dtype=F32))
# cumsum_empty: a (0,3).cumsum(0)
case("cumsum_empty", lambda a: a.cumsum(0), randn(0, 3))
# cumsum_scalar: a ().cumsum(0)
case("cumsum_scalar", lambda a: a.cumsum(0), randn())
# cumsum_i64: a (3,4) int64 in [-5, 5) .cumsum(1)
case("cumsum_i64", lambda a: a.cumsum(1), torch.randint(-5, 5, (3, 4)))
# cumsum_u8: a (2,5) uint8 in [0, 200) .cumsum(1)   (promoted to int64)
case("cumsum_u8", lambda a: a.cumsum(1), torch.randint(0, 200, (2, 5), dtype=torch.uint8))
# cumprod_d1: a (3,5).cumprod(1)
case("cumprod_d1", lambda a: a.cumprod(1), randn(3, 5))
# cumprod_zeros: a (2,5) with zeros (lines with one and two zeros).cumprod(1)
case("cumprod_zeros", lambda a: a.cumprod(1), with_zeros(2, 5))
# cumprod_zeros_d0: a (5,2) with zeros, transposed: a.t().cumprod(1)   (strided, with zeros)
case("cumprod_zeros_d0", lambda a: a.t().cumprod(1), with_zeros(2, 5).t().contiguous())
# cumprod_leading_zero: a (1,4) with a[0,0] = 0 .cumprod(1)
case("cumprod_leading_zero", lambda a: a.cumprod(1), torch.tensor([[0.0, 1.5, -2.0, 0.5]], dtype=F64))
# cumprod_f32: a (4,3).cumprod(0), float32
case("cumprod_f32", lambda a: a.cumprod(0), randn(4, 3, dtype=F32))
# cumprod_i64: a (2,6) int64 in [-3, 4) .cumprod(1)
case("cumprod_i64", lambda a: a.cumprod(1), torch.randint(-3, 4, (2, 6)))

save("scan")
