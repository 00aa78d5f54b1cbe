"""Golden values for kiln's transformer layers: nn.TransformerEncoderLayer,
nn.TransformerEncoder, nn.TransformerDecoderLayer and nn.TransformerDecoder.

Run: .venv/bin/python scripts/golden/transformer_layers.py  (.venv from scripts/torch-venv.sh)
Writes tests/data/transformer_layers.safetensors with keys, per case:
  `<case>.sd.<name>`    the module's state_dict (exactly its PyTorch names)
  `<case>.x`            the input (`<case>.memory` too for a decoder)
  masks                 `<case>.attn_mask` / `.key_padding_mask` / `.memory_key_padding_mask`
                        (boolean masks as U8, 1 = True = may not attend)
  `<case>.out`          the output; `<case>.gout` a random upstream gradient
  `<case>.grad_x`       (and `.grad_memory`) the input gradients of (out * gout).sum()
  `<case>.grad.<name>`  every parameter's gradient

All float64, in training mode with dropout 0 (PyTorch's fast path never runs: inputs
require gradients), so the Rust tests compare tightly on every device. Each case's
PyTorch construction and call is the code right above its `run(...)`.
"""

import os

import torch
from torch import nn
from safetensors.torch import save_file

torch.manual_seed(2027)
torch.set_default_dtype(torch.float64)
out = {}


def put(key, t):
    out[key] = t.detach().contiguous().clone()


def run(case, module, call, inputs, masks):
    """Stores module's state_dict, the inputs, masks, output and every gradient of
    (call(module, *inputs, **masks) * gout).sum()."""
    for name, t in module.state_dict().items():
        put(f"{case}.sd.{name}", t)
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    y = call(module, **leaves, **masks)
    gout = torch.randn_like(y)
    (y * gout).sum().backward()
    for k, v in leaves.items():
        put(f"{case}.{k}", v)
        put(f"{case}.grad_{k}", v.grad)
    for k, m in masks.items():
        if isinstance(m, torch.Tensor):
            put(f"{case}.{k}", m.to(torch.uint8) if m.dtype == torch.bool else m)
    put(f"{case}.out", y)
    put(f"{case}.gout", gout)
    for name, p in module.named_parameters():
        put(f"{case}.grad.{name}", p.grad)


def padding(n, s, lengths):
    """(n, s) boolean key padding mask: True past each row's length."""
    return torch.arange(s)[None, :] >= torch.tensor(lengths)[:, None]


D, H, FF = 8, 2, 12

# Post-norm, ReLU, batch_first, with a key padding mask.
# layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, dropout=0.0, batch_first=True)
# y = layer(x, src_key_padding_mask=pad)          x: (2, 5, 8)
layer = nn.TransformerEncoderLayer(D, H, dim_feedforward=FF, dropout=0.0, batch_first=True)
run("enc_post", layer,
    lambda m, x, src_key_padding_mask: m(x, src_key_padding_mask=src_key_padding_mask),
    dict(x=torch.randn(2, 5, D)), dict(src_key_padding_mask=padding(2, 5, [5, 3])))

# Pre-norm, GELU, sequence-first (PyTorch's default), causal.
# layer = nn.TransformerEncoderLayer(8, 2, 12, 0.0, activation="gelu", norm_first=True)
# mask = nn.Transformer.generate_square_subsequent_mask(6)
# y = layer(x, src_mask=mask, is_causal=True)     x: (6, 3, 8) = (L, N, E)
layer = nn.TransformerEncoderLayer(D, H, FF, 0.0, activation="gelu", norm_first=True)
run("enc_pre_gelu", layer,
    lambda m, x: m(x, src_mask=nn.Transformer.generate_square_subsequent_mask(6), is_causal=True),
    dict(x=torch.randn(6, 3, D)), {})

# A stack of 2 (deep copies of one layer) with a final LayerNorm, an odd width (no
# bias-free fast path), a boolean attention mask and a key padding mask.
# layer = nn.TransformerEncoderLayer(6, 3, 10, 0.0, batch_first=True, layer_norm_eps=1e-6)
# enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(6), enable_nested_tensor=False)
# y = enc(x, mask=am, src_key_padding_mask=pad)   x: (2, 4, 6)
layer = nn.TransformerEncoderLayer(6, 3, 10, 0.0, batch_first=True, layer_norm_eps=1e-6)
enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(6), enable_nested_tensor=False)
with torch.no_grad():  # the clones start equal: make them differ, as after training
    for p in enc.layers[1].parameters():
        p.add_(torch.randn_like(p) * 0.1)
    enc.norm.weight.add_(torch.randn(6) * 0.1)
    enc.norm.bias.add_(torch.randn(6) * 0.1)
am = torch.rand(4, 4) > 0.7
am.fill_diagonal_(False)
run("enc_stack", enc,
    lambda m, x, mask, src_key_padding_mask: m(x, mask=mask, src_key_padding_mask=src_key_padding_mask),
    dict(x=torch.randn(2, 4, 6)), dict(mask=am, src_key_padding_mask=padding(2, 4, [4, 2])))

# Decoder layer, post-norm, ReLU, batch_first: causal self-attention, cross-attention
# with a memory key padding mask.
# layer = nn.TransformerDecoderLayer(8, 2, 12, 0.0, batch_first=True)
# y = layer(tgt, memory, tgt_mask=causal(5), tgt_is_causal=True, memory_key_padding_mask=mpad)
# tgt: (2, 5, 8), memory: (2, 7, 8)
layer = nn.TransformerDecoderLayer(D, H, FF, 0.0, batch_first=True)
run("dec_post", layer,
    lambda m, x, memory, memory_key_padding_mask: m(
        x, memory, tgt_mask=nn.Transformer.generate_square_subsequent_mask(5), tgt_is_causal=True,
        memory_key_padding_mask=memory_key_padding_mask),
    dict(x=torch.randn(2, 5, D), memory=torch.randn(2, 7, D)),
    dict(memory_key_padding_mask=padding(2, 7, [7, 4])))

# A pre-norm GELU decoder stack of 2, sequence-first, with a final LayerNorm, a target
# key padding mask and a float memory mask.
# layer = nn.TransformerDecoderLayer(8, 2, 12, 0.0, activation="gelu", norm_first=True)
# dec = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(8))
# y = dec(tgt, memory, tgt_key_padding_mask=tpad, memory_mask=fm)   tgt: (4, 2, 8), memory: (3, 2, 8)
layer = nn.TransformerDecoderLayer(D, H, FF, 0.0, activation="gelu", norm_first=True)
dec = nn.TransformerDecoder(layer, 2, norm=nn.LayerNorm(D))
with torch.no_grad():
    for p in dec.layers[0].parameters():
        p.add_(torch.randn_like(p) * 0.1)
run("dec_stack", dec,
    lambda m, x, memory, tgt_key_padding_mask, memory_mask: m(
        x, memory, tgt_key_padding_mask=tgt_key_padding_mask, memory_mask=memory_mask),
    dict(x=torch.randn(4, 2, D), memory=torch.randn(3, 2, D)),
    dict(tgt_key_padding_mask=padding(2, 4, [4, 3]), memory_mask=torch.randn(4, 3)))

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data",
                    "transformer_layers.safetensors")
save_file(dict(sorted(out.items())), path)
print(f"wrote {len(out)} tensors to {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")
