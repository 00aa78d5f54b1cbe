"""Golden fixture for checkpoints: a PyTorch state_dict that must load into the
equivalent kiln model (tests/checkpoint.rs) and give PyTorch's outputs.

Writes
  tests/data/state_dict_torch.safetensors  exactly `safetensors.torch.save_file(net.state_dict())`
  tests/data/state_dict.safetensors        golden tensors: `net.x` (input), `net.out` (eval output)

Run: /work/.torchvenv/bin/python scripts/golden/state_dict.py
"""
import os

import torch
from torch import nn
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DATA = os.path.join(ROOT, "tests", "data")


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(7, 3)

    def forward(self, h):
        return self.fc(h)


class Net(nn.Module):
    # Names: body.0.{weight,bias}, body.1.{weight,bias,running_mean,running_var,
    # num_batches_tracked}, heads.{0,1}.fc.{weight,bias}
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(5, 7), nn.BatchNorm1d(7), nn.ReLU())
        self.heads = nn.ModuleList([Head(), Head()])

    def forward(self, x):
        h = self.body(x)
        return self.heads[0](h) - 2.0 * self.heads[1](h)


def main():
    torch.manual_seed(0)
    net = Net()
    bn = net.body[1]
    with torch.no_grad():  # move the affine BN parameters off their defaults (1, 0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    net.train()
    for _ in range(3):  # non-trivial running stats, num_batches_tracked == 3
        net(torch.randn(16, 5) * 2.0 + 1.0)
    net.eval()
    x = torch.randn(4, 5)
    with torch.no_grad():
        out = net(x)
    os.makedirs(DATA, exist_ok=True)
    save_file(net.state_dict(), os.path.join(DATA, "state_dict_torch.safetensors"))
    save_file({"net.x": x, "net.out": out}, os.path.join(DATA, "state_dict.safetensors"))
    print({k: (tuple(v.shape), str(v.dtype)) for k, v in net.state_dict().items()})


if __name__ == "__main__":
    main()
