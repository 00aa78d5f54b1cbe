"""Golden values for kiln's conv2d (tests/functional_conv.rs): forward output and
the gradient of every input.

Run: .venv/bin/python scripts/golden/conv.py  → tests/data/conv.safetensors

Each case stores <case>.x, .w, (.b), .gy (the upstream gradient), .out, .grad_x,
.grad_w, (.grad_b), all float64. The gradients are those of (out * gy).sum().
The PyTorch call of each case is in CASES below; the Rust tests repeat it.
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from weighted_op import r, record

torch.manual_seed(20261126)
out = {}


# name, x shape, w shape, bias?, conv2d keyword arguments
CASES = [
    # F.conv2d(x[2,3,7,9], w[4,3,3,2], b)
    ("basic", (2, 3, 7, 9), (4, 3, 3, 2), True, {}),
    # F.conv2d(x[2,3,9,8], w[5,3,3,3], b, stride=2, padding=1)
    ("stride2_pad1", (2, 3, 9, 8), (5, 3, 3, 3), True, dict(stride=2, padding=1)),
    # F.conv2d(x[2,4,9,8], w[6,2,3,2], stride=(2,1), padding=(1,0), dilation=(1,2), groups=2)
    ("mixed_groups2", (2, 4, 9, 8), (6, 2, 3, 2), False,
     dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    # F.conv2d(x[1,2,10,9], w[3,2,3,3], b, padding=2, dilation=2)
    ("dilation2", (1, 2, 10, 9), (3, 2, 3, 3), True, dict(padding=2, dilation=2)),
    # F.conv2d(x[1,4,8,7], w[4,1,3,3], b, padding=1, groups=4)   (depthwise)
    ("depthwise", (1, 4, 8, 7), (4, 1, 3, 3), True, dict(padding=1, groups=4)),
    # F.conv2d(x[2,3,6,7], w[6,1,3,2], stride=(1,2), groups=3)   (depthwise, multiplier 2)
    ("depthwise_mult2", (2, 3, 6, 7), (6, 1, 3, 2), False, dict(stride=(1, 2), groups=3)),
    # F.conv2d(x[1,5,6,7], w[4,5,1,1], b)   (1x1)
    ("pointwise", (1, 5, 6, 7), (4, 5, 1, 1), True, {}),
    # F.conv2d(x[1,6,6,7], w[4,3,1,1], groups=2)   (1x1, grouped)
    ("pointwise_groups2", (1, 6, 6, 7), (4, 3, 1, 1), False, dict(groups=2)),
    # F.conv2d(x[2,5,7,6], w[3,5,1,1], stride=2)   (1x1, strided)
    ("pointwise_stride2", (2, 5, 7, 6), (3, 5, 1, 1), False, dict(stride=2)),
    # F.conv2d(x[1,3,7,8], w[4,3,3,3], b, padding="same")
    ("same_3x3", (1, 3, 7, 8), (4, 3, 3, 3), True, dict(padding="same")),
    # F.conv2d(x[1,3,7,8], w[4,3,4,2], b, padding="same")   (asymmetric padding)
    ("same_4x2", (1, 3, 7, 8), (4, 3, 4, 2), True, dict(padding="same")),
    # F.conv2d(x[1,4,9,8], w[2,2,2,3], padding="same", dilation=(3,1), groups=2)
    ("same_dilated_groups", (1, 4, 9, 8), (2, 2, 2, 3), False,
     dict(padding="same", dilation=(3, 1), groups=2)),
    # F.conv2d(x[2,3,6,5], w[2,3,2,3], b, padding="valid")
    ("valid", (2, 3, 6, 5), (2, 3, 2, 3), True, dict(padding="valid")),
    # F.conv2d(x[2,6,8,9], w[9,2,4,3], b, stride=(3,2), padding=(2,1), groups=3)
    ("stride3_groups3", (2, 6, 8, 9), (9, 2, 4, 3), True,
     dict(stride=(3, 2), padding=(2, 1), groups=3)),
    # F.conv2d(x[1,2,3,3], w[2,2,5,5], b, padding=1)   (kernel exactly the padded input)
    ("kernel_fills_input", (1, 2, 3, 3), (2, 2, 5, 5), True, dict(padding=1)),
    # F.conv2d(x[3,6,5], w[2,3,3,3], b, padding=1)   (unbatched input)
    ("unbatched", (3, 6, 5), (2, 3, 3, 3), True, dict(padding=1)),
    # F.conv2d(x[4,3,6,6], w[4,3,3,3], b, stride=2, padding=1)   (images split across threads)
    ("batch4", (4, 3, 6, 6), (4, 3, 3, 3), True, dict(stride=2, padding=1)),
    # The tensor-core kernels' edges (conv_tc.cu: 64- or 128-row tiles of 128 columns,
    # K in slices of 16 (tf32) or 32 (halves)):
    # F.conv2d(x[1,3,13,13], w[8,3,7,7], b, stride=2, padding=3)   (stem: C=3, K=147)
    ("tc_stem", (1, 3, 13, 13), (8, 3, 7, 7), True, dict(stride=2, padding=3)),
    # F.conv2d(x[1,8,4,3], w[72,8,3,1], b, padding=1)   (M=72: a 128-row tile, cut; K=24)
    ("tc_wide", (1, 8, 4, 3), (72, 8, 3, 1), True, dict(padding=1)),
    # F.conv2d(x[2,8,7,7], w[12,8,1,1], stride=2)   (1x1 stride-2 downsample)
    ("tc_down1x1", (2, 8, 7, 7), (12, 8, 1, 1), False, dict(stride=2)),
    # F.conv2d(x[2,5,9,9], w[7,5,3,3], b, stride=2, padding=1)   (3x3 stride 2)
    ("tc_stride2_3x3", (2, 5, 9, 9), (7, 5, 3, 3), True, dict(stride=2, padding=1)),
    # F.conv2d(x[1,3,9,9], w[4,3,3,3], b, stride=2, padding=2, dilation=2)   (inputs of
    # odd row or column (+2) meet no tap: their gradient phases have none)
    ("stride2_dilation2", (1, 3, 9, 9), (4, 3, 3, 3), True, dict(stride=2, padding=2, dilation=2)),
    # The channels-last forward (conv_tc.cu's conv_tc_fwd_nhwc_*, channels per group a
    # multiple of 8, so of a 16-byte chunk for halves and TF32 alike):
    # F.conv2d(x[2,32,7,8], w[10,16,3,3], b, padding=(1,2), dilation=2, groups=2)
    # (N=80 over two images: a cut column tile; two chunks per tap for halves; K=144:
    # a slice of halves cut at a chunk; M=5)
    ("nhwc_groups2", (2, 32, 7, 8), (10, 16, 3, 3), True,
     dict(padding=(1, 2), dilation=2, groups=2)),
    # F.conv2d(x[1,8,9,9], w[70,8,3,3], stride=2, padding=1)   (a 128-row tile, cut)
    ("nhwc_stride2", (1, 8, 9, 9), (70, 8, 3, 3), False, dict(stride=2, padding=1)),
    # The channels-last input gradient (conv_tc_bwd_input_nhwc_*, output channels per
    # group a multiple of 8), with the input's 3 channels per group keeping the forward
    # in NCHW:
    # F.conv2d(x[2,6,9,8], w[32,3,3,3], b, stride=2, padding=(1,2), dilation=(1,2), groups=2)
    # (stride-2 phases, one of them tapless in x; K per phase 16 x taps: two chunks of
    # halves per tap; M=3 and every column tile cut)
    ("nhwc_dgrad", (2, 6, 9, 8), (32, 3, 3, 3), True,
     dict(stride=2, padding=(1, 2), dilation=(1, 2), groups=2)),
]

for name, xs, ws, has_b, kw in CASES:
    b = r(ws[0]) if has_b else None
    record(out, name, r(*xs), r(*ws), b, lambda x, w, b, kw=kw: F.conv2d(x, w, b, **kw))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "conv.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path)
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
