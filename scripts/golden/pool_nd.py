"""Golden values for kiln's 1-d and 3-d max/avg pooling and the adaptive poolings
(adaptive max 1-d/2-d/3-d with indices, adaptive avg 1-d/3-d) — tests/functional_pool_nd.rs:
forward output, the input's gradient and, for adaptive max, the indices.

Run: .venv/bin/python scripts/golden/pool_nd.py  → tests/data/pool_nd.safetensors

Each case stores <case>.x, .gy (the upstream gradient), .out, .grad_x (float64);
the gradient is that of (out * gy).sum(); adaptive max cases also <case>.indices (int64).
The PyTorch call is in the case lists.
"""
import torch
import torch.nn.functional as F

from common import OUT, randn, record, save

torch.manual_seed(20261207)

# name, x shape, F.max_pool1d / F.avg_pool1d keyword arguments. Odd lengths; ceil
# mode's overhanging last window ("ceil") or one that would start in the right
# padding and is dropped ("ceil_drop": 5 long, k2 s2 p1 gives 3 windows, not 4).
POOL1D = [
    ("k3s2p1", (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    ("k2_default_stride", (1, 2, 9), dict(kernel_size=2)),
    ("k3s2_ceil", (2, 2, 8), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("k2s2p1_ceil_drop", (1, 2, 5), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ("unbatched_k3s1p1", (3, 7), dict(kernel_size=3, stride=1, padding=1)),
]
for name, xs, kw in POOL1D:
    x = randn(*xs)
    record(f"max1d_{name}", x, lambda x, kw=kw: F.max_pool1d(x, **kw))
    record(f"avg1d_{name}", x, lambda x, kw=kw: F.avg_pool1d(x, **kw))

# 1-d options of one kind only: F.max_pool1d(..., dilation) / F.avg_pool1d(..., count_include_pad=False)
record("max1d_dil2_ceil", randn(2, 2, 12),
       lambda x: F.max_pool1d(x, kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True))
record("avg1d_exclude_pad_ceil", randn(2, 2, 10),
       lambda x: F.avg_pool1d(x, kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False))

# name, x shape, F.max_pool3d / F.avg_pool3d keyword arguments.
POOL3D = [
    ("k2s2", (2, 2, 4, 6, 5), dict(kernel_size=2, stride=2)),
    ("k133_s122_p011", (1, 2, 3, 7, 6), dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))),
    ("k3s2p1_ceil", (1, 2, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("unbatched_k2s1", (2, 3, 4, 5), dict(kernel_size=2, stride=1)),
]
for name, xs, kw in POOL3D:
    x = randn(*xs)
    record(f"max3d_{name}", x, lambda x, kw=kw: F.max_pool3d(x, **kw))
    record(f"avg3d_{name}", x, lambda x, kw=kw: F.avg_pool3d(x, **kw))

record("max3d_dil_ceil", randn(1, 2, 7, 8, 9),
       lambda x: F.max_pool3d(x, kernel_size=(2, 3, 2), stride=2, padding=1, dilation=(2, 1, 3), ceil_mode=True))
record("avg3d_exclude_pad_ceil", randn(2, 1, 5, 7, 6),
       lambda x: F.avg_pool3d(x, kernel_size=3, stride=(2, 2, 3), padding=1, ceil_mode=True, count_include_pad=False))

# Ties in 1-d and 3-d: small integers; PyTorch routes the gradient to the first maximum.
record("max1d_ties", torch.randint(0, 3, (2, 2, 13)).double(), lambda x: F.max_pool1d(x, 3, 2, 1))
record("max3d_ties", torch.randint(0, 3, (1, 2, 4, 5, 6)).double(), lambda x: F.max_pool3d(x, 3, 2, 1))


def adaptive_max(name, x, fn):
    """record() of fn's values, and `<name>.indices`."""
    record(name, x, lambda x: fn(x)[0])
    OUT[f"{name}.indices"] = fn(x)[1]


# name, x shape, output size — F.adaptive_max_pool{1,2,3}d(x, size, return_indices=True)
AMAX = [
    ("amax2d_3x4", (2, 3, 7, 9), (3, 4)),
    ("amax2d_1x1", (2, 2, 5, 6), 1),
    ("amax2d_identity", (1, 2, 4, 5), (4, 5)),
    ("amax2d_upsample", (1, 2, 3, 2), (5, 4)),
    ("amax2d_unbatched", (3, 6, 5), (4, 2)),
]
for name, xs, size in AMAX:
    adaptive_max(name, randn(*xs), lambda x, s=size: F.adaptive_max_pool2d(x, s, return_indices=True))
adaptive_max("amax2d_ties", torch.randint(0, 3, (2, 2, 7, 8)).double(),
             lambda x: F.adaptive_max_pool2d(x, (3, 3), return_indices=True))
adaptive_max("amax1d_5", randn(2, 3, 11), lambda x: F.adaptive_max_pool1d(x, 5, return_indices=True))
adaptive_max("amax1d_unbatched", randn(3, 4), lambda x: F.adaptive_max_pool1d(x, 7, return_indices=True))
adaptive_max("amax3d_2x3x2", randn(2, 2, 5, 7, 4), lambda x: F.adaptive_max_pool3d(x, (2, 3, 2), return_indices=True))
adaptive_max("amax3d_unbatched", randn(2, 3, 4, 5), lambda x: F.adaptive_max_pool3d(x, (4, 2, 3), return_indices=True))

# name, x shape, output size — F.adaptive_avg_pool1d / F.adaptive_avg_pool3d(x, size)
record("aavg1d_4", randn(2, 3, 10), lambda x: F.adaptive_avg_pool1d(x, 4))
record("aavg1d_upsample", randn(1, 2, 3), lambda x: F.adaptive_avg_pool1d(x, 5))
record("aavg1d_unbatched", randn(3, 9), lambda x: F.adaptive_avg_pool1d(x, 1))
record("aavg3d_2x3x2", randn(2, 2, 5, 7, 4), lambda x: F.adaptive_avg_pool3d(x, (2, 3, 2)))
record("aavg3d_1", randn(1, 3, 4, 4, 5), lambda x: F.adaptive_avg_pool3d(x, 1))
record("aavg3d_unbatched", randn(2, 3, 4, 5), lambda x: F.adaptive_avg_pool3d(x, (4, 2, 3)))

save("pool_nd")
