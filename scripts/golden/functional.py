"""Golden values for kiln's activations, softmax, losses and batch_norm.

Run: .venv/bin/python scripts/golden/functional.py  (.venv from scripts/torch-venv.sh)
Writes tests/data/functional.safetensors with keys `<case>.<tensor>`.

Every case draws its inputs from a fixed seed, runs the PyTorch snippet quoted in
its comment, and stores the inputs, the output and the gradient of every input that
takes one. Gradients are of `(out * gout).sum()` for a stored random `gout`, so every
output element's path is checked with a distinct weight. Most cases are float64 so
the Rust tests can compare gradients tightly; a few float32 cases check the f32 path.
"""

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(1234)
out = {}


def put(case, **tensors):
    for name, t in tensors.items():
        out[f"{case}.{name}"] = t.detach().contiguous().clone()


def leaf(*shape, dtype=torch.float64, scale=1.0):
    return (torch.randn(*shape, dtype=dtype) * scale).requires_grad_()


def backprop(y):
    """Backpropagates (y * gout).sum() and returns gout (a scalar y uses gout = 1.7)."""
    gout = torch.randn_like(y) if y.dim() > 0 else torch.tensor(1.7, dtype=y.dtype)
    (y * gout).sum().backward()
    return gout


# ---------------------------------------------------------------- activations
# y = F.relu(x); x holds exact zeros, whose gradient is 0 in PyTorch.
x = torch.randn(3, 5, 7, dtype=torch.float64)
x[0, 0, :3] = 0.0
x.requires_grad_()
y = F.relu(x)
g = backprop(y)
put("relu", x=x, out=y, gout=g, grad_x=x.grad)

# y = F.gelu(x)  (approximate="none": x * Phi(x) with erf)
for dtype, case in [(torch.float64, "gelu"), (torch.float32, "gelu_f32")]:
    x = leaf(4, 7, dtype=dtype, scale=2.5)
    y = F.gelu(x)
    g = backprop(y)
    put(case, x=x, out=y, gout=g, grad_x=x.grad)

# y = F.gelu(x, approximate="tanh")
x = leaf(5, 3, dtype=torch.float64, scale=2.5)
y = F.gelu(x, approximate="tanh")
g = backprop(y)
put("gelu_tanh", x=x, out=y, gout=g, grad_x=x.grad)

# y = torch.sigmoid(x); y = torch.tanh(x)
for name, f in [("sigmoid", torch.sigmoid), ("tanh", torch.tanh)]:
    x = leaf(2, 9, dtype=torch.float64, scale=3.0)
    y = f(x)
    g = backprop(y)
    put(name, x=x, out=y, gout=g, grad_x=x.grad)

# ---------------------------------------------------------------- softmax
# y = F.softmax(x, dim) and y = F.log_softmax(x, dim) for every dim of a (3, 4, 5) x
for dim in range(3):
    for name, f in [("softmax", F.softmax), ("log_softmax", F.log_softmax)]:
        x = leaf(3, 4, 5, scale=2.0)
        y = f(x, dim)
        g = backprop(y)
        put(f"{name}_d{dim}", x=x, out=y, gout=g, grad_x=x.grad)

# Non-contiguous input: x is stored (5, 4, 3); the op sees x.transpose(0, 2).
# y = F.softmax(x.transpose(0, 2), 1)
x = leaf(5, 4, 3)
y = F.softmax(x.transpose(0, 2), 1)
g = backprop(y)
put("softmax_transposed", x=x, out=y, gout=g, grad_x=x.grad)

# Large logits in float32: y = F.softmax(x, 1), F.log_softmax(x, 1) with x ~ 1000 + 50 N(0,1)
x = (1000.0 + 50.0 * torch.randn(4, 6)).requires_grad_()
y = F.softmax(x, 1)
g = backprop(y)
put("softmax_large_f32", x=x, out=y, gout=g, grad_x=x.grad)
x = x.detach().requires_grad_()
y = F.log_softmax(x, 1)
g = backprop(y)
put("log_softmax_large_f32", x=x, out=y, gout=g, grad_x=x.grad)

# ---------------------------------------------------------------- losses
# loss = F.cross_entropy(logits, target, label_smoothing=s)
ce_cases = [
    ("ce_2d", (7, 5), (7,), 0.0),
    ("ce_2d_smooth", (7, 5), (7,), 0.1),
    ("ce_2d_smooth_full", (6, 4), (6,), 1.0),
    ("ce_4d", (3, 4, 2, 5), (3, 2, 5), 0.0),
    ("ce_4d_smooth", (3, 4, 2, 5), (3, 2, 5), 0.25),
    ("ce_1d", (6,), (), 0.0),
]
for case, lshape, tshape, s in ce_cases:
    logits = leaf(*lshape, scale=2.0)
    classes = lshape[1] if len(lshape) > 1 else lshape[0]
    target = torch.randint(0, classes, tshape, dtype=torch.int64)
    loss = F.cross_entropy(logits, target, label_smoothing=s)
    g = backprop(loss)
    put(case, logits=logits, target=target, out=loss, gout=g, grad_logits=logits.grad,
        smoothing=torch.tensor(s, dtype=torch.float64))

# float32 cross entropy: loss = F.cross_entropy(logits, target)
logits = leaf(16, 10, dtype=torch.float32, scale=3.0)
target = torch.randint(0, 10, (16,), dtype=torch.int64)
loss = F.cross_entropy(logits, target)
g = backprop(loss)
put("ce_f32", logits=logits, target=target, out=loss, gout=g, grad_logits=logits.grad)

# loss = F.nll_loss(log_probs, target); log_probs are arbitrary (not normalised)
for case, lshape, tshape in [("nll_2d", (7, 5), (7,)), ("nll_3d", (2, 4, 3), (2, 3))]:
    lp = leaf(*lshape)
    target = torch.randint(0, lshape[1], tshape, dtype=torch.int64)
    loss = F.nll_loss(lp, target)
    g = backprop(loss)
    put(case, log_probs=lp, target=target, out=loss, gout=g, grad_log_probs=lp.grad)

# loss = F.mse_loss(input, target); both take gradients
inp, tgt = leaf(3, 4, 5), leaf(3, 4, 5)
loss = F.mse_loss(inp, tgt)
g = backprop(loss)
put("mse", input=inp, target=tgt, out=loss, gout=g, grad_input=inp.grad, grad_target=tgt.grad)

# ---------------------------------------------------------------- batch_norm
# rm, rv = running_mean.clone(), running_var.clone()
# y = F.batch_norm(x, rm, rv, weight, bias, training, momentum, eps)
# (rm, rv are updated in place when training; stored after the call as new_rm, new_rv)
bn_cases = [
    # case, x shape, training, momentum, eps, affine (weight, bias)
    ("bn2d_train", (6, 3), True, 0.1, 1e-5, (True, True)),
    ("bn2d_eval", (5, 4), False, 0.1, 1e-5, (True, True)),
    ("bn4d_train", (4, 3, 5, 6), True, 0.3, 1e-3, (True, True)),
    ("bn4d_eval", (3, 2, 4, 5), False, 0.1, 1e-5, (True, True)),
    ("bn4d_train_noaffine", (2, 3, 3, 5), True, 0.1, 1e-5, (False, False)),
    ("bn3d_train_weight_only", (3, 4, 7), True, 0.5, 1e-4, (True, False)),
    ("bn4d_eval_bias_only", (2, 3, 2, 3), False, 0.1, 1e-5, (False, True)),
]
for case, shape, training, momentum, eps, (has_w, has_b) in bn_cases:
    c = shape[1]
    x = (torch.randn(*shape, dtype=torch.float64) * 2.0 + 0.5).requires_grad_()
    rm = torch.randn(c, dtype=torch.float64) * 0.5
    rv = torch.rand(c, dtype=torch.float64) + 0.5
    w = leaf(c) if has_w else None
    b = leaf(c) if has_b else None
    tensors = dict(x=x.detach().clone(), running_mean=rm.clone(), running_var=rv.clone())
    y = F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
    g = backprop(y)
    tensors.update(out=y, gout=g, grad_x=x.grad, new_running_mean=rm, new_running_var=rv,
                   momentum=torch.tensor(momentum, dtype=torch.float64),
                   eps=torch.tensor(eps, dtype=torch.float64))
    if has_w:
        tensors.update(weight=w, grad_weight=w.grad)
    if has_b:
        tensors.update(bias=b, grad_bias=b.grad)
    put(case, **tensors)

# y = F.leaky_relu(x, negative_slope); x holds exact zeros, whose gradient is the slope.
# Added last so the cases above keep their random draws.
for case, slope, dtype in [("leaky_relu", 0.01, torch.float64), ("leaky_relu_neg", -0.3, torch.float64),
                           ("leaky_relu_f32", 0.2, torch.float32)]:
    x = torch.randn(4, 9, dtype=dtype) * 2.0
    x[0, :2] = 0.0
    x.requires_grad_()
    y = F.leaky_relu(x, negative_slope=slope)
    g = backprop(y)
    put(case, x=x, out=y, gout=g, grad_x=x.grad, negative_slope=torch.tensor(slope, dtype=torch.float64))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "functional.safetensors")
save_file(out, os.path.normpath(path))
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
