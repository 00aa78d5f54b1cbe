#!/usr/bin/env python3
"""Golden values for F::bias_dropout_add where no element is dropped (eval, or p = 0).

Run from the repository root:

    .venv/bin/python scripts/golden/bias_dropout_add.py

and commit the regenerated tests/data/bias_dropout_add.safetensors;
tests/functional_bias_dropout_add.rs reads it. (Training masks are kiln's Philox
draws, not PyTorch's; the tests check them against kiln's own F::dropout.)

Per case `<c>` (float64):

    y = residual + F.dropout(x + bias, p, training)

stored: `x`, `bias`, `residual`, `out`, a random upstream gradient `gout` and the
gradients of (y * gout).sum(): `grad_x`, `grad_bias`, `grad_residual`.
"""
import torch
import torch.nn.functional as F

from common import OUT, randn, save

torch.manual_seed(272)

# case, x shape, p, training
for case, shape, p, training in [("eval", (3, 4, 5), 0.3, False), ("p0", (7, 6), 0.0, True)]:
    x = randn(*shape).requires_grad_()
    bias = randn(shape[-1]).requires_grad_()
    residual = randn(*shape).requires_grad_()
    y = residual + F.dropout(x + bias, p, training)
    gout = randn(*shape)
    (y * gout).sum().backward()
    stored = dict(x=x, bias=bias, residual=residual, out=y, gout=gout, grad_x=x.grad,
                  grad_bias=bias.grad, grad_residual=residual.grad)
    for name, t in stored.items():
        OUT[f"{case}.{name}"] = t.detach().contiguous().clone()

save("bias_dropout_add")
