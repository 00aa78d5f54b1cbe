#!/usr/bin/env python3
"""Golden values for F::batch_norm_act: batch norm, an optional residual add and ReLU as
one op, against PyTorch's three ops.

Run from the repository root:

    .venv/bin/python scripts/golden/batch_norm_act.py

and commit the regenerated tests/data/batch_norm_act.safetensors;
tests/functional_batch_norm_act.rs reads it.

Per case `<c>` (float64), with rm, rv fresh copies of the stored running statistics:

    y = F.relu(F.batch_norm(x, rm, rv, weight, bias, training, momentum, eps) + residual)
    (without `+ residual` in the cases that have none)

stored: the inputs `x`, `running_mean`, `running_var`, `weight`, `bias`, `residual`
(each that the case has), `momentum`, `eps`, the output `out`, the running statistics
after the call `new_running_mean`, `new_running_var`, a random upstream gradient `gout`
and the gradients of (y * gout).sum(): `grad_x`, `grad_weight`, `grad_bias`,
`grad_residual`.
"""
import torch
import torch.nn.functional as F

from common import F64, OUT, randn, save

torch.manual_seed(27)

CASES = [
    # case, x shape, training, momentum, eps, weight, bias, residual
    ("train4d_residual", (4, 3, 5, 6), True, 0.1, 1e-5, True, True, True),
    ("eval4d_residual", (3, 2, 4, 5), False, 0.1, 1e-5, True, True, True),
    ("train4d", (2, 5, 3, 7), True, 0.3, 1e-3, True, True, False),
    ("eval2d", (6, 4), False, 0.1, 1e-5, True, True, False),
    ("train3d_noaffine_residual", (3, 4, 7), True, 0.5, 1e-4, False, False, True),
]

for case, shape, training, momentum, eps, has_w, has_b, has_r in CASES:
    c = shape[1]
    x = (randn(*shape) * 2.0 + 0.3).requires_grad_()
    rm = randn(c) * 0.5
    rv = torch.rand(c, dtype=F64) + 0.5
    w = randn(c).requires_grad_() if has_w else None
    b = randn(c).requires_grad_() if has_b else None
    r = randn(*shape).requires_grad_() if has_r else None
    stored = dict(x=x, running_mean=rm.clone(), running_var=rv.clone())
    y = F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
    if r is not None:
        y = y + r
    y = F.relu(y)
    gout = randn(*y.shape)
    (y * gout).sum().backward()
    stored.update(out=y, gout=gout, grad_x=x.grad, new_running_mean=rm, new_running_var=rv,
                  momentum=torch.tensor(momentum, dtype=F64), eps=torch.tensor(eps, dtype=F64))
    for name, t in [("weight", w), ("bias", b), ("residual", r)]:
        if t is not None:
            stored.update({name: t, f"grad_{name}": t.grad})
    for name, t in stored.items():
        OUT[f"{case}.{name}"] = t.detach().contiguous().clone()

save("batch_norm_act")
