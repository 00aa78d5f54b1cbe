"""Golden values for kiln's linear (tests/functional_linear.rs): forward output and
the gradient of every input.

Run: .venv/bin/python scripts/golden/linear.py  → tests/data/linear.safetensors

Each case stores <case>.x, .w, (.b), .gy (the upstream gradient), .out, .grad_x,
.grad_w, (.grad_b), all float64. The gradients are those of (out * gy).sum().
Every case is F.linear(x, w, b) (b = None where there is no .b).
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from weighted_op import r, record

torch.manual_seed(20261128)
out = {}


# name, x shape, w shape, bias?   — F.linear(x, w, b)
LINEAR = [
    ("linear_2d", (5, 7), (3, 7), True),
    ("linear_3d", (2, 3, 7), (4, 7), True),
    ("linear_1d", (7,), (3, 7), True),
    ("linear_nobias", (4, 6), (5, 6), False),
]
for name, xs, ws, has_b in LINEAR:
    b = r(ws[0]) if has_b else None
    record(out, name, r(*xs), r(*ws), b, lambda x, w, b: F.linear(x, w, b))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "linear.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path)
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
