#!/usr/bin/env bash
# Runs on a GPU machine with the folder scripts/gpu-bundle.sh built (.gpu/, which also
# holds a copy of this script; no Rust needed): `bash scripts/gpu-check.sh` or
# `bash .gpu/gpu-check.sh`.
#   1. the CUDA tests, required (KILN_REQUIRE_CUDA_TESTS=1: a skip is a failure), then
#      every golden suite's `::cuda` variants (PyTorch's values on the GPU);
#   2. kiln's CUDA timings and PyTorch's for the same cases;
#   3. the CUDA tests again with the cache bypassed (KILN_CUDA_NO_CACHE=1);
#   4. if compute-sanitizer exists: memcheck over a subset of the tests.
# Logs, JSON timings and summary.md (device, test counts, kiln vs PyTorch table) go to
# $OUT (default .gpu/out). Exits non-zero if any step failed.
set -uo pipefail
# The bundle is the folder this script sits in when gpu-bundle.sh copied it there,
# else .gpu/ of the repository.
here="$(cd "$(dirname "$0")" && pwd)"
if [[ -x "$here/cuda-tests" ]]; then B="$here"; else B="$(cd "$here/.." && pwd)/.gpu"; fi
OUT="${OUT:-$B/out}"
mkdir -p "$OUT"
fail=0
step() { echo; echo "== $*"; }

# The test binaries read data/digits/ and tests/data/ at the absolute path they were
# built in; where the checkout sits elsewhere on this machine, make that path lead to it.
built_in="$(cat "$B/built-in.txt" 2>/dev/null || true)"
checkout="$(cd "$B/.." && pwd)"
if [[ -n "$built_in" && ! -e "$built_in/data/digits" && -d "$checkout/data/digits" ]]; then
    mkdir -p "$(dirname "$built_in")" && ln -sfn "$checkout" "$built_in"
fi

step "device"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee "$OUT/device.txt"
echo "bundle built from commit $(cat $B/commit.txt 2>/dev/null || echo '?')" | tee -a "$OUT/device.txt"

step "CUDA tests (caching allocator)"
KILN_REQUIRE_CUDA_TESTS=1 timeout 240 "$B/cuda-tests" 2>&1 | tee "$OUT/tests.log" || fail=1

step "golden suites on the GPU (their ::cuda variants)"
for gz in "$B"/golden/*.gz; do
    [[ -e "$gz" ]] || continue
    bin="$OUT/$(basename "$gz" .gz)"
    gunzip -c "$gz" > "$bin" && chmod +x "$bin"
    echo "-- $(basename "$bin")" | tee -a "$OUT/golden.log"
    KILN_REQUIRE_CUDA_TESTS=1 timeout 120 "$bin" cuda 2>&1 | tee -a "$OUT/golden.log" || fail=1
    rm -f "$bin"
done

step "timings: kiln"
timeout 150 "$B/cuda-bench" > "$OUT/kiln.json" 2> >(tee "$OUT/kiln-bench.log" >&2) || fail=1
step "timings: PyTorch"
timeout 150 python3 "$B/gpu_torch_bench.py" > "$OUT/torch.json" 2> >(tee "$OUT/torch-bench.log" >&2) || fail=1

step "CUDA tests (KILN_CUDA_NO_CACHE=1)"
KILN_CUDA_NO_CACHE=1 KILN_REQUIRE_CUDA_TESTS=1 timeout 150 "$B/cuda-tests" 2>&1 | tee "$OUT/tests-no-cache.log" || fail=1

SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
if [[ -n "$SAN" ]]; then
    step "compute-sanitizer memcheck (subset)"
    KILN_CUDA_NO_CACHE=1 KILN_REQUIRE_CUDA_TESTS=1 timeout 150 "$SAN" --tool memcheck --error-exitcode 3 \
        "$B/cuda-tests" --test-threads=1 conversions views softmax binary matmul_matches 2>&1 |
        tail -n 40 | tee "$OUT/sanitizer.log" || fail=1
fi

step "summary"
python3 - "$OUT" "$fail" <<'PY' | tee "$OUT/summary.md"
import json, os, re, sys
out, fail = sys.argv[1], sys.argv[2]
def read(name):
    try:
        return open(os.path.join(out, name)).read()
    except OSError:
        return ""
print("device:", read("device.txt").strip().replace("\n", "; "))
for log in ["tests.log", "golden.log", "tests-no-cache.log", "sanitizer.log"]:
    for line in read(log).splitlines():
        if line.startswith("test result:") or "ERROR SUMMARY" in line:
            print(f"{log}: {line.strip()}")
def load(name):
    try:
        return json.loads(read(name) or "{}")
    except ValueError:
        return {}
kiln, torch = load("kiln.json"), load("torch.json")
print()
print("| case | kiln ms | PyTorch ms | kiln/PyTorch |")
print("|---|---:|---:|---:|")
for case in sorted(set(kiln) | set(torch), key=lambda c: list(torch).index(c) if c in torch else 99):
    k, t = kiln.get(case), torch.get(case)
    ratio = f"{k / t:.2f}" if k and t else "-"
    fmt = lambda v: f"{v:.4f}" if v is not None else "-"
    print(f"| {case} | {fmt(k)} | {fmt(t)} | {ratio} |")
print()
print("overall:", "FAILED" if fail != "0" else "ok")
PY
exit $fail
