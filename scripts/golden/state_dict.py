"""Golden fixtures for checkpoints: PyTorch state_dicts that must load into the
equivalent kiln models (tests/checkpoint.rs, tests/checkpoint_conv.rs) and give
PyTorch's outputs, and PyTorch's default initialisation statistics.

Writes
  tests/data/state_dict_torch.safetensors       exactly `save_file(net.state_dict())` of `Net`
  tests/data/state_dict_conv_torch.safetensors  exactly `save_file(conv_net.state_dict())` of `conv_net()`
  tests/data/state_dict.safetensors             golden tensors:
    net.x, net.out          `Net`'s input and eval-mode output
    conv.x, conv.out        `conv_net()`'s input and eval-mode output (the saved state)
    conv.train_x, conv.train_out, conv.running_mean, conv.running_var
                            then one more training-mode forward from the saved state:
                            its output and BatchNorm2d's running stats afterwards
    init.<layer>.<param>.{bound,mean,var,max_abs}
                            fresh PyTorch layers (see `init_stats`): the bound
                            1/sqrt(fan_in) from PyTorch's own fan-in helper and the
                            sample statistics of PyTorch's default init
    init.bn.<name>          a fresh `nn.BatchNorm2d(32)`'s state_dict

Run: .venv/bin/python scripts/golden/state_dict.py
"""
import math
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


def conv_net():
    # Names: 0.{weight,bias}, 1.{weight,bias,running_mean,running_var,num_batches_tracked},
    # 5.{weight,bias}. Input (N, 2, 6, 4): conv keeps 6x4, the pool halves it to 3x2.
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 2, 5),
    )


def conv_fixture(golden):
    torch.manual_seed(1)
    net = conv_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    net.train()
    for _ in range(2):  # moves every parameter; num_batches_tracked == 2
        xb = torch.randn(8, 2, 6, 4) * 2.0 + 1.0
        yb = torch.randint(0, 5, (8,))
        opt.zero_grad()
        nn.functional.cross_entropy(net(xb), yb).backward()
        opt.step()
    net.eval()
    x = torch.randn(3, 2, 6, 4)
    with torch.no_grad():
        out = net(x)
    save_file(net.state_dict(), os.path.join(DATA, "state_dict_conv_torch.safetensors"))
    # From the saved state, one more training-mode forward: batch statistics, and the
    # running stats move (momentum 0.1, unbiased variance).
    net.train()
    train_x = torch.randn(5, 2, 6, 4) * 0.5 - 1.0
    with torch.no_grad():
        train_out = net(train_x)
    golden.update({
        "conv.x": x, "conv.out": out,
        "conv.train_x": train_x, "conv.train_out": train_out,
        "conv.running_mean": net[1].running_mean.clone(),
        "conv.running_var": net[1].running_var.clone(),
    })


def init_stats(golden):
    # Fresh layers big enough for tight sample statistics. PyTorch's default:
    # weight kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in)).
    torch.manual_seed(2)
    layers = {
        "conv": nn.Conv2d(16, 32, (3, 5)),
        "conv_grouped": nn.Conv2d(16, 32, 3, groups=4),
        "linear": nn.Linear(300, 64),
    }
    for lname, layer in layers.items():
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        bound = 1.0 / math.sqrt(fan_in)
        for pname, p in layer.named_parameters():
            p = p.detach().double()
            key = f"init.{lname}.{pname}"
            golden[key + ".bound"] = torch.tensor(bound, dtype=torch.float64)
            golden[key + ".mean"] = p.mean()
            golden[key + ".var"] = p.var(unbiased=False)
            golden[key + ".max_abs"] = p.abs().max()
    for name, t in nn.BatchNorm2d(32).state_dict().items():
        golden[f"init.bn.{name}"] = t.clone()


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
    print({k: (tuple(v.shape), str(v.dtype)) for k, v in net.state_dict().items()})
    golden = {"net.x": x, "net.out": out}
    conv_fixture(golden)
    init_stats(golden)
    save_file(golden, os.path.join(DATA, "state_dict.safetensors"))


if __name__ == "__main__":
    main()
