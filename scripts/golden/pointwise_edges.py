"""Golden values for every pointwise op with a backward at its edges:
tests/data/pointwise_edges.safetensors, checked by tests/pointwise_edges.rs.

Run: .venv/bin/python scripts/golden/pointwise_edges.py

Each unary case applies the op to EDGES (f64): ±0, ±1, ±0.5, ±2.5, ±25, ±inf and NaN,
so every op meets 0, the infinities, NaN and negative bases; the pow cases cover the
exponents 0 and 1 and the others PyTorch special-cases. Each binary case applies the
op to every pair of PAIR_EDGES (a repeated, b tiled: 64 pairs). As in
scripts/golden/common.py, `<case>.out` is the result and `<case>.grad<i>` the
gradient of input i under a random upstream gradient `<case>.gout`. The PyTorch
expression of each case is its lambda below.
"""
import math

import torch
import torch.nn.functional as F

from common import F64, OUT, case, save

torch.manual_seed(0)
inf, nan = math.inf, math.nan
EDGES = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.5, -2.5, 25.0, -25.0, inf, -inf, nan],
                     dtype=F64)
PAIR_EDGES = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.5, inf, -inf, nan], dtype=F64)
n = len(PAIR_EDGES)
A = PAIR_EDGES.repeat_interleave(n)
B = PAIR_EDGES.repeat(n)

UNARY = {
    "neg": lambda x: -x,
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "abs": torch.abs,
    "sin": torch.sin,
    "cos": torch.cos,
    "pow_0": lambda x: x.pow(0.0),
    "pow_1": lambda x: x.pow(1.0),
    "pow_2": lambda x: x.pow(2.0),
    "pow_3": lambda x: x.pow(3.0),
    "pow_half": lambda x: x.pow(0.5),
    "pow_2_5": lambda x: x.pow(2.5),
    "pow_m1": lambda x: x.pow(-1.0),
    "pow_m2": lambda x: x.pow(-2.0),
    "pow_m_half": lambda x: x.pow(-0.5),
    "add_scalar": lambda x: x + 2.0,
    "mul_scalar": lambda x: x * -3.0,
    "mul_scalar_0": lambda x: x * 0.0,
    "mul_scalar_inf": lambda x: x * inf,
    "div_scalar": lambda x: x / 4.0,
    "div_scalar_0": lambda x: x / 0.0,
    "clamp_both": lambda x: x.clamp(-1.0, 1.0),
    "clamp_min_0": lambda x: x.clamp(min=0.0),
    "clamp_max_0": lambda x: x.clamp(max=0.0),
    "clamp_infinite": lambda x: x.clamp(-inf, inf),
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "silu": F.silu,
    "softplus": lambda x: F.softplus(x, 1.0, 20.0),
    "softplus_beta": lambda x: F.softplus(x, 2.0, 1.0),
}

BINARY = {
    "add": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "maximum": torch.maximum,
    "minimum": torch.minimum,
}

for name, fn in UNARY.items():
    case(name, fn, EDGES)
for name, fn in BINARY.items():
    case(name, fn, A, B)

save("pointwise_edges")
