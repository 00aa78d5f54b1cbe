#!/usr/bin/env python3
"""Golden values for kiln's advanced indexing (`x[idx]`, `index_put`) and F.one_hot:
values and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/advanced_index.py

and commit the regenerated tests/data/advanced_index.safetensors;
tests/tensor_advanced_index.rs reads it. Keys as in common.case (index tensors are
int64 inputs and take no gradient); each case's PyTorch expression is the comment above
it, and tests/tensor_advanced_index.rs repeats it above its case. `put(x, [..], v, acc)`
is torch.ops.aten.index_put, whose index list may hold None (a full slice).
"""
import torch
import torch.nn.functional as F

from common import F32, case, randn, save

torch.manual_seed(0)
put = torch.ops.aten.index_put


def ids(*values):
    return torch.tensor(values, dtype=torch.long)


# index_cols: a (3,5)[:, i] with i = [4, 0, -1, 2] (repeats, negative)
case("index_cols", lambda a, i: a[:, i], randn(3, 5), ids(4, 0, -1, 2))
# index_rows_2d: a (4,3)[i] with i (2,3)
case("index_rows_2d", lambda a, i: a[i], randn(4, 3), ids([0, 3, 3], [1, 0, 2]))
# index_adjacent: a (2,4,5)[:, i, j] with i, j (3,): the index dims stay in place
case("index_adjacent", lambda a, i, j: a[:, i, j], randn(2, 4, 5), ids(0, 3, 1), ids(4, 4, -5))
# index_broadcast: a (4,5)[i, j] with i (3,1), j (2,): shape (3,2)
case("index_broadcast", lambda a, i, j: a[i, j], randn(4, 5), ids([0], [3], [1]), ids(2, 4))
# index_separated: a (3,4,5)[i, :, j] with i, j (2,): the index dims go in front, (2,4)
case("index_separated", lambda a, i, j: a[i, :, j], randn(3, 4, 5), ids(2, 0), ids(1, 1))
# index_t: a (5,4).t()[:, i] with i = [1, 4, 1]   (strided)
case("index_t", lambda a, i: a.t()[:, i], randn(5, 4), ids(1, 4, 1))
# index_empty: a (3,4)[:, i] with i empty (0,)
case("index_empty", lambda a, i: a[:, i], randn(3, 4), torch.zeros(0, dtype=torch.long))
# index_f32: a (4,6) f32 [i, 1:][..] as a[i] with i (2,)
case("index_f32", lambda a, i: a[i], randn(4, 6, dtype=F32), ids(3, 1))
# index_i64: a (3,4) int64 [:, i]
case("index_i64", lambda a, i: a[:, i], torch.randint(-9, 9, (3, 4)), ids(2, 2, 0))

# put_acc_rows: put(a (5,3), [i], v (4,3), True) with i = [1, 3, 1, -1]
case("put_acc_rows", lambda a, i, v: put(a, [i], v, True), randn(5, 3), ids(1, 3, 1, -1), randn(4, 3))
# put_replace_rows: put(a (5,3), [i], v (3,3), False) with i = [4, 0, 2]
case("put_replace_rows", lambda a, i, v: put(a, [i], v, False), randn(5, 3), ids(4, 0, 2), randn(3, 3))
# put_acc_cols: put(a (3,4), [None, j], v (3,3), True) with j = [1, 3, 1]
case("put_acc_cols", lambda a, j, v: put(a, [None, j], v, True), randn(3, 4), ids(1, 3, 1), randn(3, 3))
# put_acc_pairs: put(a (4,5), [i, j], v (1,), True) with i, j (4,) and repeated pairs
case("put_acc_pairs", lambda a, i, j, v: put(a, [i, j], v, True),
     randn(4, 5), ids(0, 3, 0, 2), ids(4, 1, 4, -1), randn(1))
# put_replace_separated: put(a (3,4,5), [i, None, j], v (2,4), False)
case("put_replace_separated", lambda a, i, j, v: put(a, [i, None, j], v, False),
     randn(3, 4, 5), ids(2, 0), ids(1, 3), randn(2, 4))
# put_acc_t_f32: put(a (4,3) f32 .t(), [None, i], v (3,2), True) with i = [0, 0]   (strided)
case("put_acc_t_f32", lambda a, i, v: put(a.t(), [None, i], v, True),
     randn(4, 3, dtype=F32), ids(0, 0), randn(3, 2, dtype=F32))
# put_acc_empty: put(a (3,4), [i], v (0,4), True) with i empty
case("put_acc_empty", lambda a, i, v: put(a, [i], v, True),
     randn(3, 4), torch.zeros(0, dtype=torch.long), randn(0, 4))
# put_acc_i64: put(a (3,4) int64, [i], v (3,4) int64, True) with i = [2, 0, 2]
case("put_acc_i64", lambda a, i, v: put(a, [i], v, True),
     torch.randint(-9, 9, (3, 4)), ids(2, 0, 2), torch.randint(-9, 9, (3, 4)))

# one_hot: F.one_hot(l (2,3), 5)
case("one_hot", lambda l: F.one_hot(l, 5), ids([0, 4, 2], [1, 1, 3]))
# one_hot_infer: F.one_hot(l (4,), -1)   (4 classes)
case("one_hot_infer", lambda l: F.one_hot(l, -1), ids(3, 0, 1, 3))
# one_hot_empty: F.one_hot(l (0,), 3)
case("one_hot_empty", lambda l: F.one_hot(l, 3), torch.zeros(0, dtype=torch.long))

save("advanced_index")
