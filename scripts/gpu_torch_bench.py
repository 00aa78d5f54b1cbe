#!/usr/bin/env python3
"""PyTorch timings of the cases in benches/cuda_ops.rs (same names, shapes, dtypes).

Prints one JSON object {"cuda/<case>": mean_ms}; the method matches cuda_ops.rs:
3 warm-up calls, then 5 batches of calls (~20 ms each) ended by a synchronize, and the
fastest batch's mean per call. FP32 matmuls use true FP32 (TF32 off, PyTorch's default).
"""
import json
import sys
import time

import torch


def cases(d):
    f32, f16 = torch.float32, torch.float16
    r = lambda *s, dt=f32: torch.randn(*s, device=d).to(dt)
    a, b, row = r(1024, 4096), r(1024, 4096), r(4096)
    m1, m2, g1, g2 = r(1024, 1024), r(1024, 1024), r(4096, 4096), r(4096, 4096)
    h1, h2 = r(4096, 4096, dt=f16), r(4096, 4096, dt=f16)
    b1, b2 = r(8, 256, 256), r(8, 256, 256)
    x = r(256, 512)
    w1, w2 = r(512, 1024).requires_grad_(), r(1024, 256).requires_grad_()

    def mlp():
        w1.grad = None
        w2.grad = None
        loss = torch.relu(x @ w1).matmul(w2).sum()
        loss.backward()
        return loss

    return {
        "matmul_f32_1024x1024x1024": lambda: m1 @ m2,
        "matmul_f32_4096x4096x4096": lambda: g1 @ g2,
        "matmul_f16_4096x4096x4096": lambda: h1 @ h2,
        "bmm_f32_8x256x256x256": lambda: b1 @ b2,
        "add_f32_1024x4096": lambda: a + b,
        "add_bcast_row_f32_1024x4096": lambda: a + row,
        "exp_f32_1024x4096": lambda: torch.exp(a),
        "sum_all_f32_1024x4096": lambda: a.sum(),
        "sum_dim1_f32_1024x4096": lambda: a.sum(1),
        "sum_dim0_f32_1024x4096": lambda: a.sum(0),
        "softmax_dim1_f32_1024x4096": lambda: torch.softmax(a, 1),
        "transpose_contiguous_f32_1024x4096": lambda: a.t().contiguous(),
        "to_f16_f32_1024x4096": lambda: a.to(f16),
        "mlp_fwd_bwd_f32_256x512x1024x256": mlp,
    }


def time_step(step):
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    step()
    torch.cuda.synchronize()
    once = time.perf_counter() - t
    calls = min(max(int(0.02 / max(once, 1e-6)), 3), 1000)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            step()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t) / calls)
    return best * 1e3


def main():
    if not torch.cuda.is_available():
        sys.exit("gpu_torch_bench.py: torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = False
    out = {}
    for name, step in cases("cuda").items():
        out["cuda/" + name] = time_step(step)
        print(f"cuda/{name}: {out['cuda/' + name]:.4f} ms", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
