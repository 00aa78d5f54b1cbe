#!/usr/bin/env python3
"""Golden values for kiln::einsum: torch.einsum's values and every operand's gradient.

Run from the repository root:

    .venv/bin/python scripts/golden/einsum.py

and commit the regenerated tests/data/einsum.safetensors; tests/einsum.rs reads it.
Keys as in common.case; each case's equation is the comment above it (operands a, b,
c are in0, in1, in2), and tests/einsum.rs repeats it above its case.
"""
import torch

from common import F32, case, randn, save

torch.manual_seed(0)


def ein(eq):
    return lambda *ops: torch.einsum(eq, *ops)


# bmm: "bij,bjk->bik", a (2,3,4), b (2,4,5)
case("bmm", ein("bij,bjk->bik"), randn(2, 3, 4), randn(2, 4, 5))
# implicit: "ij,jk" (output "ik"), a (3,4), b (4,2)
case("implicit", ein("ij,jk"), randn(3, 4), randn(4, 2))
# implicit_order: "kj,ji" (output "ik": the letters used once, alphabetical), a (2,3), b (3,4)
case("implicit_order", ein("kj,ji"), randn(2, 3), randn(3, 4))
# trace: "ii", a (4,4)
case("trace", ein("ii"), randn(4, 4))
# diag: "ii->i", a (3,3)
case("diag", ein("ii->i"), randn(3, 3))
# batch_diag: "bii->bi", a (2,3,3)
case("batch_diag", ein("bii->bi"), randn(2, 3, 3))
# outer: "i,j->ij", a (3,), b (4,)
case("outer", ein("i,j->ij"), randn(3), randn(4))
# transpose: "ij->ji", a (3,5)
case("transpose", ein("ij->ji"), randn(3, 5))
# sum_all: "ij->", a (3,4)
case("sum_all", ein("ij->"), randn(3, 4))
# dot: "i,i->", a (5,), b (5,)
case("dot", ein("i,i->"), randn(5), randn(5))
# ellipsis_broadcast: "...ij,...jk->...ik", a (2,1,3,4), b (5,4,2)
case("ellipsis_broadcast", ein("...ij,...jk->...ik"), randn(2, 1, 3, 4), randn(5, 4, 2))
# attention: "bhqd,bhkd->bhqk", a (2,3,4,5), b (2,3,6,5)
case("attention", ein("bhqd,bhkd->bhqk"), randn(2, 3, 4, 5), randn(2, 3, 6, 5))
# three: "ij,jk,kl->il", a (2,3), b (3,4), c (4,5)
case("three", ein("ij,jk,kl->il"), randn(2, 3), randn(3, 4), randn(4, 5))
# only_in_one: "ijk,jl->il" (k is summed out of a alone), a (2,3,4), b (3,5)
case("only_in_one", ein("ijk,jl->il"), randn(2, 3, 4), randn(3, 5))
# size_one_broadcast: "ij,ij->ij", a (3,1), b (1,4)
case("size_one_broadcast", ein("ij,ij->ij"), randn(3, 1), randn(1, 4))
# batch_kept_hadamard: "bi,bi->bi", a (2,3), b (2,3)
case("batch_kept_hadamard", ein("bi,bi->bi"), randn(2, 3), randn(2, 3))
# strided_f32: "ij,jk->ik" with a (4,3) f32 .t(), b (4,2) f32
case("strided_f32", lambda a, b: torch.einsum("ij,jk->ik", a.t(), b), randn(4, 3, dtype=F32), randn(4, 2, dtype=F32))
# empty_k: "ij,jk->ik", a (2,0), b (0,3)   (zeros)
case("empty_k", ein("ij,jk->ik"), randn(2, 0), randn(0, 3))
# empty_i: "ij,jk->ik", a (0,3), b (3,2)
case("empty_i", ein("ij,jk->ik"), randn(0, 3), randn(3, 2))

save("einsum")
