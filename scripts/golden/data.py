"""Golden fixtures for kiln::data and kiln::models (tests/data_transforms.rs,
tests/models_resnet.rs).

Writes
  tests/data/transforms.safetensors   torchvision's crop/flip/normalize on fixed inputs:
    x                  (3, 2, 5, 6) f32 input batch
    crop.params        (3, 3) i64 rows (top, left, flip) in padded coordinates
    crop.out           RandomCrop((4, 4), padding=2) + RandomHorizontalFlip with those
                       choices, sample by sample:
                         img = TF.pad(x[b], [2, 2, 2, 2])            # RandomCrop pads first
                         img = TF.crop(img, top, left, 4, 4)          # then crops (i, j, h, w)
                         img = TF.hflip(img) if flip else img         # RandomHorizontalFlip
    rect.params, rect.out   the same with size (3, 5), padding 1
    fcrop.out          TF.crop(x, 1, 2, 3, 3)        (one region for the whole batch)
    fcrop_out.out      TF.crop(x, -1, 4, 3, 4)       (partly outside: zeros, as torchvision pads)
    hflip.out          TF.hflip(x)
    norm.mean, norm.std, norm.out   TF.normalize(x, mean, std)
  tests/data/resnet18_w4_cifar_torch.safetensors     save_file(model.state_dict()) of
  tests/data/resnet18_w4_imagenet_torch.safetensors  ResNet-18 at width 4 (see below)
  tests/data/resnet18.safetensors     inputs and outputs of those models:
    <stem>.x           (2, 3, 32, 32) input
    <stem>.eval        eval-mode logits (running statistics)
    <stem>.train       then train-mode logits (batch statistics) of the same input
    tv.<name>          the shape (i64 vector) of every entry of torchvision's own
                       resnet18(num_classes=10).state_dict() with the CIFAR stem
                       (conv1 = Conv2d(3, 64, 3, 1, 1, bias=False), maxpool = Identity),
                       so kiln's full-size resnet18 is checked name by name and shape by
                       shape against torchvision itself.

Why width 4: torchvision's resnet18 has 11.2 M parameters (45 MB in f32), too big to
commit. `TvResNet` below is torchvision's ResNet(BasicBlock, [2, 2, 2, 2]) written out
with torchvision's module names and a `width` (channels of layer1; torchvision fixes it
at 64). The script checks that at width 64 its state_dict has exactly torchvision's
names and shapes (both stems), so the width-4 fixture (~45 k parameters, ~190 kB)
exercises the same architecture and names. Batch norm statistics and affine
parameters are randomised so that eval mode is not an identity.

Run: .venv/bin/python scripts/golden/data.py   (torch 2.15.0, torchvision 0.29.2)
"""
import os

import torch
import torchvision
import torchvision.transforms.v2.functional as TF
from safetensors.torch import save_file
from torch import nn

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DATA = os.path.join(ROOT, "tests", "data")


def transforms_fixture():
    torch.manual_seed(0)
    x = torch.randn(3, 2, 5, 6)
    out = {"x": x}

    def crop_flip(params, size, padding):
        rows = []
        for b, (top, left, flip) in enumerate(params.tolist()):
            img = TF.pad(x[b], [padding] * 4)
            img = TF.crop(img, top, left, size[0], size[1])
            rows.append(TF.hflip(img) if flip else img)
        return torch.stack(rows)

    # Padded images are 9 x 10: tops 0..=5, lefts 0..=6 for a 4 x 4 crop.
    crop = torch.tensor([[0, 0, 0], [3, 1, 1], [5, 6, 1]])
    out["crop.params"], out["crop.out"] = crop, crop_flip(crop, (4, 4), 2)
    # Padded images are 7 x 8: tops 0..=4, lefts 0..=3 for a 3 x 5 crop.
    rect = torch.tensor([[4, 3, 1], [0, 2, 0], [2, 0, 1]])
    out["rect.params"], out["rect.out"] = rect, crop_flip(rect, (3, 5), 1)
    out["fcrop.out"] = TF.crop(x, 1, 2, 3, 3)
    out["fcrop_out.out"] = TF.crop(x, -1, 4, 3, 4)
    out["hflip.out"] = TF.hflip(x)
    mean, std = [0.25, -0.5], [0.5, 2.0]
    out["norm.mean"] = torch.tensor(mean, dtype=torch.float64)
    out["norm.std"] = torch.tensor(std, dtype=torch.float64)
    out["norm.out"] = TF.normalize(x, mean, std)
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(DATA, "transforms.safetensors"))


class BasicBlock(nn.Module):
    # torchvision.models.resnet.BasicBlock, names conv1 bn1 conv2 bn2 downsample.{0,1}
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TvResNet(nn.Module):
    # torchvision.models.resnet.ResNet(BasicBlock, [2, 2, 2, 2]) with a width.
    def __init__(self, width=64, num_classes=10, stem="cifar"):
        super().__init__()
        w = width
        if stem == "cifar":
            self.conv1 = nn.Conv2d(3, w, 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(w, w, 1), BasicBlock(w, w, 1))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w, 1))
        self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w, 1))
        self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 2), BasicBlock(8 * w, 8 * w, 1))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * w, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def torchvision_resnet18(stem):
    m = torchvision.models.resnet18(num_classes=10)
    if stem == "cifar":  # the usual CIFAR adaptation
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
    return m


def shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def resnet_fixture():
    golden = {}
    for stem in ["cifar", "imagenet"]:
        assert shapes(TvResNet(64, 10, stem)) == shapes(torchvision_resnet18(stem)), stem
        torch.manual_seed(1 if stem == "cifar" else 2)
        model = TvResNet(4, 10, stem)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.1)
                    m.running_mean.normal_(0.0, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.num_batches_tracked.fill_(3)
        save_file(model.state_dict(), os.path.join(DATA, f"resnet18_w4_{stem}_torch.safetensors"))
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            model.eval()
            golden[f"{stem}.eval"] = model(x)
            model.train()
            golden[f"{stem}.train"] = model(x)
        golden[f"{stem}.x"] = x
    for name, shape in shapes(torchvision_resnet18("cifar")).items():
        golden[f"tv.{name}"] = torch.tensor(shape, dtype=torch.int64)
    save_file(golden, os.path.join(DATA, "resnet18.safetensors"))


if __name__ == "__main__":
    os.makedirs(DATA, exist_ok=True)
    transforms_fixture()
    resnet_fixture()
