"""Golden values for kiln's max_pool2d, avg_pool2d and adaptive_avg_pool2d
(tests/functional_pool.rs): forward output and the input's gradient.

Run: .venv/bin/python scripts/golden/pool.py  → tests/data/pool.safetensors

Each case stores <case>.x, .gy (the upstream gradient), .out, .grad_x (float64);
the gradient is that of (out * gy).sum(). The PyTorch call is in the case lists.
"""
import torch
import torch.nn.functional as F

from common import randn, record, save

torch.manual_seed(20261127)


# name, x shape, kernel, stride, padding — F.max_pool2d(x, k, s, p) and F.avg_pool2d(x, k, s, p)
WINDOWS = [
    ("k2s2", (2, 3, 8, 9), 2, 2, 0),
    ("k3x2_s2x1_p1x0", (2, 2, 7, 8), (3, 2), (2, 1), (1, 0)),
    ("k3s2p1", (1, 3, 9, 9), 3, 2, 1),
    ("k2x3_s3x2_p1", (2, 2, 8, 9), (2, 3), (3, 2), 1),
    ("k5s1p2", (1, 2, 6, 5), 5, 1, 2),
    ("unbatched_k2s1", (3, 5, 7), 2, 1, 0),
]
for name, xs, k, s, p in WINDOWS:
    x = randn(*xs)
    record(f"max_{name}", x, lambda x, k=k, s=s, p=p: F.max_pool2d(x, k, s, p))
    record(f"avg_{name}", x, lambda x, k=k, s=s, p=p: F.avg_pool2d(x, k, s, p))

# Ties: small integers, so windows hold equal maxima; PyTorch routes the gradient to
# the first one. F.max_pool2d(x, 3, 2, 1)
ties = torch.randint(0, 3, (2, 2, 7, 8)).double()
record("max_ties", ties, lambda x: F.max_pool2d(x, 3, 2, 1))

# name, x shape, output size — F.adaptive_avg_pool2d(x, size)
ADAPTIVE = [
    ("adaptive_3x4", (2, 3, 7, 9), (3, 4)),
    ("adaptive_1x1", (2, 3, 8, 8), (1, 1)),
    ("adaptive_identity", (1, 2, 5, 7), (5, 7)),
    ("adaptive_4x3", (2, 2, 10, 7), (4, 3)),
    ("adaptive_upsample", (1, 2, 3, 2), (5, 4)),
    ("adaptive_unbatched", (3, 6, 5), (4, 2)),
]
for name, xs, size in ADAPTIVE:
    record(name, randn(*xs), lambda x, size=size: F.adaptive_avg_pool2d(x, size))

# Options (appended after the cases above, so their values stay as they were):
# name, x shape, F.max_pool2d / F.avg_pool2d keyword arguments. Ceil mode's last
# window overhangs the input ("overhang") or, starting in the right padding, is
# dropped ("drop": 5 rows, k2 s2 p1 gives 3 windows, not 4).
MAX_OPTS = [
    ("max_dil2", (2, 2, 9, 10), dict(kernel_size=3, stride=1, padding=1, dilation=2)),
    ("max_k2x3_d3x2_s2_p1", (1, 3, 11, 9), dict(kernel_size=(2, 3), stride=2, padding=1, dilation=(3, 2))),
    ("max_ceil_overhang", (2, 2, 8, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_ceil_drop", (1, 2, 5, 6), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ("max_ceil_dil2", (2, 1, 8, 9), dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)),
    ("max_ceil_kernel_past_input", (1, 2, 2, 3), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("max_default_stride", (1, 2, 7, 8), dict(kernel_size=3)),
]
for name, xs, kw in MAX_OPTS:
    record(name, randn(*xs), lambda x, kw=kw: F.max_pool2d(x, **kw))

AVG_OPTS = [
    ("avg_ceil_overhang", (2, 2, 8, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    ("avg_ceil_drop", (1, 2, 5, 6), dict(kernel_size=2, stride=2, padding=1, ceil_mode=True)),
    ("avg_ceil_pad_divisor", (1, 1, 5, 5), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg_exclude_pad", (1, 3, 9, 8), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg_ceil_exclude_pad", (2, 2, 7, 9), dict(kernel_size=(3, 2), stride=(2, 3), padding=1, ceil_mode=True, count_include_pad=False)),
    ("avg_default_stride_ceil", (1, 2, 7, 7), dict(kernel_size=3, ceil_mode=True)),
]
for name, xs, kw in AVG_OPTS:
    record(name, randn(*xs), lambda x, kw=kw: F.avg_pool2d(x, **kw))

save("pool")
