"""Golden values for kiln's resampling ops (tests/functional_resample.rs):
pixel_shuffle / pixel_unshuffle (and F.interpolate, below): forward output and the
input's gradient.

Run: .venv/bin/python scripts/golden/resample.py  → tests/data/resample.safetensors

Each case stores <case>.x, .gy (the upstream gradient), .out, .grad_x (float64);
the gradient is that of (out * gy).sum(). The PyTorch call is in the case lists.
"""
import torch
import torch.nn.functional as F

from common import randn, record, save

torch.manual_seed(20261207)

# name, x shape, factor — F.pixel_shuffle(x, r) / F.pixel_unshuffle(x, r)
SHUFFLE = [
    ("shuffle_r2", (2, 8, 3, 5), 2),
    ("shuffle_r3_two_batch_dims", (2, 1, 9, 2, 3), 3),
    ("shuffle_r1", (1, 3, 2, 2), 1),
    ("shuffle_unbatched", (12, 2, 3), 2),
]
for name, xs, r in SHUFFLE:
    record(name, randn(*xs), lambda x, r=r: F.pixel_shuffle(x, r))

UNSHUFFLE = [
    ("unshuffle_r2", (2, 3, 4, 6), 2),
    ("unshuffle_r3", (1, 2, 6, 9), 3),
    ("unshuffle_two_batch_dims", (2, 2, 2, 4, 2), 2),
    ("unshuffle_unbatched", (3, 2, 4), 2),
]
for name, xs, r in UNSHUFFLE:
    record(name, randn(*xs), lambda x, r=r: F.pixel_unshuffle(x, r))

# name, x shape, F.interpolate keyword arguments. A scale_factor is used in the
# source-index formula as given (recompute_scale_factor=None): "scale_frac" cases
# (5·1.7 → 8 rows, read at (o + 0.5) / 1.7 - 0.5, not (o + 0.5) · 5/8 - 0.5) tell the
# two apart; "same_h" keeps one axis's size, which PyTorch's kernels copy.
INTERPOLATE = [
    ("nearest_size", (2, 3, 5, 7), dict(size=(8, 11))),
    ("nearest_scale2", (1, 2, 4, 5), dict(scale_factor=2)),
    ("nearest_scale_frac", (2, 2, 5, 6), dict(scale_factor=1.7)),
    ("nearest_down", (1, 3, 9, 8), dict(size=(4, 3))),
    ("nearest_scales_hw", (1, 2, 6, 5), dict(scale_factor=(0.5, 2.5))),
    ("bilinear_size", (2, 3, 5, 7), dict(size=(8, 11), mode="bilinear")),
    ("bilinear_size_align", (2, 3, 5, 7), dict(size=(8, 11), mode="bilinear", align_corners=True)),
    ("bilinear_scale_frac", (2, 2, 5, 6), dict(scale_factor=1.7, mode="bilinear")),
    ("bilinear_scale_frac_align", (2, 2, 5, 6), dict(scale_factor=1.7, mode="bilinear", align_corners=True)),
    ("bilinear_down", (1, 3, 9, 8), dict(size=(4, 3), mode="bilinear")),
    ("bilinear_down_align", (1, 3, 9, 8), dict(size=(4, 3), mode="bilinear", align_corners=True)),
    ("bilinear_to_one_align", (1, 2, 1, 5), dict(size=(3, 1), mode="bilinear", align_corners=True)),
    ("bilinear_same_h", (1, 2, 6, 4), dict(scale_factor=(1.1, 2.25), mode="bilinear")),
    ("linear_size", (2, 3, 7), dict(size=12, mode="linear")),
    ("linear_align", (2, 3, 7), dict(size=12, mode="linear", align_corners=True)),
    ("linear_scale", (2, 3, 7), dict(scale_factor=2.5, mode="linear")),
    ("nearest1d_scale", (2, 2, 7), dict(scale_factor=1.5)),
    ("trilinear_size", (1, 2, 3, 4, 5), dict(size=(5, 3, 7), mode="trilinear")),
    ("trilinear_align", (1, 2, 3, 4, 5), dict(size=(5, 3, 7), mode="trilinear", align_corners=True)),
    ("trilinear_scale", (1, 1, 3, 4, 2), dict(scale_factor=1.5, mode="trilinear")),
    ("nearest3d_size", (1, 2, 3, 4, 5), dict(size=(4, 6, 3))),
]
for name, xs, kw in INTERPOLATE:
    record(name, randn(*xs), lambda x, kw=kw: F.interpolate(x, **kw))

save("resample")
