"""Golden values for kiln's recurrent layers: nn.RNN, nn.LSTM, nn.GRU, nn.LSTMCell and
nn.GRUCell.

Run: .venv/bin/python scripts/golden/rnn.py  (.venv from scripts/torch-venv.sh)
Writes tests/data/rnn.safetensors with keys, per case:
  `<case>.sd.<name>`    the module's state_dict (PyTorch's names)
  `<case>.x`, `.h0`, `.c0`   the input and the initial states given (if any)
  `<case>.out`, `.h_n`, `.c_n`   the results (`.h`, `.c` for the cells)
  `<case>.g_<result>`   a random upstream gradient per result
  `<case>.grad_<input>` the inputs' gradients of sum(result * g_result) over results
  `<case>.grad.<name>`  every parameter's gradient
  `<case>.lengths`      (I64) the sequence lengths of the packed cases
and the fused step's cases `fused_<op>.*` (see the end of the script).

All float64. Each case's PyTorch construction and call is the code above its
`run(...)`. The `_lengths` cases run PyTorch's packed sequences:
  packed = pack_padded_sequence(x, lengths, batch_first, enforce_sorted=False)
  out, state = module(packed, state); out = pad_packed_sequence(out, batch_first, total_length=T)[0]
which kiln computes with masks (outputs 0 past each length, final states at each end).
"""

import os

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from safetensors.torch import save_file

torch.manual_seed(2029)
torch.set_default_dtype(torch.float64)
out = {}


def put(key, t):
    out[key] = t.detach().contiguous().clone()


def run(case, module, inputs, call, lengths=None):
    """Stores the case: `call(module, **leaves)` returns a dict of named results."""
    module.zero_grad()
    for name, t in module.state_dict().items():
        put(f"{case}.sd.{name}", t)
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    results = call(module, **leaves)
    loss = 0
    for name, r in results.items():
        g = torch.randn_like(r)
        put(f"{case}.{name}", r)
        put(f"{case}.g_{name}", g)
        loss = loss + (r * g).sum()
    loss.backward()
    for k, v in leaves.items():
        put(f"{case}.{k}", v)
        put(f"{case}.grad_{k}", v.grad)
    for name, p in module.named_parameters():
        put(f"{case}.grad.{name}", p.grad)
    if lengths is not None:
        put(f"{case}.lengths", torch.tensor(lengths))


def packed(module, x, state, lengths, batch_first):
    """The module on a packed batch, padded back to x's length."""
    t = x.shape[1 if batch_first else 0]
    p = pack_padded_sequence(x, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False)
    o, s = module(p, state)
    return pad_packed_sequence(o, batch_first=batch_first, total_length=t)[0], s


# rnn = nn.RNN(5, 4, num_layers=2); out, h_n = rnn(x, h0)          x (6, 3, 5), h0 (2, 3, 4)
run("rnn_tanh", nn.RNN(5, 4, num_layers=2), dict(x=torch.randn(6, 3, 5), h0=torch.randn(2, 3, 4)),
    lambda m, x, h0: dict(zip(["out", "h_n"], m(x, h0))))

# rnn = nn.RNN(5, 4, nonlinearity="relu", bias=False, batch_first=True); out, h_n = rnn(x)   x (3, 6, 5)
run("rnn_relu", nn.RNN(5, 4, nonlinearity="relu", bias=False, batch_first=True), dict(x=torch.randn(3, 6, 5)),
    lambda m, x: dict(zip(["out", "h_n"], m(x))))

# lstm = nn.LSTM(5, 4); out, (h_n, c_n) = lstm(x)                    x (7, 2, 5)
run("lstm", nn.LSTM(5, 4), dict(x=torch.randn(7, 2, 5)),
    lambda m, x: (lambda o, s: dict(out=o, h_n=s[0], c_n=s[1]))(*m(x)))

# lstm = nn.LSTM(5, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
# out, (h_n, c_n) = lstm(x, (h0, c0))                  x (3, 6, 5), h0 (4, 3, 3), c0 (4, 3, 6)
big = nn.LSTM(5, 6, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
run("lstm_big", big, dict(x=torch.randn(3, 6, 5), h0=torch.randn(4, 3, 3), c0=torch.randn(4, 3, 6)),
    lambda m, x, h0, c0: (lambda o, s: dict(out=o, h_n=s[0], c_n=s[1]))(*m(x, (h0, c0))))

# The same LSTM on sequences of lengths [6, 4, 1], packed (see the header).
lengths = [6, 4, 1]
run("lstm_big_lengths", big, dict(x=torch.randn(3, 6, 5), h0=torch.randn(4, 3, 3), c0=torch.randn(4, 3, 6)),
    lambda m, x, h0, c0: (lambda o, s: dict(out=o, h_n=s[0], c_n=s[1]))(
        *packed(m, x, (h0, c0), lengths, True)), lengths=lengths)

# gru = nn.GRU(5, 4, num_layers=2, bidirectional=True, dropout=0.0); out, h_n = gru(x, h0)
# x (5, 3, 5), h0 (4, 3, 4)
run("gru", nn.GRU(5, 4, num_layers=2, bidirectional=True), dict(x=torch.randn(5, 3, 5), h0=torch.randn(4, 3, 4)),
    lambda m, x, h0: dict(zip(["out", "h_n"], m(x, h0))))

# gru = nn.GRU(5, 4, bidirectional=True) on sequences of lengths [2, 5, 3] (sequence-first), packed.
lengths = [2, 5, 3]
run("gru_lengths", nn.GRU(5, 4, bidirectional=True), dict(x=torch.randn(5, 3, 5)),
    lambda m, x: dict(zip(["out", "h_n"], packed(m, x, None, lengths, False))), lengths=lengths)

# rnn = nn.RNN(5, 4, bidirectional=True, nonlinearity="relu") on lengths [1, 4], batch-first, packed.
lengths = [1, 4]
run("rnn_lengths", nn.RNN(5, 4, bidirectional=True, nonlinearity="relu", batch_first=True),
    dict(x=torch.randn(2, 4, 5), h0=torch.randn(2, 2, 4)),
    lambda m, x, h0: dict(zip(["out", "h_n"], packed(m, x, h0, lengths, True))), lengths=lengths)

# An unbatched input: lstm = nn.LSTM(5, 4, num_layers=2); out, (h_n, c_n) = lstm(x, (h0, c0))
# x (6, 5), h0 (2, 4), c0 (2, 4)
run("lstm_unbatched", nn.LSTM(5, 4, num_layers=2),
    dict(x=torch.randn(6, 5), h0=torch.randn(2, 4), c0=torch.randn(2, 4)),
    lambda m, x, h0, c0: (lambda o, s: dict(out=o, h_n=s[0], c_n=s[1]))(*m(x, (h0, c0))))

# cell = nn.LSTMCell(5, 4); h, c = cell(x, (h0, c0))                x (3, 5)
run("lstm_cell", nn.LSTMCell(5, 4), dict(x=torch.randn(3, 5), h0=torch.randn(3, 4), c0=torch.randn(3, 4)),
    lambda m, x, h0, c0: dict(zip(["h", "c"], m(x, (h0, c0)))))

# cell = nn.GRUCell(5, 4, bias=False); h = cell(x, h0)              x (3, 5)
run("gru_cell", nn.GRUCell(5, 4, bias=False), dict(x=torch.randn(3, 5), h0=torch.randn(3, 4)),
    lambda m, x, h0: dict(h=m(x, h0)))

# ---- The fused step alone (F::fused_lstm_cell, fused_gru_cell, fused_rnn_*_cell), as
# PyTorch's own RNN cells compute it from the gates (chunked in its gate order):
#   LSTM: i, f, g, o = (gi + gh).chunk(4, 1); c2 = σ(f)·c + σ(i)·tanh(g); h = σ(o)·tanh(c2)
#   GRU:  r, z = σ(gi_r + gh_r), σ(gi_z + gh_z); n = tanh(gi_n + r·gh_n); h = (1 − z)·n + z·s
#   RNN:  tanh or relu of gi + gh
# Keys `fused_<op>.{gi, gh, s, <result>, g_<result>, grad_gi, grad_gh, grad_s}` (results
# h, and c for the LSTM). N = 3 sequences of H = 5 units; _empty: N = 0.
def lstm_step(gi, gh, s):
    i, f, g, o = (gi + gh).chunk(4, 1)
    c = torch.sigmoid(f) * s + torch.sigmoid(i) * torch.tanh(g)
    return dict(h=torch.sigmoid(o) * torch.tanh(c), c=c)


def gru_step(gi, gh, s):
    (ir, iz, inn), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
    r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
    n = torch.tanh(inn + r * hn)
    return dict(h=(1 - z) * n + z * s)


def fused(case, step, gates, rows=3, hidden=5, state=True):
    leaves = dict(gi=torch.randn(rows, gates * hidden) * 2, gh=torch.randn(rows, gates * hidden))
    if state:
        leaves["s"] = torch.randn(rows, hidden)
    leaves = {k: v.requires_grad_() for k, v in leaves.items()}
    results = step(**leaves)
    loss = 0
    for name, r in results.items():
        g = torch.randn_like(r)
        put(f"{case}.{name}", r)
        put(f"{case}.g_{name}", g)
        loss = loss + (r * g).sum()
    if rows:
        loss.backward()
    for k, v in leaves.items():
        put(f"{case}.{k}", v)
        put(f"{case}.grad_{k}", v.grad if v.grad is not None else torch.zeros_like(v))


fused("fused_lstm", lstm_step, 4)
fused("fused_lstm_empty", lstm_step, 4, rows=0)
fused("fused_gru", gru_step, 3)
fused("fused_rnn_tanh", lambda gi, gh: dict(h=torch.tanh(gi + gh)), 1, state=False)
fused("fused_rnn_relu", lambda gi, gh: dict(h=torch.relu(gi + gh)), 1, state=False)

path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "data", "rnn.safetensors")
save_file(dict(sorted(out.items())), path)
print(f"wrote {len(out)} tensors to {os.path.normpath(path)} ({os.path.getsize(path)} bytes)")
