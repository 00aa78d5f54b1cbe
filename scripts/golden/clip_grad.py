"""Golden values for gradient clipping: tests/data/clip_grad.safetensors.

Three parameters get fixed gradients `g0` (3, 4), `g1` (4,), `g2` (2, 3); a fourth
has none. Each case calls torch.nn.utils.clip_grad_norm_ (or clip_grad_value_) and
stores the returned total norm `<case>.total` and the clipped gradients
`<case>.g0` .. `<case>.g2`. Run: .venv/bin/python scripts/golden/clip_grad.py
"""
import math

import torch
from safetensors.torch import save_file
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

torch.manual_seed(0)
G = [torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64),
     torch.randn(2, 3, dtype=torch.float64)]
out = {f"g{i}": g for i, g in enumerate(G)}


def run(name, clip, grads=G):
    params = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    extra = torch.zeros(5, dtype=torch.float64, requires_grad=True)  # no grad: skipped
    total = clip(params + [extra])
    if total is not None:
        out[f"{name}.total"] = total.detach().clone()
    for i, p in enumerate(params):
        out[f"{name}.g{i}"] = p.grad.clone()


# kiln: clip_grad_norm(&params, 1.0)
run("norm2", lambda p: clip_grad_norm_(p, 1.0))
# kiln: clip_grad_norm(&params, 100.0): nothing to clip (coefficient clamped to 1)
run("norm2_loose", lambda p: clip_grad_norm_(p, 100.0))
# kiln: clip_grad_norm_opts(&params, 0.5, ClipGradNormOpts::new().norm_type(f64::INFINITY))
run("norm_inf", lambda p: clip_grad_norm_(p, 0.5, norm_type=math.inf))
# kiln: clip_grad_norm_opts(&params, 0.7, ClipGradNormOpts::new().norm_type(3.0))
run("norm_p3", lambda p: clip_grad_norm_(p, 0.7, norm_type=3.0))
# kiln: clip_grad_value(&params, 0.3)
run("value", lambda p: clip_grad_value_(p, 0.3))
# Non-finite totals: NaN scales every gradient by NaN; inf by 0 (inf * 0 = NaN).
nan = [g.clone() for g in G]
nan[1][2] = math.nan
out["g1_nan"] = nan[1]
run("nan", lambda p: clip_grad_norm_(p, 1.0), nan)
inf = [g.clone() for g in G]
inf[1][2] = math.inf
out["g1_inf"] = inf[1]
run("inf", lambda p: clip_grad_norm_(p, 1.0), inf)
save_file(out, "tests/data/clip_grad.safetensors")
