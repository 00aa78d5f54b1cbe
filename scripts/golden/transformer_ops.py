"""Golden values for kiln's transformer building blocks: layer_norm, rms_norm, silu,
softplus and cross_entropy with its options (weight, ignore_index, label_smoothing,
reduction).

Run: .venv/bin/python scripts/golden/transformer_ops.py  (.venv from scripts/torch-venv.sh)
Writes tests/data/transformer_ops.safetensors with keys `<case>.<tensor>`.

Every case draws its inputs from a fixed seed, runs the PyTorch snippet quoted in
its comment, and stores the inputs, the output and the gradient of every input that
takes one. Gradients are of `(out * gout).sum()` for a stored random `gout` (1.7 for
a scalar output). Most cases are float64 so the Rust tests compare tightly; `_f32`
cases check the f32 path. A non-contiguous input is stored in its storage order
(`x_store`) with the view the op sees written in the comment; its gradient is that of
the view.
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(2026)
out = {}


def put(case, **tensors):
    for name, t in tensors.items():
        if t is None:
            continue
        out[f"{case}.{name}"] = t.detach().contiguous().clone()


def leaf(*shape, dtype=torch.float64, scale=1.0, shift=0.0):
    return (torch.randn(*shape, dtype=dtype) * scale + shift).requires_grad_()


def backprop(y):
    """Backpropagates (y * gout).sum() and returns gout (a scalar y uses gout = 1.7)."""
    gout = torch.randn_like(y) if y.dim() > 0 else torch.tensor(1.7, dtype=y.dtype)
    (y * gout).sum().backward()
    return gout


def grad(t):
    return None if t is None else t.grad


# ---------------------------------------------------------------- layer_norm
# y = F.layer_norm(x, normalized_shape, w, b, eps)
for case, shape, norm, affine, eps, dtype in [
    ("ln_3d", (2, 3, 8), [8], True, 1e-5, torch.float64),
    ("ln_two_dims", (3, 4, 5), [4, 5], True, 1e-3, torch.float64),
    ("ln_no_affine", (4, 6), [6], False, 1e-5, torch.float64),
    ("ln_wide", (3, 300), [300], True, 1e-5, torch.float64),
    ("ln_f32", (5, 16), [16], True, 1e-5, torch.float32),
    ("ln_empty", (0, 8), [8], True, 1e-5, torch.float64),
]:
    x = leaf(*shape, dtype=dtype, scale=2.0, shift=0.5)
    w = leaf(*norm, dtype=dtype) if affine else None
    b = leaf(*norm, dtype=dtype) if affine else None
    y = F.layer_norm(x, norm, w, b, eps)
    g = backprop(y)
    put(case, x=x, w=w, b=b, out=y, gout=g, grad_x=x.grad, grad_w=grad(w), grad_b=grad(b))

# Non-contiguous x: x_store is (8, 2, 3); y = F.layer_norm(x_store.permute(1, 2, 0), [8], w, b, 1e-5)
x_store = leaf(8, 2, 3)
w, b = leaf(8), leaf(8)
xv = x_store.permute(1, 2, 0)
xv.retain_grad()
y = F.layer_norm(xv, [8], w, b, 1e-5)
g = backprop(y)
put("ln_noncontig", x_store=x_store, w=w, b=b, out=y, gout=g, grad_x=xv.grad, grad_w=w.grad, grad_b=b.grad)

# ---------------------------------------------------------------- rms_norm
# y = F.rms_norm(x, normalized_shape, w, eps)   (eps=None: PyTorch's default)
for case, shape, norm, affine, eps, dtype in [
    ("rms_3d", (2, 3, 8), [8], True, None, torch.float64),
    ("rms_eps", (3, 4, 5), [4, 5], True, 1e-3, torch.float64),
    ("rms_no_affine", (4, 6), [6], False, 1e-6, torch.float64),
    ("rms_wide", (3, 300), [300], True, None, torch.float64),
    ("rms_f32", (5, 16), [16], True, None, torch.float32),
    ("rms_empty", (0, 8), [8], True, None, torch.float64),
]:
    x = leaf(*shape, dtype=dtype, scale=2.0, shift=0.5)
    w = leaf(*norm, dtype=dtype) if affine else None
    y = F.rms_norm(x, norm, w, eps)
    g = backprop(y)
    put(case, x=x, w=w, out=y, gout=g, grad_x=x.grad, grad_w=grad(w))

# Non-contiguous x: x_store is (8, 2, 3); y = F.rms_norm(x_store.permute(1, 2, 0), [8], w, 1e-5)
x_store = leaf(8, 2, 3)
w = leaf(8)
xv = x_store.permute(1, 2, 0)
xv.retain_grad()
y = F.rms_norm(xv, [8], w, 1e-5)
g = backprop(y)
put("rms_noncontig", x_store=x_store, w=w, out=y, gout=g, grad_x=xv.grad, grad_w=w.grad)

# ---------------------------------------------------------------- activations
# y = F.silu(x)
for case, dtype in [("silu", torch.float64), ("silu_f32", torch.float32)]:
    x = leaf(4, 7, dtype=dtype, scale=3.0)
    y = F.silu(x)
    g = backprop(y)
    put(case, x=x, out=y, gout=g, grad_x=x.grad)

# y = F.softplus(x, beta, threshold); x spans both sides of the threshold.
for case, beta, threshold, dtype in [
    ("softplus", 1.0, 20.0, torch.float64),
    ("softplus_beta", 2.0, 5.0, torch.float64),
    ("softplus_f32", 1.0, 20.0, torch.float32),
]:
    x = torch.randn(5, 6, dtype=dtype) * 4.0
    x[0, :3] = torch.tensor([25.0, 30.0, -30.0], dtype=dtype)
    x[1, :2] = torch.tensor([2.4, 3.1], dtype=dtype)
    x.requires_grad_()
    y = F.softplus(x, beta, threshold)
    g = backprop(y)
    put(case, x=x, out=y, gout=g, grad_x=x.grad,
        beta=torch.tensor(beta, dtype=torch.float64), threshold=torch.tensor(threshold, dtype=torch.float64))

# ---------------------------------------------------------------- cross_entropy options
# loss = F.cross_entropy(logits, target, weight=w, ignore_index=ii,
#                        label_smoothing=s, reduction=r)
# `w` absent means weight=None. Targets equal to ignore_index contribute nothing.
for case, lshape, tshape, use_w, ii, s, r, ignored, dtype in [
    ("ce_w_sum", (6, 5), (6,), True, -100, 0.1, "sum", [2], torch.float64),
    ("ce_w_mean_ii", (7, 5), (7,), True, 2, 0.2, "mean", [], torch.float64),
    ("ce_w_none", (6, 4), (6,), True, -100, 0.0, "none", [0, 4], torch.float64),
    ("ce_mean_ignore", (6, 4), (6,), False, -100, 0.0, "mean", [1, 3], torch.float64),
    ("ce_smooth_none", (5, 4), (5,), False, -1, 0.3, "none", [4], torch.float64),
    ("ce_3d_w_smooth", (2, 4, 3, 2), (2, 3, 2), True, -100, 0.1, "mean", [0, 5, 7], torch.float64),
    ("ce_3d_none", (2, 3, 5), (2, 5), False, -100, 0.0, "none", [3], torch.float64),
    ("ce_w_smooth_f32", (6, 5), (6,), True, -100, 0.1, "mean", [1], torch.float32),
    ("ce_all_ignored", (3, 4), (3,), True, -100, 0.1, "mean", [0, 1, 2], torch.float64),
]:
    logits = leaf(*lshape, dtype=dtype, scale=2.0)
    classes = lshape[1]
    target = torch.randint(0, classes, tshape)
    flat = target.view(-1)
    for j in ignored:
        flat[j] = ii
    w = (torch.rand(classes, dtype=dtype) + 0.5) if use_w else None
    loss = F.cross_entropy(logits, target, weight=w, ignore_index=ii, label_smoothing=s, reduction=r)
    g = backprop(loss)
    put(case, logits=logits, target=target, w=w, out=loss, gout=g, grad_logits=logits.grad)

# Non-contiguous logits: logits_store is (5, 6); the op sees logits_store.t() (6, 5).
# loss = F.cross_entropy(logits_store.t(), target, weight=w, label_smoothing=0.1)
logits_store = leaf(5, 6, scale=2.0)
lv = logits_store.t()
lv.retain_grad()
target = torch.randint(0, 5, (6,))
target[3] = -100
w = torch.rand(5, dtype=torch.float64) + 0.5
loss = F.cross_entropy(lv, target, weight=w, label_smoothing=0.1)
g = backprop(loss)
put("ce_noncontig", logits_store=logits_store, target=target, w=w, out=loss, gout=g, grad_logits=lv.grad)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "transformer_ops.safetensors")
save_file(out, os.path.normpath(path))
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
