"""Golden fixture for kiln::data::DistributedSampler (tests/distributed_sampler.rs).

Writes tests/data/distributed_sampler.safetensors: for every dataset length n, number
of replicas w, rank r and drop_last d, the i64 vector `n{n}_w{w}_r{r}_d{d}` of

    list(DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=False, drop_last=d))

(PyTorch's padding by repetition, its dropping of the tail, its interleaving of ranks).
Shuffled orders are not compared: PyTorch draws them with torch.randperm and kiln with
its own Philox stream; the test checks their partition properties instead.

Run: .venv/bin/python scripts/golden/distributed_sampler.py   (torch 2.15.0)
"""
import os

import torch
from safetensors.torch import save_file
from torch.utils.data.distributed import DistributedSampler

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")

out = {}
for n in [0, 1, 2, 5, 10, 11, 13]:
    for w in [1, 2, 3, 4, 7]:
        for r in range(w):
            for d in [0, 1]:
                s = DistributedSampler(range(n), num_replicas=w, rank=r, shuffle=False, drop_last=bool(d))
                out[f"n{n}_w{w}_r{r}_d{d}"] = torch.tensor(list(s), dtype=torch.int64)
save_file(out, os.path.join(DATA, "distributed_sampler.safetensors"))
