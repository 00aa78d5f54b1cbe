#!/usr/bin/env python3
"""Golden values for kiln's per-sample norms: F.group_norm / nn.GroupNorm,
F.instance_norm / nn.InstanceNorm1d/2d/3d and nn.BatchNorm3d, values and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/group_norm.py

and commit the regenerated tests/data/group_norm.safetensors; tests/functional_group_norm.rs
reads it.

Keys, per `case` (see common.case): `<c>.in<i>` the inputs (contiguous; views are taken
inside the op), `<c>.out`, `<c>.gout` (the upstream gradient) and `<c>.grad<i>`. The
cases with running statistics (`stats(...)` below) store `<c>.x`, `<c>.weight`,
`<c>.bias` (affine only), `<c>.running_mean`/`<c>.running_var` (before), `<c>.out`,
`<c>.gout`, `<c>.grad_x`, `<c>.grad_weight`, `<c>.grad_bias`, `<c>.new_mean`,
`<c>.new_var` (after the forward). Each case's PyTorch expression is the comment
above it; tests/functional_group_norm.rs repeats it above its case.
"""
import torch
import torch.nn.functional as F

from common import F32, F64, OUT, case, randn, save

torch.manual_seed(23)


def ch(c, dtype=F64):
    """A per-channel parameter away from 0 and 1, so its gradient and effect show."""
    return torch.rand(c, dtype=dtype) + 0.5


# ---------------------------------------------------------------- group_norm
# gn_4d: F.group_norm(a (2,6,3,5), 3, w (6), b (6), 1e-5)
case("gn_4d", lambda a, w, b: F.group_norm(a, 3, w, b, 1e-5), randn(2, 6, 3, 5), ch(6), ch(6))
# gn_no_affine: F.group_norm(a (3,4,7), 2)
case("gn_no_affine", lambda a: F.group_norm(a, 2), randn(3, 4, 7))
# gn_weight_only: F.group_norm(a (2,4,5), 4, w (4)): one channel per group
case("gn_weight_only", lambda a, w: F.group_norm(a, 4, w), randn(2, 4, 5), ch(4))
# gn_one_group: F.group_norm(a (2,5,2,3), 1, w, b): every channel in one group
case("gn_one_group", lambda a, w, b: F.group_norm(a, 1, w, b), randn(2, 5, 2, 3), ch(5), ch(5))
# gn_2d: F.group_norm(a (3,6), 3, w, b): no spatial dims, two channels per group
case("gn_2d", lambda a, w, b: F.group_norm(a, 3, w, b), randn(3, 6), ch(6), ch(6))
# gn_5d: F.group_norm(a (2,4,2,3,2), 2, w, b, eps=0.1)
case("gn_5d", lambda a, w, b: F.group_norm(a, 2, w, b, 0.1), randn(2, 4, 2, 3, 2), ch(4), ch(4))
# gn_transposed: F.group_norm(a (2,5,3,4).transpose(1,3), 2, w, b): a strided (2,4,3,5) input
case("gn_transposed", lambda a, w, b: F.group_norm(a.transpose(1, 3), 2, w, b),
     randn(2, 5, 3, 4), ch(4), ch(4))
# gn_odd: F.group_norm(a (3,9,37), 3, w, b): odd sizes, rows of 111 values
case("gn_odd", lambda a, w, b: F.group_norm(a, 3, w, b), randn(3, 9, 37) * 3 + 2, ch(9), ch(9))
# gn_f32: F.group_norm(a (2,8,4,4), 4, w, b), float32
case("gn_f32", lambda a, w, b: F.group_norm(a, 4, w, b), randn(2, 8, 4, 4, dtype=F32),
     ch(8, F32), ch(8, F32))
# gn_empty_batch: F.group_norm(a (0,4,3), 2, w, b)
case("gn_empty_batch", lambda a, w, b: F.group_norm(a, 2, w, b), randn(0, 4, 3), ch(4), ch(4))

# ---------------------------------------------------------------- instance_norm
# in_default: F.instance_norm(a (2,3,5))
case("in_default", lambda a: F.instance_norm(a), randn(2, 3, 5))
# in_affine: F.instance_norm(a (2,3,4,4), weight=w, bias=b)
case("in_affine", lambda a, w, b: F.instance_norm(a, weight=w, bias=b), randn(2, 3, 4, 4), ch(3), ch(3))
# in_3d: F.instance_norm(a (2,2,3,2,4), eps=0.01)
case("in_3d", lambda a: F.instance_norm(a, eps=0.01), randn(2, 2, 3, 2, 4))
# in_transposed: F.instance_norm(a (2,7,3).transpose(1,2)): a strided (2,3,7) input
case("in_transposed", lambda a: F.instance_norm(a.transpose(1, 2)), randn(2, 7, 3))


def stats(name, make, x, use_input_stats=True, affine=True):
    """A case with running statistics: `make(x, rm, rv, w, b)` runs the op, updating
    rm and rv in place; stores inputs, output, gradients and the updated statistics."""
    c = x.shape[1]
    x = x.clone().requires_grad_(True)
    w = ch(c).requires_grad_(True) if affine else None
    b = ch(c).requires_grad_(True) if affine else None
    rm, rv = randn(c), torch.rand(c, dtype=F64) + 0.5
    OUT[f"{name}.running_mean"], OUT[f"{name}.running_var"] = rm.clone(), rv.clone()
    y = make(x, rm, rv, w, b)
    gout = torch.randn_like(y)
    (y * gout).sum().backward()
    OUT[f"{name}.x"] = x.detach().clone()
    OUT[f"{name}.out"], OUT[f"{name}.gout"] = y.detach().clone(), gout
    OUT[f"{name}.grad_x"] = x.grad
    if affine:
        OUT[f"{name}.weight"], OUT[f"{name}.bias"] = w.detach().clone(), b.detach().clone()
        OUT[f"{name}.grad_weight"], OUT[f"{name}.grad_bias"] = w.grad, b.grad
    OUT[f"{name}.new_mean"], OUT[f"{name}.new_var"] = rm, rv


# in_running: F.instance_norm(x (3,2,6), rm, rv, w, b, use_input_stats=True, momentum=0.2)
stats("in_running", lambda x, rm, rv, w, b: F.instance_norm(x, rm, rv, w, b, True, 0.2),
      randn(3, 2, 6))
# in_eval: F.instance_norm(x (2,3,4), rm, rv, w, b, use_input_stats=False)
stats("in_eval", lambda x, rm, rv, w, b: F.instance_norm(x, rm, rv, w, b, False), randn(2, 3, 4))
# bn3d_train: F.batch_norm(x (2,3,2,3,4), rm, rv, w, b, training=True, momentum=0.1), as
# nn.BatchNorm3d(3) in training mode
stats("bn3d_train", lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, True, 0.1),
      randn(2, 3, 2, 3, 4))
# bn3d_eval: F.batch_norm(x (2,3,2,2,3), rm, rv, w, b, training=False), as nn.BatchNorm3d(3).eval()
stats("bn3d_eval", lambda x, rm, rv, w, b: F.batch_norm(x, rm, rv, w, b, False), randn(2, 3, 2, 2, 3))

# Module reprs (PyTorch 2.15's print), checked by the module tests.
print(repr(torch.nn.GroupNorm(2, 6)))
print(repr(torch.nn.InstanceNorm2d(3)))
print(repr(torch.nn.InstanceNorm1d(4, affine=True, track_running_stats=True)))
print(repr(torch.nn.BatchNorm3d(3)))

save("group_norm")
