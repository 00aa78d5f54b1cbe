"""Golden fixtures for reading PyTorch's `torch.save` files (tests/pth.rs,
tests/pth_hostile.rs): .pth/.pt files written by torch.save, each beside a
safetensors "twin" holding the same tensors, flattened to dotted names and made
contiguous (`flatten` below is the naming kiln::load_tensors promises).

Writes tests/data/pth/
  resnet18_w4.pth       torch.save(model.state_dict()) of the width-4 ResNet-18 (CIFAR
                        stem) of scripts/golden/data.py, loaded from its twin
                        tests/data/resnet18_w4_cifar_torch.safetensors: torchvision's
                        names and layout (OrderedDict, _metadata, I64
                        num_batches_tracked), ~190 kB
  checkpoint.pt         {"model": net.state_dict(), "optimizer": Adam's state_dict
                        after two steps, "epoch": 3, "config": {...}, "losses": [...]}
                        (keys: model.0.weight, optimizer.state.0.exp_avg, ...; the
                        epoch, config and the optimizer's param_groups are skipped)
  dtypes.pt             one tensor per dtype kiln has (F32, F64, F16, BF16, I64, U8),
                        a 0-d and an empty tensor, an nn.Parameter (_rebuild_parameter)
                        and a tensor and a Parameter with Python attributes
                        (_rebuild_from_type_v2, _rebuild_parameter_with_state)
  views.pt              views sharing storages: rows, a column (stride 6), a transposed
                        view, an offset block, a stepped slice, an expanded (stride 0)
                        view, the same tensor under two keys (tied weights), a
                        transposed Linear weight, views of an F16 and an I64 storage
  views_protocol4.pt    views.pt with pickle_protocol=4 (FRAME, MEMOIZE, STACK_GLOBAL)
  dtypes_nocrc.pt       dtypes.pt with torch.serialization.set_crc32_options(False)
  *.safetensors         each file's twin (checkpoint, dtypes, views)
  hostile_*             files kiln must refuse with an Err, each made by PyTorch:
    hostile_module.pt     torch.save(nn.Linear(2, 2)): a pickled module (GLOBAL
                          torch.nn.modules.linear.Linear)
    hostile_system.pt     torch.save of an object whose __reduce__ is
                          (os.system, ("touch <marker>",)): GLOBAL posix.system + REDUCE
    hostile_bool.pt       {"mask": a bool tensor}: a dtype kiln lacks (torch.BoolStorage)
    hostile_int32.pt      {"ids": an int32 tensor}: torch.IntStorage
    hostile_legacy.pth    torch.save(..., _use_new_zipfile_serialization=False): the
                          pre-1.6 format, not a zip archive
    hostile_deflated.pth  dtypes.pt re-zipped with ZIP_DEFLATED entries
    hostile_jit.pt        torch.jit.save of a scripted nn.Linear (a TorchScript archive)
  The other hostile files (truncated zips, size bombs, recursion and memo bombs, bad
  opcodes, ...) are built byte by byte in tests/pth_hostile.rs.

Run: .venv/bin/python scripts/golden/pth.py   (torch 2.15.0)
"""
import io
import os
import sys
import zipfile

import torch
from safetensors.torch import load_file, save_file
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
from data import TvResNet  # noqa: E402  (the width-parameterised torchvision ResNet-18)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(DATA, "pth")
# What hostile_system.pt would create if a reader executed it; tests/pth_hostile.rs
# checks it is never there.
MARKER = "/tmp/kiln-pth-executed"


def flatten(obj, prefix=""):
    """(dotted name, tensor) for every tensor in nested dicts, lists and tuples."""
    join = lambda key: f"{prefix}.{key}" if prefix else str(key)  # noqa: E731
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from flatten(v, join(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from flatten(v, join(i))


def save_with_twin(obj, stem, **kwargs):
    torch.save(obj, os.path.join(OUT, f"{stem}.pt"), **kwargs)
    twin = {k: v.detach().contiguous().clone() for k, v in flatten(obj)}
    save_file(twin, os.path.join(OUT, f"{stem}.safetensors"))


def resnet():
    twin = os.path.join(DATA, "resnet18_w4_cifar_torch.safetensors")
    model = TvResNet(4, 10, "cifar")
    model.load_state_dict(load_file(twin))
    torch.save(model.state_dict(), os.path.join(OUT, "resnet18_w4.pth"))


def checkpoint():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(12, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(2):
        opt.zero_grad()
        net(torch.randn(5, 2, 4, 4)).square().mean().backward()
        opt.step()
    ckpt = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "epoch": 3,
        "config": {"lr": 1e-3, "name": "run-1", "betas": (0.9, 0.999), "seed": None},
        "losses": [0.5, 0.25],
    }
    save_with_twin(ckpt, "checkpoint")


def dtypes():
    torch.manual_seed(1)
    attr = torch.randn(3)
    attr.note = "a Python attribute"
    param_attr = nn.Parameter(torch.randn(2, 2))
    param_attr.note = 7
    d = {
        "f32": torch.randn(2, 3),
        "f64": torch.randn(4, dtype=torch.float64),
        "f16": torch.randn(3, 2).half(),
        "bf16": torch.randn(5).bfloat16(),
        "i64": torch.arange(-3, 3).reshape(2, 3),
        "u8": torch.arange(250, 256, dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
        "param": nn.Parameter(torch.randn(3, 2)),
        "attr": attr,
        "param_attr": param_attr,
    }
    save_with_twin(d, "dtypes")
    torch.serialization.set_crc32_options(False)
    torch.save(d, os.path.join(OUT, "dtypes_nocrc.pt"))
    torch.serialization.set_crc32_options(True)
    return d


def views():
    base = torch.arange(24.0).reshape(4, 6)
    lin = nn.Linear(3, 5)
    lin.weight = nn.Parameter(torch.randn(3, 5).t())  # a transposed parameter
    half = torch.randn(4, 4).half()
    longs = torch.arange(12).reshape(3, 4)
    v = {
        "base": base,
        "row": base[1],
        "col": base[:, 2],
        "t": base.t(),
        "block": base[1:3, 2:5],
        "step": base.view(-1)[3::5],
        "expanded": base[0, :2].expand(3, 2),
        "tied_a": base,
        "tied_b": base,
        "linear": lin.state_dict(),
        "half_t": half.t(),
        "half_row": half[2],
        "long_col": longs[:, 1],
        "long_t": longs.t(),
    }
    assert v["expanded"].stride() == (0, 1) and v["t"].stride() == (1, 6)
    save_with_twin(v, "views")
    torch.save(v, os.path.join(OUT, "views_protocol4.pt"), pickle_protocol=4)


class Executes:
    """Unpickling this runs a shell command: what a safe reader must refuse."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def hostile(dtypes_dict):
    torch.save(nn.Linear(2, 2), os.path.join(OUT, "hostile_module.pt"))
    torch.save({"x": Executes()}, os.path.join(OUT, "hostile_system.pt"))
    torch.save({"mask": torch.tensor([True, False])}, os.path.join(OUT, "hostile_bool.pt"))
    torch.save({"ids": torch.arange(3, dtype=torch.int32)}, os.path.join(OUT, "hostile_int32.pt"))
    torch.save({"w": torch.ones(2)}, os.path.join(OUT, "hostile_legacy.pth"),
               _use_new_zipfile_serialization=False)
    plain = io.BytesIO()
    torch.save(dtypes_dict, plain)
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as src, zipfile.ZipFile(
        os.path.join(OUT, "hostile_deflated.pth"), "w", zipfile.ZIP_DEFLATED
    ) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    torch.jit.save(torch.jit.script(nn.Linear(2, 2)), os.path.join(OUT, "hostile_jit.pt"))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    resnet()
    checkpoint()
    hostile(dtypes())
    views()
