"""Golden values for kiln's mixed precision: tests/data/amp.safetensors.

Run: .venv/bin/python scripts/golden/amp.py

1. `cnn.*`: a small CNN, conv(1→4, 3×3, padding 1) → relu → max_pool 2 → flatten →
   linear(64 → 3) → cross_entropy, forward and backward under PyTorch's CPU autocast
   in BF16, from f32 master weights:

       with torch.autocast("cpu", dtype=torch.bfloat16):
           h = F.conv2d(x, conv_w, conv_b, padding=1)       # bf16 (lower-precision list)
           h = F.max_pool2d(F.relu(h), 2, 2)                # bf16 (input dtype)
           logits = F.linear(h.flatten(1), fc_w, fc_b)      # bf16
           loss = F.cross_entropy(logits, labels)           # f32 (f32 list)
       loss.backward()                                      # grads f32, on the f32 weights

   `cnn.logits` is the bf16 result widened to f32 (exact); the loss and the grads
   are f32.

2. `scaler.*`: torch.amp.GradScaler on a least-squares problem with SGD (momentum
   0.9), init_scale 1024, growth_interval 2 (growth 2, backoff 0.5), six iterations;
   iteration 3's loss is multiplied by inf, so its gradients are inf/NaN, the step is
   skipped (parameters and momentum unchanged) and the scale halves; iteration 4
   calls unscale_ explicitly before step:

       scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
       for k in 1..=6:
           opt.zero_grad()
           loss = ((x @ w + b - y) ** 2).mean()
           if k == 3: loss = loss * float("inf")
           scaler.scale(loss).backward()
           if k == 4: scaler.unscale_(opt)
           scaler.step(opt); scaler.update()

   After iteration k: `scaler.w<k>`, `scaler.b<k>`, `scaler.scale<k>` (the scale
   after update, f64).
"""
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

out = {}

# 1. The CNN under autocast.
torch.manual_seed(0)
x = torch.randn(2, 1, 8, 8)
labels = torch.tensor([2, 0], dtype=torch.int64)
conv_w = (torch.randn(4, 1, 3, 3) * 0.5).requires_grad_()
conv_b = (torch.randn(4) * 0.1).requires_grad_()
fc_w = (torch.randn(3, 64) * 0.2).requires_grad_()
fc_b = (torch.randn(3) * 0.1).requires_grad_()
with torch.autocast("cpu", dtype=torch.bfloat16):
    h = F.conv2d(x, conv_w, conv_b, padding=1)
    h = F.max_pool2d(F.relu(h), 2, 2)
    logits = F.linear(h.flatten(1), fc_w, fc_b)
    loss = F.cross_entropy(logits, labels)
assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
loss.backward()
out.update({
    "cnn.x": x, "cnn.labels": labels,
    "cnn.conv_w": conv_w.detach(), "cnn.conv_b": conv_b.detach(),
    "cnn.fc_w": fc_w.detach(), "cnn.fc_b": fc_b.detach(),
    "cnn.logits": logits.detach().float(), "cnn.loss": loss.detach(),
    "cnn.grad_conv_w": conv_w.grad, "cnn.grad_conv_b": conv_b.grad,
    "cnn.grad_fc_w": fc_w.grad, "cnn.grad_fc_b": fc_b.grad,
})

# 2. GradScaler.
torch.manual_seed(1)
sx = torch.randn(7, 3)
sy = torch.randn(7, 4)
w = torch.randn(3, 4).requires_grad_()
b = torch.randn(4).requires_grad_()
out.update({"scaler.x": sx, "scaler.y": sy, "scaler.w0": w.detach().clone(), "scaler.b0": b.detach().clone()})
opt = torch.optim.SGD([w, b], lr=0.1, momentum=0.9)
scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=2)
for k in range(1, 7):
    opt.zero_grad()
    loss = ((sx @ w + b - sy) ** 2).mean()
    if k == 3:
        loss = loss * float("inf")
    scaler.scale(loss).backward()
    if k == 4:
        scaler.unscale_(opt)
    scaler.step(opt)
    scaler.update()
    out[f"scaler.w{k}"] = w.detach().clone()
    out[f"scaler.b{k}"] = b.detach().clone()
    out[f"scaler.scale{k}"] = torch.tensor([scaler.get_scale()], dtype=torch.float64)
assert out["scaler.scale3"].item() == out["scaler.scale2"].item() / 2
assert torch.equal(out["scaler.w3"], out["scaler.w2"])

save_file({k: v.contiguous() for k, v in out.items()}, "tests/data/amp.safetensors")
