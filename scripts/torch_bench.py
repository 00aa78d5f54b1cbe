#!/usr/bin/env python3
"""Times kiln's benchmark cases in PyTorch and prints JSON {"<device>/<case>": mean_ms}.

The cases mirror benches/tensor_ops.rs (same names, shapes and dtypes); ids carry the
device as kiln's criterion ids do (``cpu/matmul_f32_1024x1024x1024``).
scripts/compare_torch.sh joins this output with criterion's.

To add a row: write a builder ``def build(device) -> step`` that makes the inputs and
returns a zero-argument function running the op once, and register it with
``@case("name")`` under the same name as the criterion case.

Usage: torch_bench.py [--device cpu|cuda] [--threads N] [--filter REGEX]
                      [--time SECONDS] [--list]
"""

import argparse
import json
import os
import re
import sys
import time

try:
    import torch
except ImportError:
    sys.exit("torch_bench.py: PyTorch is not installed for " + sys.executable)

ROWS, COLS = 1024, 4096  # elementwise/reduction shape: 4M f32 elements

# name -> builder(device) -> step(); insertion order is table order.
CASES = {}


def case(name):
    """Registers a builder under `name` (must equal the criterion case name)."""

    def register(build):
        if name in CASES:
            raise ValueError(f"duplicate case {name}")
        CASES[name] = build
        return build

    return register


def randn(*shape, device, requires_grad=False):
    return torch.randn(*shape, dtype=torch.float32, device=device, requires_grad=requires_grad)


@case("matmul_f32_1024x1024x1024")
def _(d):
    a, b = randn(1024, 1024, device=d), randn(1024, 1024, device=d)
    return lambda: torch.matmul(a, b)


@case("bmm_f32_8x256x256x256")
def _(d):
    a, b = randn(8, 256, 256, device=d), randn(8, 256, 256, device=d)
    return lambda: torch.matmul(a, b)


@case("add_f32_1024x4096")
def _(d):
    a, b = randn(ROWS, COLS, device=d), randn(ROWS, COLS, device=d)
    return lambda: a + b


@case("add_bcast_row_f32_1024x4096")
def _(d):
    a, b = randn(ROWS, COLS, device=d), randn(COLS, device=d)
    return lambda: a + b


@case("mul_f32_1024x4096")
def _(d):
    a, b = randn(ROWS, COLS, device=d), randn(ROWS, COLS, device=d)
    return lambda: a * b


@case("relu_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.relu(a)


@case("exp_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.exp(a)


@case("sum_all_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: a.sum()


@case("sum_dim1_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: a.sum(dim=1)


@case("mlp_fwd_bwd_f32_256x512x1024x256")
def _(d):
    # loss = sum(relu(x @ w1) @ w2); backward into w1, w2; grads set to None each step.
    x = randn(256, 512, device=d)
    w1 = randn(512, 1024, device=d, requires_grad=True)
    w2 = randn(1024, 256, device=d, requires_grad=True)

    def step():
        w1.grad = None
        w2.grad = None
        loss = (torch.relu(x @ w1) @ w2).sum()
        loss.backward()
        return loss

    return step


def fwd_bwd(x, params, forward):
    """sum(forward(x)).backward() into x and params, grads set to None first."""

    def step():
        for t in [x, *params]:
            t.grad = None
        loss = forward(x).sum()
        loss.backward()
        return loss

    return step


@case("conv2d_module_fwd_bwd_f32_32x64x32x32_k3")
def _(d):
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, device=d)
    return fwd_bwd(randn(32, 64, 32, 32, device=d, requires_grad=True), list(conv.parameters()), conv)


@case("conv2d_functional_fwd_bwd_f32_32x64x32x32_k3")
def _(d):
    w, b = randn(64, 64, 3, 3, device=d, requires_grad=True), randn(64, device=d, requires_grad=True)
    x = randn(32, 64, 32, 32, device=d, requires_grad=True)
    return fwd_bwd(x, [w, b], lambda x: torch.nn.functional.conv2d(x, w, b, padding=1))


@case("conv1d_functional_fwd_bwd_f32_16x128x512_k3")
def _(d):
    w, b = randn(128, 128, 3, device=d, requires_grad=True), randn(128, device=d, requires_grad=True)
    x = randn(16, 128, 512, device=d, requires_grad=True)
    return fwd_bwd(x, [w, b], lambda x: torch.nn.functional.conv1d(x, w, b, padding=1))


@case("conv3d_functional_fwd_bwd_f32_4x32x8x28x28_k3")
def _(d):
    w, b = randn(32, 32, 3, 3, 3, device=d, requires_grad=True), randn(32, device=d, requires_grad=True)
    x = randn(4, 32, 8, 28, 28, device=d, requires_grad=True)
    return fwd_bwd(x, [w, b], lambda x: torch.nn.functional.conv3d(x, w, b, padding=1))


@case("conv_transpose2d_functional_fwd_bwd_f32_16x64x32x32_k2s2")
def _(d):
    w, b = randn(64, 32, 2, 2, device=d, requires_grad=True), randn(32, device=d, requires_grad=True)
    x = randn(16, 64, 32, 32, device=d, requires_grad=True)
    return fwd_bwd(x, [w, b], lambda x: torch.nn.functional.conv_transpose2d(x, w, b, stride=2))


@case("linear_module_fwd_bwd_f32_1024x1024x1024")
def _(d):
    fc = torch.nn.Linear(1024, 1024, device=d)
    return fwd_bwd(randn(1024, 1024, device=d, requires_grad=True), list(fc.parameters()), fc)


@case("linear_functional_fwd_bwd_f32_1024x1024x1024")
def _(d):
    w, b = randn(1024, 1024, device=d, requires_grad=True), randn(1024, device=d, requires_grad=True)
    x = randn(1024, 1024, device=d, requires_grad=True)
    return fwd_bwd(x, [w, b], lambda x: torch.nn.functional.linear(x, w, b))


@case("dropout_module_fwd_bwd_f32_16M")
def _(d):
    drop = torch.nn.Dropout(0.5)
    return fwd_bwd(randn(16 << 20, device=d, requires_grad=True), [], drop)


@case("dropout_functional_fwd_bwd_f32_16M")
def _(d):
    x = randn(16 << 20, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.dropout(x, 0.5, training=True))


# ---------------------------------------------------------------- transformer rows
# Attention at GPT-2 small's head shape (12 heads of 64, context 1024) and at
# examples/train_gpt.rs's (batch 32, 4 heads of 24, context 64), causal.
def sdpa_case(n, h, l, e):
    def build(d):
        q, k, v = (randn(n, h, l, e, device=d, requires_grad=True) for _ in range(3))
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return fwd_bwd(q, [k, v], lambda q: sdpa(q, k, v, is_causal=True))

    return build


case("sdpa_causal_fwd_bwd_f32_1x12x1024x64")(sdpa_case(1, 12, 1024, 64))
case("sdpa_causal_fwd_bwd_f32_32x4x64x24")(sdpa_case(32, 4, 64, 24))


def layer_norm_case(rows, cols):
    def build(d):
        ln = torch.nn.LayerNorm(cols, device=d)
        return fwd_bwd(randn(rows, cols, device=d, requires_grad=True), list(ln.parameters()), ln)

    return build


case("layer_norm_fwd_bwd_f32_2048x96")(layer_norm_case(2048, 96))
case("layer_norm_fwd_bwd_f32_4096x768")(layer_norm_case(4096, 768))


@case("gelu_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.nn.functional.gelu(a)


@case("gelu_fwd_bwd_f32_2048x384")
def _(d):
    return fwd_bwd(randn(2048, 384, device=d, requires_grad=True), [], torch.nn.functional.gelu)


class Gpt(torch.nn.Module):
    """The twin of kiln::models::gpt (and of scripts/golden/attention.py's): token and
    position embeddings, pre-norm blocks of causal nn.MultiheadAttention and an exact
    GELU MLP, a final LayerNorm, an untied head."""

    def __init__(self, vocab, block_size, n_layer, heads, d, device):
        super().__init__()
        nn = torch.nn
        self.wte = nn.Embedding(vocab, d, device=device)
        self.wpe = nn.Embedding(block_size, d, device=device)
        self.blocks = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    ln_1=nn.LayerNorm(d, device=device),
                    attn=nn.MultiheadAttention(d, heads, batch_first=True, device=device),
                    ln_2=nn.LayerNorm(d, device=device),
                    c_fc=nn.Linear(d, 4 * d, device=device),
                    c_proj=nn.Linear(4 * d, d, device=device),
                )
            )
            for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(d, device=device)
        self.lm_head = nn.Linear(d, vocab, bias=False, device=device)
        with torch.no_grad():  # GPT-2's N(0, 0.02) on every matrix, as Gpt::new
            for name, p in self.named_parameters():
                if name.endswith("weight") and p.dim() == 2:
                    p.normal_(0.0, 0.02)

    def forward(self, ids):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t, device=ids.device))
        mask = torch.nn.Transformer.generate_square_subsequent_mask(t, device=ids.device)
        for b in self.blocks:
            h = b.ln_1(x)
            x = x + b.attn(h, h, h, attn_mask=mask, is_causal=True, need_weights=False)[0]
            x = x + b.c_proj(torch.nn.functional.gelu(b.c_fc(b.ln_2(x))))
        return self.lm_head(self.ln_f(x))


@case("train_gpt_step_f32_2x96x4_ctx64_b32")
def _(d):
    # One optimizer step of examples/train_gpt.rs with its defaults (62 characters of
    # the KJV text): forward, cross entropy, backward, clipping at norm 1, AdamW with
    # weight decay 0.1 on the linear maps' matrices and none on the rest. The
    # learning-rate schedule is left out (a scalar per step on both sides).
    vocab, block, batch = 62, 64, 32
    gpt = Gpt(vocab, block, 2, 4, 96, d).train()
    decay = [p for n, p in gpt.named_parameters() if p.dim() == 2 and not n.startswith(("wte", "wpe"))]
    rest = [p for n, p in gpt.named_parameters() if not (p.dim() == 2 and not n.startswith(("wte", "wpe")))]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=0.1), dict(params=rest, weight_decay=0.0)], lr=3e-3)
    x = torch.randint(0, vocab, (batch, block), device=d)
    y = torch.randint(0, vocab, (batch * block,), device=d)
    params = list(gpt.parameters())

    def step():
        loss = torch.nn.functional.cross_entropy(gpt(x).reshape(-1, vocab), y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    return step


@case("lstm_fwd_bwd_f32_L32xN32x128_h256")
def _(d):
    lstm = torch.nn.LSTM(128, 256, device=d)
    return fwd_bwd(randn(32, 32, 128, device=d, requires_grad=True), list(lstm.parameters()),
                   lambda x: lstm(x)[0])


@case("gpt2_small_forward_f32_1x64")
def _(d):
    # transformers' GPT2LMHeadModel(GPT2Config()) (124M parameters) in eval mode, under
    # no_grad: the logits of one sequence of 64 tokens.
    from transformers import GPT2Config, GPT2LMHeadModel
    model = GPT2LMHeadModel(GPT2Config()).to(d).eval()
    ids = (torch.arange(64, device=d) * 7919 % 50257).reshape(1, 64)

    def step():
        with torch.no_grad():
            return model(ids).logits

    return step


@case("sort_dim1_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.sort(a, dim=1, stable=True)


@case("topk_k16_dim1_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.topk(a, 16, 1)



@case("max_pool2d_k3s2_ceil_fwd_bwd_f32_32x64x56x56")
def _(d):
    x = randn(32, 64, 56, 56, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.max_pool2d(x, 3, 2, ceil_mode=True))


@case("interpolate_bilinear_x2_fwd_bwd_f32_8x32x64x64")
def _(d):
    x = randn(8, 32, 64, 64, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear"))


@case("pixel_shuffle_r2_fwd_bwd_f32_16x64x64x64")
def _(d):
    x = randn(16, 64, 64, 64, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.pixel_shuffle(x, 2))


@case("hardswish_fwd_bwd_f32_1024x4096")
def _(d):
    return fwd_bwd(randn(ROWS, COLS, device=d, requires_grad=True), [], torch.nn.functional.hardswish)


@case("erf_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.erf(a)


@case("cumsum_dim1_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.cumsum(a, 1)


@case("logsumexp_dim1_fwd_bwd_f32_1024x4096")
def _(d):
    return fwd_bwd(randn(ROWS, COLS, device=d, requires_grad=True), [], lambda x: torch.logsumexp(x, 1))


@case("std_dim1_f32_1024x4096")
def _(d):
    a = randn(ROWS, COLS, device=d)
    return lambda: torch.std(a, 1)


INDEX_ROWS = 65536


def spread_rows(n, device):
    """The twin of benches/tensor_ops.rs's spread_rows."""
    return torch.arange(n, device=device) * 7919 % INDEX_ROWS


@case("index_rows_fwd_bwd_f32_65536x64_n65536")
def _(d):
    x = randn(INDEX_ROWS, 64, device=d, requires_grad=True)
    rows = spread_rows(INDEX_ROWS, d)
    return fwd_bwd(x, [], lambda x: x[rows])


@case("index_put_accumulate_f32_65536x64_n262144")
def _(d):
    x = randn(INDEX_ROWS, 64, device=d)
    rows = spread_rows(4 * INDEX_ROWS, d)
    v = randn(4 * INDEX_ROWS, 64, device=d)
    return lambda: x.index_put((rows,), v, accumulate=True)


@case("einsum_bij_bjk_f32_8x256x256x256")
def _(d):
    a, b = randn(8, 256, 256, device=d), randn(8, 256, 256, device=d)
    return lambda: torch.einsum("bij,bjk->bik", a, b)


@case("max_pool1d_k3s2p1_fwd_bwd_f32_32x256x2048")
def _(d):
    x = randn(32, 256, 2048, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.max_pool1d(x, 3, 2, 1))


@case("avg_pool3d_k2s2_fwd_bwd_f32_4x32x16x56x56")
def _(d):
    x = randn(4, 32, 16, 56, 56, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.avg_pool3d(x, 2, 2))


@case("adaptive_max_pool2d_7x7_fwd_bwd_f32_32x256x28x28")
def _(d):
    x = randn(32, 256, 28, 28, device=d, requires_grad=True)
    return fwd_bwd(x, [], lambda x: torch.nn.functional.adaptive_max_pool2d(x, 7))


@case("group_norm_g32_fwd_bwd_f32_8x256x32x32")
def _(d):
    gn = torch.nn.GroupNorm(32, 256, device=d)
    return fwd_bwd(randn(8, 256, 32, 32, device=d, requires_grad=True), list(gn.parameters()), gn)


@case("bce_with_logits_fwd_bwd_f32_1024x4096")
def _(d):
    t = torch.rand(1024, 4096, dtype=torch.float32, device=d)
    z = randn(1024, 4096, device=d, requires_grad=True)
    return fwd_bwd(z, [], lambda z: torch.nn.functional.binary_cross_entropy_with_logits(z, t))


@case("gru_fwd_bwd_f32_L32xN32x128_h256")
def _(d):
    gru = torch.nn.GRU(128, 256, device=d)
    return fwd_bwd(randn(32, 32, 128, device=d, requires_grad=True), list(gru.parameters()),
                   lambda x: gru(x)[0])


def time_step(step, sync, seconds):
    """Mean milliseconds per call: warm up, then time batches for about `seconds`."""
    # Warm-up: first calls allocate, pick kernels and spin up threads.
    warm_end = time.perf_counter() + min(0.5, seconds / 4)
    step()
    sync()
    while time.perf_counter() < warm_end:
        step()
    sync()
    # Estimate a batch size that takes ~1/10 of the budget, then measure batches.
    t0 = time.perf_counter()
    step()
    sync()
    one = max(time.perf_counter() - t0, 1e-6)
    batch = max(1, int(seconds / 10 / one))
    total_time, total_calls = 0.0, 0
    deadline = time.perf_counter() + seconds
    while total_calls == 0 or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(batch):
            step()
        sync()
        total_time += time.perf_counter() - t0
        total_calls += batch
    return total_time / total_calls * 1e3


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all CPUs)")
    p.add_argument("--filter", default="", help="keep cases whose id matches this regex (as criterion's filter)")
    p.add_argument("--time", type=float, default=2.0, help="measurement seconds per case")
    p.add_argument("--list", action="store_true", help="print the case ids and exit")
    args = p.parse_args()

    ids = {name: f"{args.device}/{name}" for name in CASES}
    if args.list:
        print("\n".join(ids.values()))
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_bench.py: --device cuda but torch.cuda.is_available() is False")
    torch.set_num_threads(args.threads)
    # Time true f32 math on CUDA: no TF32 tensor-core shortcut (PyTorch's default for
    # matmul, pinned here so results stay comparable with kiln's f32 kernels).
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    results = {}
    for name, build in CASES.items():
        bench_id = ids[name]
        if args.filter and not re.search(args.filter, bench_id):
            continue
        step = build(args.device)
        results[bench_id] = time_step(step, sync, args.time)
        print(f"{bench_id}: {results[bench_id]:.4f} ms", file=sys.stderr)
        del step
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
