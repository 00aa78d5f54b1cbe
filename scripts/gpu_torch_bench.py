#!/usr/bin/env python3
"""PyTorch timings of the cases in benches/cuda_ops.rs (same names, shapes, dtypes).

Prints one JSON object: {"meta": {...}, "cuda/<case>": {"median_ms", "min_ms",
"max_ms", "reps"}}. The method matches cuda_ops.rs: build the case, 3 warm-up calls,
then 25 repetitions timed one by one with CUDA events (torch.cuda.Event); single-op
rows write a 256 MiB buffer before each repetition, outside the timed region, to
flush the L2. A "fwd_bwd" row seeds its backward pass through .sum(), as kiln does.
PyTorch runs at its defaults (AdamW: foreach; one row with fused=True), with TF32 off
for matmuls and cuDNN convolutions so FP32 means FP32 in both programs; the *_tf32_*
rows turn both on (cuDNN's default), the *_bf16_* rows run in bfloat16.

    gpu_torch_bench.py [FILTER ...]    cases whose name contains any filter
    gpu_torch_bench.py --smoke --device cpu    tiny shapes on the CPU (wall clock):
                                               checks that every case runs
"""
import argparse
import contextlib
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

WARMUP = 3
REPS = 25
FLUSH_BYTES = 256 << 20


def resnet18_shapes():
    """torchvision resnet18()'s parameter shapes, in parameters() order."""
    shapes = [(64, 3, 7, 7), (64,), (64,)]
    cin = 64
    for stage, cout in enumerate([64, 128, 256, 512]):
        for block in range(2):
            first_in = cin if block == 0 else cout
            shapes += [(cout, first_in, 3, 3), (cout,), (cout,)]
            shapes += [(cout, cout, 3, 3), (cout,), (cout,)]
            if block == 0 and stage > 0:
                shapes += [(cout, cin, 1, 1), (cout,), (cout,)]
        cin = cout
    shapes += [(1000, 512), (1000,)]
    return shapes


def digits_net():
    """examples/train_digits/model.rs's DigitsNet."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d((4, 4)),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


# Every convolution of ResNet-18 on 224² images, as in cuda_ops.rs's RESNET18_CONVS:
# (name kind, in channels, out channels, input side, kernel, stride); padding kernel // 2.
RESNET18_CONVS = [
    ("stem7x7s2", 3, 64, 224, 7, 2),
    ("3x3", 64, 64, 56, 3, 1),
    ("3x3", 128, 128, 28, 3, 1),
    ("3x3", 256, 256, 14, 3, 1),
    ("3x3", 512, 512, 7, 3, 1),
    ("3x3s2", 64, 128, 56, 3, 2),
    ("3x3s2", 128, 256, 28, 3, 2),
    ("3x3s2", 256, 512, 14, 3, 2),
    ("1x1s2", 64, 128, 56, 1, 2),
    ("1x1s2", 128, 256, 28, 1, 2),
    ("1x1s2", 256, 512, 14, 1, 2),
]


class BasicBlock(nn.Module):
    """torchvision's BasicBlock, for when torchvision is not installed."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def resnet18(num_classes=1000):
    """torchvision.models.resnet18(), or the same layers defined here without it."""
    try:
        import torchvision

        return torchvision.models.resnet18(num_classes=num_classes)
    except ImportError:
        pass
    stages = []
    for cin, cout, stride in [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]:
        stages.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
        *stages,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    )


@contextlib.contextmanager
def tf32_allowed(allow):
    """TF32 allowed (or not) for matmuls and cuDNN convolutions, put back afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = allow
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


# The row names' precisions: (dtype, TF32 allowed).
PRECISIONS = {"f32": (torch.float32, False), "tf32": (torch.float32, True), "bf16": (torch.bfloat16, False)}


def cases(d, smoke):
    """{name: (single_op, build)}; build() makes the inputs and returns the step."""
    f32, f16 = torch.float32, torch.float16
    pick = lambda full, small: small if smoke else full
    r = lambda *s, dt=f32: torch.randn(*s, device=d).to(dt)
    leaf = lambda *s: torch.randn(*s, device=d).requires_grad_()
    labels = lambda n, k: (torch.arange(n, device=d) * 7919) % k
    matrix = lambda: r(pick(1024, 8), pick(4096, 40))

    def matmul(n, dt=f32):
        n = pick(n, 16)
        a, b = r(n, n, dt=dt), r(n, n, dt=dt)
        return lambda: a @ b

    def precision(prec, build):
        """The step of `build` run in `prec`'s TF32 setting (the tf32 rows allow it)."""

        def wrapped():
            step = build()

            def run():
                with tf32_allowed(PRECISIONS[prec][1]):
                    step()

            return run

        return wrapped

    def linear(dt=f32, gelu=False):
        """F.linear (+ tanh-GELU) forward and backward, (4096, 1024) -> (4096, 4096)."""
        rows, i, o = pick(4096, 16), pick(1024, 8), pick(4096, 12)
        leaf_dt = lambda *s: torch.randn(*s, device=d).to(dt).requires_grad_()
        x, w, b = leaf_dt(rows, i), leaf_dt(o, i), leaf_dt(o)
        if gelu:
            op = lambda: F.gelu(F.linear(x, w, b), approximate="tanh")
        else:
            op = lambda: F.linear(x, w, b)
        return fwd_bwd(op, x, w, b)

    def mlp_train():
        """4 bf16 linear layers of 4096 (ReLU between), batch 4096, sum loss, SGD."""
        width, batch = pick(4096, 16), pick(4096, 8)
        layers = [nn.Linear(width, width) for _ in range(4)]
        for layer in layers:
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)
        net = nn.Sequential(layers[0], nn.ReLU(), layers[1], nn.ReLU(), layers[2], nn.ReLU(), layers[3])
        net = net.to(device=d, dtype=torch.bfloat16)
        opt = torch.optim.SGD(net.parameters(), lr=1e-3)
        x = r(batch, width, dt=torch.bfloat16)

        def step():
            opt.zero_grad()
            net(x).sum().backward()
            opt.step()

        return step

    def bmm():
        n = pick(256, 8)
        a, b = r(8, n, n), r(8, n, n)
        return lambda: a @ b

    def unary(f):
        a = matrix()
        return lambda: f(a)

    def add():
        a, b = matrix(), matrix()
        return lambda: a + b

    def add_row():
        a, row = matrix(), r(pick(4096, 40))
        return lambda: a + row

    def mlp():
        x = r(pick(256, 4), 512)
        w1, w2 = leaf(512, pick(1024, 8)), leaf(pick(1024, 8), 256)

        def step():
            w1.grad = w2.grad = None
            torch.relu(x @ w1).matmul(w2).sum().backward()

        return step

    def fwd_bwd(op, *leaves):
        def step():
            for t in leaves:
                t.grad = None
            op().sum().backward()

        return step

    def max_pool():
        side = pick(112, 9)
        x = leaf(pick(64, 2), pick(64, 3), side, side)
        return fwd_bwd(lambda: F.max_pool2d(x, 3, 2, 1), x)

    def max_pool_ceil():
        side = pick(112, 9)
        x = leaf(pick(64, 2), pick(64, 3), side, side)
        return fwd_bwd(lambda: F.max_pool2d(x, 3, 2, ceil_mode=True), x)

    def max_pool1d():
        x = leaf(pick(64, 2), pick(256, 3), pick(4096, 17))
        return fwd_bwd(lambda: F.max_pool1d(x, 3, 2, 1), x)

    def avg_pool3d():
        depth, side = pick(16, 5), pick(56, 7)
        x = leaf(pick(16, 2), pick(64, 3), depth, side, side)
        return fwd_bwd(lambda: F.avg_pool3d(x, 2, 2), x)

    def adaptive_max_pool():
        side = pick(28, 9)
        x = leaf(pick(64, 2), pick(512, 3), side, side)
        return fwd_bwd(lambda: F.adaptive_max_pool2d(x, 7), x)

    def upsample_bilinear():
        side = pick(128, 7)
        x = leaf(pick(32, 2), pick(64, 3), side, side)
        return fwd_bwd(lambda: F.interpolate(x, scale_factor=2.0, mode="bilinear"), x)

    def matrix_fwd_bwd(f):
        x = matrix().requires_grad_()
        return fwd_bwd(lambda: f(x), x)

    def index_rows():
        rows = pick(65536, 50)
        x, picked = leaf(rows, pick(64, 3)), labels(rows, rows)
        return fwd_bwd(lambda: x[picked], x)

    def index_put_accumulate():
        rows, cols = pick(65536, 50), pick(64, 3)
        x, picked, v = r(rows, cols), labels(4 * rows, rows), r(4 * rows, cols)
        return lambda: x.index_put((picked,), v, accumulate=True)

    def einsum():
        n = pick(256, 8)
        a, b = r(8, n, n), r(8, n, n)
        return lambda: torch.einsum("bij,bjk->bik", a, b)

    def batch_norm():
        c, side = pick(256, 3), pick(28, 5)
        x, w, b = leaf(pick(64, 2), c, side, side), leaf(c), leaf(c)
        mean, var = torch.zeros(c, device=d), torch.ones(c, device=d)
        return fwd_bwd(lambda: F.batch_norm(x, mean, var, w, b, True, 0.1, 1e-5), x, w, b)

    def group_norm():
        c, side = pick(256, 4), pick(32, 5)
        x, w, b = leaf(pick(8, 2), c, side, side), leaf(c), leaf(c)
        return fwd_bwd(lambda: F.group_norm(x, pick(32, 2), w, b, 1e-5), x, w, b)

    def bce_with_logits():
        z = leaf(pick(1024, 5), pick(4096, 7))
        t = torch.rand(z.shape, device=d)
        return fwd_bwd(lambda: F.binary_cross_entropy_with_logits(z, t), z)

    def cross_entropy():
        n, k = pick(4096, 5), pick(1000, 7)
        logits, target = leaf(n, k), labels(n, k)
        return fwd_bwd(lambda: F.cross_entropy(logits, target), logits)

    def dropout():
        x = leaf(pick(64 << 20, 1001))
        return fwd_bwd(lambda: F.dropout(x, 0.5, True), x)

    def embedding():
        v, n = pick(50257, 11), pick(8192, 300)
        w, ids = leaf(v, pick(768, 5)), labels(n, v)
        return fwd_bwd(lambda: F.embedding(ids, w), w)

    def adamw(**flags):
        def build():
            params = []
            for shape in resnet18_shapes():
                p = leaf(*(pick(shape, tuple(min(k, 3) for k in shape))))
                p.grad = torch.randn_like(p)
                params.append(p)
            opt = torch.optim.AdamW(params, lr=1e-3, **flags)
            return opt.step

        return build

    def conv(cin, cout, side, k, stride, dt):
        """F.conv2d forward and backward at batch 64, no bias, padding k // 2."""
        n, cin, cout, side = pick(64, 2), pick(cin, min(cin, 4)), pick(cout, 4), pick(side, k + 4)
        leaf_dt = lambda *s: torch.randn(*s, device=d).to(dt).requires_grad_()
        x, w = leaf_dt(n, cin, side, side), leaf_dt(cout, cin, k, k)
        return fwd_bwd(lambda: F.conv2d(x, w, None, stride=stride, padding=k // 2), x, w)

    def conv_rows():
        """Every ResNet-18 convolution in tf32 and bf16, the stages' 3x3 also in exact f32."""
        rows = {}
        for prec, (dt, _) in PRECISIONS.items():
            for kind, cin, cout, side, k, stride in RESNET18_CONVS:
                if prec == "f32" and kind != "3x3":
                    continue
                build = lambda shape=(cin, cout, side, k, stride), dt=dt: conv(*shape, dt)
                rows[f"conv2d_{kind}_fwd_bwd_{prec}_64x{cin}x{side}x{side}"] = (True, precision(prec, build))
        return rows

    def resnet(dt):
        """torchvision's ResNet-18 training step at batch 128 on 224²: forward,
        cross-entropy, backward, SGD with momentum (as cuda_ops.rs's resnet_case)."""
        classes, n, side = pick(1000, 10), pick(128, 2), pick(224, 32)
        net = resnet18(classes).to(device=d, dtype=dt).train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        x, y = r(n, 3, side, side, dt=dt), labels(n, classes)

        def step():
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

        return step

    def digits():
        net = digits_net().to(d).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
        n = pick(128, 4)
        x, y = r(n, 1, 8, 8), labels(n, 10)

        def step():
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

        return step

    def copy():
        n = pick(1 << 28, 1000)
        src, dst = r(n), torch.zeros(n, device=d)
        return lambda: dst.copy_(src)

    return {
        "matmul_f32_1024x1024x1024": (True, lambda: matmul(1024)),
        "matmul_f32_4096x4096x4096": (True, lambda: matmul(4096)),
        "matmul_f16_4096x4096x4096": (True, lambda: matmul(4096, f16)),
        "matmul_tf32_4096x4096x4096": (True, precision("tf32", lambda: matmul(4096))),
        "matmul_bf16_4096x4096x4096": (True, lambda: matmul(4096, torch.bfloat16)),
        "linear_fwd_bwd_f32_4096x1024x4096": (True, linear),
        "linear_fwd_bwd_tf32_4096x1024x4096": (True, precision("tf32", linear)),
        "linear_fwd_bwd_bf16_4096x1024x4096": (True, lambda: linear(torch.bfloat16)),
        "linear_bias_gelu_fwd_bwd_bf16_4096x1024x4096": (True, lambda: linear(torch.bfloat16, gelu=True)),
        "mlp_train_step_bf16_4x4096_b4096": (False, mlp_train),
        "bmm_f32_8x256x256x256": (True, bmm),
        "add_f32_1024x4096": (True, add),
        "add_bcast_row_f32_1024x4096": (True, add_row),
        "exp_f32_1024x4096": (True, lambda: unary(torch.exp)),
        "sum_all_f32_1024x4096": (True, lambda: unary(torch.sum)),
        "sum_dim1_f32_1024x4096": (True, lambda: unary(lambda a: a.sum(1))),
        "sum_dim0_f32_1024x4096": (True, lambda: unary(lambda a: a.sum(0))),
        "softmax_dim1_f32_1024x4096": (True, lambda: unary(lambda a: torch.softmax(a, 1))),
        "sort_dim1_f32_1024x4096": (True, lambda: unary(lambda a: torch.sort(a, dim=1, stable=True)[0])),
        "topk_k16_dim1_f32_1024x4096": (True, lambda: unary(lambda a: torch.topk(a, 16, 1)[0])),
        "transpose_contiguous_f32_1024x4096": (True, lambda: unary(lambda a: a.t().contiguous())),
        "to_f16_f32_1024x4096": (True, lambda: unary(lambda a: a.to(f16))),
        "mlp_fwd_bwd_f32_256x512x1024x256": (False, mlp),
        "max_pool2d_k3s2p1_fwd_bwd_f32_64x64x112x112": (True, max_pool),
        "batch_norm_train_fwd_bwd_f32_64x256x28x28": (True, batch_norm),
        "cross_entropy_fwd_bwd_f32_4096x1000": (True, cross_entropy),
        "dropout_p0.5_fwd_bwd_f32_64M": (True, dropout),
        "embedding_fwd_bwd_f32_50257x768_n8192": (True, embedding),
        "adamw_step_resnet18_f32": (False, adamw()),
        "adamw_fused_step_resnet18_f32": (False, adamw(fused=True)),
        "max_pool2d_k3s2_ceil_fwd_bwd_f32_64x64x112x112": (True, max_pool_ceil),
        "interpolate_bilinear_x2_fwd_bwd_f32_32x64x128x128": (True, upsample_bilinear),
        "hardswish_fwd_bwd_f32_1024x4096": (True, lambda: matrix_fwd_bwd(F.hardswish)),
        "erf_f32_1024x4096": (True, lambda: unary(torch.erf)),
        "cumsum_dim1_f32_1024x4096": (True, lambda: unary(lambda a: torch.cumsum(a, 1))),
        "logsumexp_dim1_fwd_bwd_f32_1024x4096": (True, lambda: matrix_fwd_bwd(lambda x: torch.logsumexp(x, 1))),
        "std_dim1_f32_1024x4096": (True, lambda: unary(lambda a: torch.std(a, 1))),
        "index_rows_fwd_bwd_f32_65536x64_n65536": (True, index_rows),
        "index_put_accumulate_f32_65536x64_n262144": (True, index_put_accumulate),
        "einsum_bij_bjk_f32_8x256x256x256": (True, einsum),
        "max_pool1d_k3s2p1_fwd_bwd_f32_64x256x4096": (True, max_pool1d),
        "avg_pool3d_k2s2_fwd_bwd_f32_16x64x16x56x56": (True, avg_pool3d),
        "adaptive_max_pool2d_7x7_fwd_bwd_f32_64x512x28x28": (True, adaptive_max_pool),
        **conv_rows(),
        "digits_cnn_train_step_f32_b128": (False, digits),
        "gpt2_small_generate_greedy_f32_p128_n32": (False, lambda: gpt2_generate(pick)),
        "copy_d2d_f32_1GiB": (True, copy),
        "group_norm_g32_fwd_bwd_f32_8x256x32x32": (True, group_norm),
        "bce_with_logits_fwd_bwd_f32_1024x4096": (True, bce_with_logits),
        **{
            f"resnet18_train_step_{prec}_b128": (False, precision(prec, lambda dt=dt: resnet(dt)))
            for prec, (dt, _) in PRECISIONS.items()
        },
    }


def gpt2_generate(pick):
    """transformers' greedy generate with GPT2LMHeadModel(GPT2Config()) (random weights):
    32 new tokens (no stop token) after a 128-token prompt, one sequence, its KV cache."""
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging
    logging.set_verbosity_error()
    small = dict(vocab_size=500, n_positions=64, n_embd=32, n_layer=2, n_head=2, n_inner=64)
    d = "cuda" if torch.cuda.is_available() else "cpu"
    model = GPT2LMHeadModel(GPT2Config(**pick({}, small))).to(d).eval()
    p, n = pick(128, 8), pick(32, 4)
    prompt = (torch.arange(p, device=d) * 7919 % 500).reshape(1, p)

    def step():
        with torch.no_grad():
            model.generate(prompt, do_sample=False, max_new_tokens=n, min_new_tokens=n,
                           eos_token_id=None, pad_token_id=0)

    return step


class Timer:
    """Times one call of a step: CUDA events on a GPU, the wall clock on the CPU."""

    def __init__(self, d):
        self.cuda = d == "cuda"

    def __call__(self, step):
        if not self.cuda:
            t = time.perf_counter()
            step()
            return (time.perf_counter() - t) * 1e3
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)


def time_case(step, flush, timer, reps):
    for _ in range(WARMUP):
        step()
    ms = []
    for _ in range(reps):
        if flush is not None:
            flush.zero_()
        ms.append(timer(step))
    ms.sort()
    median = (ms[(reps - 1) // 2] + ms[reps // 2]) / 2
    return {"median_ms": median, "min_ms": ms[0], "max_ms": ms[-1], "reps": reps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("filters", nargs="*", help="time the cases whose name contains one of these")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--smoke", action="store_true", help="tiny shapes and 3 repetitions")
    args = ap.parse_args()
    d = args.device
    if d == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_torch_bench.py: torch.cuda.is_available() is False")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    reps = 3 if args.smoke else REPS
    flush_bytes = (1 << 16) if args.smoke else FLUSH_BYTES
    flush = torch.empty(flush_bytes, dtype=torch.int8, device=d)
    out = {
        "meta": {
            "device": torch.cuda.get_device_name() if d == "cuda" else "cpu",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if d == "cuda" else None,
            "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
            "adamw": "foreach (default); adamw_fused_* rows fused=True",
            "timer": "CUDA events" if d == "cuda" else "wall clock",
            "warmup": WARMUP,
            "reps": reps,
            "l2_flush_bytes": flush_bytes,
            "smoke": args.smoke,
        }
    }
    timer = Timer(d)
    for name, (single_op, build) in cases(d, args.smoke).items():
        if args.filters and not any(f in name for f in args.filters):
            continue
        try:
            t = time_case(build(), flush if single_op else None, timer, reps)
        except Exception as e:  # one failing case must not lose the others' rows
            print(f"cuda/{name} failed: {e!r}", file=sys.stderr)
            continue
        out["cuda/" + name] = t
        print(
            f"cuda/{name}: median {t['median_ms']:.4f} ms "
            f"(min {t['min_ms']:.4f}, max {t['max_ms']:.4f}, {reps} reps)",
            file=sys.stderr,
        )
        if d == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
