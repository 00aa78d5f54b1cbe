"""Golden fixtures for kiln::models' torchvision classifiers (tests/models_torchvision.rs).

Each architecture is built by torchvision's own classes at a reduced size (full-size
state_dicts are 10-350 MB, too big to commit):

  mobilenet_v3   MobileNetV3([InvertedResidualConfig(8, 3, 8, 8, True, "RE", 2, 1, 1.0),
                              InvertedResidualConfig(8, 3, 24, 16, False, "RE", 2, 1, 1.0),
                              InvertedResidualConfig(16, 5, 32, 16, True, "HS", 1, 1, 1.0),
                              InvertedResidualConfig(16, 3, 32, 24, True, "HS", 2, 2, 1.0)],
                             last_channel=32, num_classes=10, dropout=0.0)
  efficientnet   EfficientNet([MBConvConfig(1, 3, 1, 8, 8, 1), MBConvConfig(6, 3, 2, 8, 16, 2),
                               MBConvConfig(6, 5, 1, 16, 24, 1)],
                              dropout=0.0, stochastic_depth_prob=0.0, num_classes=10)
  convnext       ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 2)],
                          stochastic_depth_prob=0.0, num_classes=10)
  vit            VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                   hidden_dim=32, mlp_dim=64, num_classes=10)

Dropout and stochastic-depth probabilities are 0 so that train mode is deterministic
(kiln's F::stochastic_depth and F::dropout are tested on their own); train mode still
differs from eval mode through batch norm's batch statistics.

After construction every norm weight, layer_scale, running statistic and bias is
randomised, linear weights are drawn from U(-1/sqrt(in), 1/sqrt(in)), and the class
token is randomised (torchvision starts some of these at 0 or 1e-6, which would make
the logits blind to whole layers).

Writes
  tests/data/tv_<name>_torch.safetensors   save_file(model.state_dict()) of the model
  tests/data/torchvision_models.safetensors
    <name>.x       (2, 3, 32, 32) input
    <name>.eval    model.eval(); model(x)    (logits, (2, 10))
    <name>.train   model.train(); model(x)   (the same input, batch statistics)
  tests/data/torchvision_names/<model>.txt  one line `name d0,d1,...` per entry of
    torchvision.models.<model>().state_dict() (full size, 1000 classes), for
    mobilenet_v3_small, mobilenet_v3_large, efficientnet_b0, convnext_tiny, vit_b_16:
    kiln's full-size models are checked name by name and shape by shape against it.

Run: .venv/bin/python scripts/golden/torchvision_models.py   (torch 2.15.0, torchvision 0.29.2)
"""
import math
import os

import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from torchvision.models.convnext import CNBlockConfig, ConvNeXt
from torchvision.models.efficientnet import EfficientNet, MBConvConfig
from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3
from torchvision.models.vision_transformer import VisionTransformer

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")
FULL_SIZE = ["mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16"]


def mobilenet_v3():
    c = InvertedResidualConfig
    setting = [
        c(8, 3, 8, 8, True, "RE", 2, 1, 1.0),
        c(8, 3, 24, 16, False, "RE", 2, 1, 1.0),
        c(16, 5, 32, 16, True, "HS", 1, 1, 1.0),
        c(16, 3, 32, 24, True, "HS", 2, 2, 1.0),
    ]
    return MobileNetV3(setting, last_channel=32, num_classes=10, dropout=0.0)


def efficientnet():
    setting = [MBConvConfig(1, 3, 1, 8, 8, 1), MBConvConfig(6, 3, 2, 8, 16, 2), MBConvConfig(6, 5, 1, 16, 24, 1)]
    return EfficientNet(setting, dropout=0.0, stochastic_depth_prob=0.0, num_classes=10)


def convnext():
    setting = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 2)]
    return ConvNeXt(setting, stochastic_depth_prob=0.0, num_classes=10)


def vit():
    return VisionTransformer(
        image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )


@torch.no_grad()
def randomise(model):
    for m in model.modules():
        if isinstance(m, nn.Linear):
            bound = 1 / math.sqrt(m.in_features)
            m.weight.uniform_(-bound, bound)
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            m.weight.uniform_(0.5, 1.5)
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0.0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.num_batches_tracked.fill_(3)
    for name, p in model.named_parameters():
        if name.endswith("layer_scale"):
            p.uniform_(0.5, 1.5)
        elif name.endswith("bias") or name.endswith("in_proj_bias"):
            p.normal_(0.0, 0.1)
        elif name == "class_token":
            p.normal_(0.0, 0.5)


def main():
    golden = {}
    for seed, (name, make) in enumerate(
        [("mobilenet_v3", mobilenet_v3), ("efficientnet", efficientnet), ("convnext", convnext), ("vit", vit)]
    ):
        torch.manual_seed(seed)
        model = make()
        randomise(model)
        save_file(model.state_dict(), os.path.join(DATA, f"tv_{name}_torch.safetensors"))
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            model.eval()
            golden[f"{name}.eval"] = model(x)
            model.train()
            golden[f"{name}.train"] = model(x)
        golden[f"{name}.x"] = x
    save_file(golden, os.path.join(DATA, "torchvision_models.safetensors"))
    os.makedirs(os.path.join(DATA, "torchvision_names"), exist_ok=True)
    for model in FULL_SIZE:
        sd = getattr(torchvision.models, model)().state_dict()
        lines = [f"{k} {','.join(str(d) for d in v.shape)}\n" for k, v in sd.items()]
        with open(os.path.join(DATA, "torchvision_names", f"{model}.txt"), "w") as f:
            f.writelines(lines)


if __name__ == "__main__":
    main()
