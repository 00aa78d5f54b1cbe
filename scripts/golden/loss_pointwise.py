#!/usr/bin/env python3
"""Golden values for kiln's pointwise losses and distances: F.binary_cross_entropy
(+ weight), F.binary_cross_entropy_with_logits (+ weight, pos_weight), F.l1_loss,
F.smooth_l1_loss, F.huber_loss, F.mse_loss (reductions), F.kl_div (batchmean,
log_target), F.cosine_similarity and F.normalize, values and gradients.

Run from the repository root:

    .venv/bin/python scripts/golden/loss_pointwise.py

and commit the regenerated tests/data/loss_pointwise.safetensors;
tests/functional_loss_pointwise.rs reads it.

Keys, per case `<c>` (see common.case): `<c>.in<i>` the inputs, `<c>.out`, `<c>.gout`
and `<c>.grad<i>`. Weights, which PyTorch's losses do not differentiate, are constants
of the case, stored as `<c>.weight` / `<c>.pos_weight`. Each case's PyTorch expression
is the comment above it; tests/functional_loss_pointwise.rs repeats it above its case.
"""
import torch
import torch.nn.functional as F

from common import F32, F64, OUT, case, randn, save

torch.manual_seed(6)


def probs(*shape, dtype=F64):
    """Probabilities in (0.05, 0.95)."""
    return torch.rand(shape, dtype=dtype) * 0.9 + 0.05


def unit(*shape, dtype=F64):
    return torch.rand(shape, dtype=dtype)


# The cases' constant weights, stored after the cases (case() wants fresh names).
CONSTS = {}


def const(name, key, t):
    CONSTS[f"{name}.{key}"] = t
    return t


# ---------------------------------------------------------------- binary cross entropy
# bce: F.binary_cross_entropy(p (3,5), t (3,5))
case("bce", lambda p, t: F.binary_cross_entropy(p, t), probs(3, 5), unit(3, 5))
# bce_weight_sum: F.binary_cross_entropy(p (4,3), t, weight=w (3), reduction="sum")
w = const("bce_weight_sum", "weight", unit(3) + 0.5)
case("bce_weight_sum", lambda p, t: F.binary_cross_entropy(p, t, weight=w, reduction="sum"),
     probs(4, 3), unit(4, 3))
# bce_edges: F.binary_cross_entropy(p, t, reduction="none"), p holding 0 and 1 (logs clamped at -100)
case("bce_edges", lambda p, t: F.binary_cross_entropy(p, t, reduction="none"),
     torch.tensor([0.0, 1.0, 0.0, 1.0, 0.5, 1e-30], dtype=F64),
     torch.tensor([0.0, 1.0, 1.0, 0.0, 0.5, 1.0], dtype=F64))
# bce_f32: F.binary_cross_entropy(p (2,7), t), float32
case("bce_f32", lambda p, t: F.binary_cross_entropy(p, t), probs(2, 7, dtype=F32), unit(2, 7, dtype=F32))
# bce_logits: F.binary_cross_entropy_with_logits(z (4,3) * 3, t)
case("bce_logits", lambda z, t: F.binary_cross_entropy_with_logits(z, t), randn(4, 3) * 3, unit(4, 3))
# bce_logits_pos_weight: F.binary_cross_entropy_with_logits(z (4,3), t, weight=w (4,1),
# pos_weight=pw (3), reduction="sum"), z holding ±100 (stable)
pw = const("bce_logits_pos_weight", "pos_weight", unit(3) * 2 + 0.5)
w = const("bce_logits_pos_weight", "weight", unit(4, 1) + 0.5)
z = randn(4, 3) * 2
z[0, 0], z[1, 2], z[2, 1] = 100.0, -100.0, 40.0
case("bce_logits_pos_weight",
     lambda z, t: F.binary_cross_entropy_with_logits(z, t, weight=w, pos_weight=pw, reduction="sum"),
     z, unit(4, 3))
# bce_logits_none_f32: F.binary_cross_entropy_with_logits(z (3,4), t, reduction="none"), float32
case("bce_logits_none_f32", lambda z, t: F.binary_cross_entropy_with_logits(z, t, reduction="none"),
     randn(3, 4, dtype=F32) * 4, unit(3, 4, dtype=F32))

# ---------------------------------------------------------------- l1 / smooth l1 / huber / mse
ties = randn(3, 4)
ties_t = randn(3, 4)
ties_t[0, :2] = ties[0, :2]
# l1: F.l1_loss(a (3,4), b), two equal pairs (gradient 0 there)
case("l1", lambda a, b: F.l1_loss(a, b), ties, ties_t)
# l1_sum_f32: F.l1_loss(a (5,3), b, reduction="sum"), float32
case("l1_sum_f32", lambda a, b: F.l1_loss(a, b, reduction="sum"), randn(5, 3, dtype=F32), randn(5, 3, dtype=F32))
# smooth_l1: F.smooth_l1_loss(a (4,5) * 2, b)
case("smooth_l1", lambda a, b: F.smooth_l1_loss(a, b), randn(4, 5) * 2, randn(4, 5))
# smooth_l1_beta: F.smooth_l1_loss(a (3,7), b, reduction="none", beta=0.5)
case("smooth_l1_beta", lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=0.5), randn(3, 7), randn(3, 7))
# smooth_l1_beta0: F.smooth_l1_loss(a (2,3), b, beta=0.0): the L1 loss
case("smooth_l1_beta0", lambda a, b: F.smooth_l1_loss(a, b, beta=0.0), randn(2, 3), randn(2, 3))
# huber: F.huber_loss(a (4,5) * 2, b)
case("huber", lambda a, b: F.huber_loss(a, b), randn(4, 5) * 2, randn(4, 5))
# huber_delta: F.huber_loss(a (3,7) * 3, b, reduction="sum", delta=2.0)
case("huber_delta", lambda a, b: F.huber_loss(a, b, reduction="sum", delta=2.0), randn(3, 7) * 3, randn(3, 7))
# mse_none: F.mse_loss(a (3,4), b, reduction="none")
case("mse_none", lambda a, b: F.mse_loss(a, b, reduction="none"), randn(3, 4), randn(3, 4))
# mse_sum: F.mse_loss(a (2,5), b, reduction="sum")
case("mse_sum", lambda a, b: F.mse_loss(a, b, reduction="sum"), randn(2, 5), randn(2, 5))

# ---------------------------------------------------------------- kl_div
# kl_batchmean: F.kl_div(a (4,5), t, reduction="batchmean"); a log-probabilities, t probabilities
case("kl_batchmean", lambda a, t: F.kl_div(a, t, reduction="batchmean"),
     F.log_softmax(randn(4, 5), 1), F.softmax(randn(4, 5), 1))
# kl_log_target: F.kl_div(a (3,6), t, reduction="sum", log_target=True)
case("kl_log_target", lambda a, t: F.kl_div(a, t, reduction="sum", log_target=True),
     F.log_softmax(randn(3, 6), 1), F.log_softmax(randn(3, 6), 1))
# kl_mean_zeros: F.kl_div(a (2,4), t), t holding zeros (0 loss there; t's gradient NaN, as PyTorch's)
t = F.softmax(randn(2, 4), 1)
t[0, 1], t[1, 3] = 0.0, 0.0
case("kl_mean_zeros", lambda a, t: F.kl_div(a, t), F.log_softmax(randn(2, 4), 1), t)
# kl_none: F.kl_div(a (2,3), t, reduction="none")
case("kl_none", lambda a, t: F.kl_div(a, t, reduction="none"), randn(2, 3), unit(2, 3))

# ---------------------------------------------------------------- distances
# cos: F.cosine_similarity(a (4,6), b (4,6))   (dim 1, eps 1e-8)
case("cos", lambda a, b: F.cosine_similarity(a, b), randn(4, 6), randn(4, 6))
# cos_broadcast: F.cosine_similarity(a (3,1,5), b (4,5), dim=2)
case("cos_broadcast", lambda a, b: F.cosine_similarity(a, b, dim=2), randn(3, 1, 5), randn(4, 5))
# cos_zero: F.cosine_similarity(a (2,3), b, dim=1, eps=1e-6), a's first row zero
a = randn(2, 3)
a[0] = 0.0
case("cos_zero", lambda a, b: F.cosine_similarity(a, b, dim=1, eps=1e-6), a, randn(2, 3))
# normalize: F.normalize(a (3,5))   (p 2, dim 1)
case("normalize", lambda a: F.normalize(a), randn(3, 5))
# normalize_p1_dim0: F.normalize(a (4,3), p=1.0, dim=0)
case("normalize_p1_dim0", lambda a: F.normalize(a, p=1.0, dim=0), randn(4, 3))
# normalize_p3: F.normalize(a (2,6), p=3.0, dim=1, eps=0.5)   (rows with a norm under eps clamp)
case("normalize_p3", lambda a: F.normalize(a, p=3.0, dim=1, eps=0.5), randn(2, 6) * torch.tensor([[0.1], [1.0]], dtype=F64))
# normalize_inf: F.normalize(a (3,4), p=inf, dim=1)
case("normalize_inf", lambda a: F.normalize(a, p=float("inf"), dim=1), randn(3, 4))

OUT.update(CONSTS)
save("loss_pointwise")
