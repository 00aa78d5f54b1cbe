"""Golden values for converting a scalar to a dtype: tests/data/scalar_convert.safetensors,
checked by tests/scalar_convert.rs.

Run: .venv/bin/python scripts/golden/scalar_convert.py

kiln's scalar arguments are f64, and an integral one within i64's range is an integer
scalar (as in its arithmetic ops), so each VALUE is given to PyTorch as `int(v)` when
it is one and as `float(v)` otherwise. For every dtype `<d>` (u8, i64, f16, bf16, f32, f64):

* `full.<d>.value`: VALUES (f64); `full.<d>.ok`: 1 where
  `torch.full((2,), v, dtype=d)` succeeds, 0 where it raises "value cannot be
  converted to type ... without overflow"; `full.<d>.out`: its element as f64 (0
  where it raised).
* `clamp.<d>.bound`, `.min_ok`, `.min_out`, `.max_ok`, `.max_out`: the same for
  `torch.tensor(CLAMP_X, dtype=d).clamp(min=b)` and `.clamp(max=b)`, on integer
  BOUNDS only (a fractional bound promotes an integer tensor to float, checked in
  the Rust test); `min_out`/`max_out` are (len(BOUNDS), len(CLAMP_X)).
"""
import math

import torch

from common import F64, OUT, save

DTYPES = {
    "u8": torch.uint8,
    "i64": torch.int64,
    "f16": torch.float16,
    "bf16": torch.bfloat16,
    "f32": torch.float32,
    "f64": torch.float64,
}
VALUES = [0.0, 1.0, -1.0, 2.7, -2.7, 0.99, -0.5, 255.0, 255.9, 256.0, 300.0, -255.0,
          -256.0, 65504.0, 65504.5, 65520.0, 1e6, 3.3895313892515355e38, 3.39e38,
          3.4028234663852886e38, 3.4028236e38, 1e39, 9.2233720368547e18,
          9.223372036854775807e18, -9.223372036854775808e18, 1e300,
          math.inf, -math.inf, math.nan]
BOUNDS = [-300.0, -5.0, -1.0, 0.0, 3.0, 255.0, 256.0, 300.0, 1e6, -1e6]
CLAMP_X = [0.0, 1.0, 2.0, 5.0, 200.0]


def scalar(v):
    """kiln's reading of an f64 scalar: an integer when integral and in i64's range."""
    return int(v) if math.isfinite(v) and v == int(v) and -2**63 <= v < 2**63 else v


def attempt(fn):
    try:
        return 1, fn()
    except RuntimeError as e:
        assert "cannot be converted" in str(e) or "outside the representable" in str(e), e
        return 0, None


for name, dtype in DTYPES.items():
    oks, outs = [], []
    for v in VALUES:
        ok, t = attempt(lambda: torch.full((2,), scalar(v), dtype=dtype))
        oks.append(ok)
        outs.append(t[0].double().item() if ok else 0.0)
    OUT[f"full.{name}.value"] = torch.tensor(VALUES, dtype=F64)
    OUT[f"full.{name}.ok"] = torch.tensor(oks, dtype=torch.uint8)
    OUT[f"full.{name}.out"] = torch.tensor(outs, dtype=F64)

    x = torch.tensor(CLAMP_X, dtype=dtype)
    for side in ["min", "max"]:
        oks, outs = [], []
        for b in BOUNDS:
            ok, t = attempt(lambda: x.clamp(**{side: scalar(b)}))
            assert not ok or t.dtype == dtype
            oks.append(ok)
            outs.append(t.double().tolist() if ok else [0.0] * len(CLAMP_X))
        OUT[f"clamp.{name}.{side}_ok"] = torch.tensor(oks, dtype=torch.uint8)
        OUT[f"clamp.{name}.{side}_out"] = torch.tensor(outs, dtype=F64)
    OUT[f"clamp.{name}.bound"] = torch.tensor(BOUNDS, dtype=F64)
    OUT[f"clamp.{name}.x"] = torch.tensor(CLAMP_X, dtype=F64)

save("scalar_convert")
