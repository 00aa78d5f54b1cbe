"""Golden trajectories for kiln's optimizers: tests/data/optim.safetensors.

A fixed least-squares problem, loss = mean((x @ w + b - y)^2); each optimizer
configuration takes 5 steps from the same start and the parameters after every step
are stored as `<case>.w<k>` / `<case>.b<k>`. Run: .venv/bin/python scripts/golden/optim.py

(The committed values of the cases before `sgd_groups` were made on another machine;
a rerun here differs from them in the last bit of a few elements, so the group cases
were added to the committed file rather than replacing it.)
"""
import torch
from safetensors.torch import save_file

torch.manual_seed(0)
x = torch.randn(7, 3, dtype=torch.float64)
y = torch.randn(7, 4, dtype=torch.float64)
w0 = torch.randn(3, 4, dtype=torch.float64)
b0 = torch.randn(4, dtype=torch.float64)

CASES = {
    "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
    "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    "sgd_dampening": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4),
    "adam": lambda p: torch.optim.Adam(p, lr=1e-2),
    "adam_wd_amsgrad": lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.1, amsgrad=True),
    "adamw": lambda p: torch.optim.AdamW(p, lr=1e-2),
    "adamw_custom": lambda p: torch.optim.AdamW(p, lr=3e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1, amsgrad=True),
    # Parameter groups: w in the first group (the optimizer's options), b in a second
    # with its own. kiln: Sgd::new([w], 0.1)?.momentum(0.9) and
    # add_param_group(ParamGroup::new([b]).lr(0.05).momentum(0.5).weight_decay(0.1))
    "sgd_groups": lambda p: torch.optim.SGD(
        [{"params": [p[0]]}, {"params": [p[1]], "lr": 0.05, "momentum": 0.5, "weight_decay": 0.1}],
        lr=0.1, momentum=0.9),
    # kiln: AdamW::new([w], 1e-2)?.weight_decay(0.1) and
    # add_param_group(ParamGroup::new([b]).lr(3e-2).weight_decay(0.0).betas(0.8, 0.99).amsgrad(true))
    "adamw_groups": lambda p: torch.optim.AdamW(
        [{"params": [p[0]]},
         {"params": [p[1]], "lr": 3e-2, "weight_decay": 0.0, "betas": (0.8, 0.99), "amsgrad": True}],
        lr=1e-2, weight_decay=0.1),
}

out = {"x": x, "y": y, "w0": w0, "b0": b0}
for name, make in CASES.items():
    w = w0.clone().requires_grad_()
    b = b0.clone().requires_grad_()
    opt = make([w, b])
    for k in range(1, 6):
        opt.zero_grad()
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        opt.step()
        out[f"{name}.w{k}"] = w.detach().clone()
        out[f"{name}.b{k}"] = b.detach().clone()
save_file(out, "tests/data/optim.safetensors")
