"""Golden learning-rate trajectories for kiln's schedulers: tests/data/lr_scheduler.safetensors.

An SGD optimizer with three parameter groups (lrs 0.1, 0.05 and 0.3; the momentum
groups have momentum 0.9, 0.0, 0.5) — or Adam for `onecycle_adam` — and one
scheduler per case, stepped STEPS times. `<case>.lr` is a (STEPS + 1, 3) f64 tensor:
row 0 holds the groups' lrs right after the scheduler is built, row k after k steps.
The one-cycle cases also store `<case>.momentum` (SGD's momentum / Adam's beta1).
Run: .venv/bin/python scripts/golden/lr_scheduler.py
"""
import torch
from torch.optim import lr_scheduler as S
from safetensors.torch import save_file

STEPS = 300
LRS = [0.1, 0.05, 0.3]


def make_opt(kind="sgd"):
    params = [torch.zeros(2, requires_grad=True) for _ in LRS]
    if kind == "adam":
        return torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(params, LRS)])
    moms = [0.9, 0.0, 0.5]
    return torch.optim.SGD(
        [{"params": [p], "lr": lr, "momentum": m} for p, lr, m in zip(params, LRS, moms)]
    )


CASES = {
    # kiln: StepLr::new(&opt, 30, 0.5)
    "step": lambda o: S.StepLR(o, 30, 0.5),
    # kiln: MultiStepLr::new(&opt, &[30, 80, 80, 200], 0.1)
    "multistep": lambda o: S.MultiStepLR(o, [30, 80, 80, 200], 0.1),
    # kiln: ExponentialLr::new(&opt, 0.99)
    "exponential": lambda o: S.ExponentialLR(o, 0.99),
    # kiln: CosineAnnealingLr::new(&opt, 100)?.eta_min(1e-3) (300 steps: past T_max too)
    "cosine": lambda o: S.CosineAnnealingLR(o, 100, eta_min=1e-3),
    # kiln: LinearLr::new(&opt, 0.25, 1.0, 40)
    "linear": lambda o: S.LinearLR(o, 0.25, 1.0, 40),
    # kiln: LinearLr::new(&opt, 1.0, 0.1, 120) (decay)
    "linear_decay": lambda o: S.LinearLR(o, 1.0, 0.1, 120),
    # kiln: LambdaLr::new(&opt, |s| 1.0 / (1.0 + 0.1 * s as f64))
    "lambda": lambda o: S.LambdaLR(o, lambda s: 1.0 / (1.0 + 0.1 * s)),
    # kiln: OneCycleLr::new(&opt, 0.5, 300)
    "onecycle_sgd": lambda o: S.OneCycleLR(o, 0.5, total_steps=300),
    # kiln: SequentialLr::new(&opt, [LinearLr(0.1, 1.0, 20), CosineAnnealingLr(280).eta_min(1e-4)], &[20])
    "sequential": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, 0.1, 1.0, 20), S.CosineAnnealingLR(o, 280, eta_min=1e-4)], [20]
    ),
    # kiln: SequentialLr::new(&opt, [LinearLr(0.5, 1.0, 10), StepLr(25, 0.5), ExponentialLr(0.98)], &[10, 100])
    "sequential3": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, 0.5, 1.0, 10), S.StepLR(o, 25, 0.5), S.ExponentialLR(o, 0.98)], [10, 100]
    ),
}

out = {}
for name, make in CASES.items():
    opt = make_opt()
    sched = make(opt)
    lrs, moms = [[g["lr"] for g in opt.param_groups]], [[g["momentum"] for g in opt.param_groups]]
    for _ in range(STEPS):
        opt.step()
        sched.step()
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append([g["momentum"] for g in opt.param_groups])
    out[f"{name}.lr"] = torch.tensor(lrs, dtype=torch.float64)
    if name.startswith("onecycle"):
        out[f"{name}.momentum"] = torch.tensor(moms, dtype=torch.float64)

# kiln: OneCycleLr::new(&opt, 0.01, 100) on Adam: beta1 cycles.
opt = make_opt("adam")
sched = S.OneCycleLR(opt, 0.01, total_steps=100)
lrs, moms = [[g["lr"] for g in opt.param_groups]], [[g["betas"][0] for g in opt.param_groups]]
for _ in range(100):
    opt.step()
    sched.step()
    lrs.append([g["lr"] for g in opt.param_groups])
    moms.append([g["betas"][0] for g in opt.param_groups])
out["onecycle_adam.lr"] = torch.tensor(lrs, dtype=torch.float64)
out["onecycle_adam.momentum"] = torch.tensor(moms, dtype=torch.float64)
save_file(out, "tests/data/lr_scheduler.safetensors")
