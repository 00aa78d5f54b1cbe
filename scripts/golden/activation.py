#!/usr/bin/env python3
"""Golden values for kiln's pointwise activations beyond functional.py's: hardswish,
hardsigmoid, relu6, hardtanh, elu, selu, celu, mish, logsigmoid, softsign, glu and
prelu, values and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/activation.py

and commit the regenerated tests/data/activation.safetensors; tests/nn_activation.rs
reads it.

Keys, per case `<c>` (see common.case): `<c>.in0`, `<c>.in1` the inputs (contiguous;
views are taken inside the op), `<c>.out`, `<c>.gout` (the upstream gradient) and
`<c>.grad0`, `<c>.grad1`. Each case's PyTorch expression is the comment above it and
the lambda that computes it; tests/nn_activation.rs repeats the expression above its
case. `a`, `b` are in0, in1.

The `<op>_edges` cases apply each pointwise activation to EDGES, f64 on a transposed
view and float32 contiguous: ±0, the kinks, large values (e^800 overflows even f64)
and ±inf, so that kiln meets PyTorch's infinity choices in the values and the
gradients. NaN is left out: PyTorch's gradient at a NaN input depends on which of its
loops meets the element (F.elu's backward gives NaN in its vectorized loop and 1 in
its scalar tail, F.hardtanh's 0 and 1), so no single answer is PyTorch's;
tests/nn_activation.rs checks that NaN passes through every forward.
"""
import math

import torch
import torch.nn.functional as F

from common import F32, F64, case, randn, save

torch.manual_seed(0)


def kinks(*shape, dtype=F64):
    """N(0, 3) values with the kinks of the hard activations (-3, -1, 0, 1, 3, 6)
    placed first, exactly."""
    x = (randn(*shape, dtype=dtype) * 3).flatten()
    x[:6] = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0, 6.0], dtype=dtype)
    return x.reshape(shape)


inf = math.inf
# ±0, the kinks of the hard activations (hardtanh's here at -0.5 and 2), large values
# and the infinities: 16 values, as (8, 2) so that `.t()` is a strided view.
EDGES = torch.tensor([0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 6.0, -0.5,
                      2.0, 30.0, -30.0, 800.0, -800.0, inf, -inf, -6.0], dtype=F64).reshape(8, 2)

# The pointwise activations with the arguments of their edge cases.
POINTWISE = {
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "relu6": F.relu6,
    "hardtanh": lambda a: F.hardtanh(a, -0.5, 2.0),
    "elu": lambda a: F.elu(a, 0.7),
    "selu": F.selu,
    "celu": lambda a: F.celu(a, 1.3),
    "mish": F.mish,
    "log_sigmoid": F.logsigmoid,
    "softsign": F.softsign,
}


# hardswish: F.hardswish(a (4,6) with the kinks)
case("hardswish", lambda a: F.hardswish(a), kinks(4, 6))
# hardswish_f32: F.hardswish(a (3,5) float32)
case("hardswish_f32", lambda a: F.hardswish(a), kinks(3, 5, dtype=F32))
# hardsigmoid: F.hardsigmoid(a (4,6) with the kinks)
case("hardsigmoid", lambda a: F.hardsigmoid(a), kinks(4, 6))
# hardsigmoid_transposed: F.hardsigmoid(a (5,3).t())
case("hardsigmoid_transposed", lambda a: F.hardsigmoid(a.t()), kinks(5, 3))
# relu6: F.relu6(a (4,6) with the kinks)
case("relu6", lambda a: F.relu6(a), kinks(4, 6))
# hardtanh: F.hardtanh(a, -0.5, 2.0)
case("hardtanh", lambda a: F.hardtanh(a, -0.5, 2.0), kinks(4, 6))
# hardtanh_default_f32: F.hardtanh(a (3,5) float32)
case("hardtanh_default_f32", lambda a: F.hardtanh(a), kinks(3, 5, dtype=F32))
# elu: F.elu(a (4,6))
case("elu", lambda a: F.elu(a), kinks(4, 6))
# elu_alpha: F.elu(a, 0.7)
case("elu_alpha", lambda a: F.elu(a, 0.7), kinks(4, 6))
# elu_f32_transposed: F.elu(a (5,3) float32 .t(), 1.3)
case("elu_f32_transposed", lambda a: F.elu(a.t(), 1.3), kinks(5, 3, dtype=F32))
# selu: F.selu(a (4,6))
case("selu", lambda a: F.selu(a), kinks(4, 6))
# selu_f32: F.selu(a (3,5) float32)
case("selu_f32", lambda a: F.selu(a), kinks(3, 5, dtype=F32))
# celu: F.celu(a (4,6), 1.3)
case("celu", lambda a: F.celu(a, 1.3), kinks(4, 6))
# celu_default: F.celu(a (4,6))
case("celu_default", lambda a: F.celu(a), kinks(4, 6))
# mish: F.mish(a (4,6) in N(0, 3) plus +-30)
case("mish", lambda a: F.mish(a), torch.cat([kinks(22), torch.tensor([30.0, -30.0], dtype=F64)]).reshape(4, 6))
# mish_f32: F.mish(a (3,5) float32)
case("mish_f32", lambda a: F.mish(a), kinks(3, 5, dtype=F32))
# log_sigmoid: F.logsigmoid(a (4,6) in N(0, 3) plus +-800)
case("log_sigmoid", lambda a: F.logsigmoid(a), torch.cat([kinks(22), torch.tensor([800.0, -800.0], dtype=F64)]).reshape(4, 6))
# log_sigmoid_f32: F.logsigmoid(a (3,5) float32)
case("log_sigmoid_f32", lambda a: F.logsigmoid(a), kinks(3, 5, dtype=F32))
# softsign: F.softsign(a (4,6))
case("softsign", lambda a: F.softsign(a), kinks(4, 6))
# softsign_empty: F.softsign(a (0,3))
case("softsign_empty", lambda a: F.softsign(a), randn(0, 3))
# glu_last: F.glu(a (3,8), -1)
case("glu_last", lambda a: F.glu(a, -1), randn(3, 8))
# glu_d0_transposed: F.glu(a (5,4).t(), 0)   (a (4,5) view, halves of dim 0)
case("glu_d0_transposed", lambda a: F.glu(a.t(), 0), randn(5, 4))
# glu_f32: F.glu(a (2,6,3) float32, 1)
case("glu_f32", lambda a: F.glu(a, 1), randn(2, 6, 3, dtype=F32))
# prelu_channels: F.prelu(a (2,3,4) with zeros, b (3,))
case("prelu_channels", lambda a, b: F.prelu(a, b), kinks(2, 3, 4), torch.tensor([0.25, -0.5, 1.5], dtype=F64))
# prelu_single: F.prelu(a (3,5), b (1,))
case("prelu_single", lambda a, b: F.prelu(a, b), kinks(3, 5), torch.tensor([0.1], dtype=F64))
# prelu_1d: F.prelu(a (7,), b (1,))   (no channel dim)
case("prelu_1d", lambda a, b: F.prelu(a, b), kinks(7), torch.tensor([0.3], dtype=F64))
# prelu_f32_4d: F.prelu(a (2,3,2,2) float32, b (3,) float32)
case("prelu_f32_4d", lambda a, b: F.prelu(a, b), kinks(2, 3, 2, 2, dtype=F32), torch.tensor([0.2, 0.4, -0.1], dtype=F32))

# hardsigmoid_f32: F.hardsigmoid(a (3,5) float32)
case("hardsigmoid_f32", lambda a: F.hardsigmoid(a), kinks(3, 5, dtype=F32))
# relu6_f32: F.relu6(a (3,5) float32)
case("relu6_f32", lambda a: F.relu6(a), kinks(3, 5, dtype=F32))
# celu_f32: F.celu(a (3,5) float32, 0.6)
case("celu_f32", lambda a: F.celu(a, 0.6), kinks(3, 5, dtype=F32))
# softsign_f32: F.softsign(a (3,5) float32)
case("softsign_f32", lambda a: F.softsign(a), kinks(3, 5, dtype=F32))

# <op>_edges: op(EDGES.t()) in f64; <op>_edges_f32: op(EDGES) in float32, with op as in
# POINTWISE above.
for name, op in POINTWISE.items():
    case(f"{name}_edges", lambda a, op=op: op(a.t()), EDGES)
    case(f"{name}_edges_f32", op, EDGES.to(F32))

save("activation")
