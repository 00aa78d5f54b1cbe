#!/usr/bin/env python3
"""Golden values for nn::utils::fuse_conv_bn_eval: torch.nn.utils.fusion.fuse_conv_bn_eval.

Run from the repository root:

    .venv/bin/python scripts/golden/fusion.py

and commit the regenerated tests/data/fusion.safetensors; tests/nn_fusion.rs reads it.

Per case `<c>`: the convolution's `<c>.conv.weight` (and `<c>.conv.bias` when it has
one), the batch norm's `<c>.bn.{weight,bias,running_mean,running_var}`, an input
`<c>.x`, the fused convolution's `<c>.fused.{weight,bias}`, and `<c>.out`, the fused
convolution's output for `x` (equal, up to rounding, to `bn(conv(x))` in eval mode).
Each case's PyTorch construction is the comment above it.
"""
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from common import F64, OUT, positive, randn, save

torch.manual_seed(0)


def fuse_case(name, conv, bn, x):
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(randn(*p.shape, dtype=p.dtype))
        bn.weight.copy_(randn(bn.num_features, dtype=bn.weight.dtype))
        bn.bias.copy_(randn(bn.num_features, dtype=bn.bias.dtype))
        bn.running_mean.copy_(randn(bn.num_features, dtype=bn.running_mean.dtype))
        bn.running_var.copy_(positive(bn.num_features, dtype=bn.running_var.dtype))
    conv.eval()
    bn.eval()
    fused = fuse_conv_bn_eval(conv, bn)
    OUT[f"{name}.conv.weight"] = conv.weight.detach().clone()
    if conv.bias is not None:
        OUT[f"{name}.conv.bias"] = conv.bias.detach().clone()
    for key in ["weight", "bias", "running_mean", "running_var"]:
        OUT[f"{name}.bn.{key}"] = getattr(bn, key).detach().clone()
    OUT[f"{name}.x"] = x
    OUT[f"{name}.fused.weight"] = fused.weight.detach().clone()
    OUT[f"{name}.fused.bias"] = fused.bias.detach().clone()
    OUT[f"{name}.out"] = fused(x).detach()


# plain: Conv2d(3, 4, 3, padding=1) then BatchNorm2d(4), float64
fuse_case(
    "plain",
    nn.Conv2d(3, 4, 3, padding=1, dtype=F64),
    nn.BatchNorm2d(4, dtype=F64),
    randn(2, 3, 5, 5),
)
# no_bias_strided: Conv2d(4, 6, (3, 2), stride=2, bias=False) then BatchNorm2d(6, eps=1e-3), float64
fuse_case(
    "no_bias_strided",
    nn.Conv2d(4, 6, (3, 2), stride=2, bias=False, dtype=F64),
    nn.BatchNorm2d(6, eps=1e-3, dtype=F64),
    randn(1, 4, 7, 6),
)
# grouped_f32: Conv2d(4, 8, 3, groups=2, padding=1, dilation=1) then BatchNorm2d(8), float32
fuse_case(
    "grouped_f32",
    nn.Conv2d(4, 8, 3, groups=2, padding=1),
    nn.BatchNorm2d(8),
    randn(2, 4, 6, 6, dtype=torch.float32),
)
# depthwise: Conv2d(5, 5, 3, groups=5, bias=False) then BatchNorm2d(5), float64
fuse_case(
    "depthwise",
    nn.Conv2d(5, 5, 3, groups=5, bias=False, dtype=F64),
    nn.BatchNorm2d(5, dtype=F64),
    randn(1, 5, 4, 4),
)

save("fusion")
