"""Golden values for kiln's scaled_dot_product_attention and nn.MultiheadAttention.

Run: .venv/bin/python scripts/golden/attention.py  (.venv from scripts/torch-venv.sh)
Writes
  tests/data/attention.safetensors   keys `<case>.<tensor>`:
    sdpa cases: q, k, v, (mask), gout, out, grad_q, grad_k, grad_v, scale
    mha cases:  q, k, v, (attn_mask, key_padding_mask), out
    gpt:        ids (2, 8), out (the logits), out_short (the logits of ids[:, :5])
  tests/data/mha_torch.safetensors   exactly `save_file(mha.state_dict())` of the
                                     nn.MultiheadAttention(16, 4, batch_first=True) below
  tests/data/gpt_torch.safetensors   exactly `save_file(gpt.state_dict())` of the one-block
                                     GPT below (src/models/gpt.rs's model)

Every SDPA case draws q, k, v from a fixed seed, runs the PyTorch call quoted in its
comment, and stores the output and the gradients of `(out * gout).sum()` for a random
`gout`. Most cases are float64 so that the Rust tests compare tightly; the f32 cases
also serve the BF16 test, which converts their inputs and compares with a tolerance.
A fully masked query row gives 0 and no gradient in PyTorch 2.15 (math and flash
backends alike), which the `bool_mask` case checks.
"""

import os

import torch
import torch.nn.functional as F
from torch import nn
from safetensors.torch import save_file

torch.manual_seed(2024)
out = {}


def put(case, **tensors):
    for name, t in tensors.items():
        out[f"{case}.{name}"] = t.detach().contiguous().clone()


def sdpa_case(case, qs, ks, vs, dtype=torch.float64, mask=None, causal=False, scale=None):
    q = torch.randn(*qs, dtype=dtype, requires_grad=True)
    k = torch.randn(*ks, dtype=dtype, requires_grad=True)
    v = torch.randn(*vs, dtype=dtype, requires_grad=True)
    # y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    s = scale if scale is not None else q.shape[-1] ** -0.5
    tensors = dict(q=q, k=k, v=v, gout=g, out=y, grad_q=q.grad, grad_k=k.grad, grad_v=v.grad,
                   scale=torch.tensor(s, dtype=torch.float64))
    if mask is not None:
        tensors["mask"] = mask.to(torch.uint8) if mask.dtype == torch.bool else mask
    put(case, **tensors)


# (N, heads, L, E), no mask, E = 16.
sdpa_case("plain", (2, 3, 5, 16), (2, 3, 7, 16), (2, 3, 7, 16))
# is_causal=True with L == S, and with L < S and L > S (the lower triangle, top-left).
sdpa_case("causal", (2, 2, 9, 16), (2, 2, 9, 16), (2, 2, 9, 16), causal=True)
sdpa_case("causal_l_lt_s", (1, 2, 5, 16), (1, 2, 11, 16), (1, 2, 11, 16), causal=True)
sdpa_case("causal_l_gt_s", (1, 2, 11, 16), (1, 2, 5, 16), (1, 2, 5, 16), causal=True)
# A boolean mask (True = may attend) broadcast from (L, S) over N and heads, with a
# row that may attend nowhere (query 1) and EV != E.
m = torch.rand(6, 10) > 0.4
m[1] = False
m[:, 0] |= torch.arange(6) != 1
sdpa_case("bool_mask", (2, 2, 6, 16), (2, 2, 10, 16), (2, 2, 10, 24), mask=m)
# A float mask added to the scores, shaped (N, 1, L, S) (broadcast over heads), with -inf.
fm = torch.randn(2, 1, 6, 10, dtype=torch.float64)
fm[:, :, 2, 3:7] = float("-inf")
sdpa_case("float_mask", (2, 2, 6, 24), (2, 2, 10, 24), (2, 2, 10, 24), mask=fm)
# Head dims 64 and 128 (L != S), a custom scale, and leading dims (N, L, E) only.
sdpa_case("hd64", (1, 2, 5, 64), (1, 2, 7, 64), (1, 2, 7, 64), scale=0.3)
sdpa_case("hd128", (1, 1, 5, 128), (1, 1, 7, 128), (1, 1, 7, 128), causal=True)
sdpa_case("rank3", (3, 4, 8), (3, 6, 8), (3, 6, 5))
# Causal and a boolean mask together (kiln combines them; PyTorch takes the product
# as one mask): y = F.sdpa(q, k, v, attn_mask=m & tril(ones(L, S)))
m2 = torch.rand(7, 7) > 0.3
m2.fill_diagonal_(True)
sdpa_case("causal_and_mask", (1, 2, 7, 16), (1, 2, 7, 16), (1, 2, 7, 16),
          mask=m2 & torch.ones(7, 7, dtype=torch.bool).tril())
# f32 (and, converted by the test, bf16): causal, head dim 64.
sdpa_case("f32_causal", (1, 2, 10, 64), (1, 2, 10, 64), (1, 2, 10, 64), dtype=torch.float32, causal=True)
sdpa_case("f32_mask", (1, 2, 9, 32), (1, 2, 13, 32), (1, 2, 13, 32), dtype=torch.float32,
          mask=torch.rand(9, 13) > 0.3)

# ---------------------------------------------------------------- MultiheadAttention
# mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
mha = nn.MultiheadAttention(16, 4, batch_first=True).eval()
with torch.no_grad():  # non-zero biases, so the test sees them used
    mha.in_proj_bias.normal_()
    mha.out_proj.bias.normal_()
data = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data")
save_file(mha.state_dict(), os.path.normpath(os.path.join(data, "mha_torch.safetensors")))

with torch.no_grad():
    x = torch.randn(2, 5, 16)
    # y, _ = mha(x, x, x)
    put("mha_self", q=x, out=mha(x, x, x)[0])
    # y, _ = mha(x, x, x, attn_mask=nn.Transformer.generate_square_subsequent_mask(5), is_causal=True)
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    put("mha_causal", q=x, out=mha(x, x, x, attn_mask=causal, is_causal=True)[0])
    # Cross-attention, S != L, with a boolean key_padding_mask (True = padding) and a
    # boolean attn_mask (True = may not attend):
    # y, _ = mha(q, kv, kv2, key_padding_mask=pad, attn_mask=am)
    q = torch.randn(2, 4, 16)
    kv = torch.randn(2, 6, 16)
    kv2 = torch.randn(2, 6, 16)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 4:] = True
    pad[1, 5:] = True
    am = torch.rand(4, 6) > 0.8
    am[:, 0] = False
    y = mha(q, kv, kv2, key_padding_mask=pad, attn_mask=am)[0]
    put("mha_cross", q=q, k=kv, v=kv2, key_padding_mask=pad.to(torch.uint8),
        attn_mask=am.to(torch.uint8), out=y)

# ---------------------------------------------------------------- one-block GPT
# The model of src/models/gpt.rs, in PyTorch (pre-norm, causal nn.MultiheadAttention,
# exact-GELU MLP, final LayerNorm, untied head):
class Mlp(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(d)
        self.mlp = Mlp(d)

    def forward(self, x):
        h = self.ln_1(x)
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        x = x + self.attn(h, h, h, attn_mask=mask, is_causal=True, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Gpt(nn.Module):
    def __init__(self, vocab, block_size, n_layer, heads, d):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList([Block(d, heads) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):
        x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
        for b in self.blocks:
            x = b(x)
        return self.lm_head(self.ln_f(x))


# gpt = Gpt(vocab=11, block_size=8, n_layer=1, heads=4, d=16).eval(); logits = gpt(ids)
gpt = Gpt(11, 8, 1, 4, 16).eval()
with torch.no_grad():  # non-trivial norms and biases, so the test sees them used
    for name, p in gpt.named_parameters():
        if "ln" in name or "bias" in name:
            p.add_(torch.randn_like(p) * 0.3)
save_file(gpt.state_dict(), os.path.normpath(os.path.join(data, "gpt_torch.safetensors")))
ids = torch.randint(0, 11, (2, 8))
with torch.no_grad():
    put("gpt", ids=ids, out=gpt(ids), out_short=gpt(ids[:, :5]))

path = os.path.normpath(os.path.join(data, "attention.safetensors"))
save_file(out, path)
print(f"wrote {len(out)} tensors to {path}")
