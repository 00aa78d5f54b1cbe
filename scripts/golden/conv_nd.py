"""Golden values for kiln's conv1d, conv3d, conv_transpose1d and conv_transpose2d
(tests/functional_conv_nd.rs): forward output and the gradient of every input.

Run: .venv/bin/python scripts/golden/conv_nd.py  → tests/data/conv_nd.safetensors

Each case stores <case>.x, .w, (.b), .gy (the upstream gradient), .out, .grad_x,
.grad_w, (.grad_b), all float64 (see weighted_op.py). The PyTorch call of each case
is the comment above it; the Rust tests repeat it. A `padding_mode` other than zeros
is what nn.Conv1d/nn.Conv3d do: F.pad with the mode, then the unpadded convolution.
"""
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from weighted_op import r, record

torch.manual_seed(20261207)
out = {}


def padded(conv, pad, mode, **kw):
    """nn.ConvNd's forward with `padding_mode=mode`: F.pad, then no padding."""
    return lambda x, w, b: conv(F.pad(x, pad, mode=mode), w, b, **kw)


# name, x shape, w shape, bias?, fn(x, w, b)
CASES = [
    # F.conv1d(x[2,3,9], w[4,3,3], b)
    ("c1_basic", (2, 3, 9), (4, 3, 3), True, lambda x, w, b: F.conv1d(x, w, b)),
    # F.conv1d(x[2,4,11], w[6,2,3], stride=2, padding=1, dilation=2, groups=2)
    ("c1_mixed", (2, 4, 11), (6, 2, 3), False,
     lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2)),
    # F.conv1d(x[1,3,8], w[4,3,4], b, padding="same")   (odd total padding: one more after)
    ("c1_same", (1, 3, 8), (4, 3, 4), True, lambda x, w, b: F.conv1d(x, w, b, padding="same")),
    # F.conv1d(x[2,4,10], w[4,1,3], b, padding=1, groups=4)   (depthwise)
    ("c1_depthwise", (2, 4, 10), (4, 1, 3), True,
     lambda x, w, b: F.conv1d(x, w, b, padding=1, groups=4)),
    # nn.Conv1d(3, 4, 3, padding=2, padding_mode="reflect"): F.conv1d(F.pad(x[2,3,7], (2,2), "reflect"), w[4,3,3], b)
    ("c1_reflect", (2, 3, 7), (4, 3, 3), True, padded(F.conv1d, (2, 2), "reflect")),
    # F.conv1d(x[3,7], w[2,3,3], b, padding=1)   (unbatched)
    ("c1_unbatched", (3, 7), (2, 3, 3), True, lambda x, w, b: F.conv1d(x, w, b, padding=1)),
    # F.conv1d(x[2,16,9], w[16,8,3], b, padding=1, groups=2)   (channels-last on tensor cores)
    ("c1_nhwc", (2, 16, 9), (16, 8, 3), True,
     lambda x, w, b: F.conv1d(x, w, b, padding=1, groups=2)),
    # F.conv3d(x[2,3,5,6,4], w[4,3,3,2,3], b)
    ("c3_basic", (2, 3, 5, 6, 4), (4, 3, 3, 2, 3), True, lambda x, w, b: F.conv3d(x, w, b)),
    # F.conv3d(x[1,4,7,6,5], w[6,2,3,3,3], stride=(2,1,2), padding=(1,0,1), dilation=(1,2,1), groups=2)
    ("c3_mixed", (1, 4, 7, 6, 5), (6, 2, 3, 3, 3), False,
     lambda x, w, b: F.conv3d(x, w, b, stride=(2, 1, 2), padding=(1, 0, 1),
                              dilation=(1, 2, 1), groups=2)),
    # F.conv3d(x[1,2,5,4,6], w[3,2,2,3,4], b, padding="same")
    ("c3_same", (1, 2, 5, 4, 6), (3, 2, 2, 3, 4), True,
     lambda x, w, b: F.conv3d(x, w, b, padding="same")),
    # F.conv3d(x[1,3,4,5,5], w[3,1,3,3,3], b, padding=1, groups=3)   (depthwise)
    ("c3_depthwise", (1, 3, 4, 5, 5), (3, 1, 3, 3, 3), True,
     lambda x, w, b: F.conv3d(x, w, b, padding=1, groups=3)),
    # nn.Conv3d(2, 3, 3, padding=1, padding_mode="replicate"):
    # F.conv3d(F.pad(x[1,2,4,5,3], (1,1,1,1,1,1), "replicate"), w[3,2,3,3,3], b)
    ("c3_replicate", (1, 2, 4, 5, 3), (3, 2, 3, 3, 3), True,
     padded(F.conv3d, (1, 1, 1, 1, 1, 1), "replicate")),
    # nn.Conv3d(2, 2, (3,1,3), stride=2, padding=(1,0,2), padding_mode="circular"):
    # F.conv3d(F.pad(x[2,2,4,3,5], (2,2,0,0,1,1), "circular"), w[2,2,3,1,3], stride=2)
    ("c3_circular", (2, 2, 4, 3, 5), (2, 2, 3, 1, 3), False,
     padded(F.conv3d, (2, 2, 0, 0, 1, 1), "circular", stride=2)),
    # F.conv3d(x[2,4,4,4], w[3,2,2,2,2], b, stride=2)   (unbatched)
    ("c3_unbatched", (2, 4, 4, 4), (3, 2, 2, 2, 2), True,
     lambda x, w, b: F.conv3d(x, w, b, stride=2)),
    # F.conv3d(x[1,8,3,4,5], w[16,8,2,3,3], b, padding=(0,1,1))   (channels-last on tensor cores)
    ("c3_nhwc", (1, 8, 3, 4, 5), (16, 8, 2, 3, 3), True,
     lambda x, w, b: F.conv3d(x, w, b, padding=(0, 1, 1))),
    # F.conv_transpose1d(x[2,4,6], w[4,3,3], b)
    ("t1_basic", (2, 4, 6), (4, 3, 3), True, lambda x, w, b: F.conv_transpose1d(x, w, b)),
    # F.conv_transpose1d(x[2,4,5], w[4,3,3], b, stride=2, padding=1, output_padding=1)
    ("t1_stride2", (2, 4, 5), (4, 3, 3), True,
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2, padding=1, output_padding=1)),
    # F.conv_transpose1d(x[1,6,7], w[6,2,3], stride=3, padding=2, output_padding=1, groups=3, dilation=2)
    ("t1_mixed", (1, 6, 7), (6, 2, 3), False,
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=3, padding=2, output_padding=1,
                                        groups=3, dilation=2)),
    # F.conv_transpose1d(x[4,5], w[4,2,2], b, stride=2)   (unbatched)
    ("t1_unbatched", (4, 5), (4, 2, 2), True,
     lambda x, w, b: F.conv_transpose1d(x, w, b, stride=2)),
    # F.conv_transpose2d(x[2,3,4,5], w[3,4,3,3], b)
    ("t2_basic", (2, 3, 4, 5), (3, 4, 3, 3), True, lambda x, w, b: F.conv_transpose2d(x, w, b)),
    # F.conv_transpose2d(x[2,4,5,4], w[4,3,2,2], b, stride=2)   (U-Net's upsampling)
    ("t2_stride2", (2, 4, 5, 4), (4, 3, 2, 2), True,
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2)),
    # F.conv_transpose2d(x[1,4,5,6], w[4,6,3,3], b, stride=2, padding=1, output_padding=1)
    ("t2_outpad", (1, 4, 5, 6), (4, 6, 3, 3), True,
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)),
    # F.conv_transpose2d(x[2,6,4,5], w[6,2,3,2], stride=(2,3), padding=(1,0), output_padding=(0,2), groups=3, dilation=(2,1))
    ("t2_mixed", (2, 6, 4, 5), (6, 2, 3, 2), False,
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=(2, 3), padding=(1, 0),
                                        output_padding=(0, 2), groups=3, dilation=(2, 1))),
    # F.conv_transpose2d(x[1,2,4,4], w[2,3,3,3], b, dilation=2, output_padding=1)
    # (output_padding below the dilation, not the stride: the last row and column are
    # reached by no input, bias only)
    ("t2_outpad_dilation", (1, 2, 4, 4), (2, 3, 3, 3), True,
     lambda x, w, b: F.conv_transpose2d(x, w, b, dilation=2, output_padding=1)),
    # F.conv_transpose2d(x[4,3,3], w[4,2,3,3], b, stride=2, padding=1)   (unbatched)
    ("t2_unbatched", (4, 3, 3), (4, 2, 3, 3), True,
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1)),
    # F.conv_transpose2d(x[2,16,5,5], w[16,8,3,3], b, stride=2, padding=1, output_padding=1)
    # (channels-last on tensor cores: 16 channels in the forward, 8 in the input gradient)
    ("t2_nhwc", (2, 16, 5, 5), (16, 8, 3, 3), True,
     lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)),
]

for name, xs, ws, has_b, fn in CASES:
    # One bias per output channel: w[0] of a convolution, w[1] of a transposed one
    # (the transposed cases with a bias have one group).
    b = r(ws[0] if name.startswith("c") else ws[1]) if has_b else None
    record(out, name, r(*xs), r(*ws), b, fn)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "conv_nd.safetensors")
save_file({k: v.contiguous() for k, v in out.items()}, path)
print(f"wrote {len(out)} tensors to {os.path.normpath(path)}")
