#!/usr/bin/env python3
"""Golden values for kiln's pieces and rearrangements: split, split (sizes), chunk,
unbind, select, unflatten, expand, repeat, repeat_interleave, roll, flip — values and
gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/rearrange.py

and commit the regenerated tests/data/rearrange.safetensors; tests/tensor_rearrange.rs
reads it.

Keys, per case `<c>` (see common.case): `<c>.in0` the input (contiguous; views are
taken inside the op), `<c>.out`, and for float outputs `<c>.gout` and `<c>.grad0`.
Ops that return several tensors are checked through `weighted(parts, dim)`: the parts
joined along `dim`, part i scaled by i + 1, so both the pieces and their order show in
the values and in the gradient. Each case's PyTorch expression is the comment above
it; tests/tensor_rearrange.rs repeats it.
"""
import torch

from common import F32, case, randn, save

torch.manual_seed(0)


def weighted(parts, dim):
    return torch.cat([p * (i + 1) for i, p in enumerate(parts)], dim)


def weighted_stack(parts):
    return torch.stack([p * (i + 1) for i, p in enumerate(parts)], 0)


# split_d1: weighted(a (3,7).split(3, 1), 1)
case("split_d1", lambda a: weighted(a.split(3, 1), 1), randn(3, 7))
# split_sizes_d0: weighted(a (6,2).split([1, 3, 2], 0), 0)
case("split_sizes_d0", lambda a: weighted(a.split([1, 3, 2], 0), 0), randn(6, 2))
# chunk_d1: weighted(a (2,7).chunk(3, 1), 1)   (pieces of 3, 3, 1)
case("chunk_d1", lambda a: weighted(a.chunk(3, 1), 1), randn(2, 7))
# chunk_transposed: weighted(a (5,4).t().chunk(2, 1), 1)
case("chunk_transposed", lambda a: weighted(a.t().chunk(2, 1), 1), randn(5, 4))
# unbind_d1: weighted_stack(a (3,4,2).unbind(1))
case("unbind_d1", lambda a: weighted_stack(a.unbind(1)), randn(3, 4, 2))
# select_d1: a (3,5,2).select(1, 3)
case("select_d1", lambda a: a.select(1, 3), randn(3, 5, 2))
# select_transposed: a (4,3).t().select(1, 2)
case("select_transposed", lambda a: a.t().select(1, 2), randn(4, 3))
# unflatten_d1: a (2,12,3).unflatten(1, (3, 4))
case("unflatten_d1", lambda a: a.unflatten(1, (3, 4)), randn(2, 12, 3))
# unflatten_inferred: a (4,6).t().unflatten(0, (2, -1))   (a strided view)
case("unflatten_inferred", lambda a: a.t().unflatten(0, (2, -1)), randn(4, 6))
# expand_new_dims: a (3,1).expand(2, 3, 4)
case("expand_new_dims", lambda a: a.expand(2, 3, 4), randn(3, 1))
# expand_keep: a (4,1).expand(-1, 5)
case("expand_keep", lambda a: a.expand(-1, 5), randn(4, 1))
# repeat_2d: a (2,3).repeat(2, 1, 3)
case("repeat_2d", lambda a: a.repeat(2, 1, 3), randn(2, 3))
# repeat_transposed: a (3,2).t().repeat(2, 2)
case("repeat_transposed", lambda a: a.t().repeat(2, 2), randn(3, 2))
# repeat_zero: a (2,3).repeat(0, 1)
case("repeat_zero", lambda a: a.repeat(0, 1), randn(2, 3))
# repeat_i64: a (2,2) int64 .repeat(2, 3)
case("repeat_i64", lambda a: a.repeat(2, 3), torch.randint(-9, 9, (2, 2)))
# repeat_interleave_d0: a (3,2).repeat_interleave(2, 0)
case("repeat_interleave_d0", lambda a: a.repeat_interleave(2, 0), randn(3, 2))
# repeat_interleave_transposed: a (2,3).t().repeat_interleave(3, 1)
case("repeat_interleave_transposed", lambda a: a.t().repeat_interleave(3, 1), randn(2, 3))
# roll_two: a (3,4).roll((1, -2), (0, 1))
case("roll_two", lambda a: a.roll((1, -2), (0, 1)), randn(3, 4))
# roll_flat: a (3,4).roll(5)
case("roll_flat", lambda a: a.roll(5), randn(3, 4))
# roll_big_shift: a (5,).roll(-12, 0)
case("roll_big_shift", lambda a: a.roll(-12, 0), randn(5))
# roll_transposed: a (3,5).t().roll(2, 1)
case("roll_transposed", lambda a: a.t().roll(2, 1), randn(3, 5))
# roll_empty: a (0,3).roll(1, 1)
case("roll_empty", lambda a: a.roll(1, 1), randn(0, 3))
# flip_d0: a (3,4).flip(0)
case("flip_d0", lambda a: a.flip(0), randn(3, 4))
# flip_two: a (2,3,4).flip((0, 2))
case("flip_two", lambda a: a.flip((0, 2)), randn(2, 3, 4))
# flip_transposed: a (4,3).t().flip(1)
case("flip_transposed", lambda a: a.t().flip(1), randn(4, 3))
# flip_f32: a (3,5) float32 .flip(1)
case("flip_f32", lambda a: a.flip(1), randn(3, 5, dtype=F32))
# flip_u8: a (2,3) uint8 .flip(0, 1)
case("flip_u8", lambda a: a.flip((0, 1)), torch.randint(0, 255, (2, 3), dtype=torch.uint8))

save("rearrange")
