"""Golden values for kiln's F::pad and conv2d's padding modes (tests/functional_pad.rs),
and the text of PyTorch's print(model) for nn::summary (tests/summary.rs).

Run: .venv/bin/python scripts/golden/pad.py
  → tests/data/pad.safetensors, tests/data/summary.txt

pad cases store <case>.x, .gy (the upstream gradient), .out, .grad_x (float64); the
gradient is that of (out * gy).sum(). Conv cases also store .w, .b, .grad_w, .grad_b.
The PyTorch call of each case is in the case lists below.

summary.txt holds sections `=== <name>` followed by PyTorch's repr of a module (and,
for whole models, kiln's extra line `Total params: N (trainable N)`, the sums of
p.numel() over model.parameters(), all trainable).
"""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import DATA, OUT, randn, record, save

torch.manual_seed(20261130)


# name, x shape, (left, right, top, bottom), mode, value — F.pad(x, pad, mode=mode, value=value)
PADS = [
    ("constant", (2, 3, 4, 5), (1, 2, 0, 3), "constant", 0.5),
    ("constant_zero_3d", (3, 4, 4), (2, 0, 1, 1), "constant", 0.0),
    ("reflect", (2, 3, 4, 5), (2, 1, 3, 1), "reflect", None),
    ("reflect_max", (1, 2, 3, 4), (3, 3, 2, 2), "reflect", None),
    ("replicate", (2, 3, 4, 5), (3, 1, 2, 4), "replicate", None),
    ("replicate_1px", (1, 2, 1, 1), (2, 1, 1, 3), "replicate", None),
    ("circular", (2, 3, 4, 5), (2, 3, 1, 4), "circular", None),
    ("circular_full", (1, 2, 3, 4), (4, 4, 3, 3), "circular", None),
]
for name, xs, pad, mode, value in PADS:
    kw = {"value": value} if mode == "constant" else {}
    record(f"pad_{name}", randn(*xs), lambda x, pad=pad, mode=mode, kw=kw: F.pad(x, pad, mode=mode, **kw))


def record_conv(name, xs, c_out, k, mode, **opts):
    # nn.Conv2d(c_in, c_out, k, padding_mode=mode, **opts) with float64 weights
    conv = nn.Conv2d(xs[1], c_out, k, padding_mode=mode, dtype=torch.float64, **opts)
    x = randn(*xs).requires_grad_(True)
    y = conv(x)
    gy = torch.randn_like(y)
    (y * gy).sum().backward()
    OUT[f"{name}.x"] = x.detach()
    OUT[f"{name}.w"] = conv.weight.detach()
    OUT[f"{name}.b"] = conv.bias.detach()
    OUT[f"{name}.gy"] = gy
    OUT[f"{name}.out"] = y.detach()
    OUT[f"{name}.grad_x"] = x.grad
    OUT[f"{name}.grad_w"] = conv.weight.grad
    OUT[f"{name}.grad_b"] = conv.bias.grad


# name, x shape, out channels, kernel, padding_mode, other nn.Conv2d options
CONVS = [
    ("conv_zeros", (2, 3, 6, 7), 4, 3, "zeros", dict(padding=1)),
    ("conv_reflect", (2, 3, 6, 7), 4, 3, "reflect", dict(padding=1)),
    ("conv_replicate", (2, 3, 6, 7), 4, (3, 2), "replicate", dict(padding=(2, 1), stride=(2, 1))),
    ("conv_circular", (2, 4, 5, 6), 4, 3, "circular", dict(padding=2, dilation=2, groups=2)),
    ("conv_reflect_same", (1, 2, 5, 6), 3, (3, 4), "reflect", dict(padding="same")),
]
for name, xs, c_out, k, mode, opts in CONVS:
    record_conv(name, xs, c_out, k, mode, **opts)

save("pad")


# ---- print(model) -------------------------------------------------------------------
class DigitsNet(nn.Module):
    """examples/train_digits/model.rs's architecture."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d((4, 4)),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )


class Net(nn.Module):
    """API.md's summary example."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(8 * 4 * 4, 10)


def with_total(model):
    n = sum(p.numel() for p in model.parameters())
    return f"{model}\nTotal params: {n:,} (trainable {n:,})"


SECTIONS = [
    ("digits", with_total(DigitsNet())),
    ("net", with_total(Net())),
    # single layers: repr(layer)
    ("conv_default", repr(nn.Conv2d(3, 6, 3))),
    ("conv_all", repr(nn.Conv2d(4, 8, (3, 1), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2, bias=False, padding_mode="circular"))),
    ("conv_same", repr(nn.Conv2d(2, 2, 3, padding="same", padding_mode="reflect"))),
    ("linear_no_bias", repr(nn.Linear(84, 10, bias=False))),
    ("dropout", repr(nn.Dropout(0.5))),
    ("relu", repr(nn.ReLU())),
    ("gelu", repr(nn.GELU())),
    ("leaky_relu", repr(nn.LeakyReLU(0.2))),
    ("leaky_relu_default", repr(nn.LeakyReLU())),
    ("max_pool", repr(nn.MaxPool2d(3, 2))),
    ("max_pool_rect", repr(nn.MaxPool2d((2, 3), (1, 2), padding=1))),
    ("avg_pool", repr(nn.AvgPool2d(2, 2))),
    ("adaptive", repr(nn.AdaptiveAvgPool2d((2, 3)))),
    ("batch_norm1d", repr(nn.BatchNorm1d(5, eps=1e-3, momentum=0.01))),
    ("flatten", repr(nn.Flatten())),
    ("empty_sequential", repr(nn.Sequential())),
    # the transformer layers (appended when they landed)
    ("silu", repr(nn.SiLU())),
    ("tanh", repr(nn.Tanh())),
    ("softplus", repr(nn.Softplus())),
    ("softplus_args", repr(nn.Softplus(2.0, 10.0))),
    ("embedding", repr(nn.Embedding(65, 64))),
    ("embedding_pad", repr(nn.Embedding(10, 4, padding_idx=0))),
    ("layer_norm", repr(nn.LayerNorm(64))),
    ("layer_norm_no_affine", repr(nn.LayerNorm(8, eps=1e-6, elementwise_affine=False))),
    ("rms_norm", repr(nn.RMSNorm(64))),
    ("rms_norm_eps", repr(nn.RMSNorm(16, eps=1e-6))),
]
with open(os.path.join(DATA, "summary.txt"), "w") as f:
    for name, text in SECTIONS:
        f.write(f"=== {name}\n{text}\n")
print("wrote tests/data/summary.txt")
