#!/usr/bin/env bash
# Builds, on this machine, everything scripts/gpu-check.sh runs on a GPU machine (which
# has no Rust toolchain): the CUDA test binary (tests/cuda.rs) and the CUDA timing
# binary (benches/cuda_ops.rs), release mode, kernels required and embedded, stripped,
# plus the PyTorch counterpart of the timings. Everything goes to .gpu/ (git-ignored);
# then, on the device: `bash .gpu/gpu-check.sh` with `.gpu` carried along. (A device
# call sends the checkout its session started in: copy .gpu/ into that checkout's
# git-ignored .gpu/ when working from another worktree.)
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/install-cuda-toolchain.sh --env)"
export KILN_REQUIRE_KERNELS=1

# Prints the path of the executable cargo built for the given target.
executable() {
    cargo "$@" --no-run --message-format=json-render-diagnostics |
        python3 -c 'import json, sys
paths = [m["executable"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "compiler-artifact" and m.get("executable")]
print(paths[-1])'
}

tests="$(executable test --release --test cuda)"
bench="$(executable bench --bench cuda_ops)"

rm -rf .gpu
mkdir -p .gpu
cp "$tests" .gpu/cuda-tests
cp "$bench" .gpu/cuda-bench
strip .gpu/cuda-tests .gpu/cuda-bench
cp scripts/gpu_torch_bench.py scripts/gpu-check.sh .gpu/
git rev-parse --short HEAD > .gpu/commit.txt 2>/dev/null || true
pwd > .gpu/built-in.txt # tests/cuda.rs reads data/digits at this path (CARGO_MANIFEST_DIR)
du -sh .gpu
ls -la .gpu
