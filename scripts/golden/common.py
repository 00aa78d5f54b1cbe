"""Helpers shared by the golden-value scripts under scripts/golden/: input makers,
the recorders of a case's tensors, and the writer of the fixture file.

Each script runs on its own (`.venv/bin/python scripts/golden/<area>.py`), which puts
this folder on the import path; its tensors collect in `OUT` until `save` writes
them to tests/data/<area>.safetensors.
"""
import os

import torch
from safetensors.torch import save_file

F64, F32 = torch.float64, torch.float32
# The fixture's tensors by key, `<case>.<tensor>`.
OUT = {}
DATA = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")


def randn(*shape, dtype=F64):
    return torch.randn(shape, dtype=dtype)


def positive(*shape, dtype=F64):
    """Values in [0.5, 2): safe for log, sqrt, division and fractional or negative powers."""
    return torch.rand(shape, dtype=dtype) * 1.5 + 0.5


def case(name, fn, *inputs):
    """Stores inputs `<name>.in<i>`, `<name>.out` = fn(*inputs), and, for a float result
    that depends on a float input, the float inputs' gradients `<name>.grad<i>` of
    out.backward(gout) with a random upstream gradient `<name>.gout`."""
    assert name not in {k.split(".")[0] for k in OUT}, name
    leaves = [t.contiguous().clone().requires_grad_(t.is_floating_point()) for t in inputs]
    out = fn(*leaves)
    for i, t in enumerate(leaves):
        OUT[f"{name}.in{i}"] = t.detach().clone()
    OUT[f"{name}.out"] = out.detach().contiguous().clone()
    if out.is_floating_point() and out.requires_grad:
        gout = torch.randn(out.shape, dtype=out.dtype)
        out.backward(gout)
        OUT[f"{name}.gout"] = gout
        for i, t in enumerate(leaves):
            if t.requires_grad:
                OUT[f"{name}.grad{i}"] = t.grad.detach().clone()


def record(name, x, fn):
    """Stores `<name>.x`, `.out` = fn(x), a random upstream gradient `.gy` and the
    gradient `.grad_x` of (out * gy).sum()."""
    x = x.clone().requires_grad_(True)
    y = fn(x)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    OUT[f"{name}.x"] = x.detach()
    OUT[f"{name}.gy"] = gy
    OUT[f"{name}.out"] = y.detach()
    OUT[f"{name}.grad_x"] = x.grad


def save(area):
    """Writes `OUT` to tests/data/<area>.safetensors."""
    path = os.path.join(DATA, f"{area}.safetensors")
    os.makedirs(DATA, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sorted(OUT.items())}, path)
    print(f"wrote {len(OUT)} tensors to {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")
