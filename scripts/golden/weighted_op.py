"""Shared by conv.py and linear.py: records one case of an op of an input, a weight
and an optional bias, as tests/common's `check_weighted_case` reads it.

A case stores <case>.x, .w, (.b), .gy (the upstream gradient), .out, .grad_x,
.grad_w, (.grad_b); the gradients are those of (out * gy).sum().
"""
import torch


def record(out, name, x, w, b, fn):
    """Runs fn(x, w, b) and its backward, and stores the case in the dict `out`."""
    x = x.clone().requires_grad_(True)
    w = w.clone().requires_grad_(True)
    if b is not None:
        b = b.clone().requires_grad_(True)
    y = fn(x, w, b)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    out[f"{name}.x"] = x.detach()
    out[f"{name}.w"] = w.detach()
    out[f"{name}.gy"] = gy
    out[f"{name}.out"] = y.detach()
    out[f"{name}.grad_x"] = x.grad
    out[f"{name}.grad_w"] = w.grad
    if b is not None:
        out[f"{name}.b"] = b.detach()
        out[f"{name}.grad_b"] = b.grad


def r(*shape):
    """Standard normal float64 samples."""
    return torch.randn(*shape, dtype=torch.float64)
