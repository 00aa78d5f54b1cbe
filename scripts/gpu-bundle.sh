#!/usr/bin/env bash
# Builds, on this machine, everything scripts/gpu-check.sh runs on a GPU machine (which
# has no Rust toolchain): the CUDA test binary (tests/cuda.rs), every test binary with
# CUDA tests (the files that use `device_test!` or `golden_cases!`, or hold a family's
# `cuda_parity` sweep), the CUDA-only TF32 convolution
# suite (tests/conv_tf32.rs), and the CUDA timing binary
# (benches/cuda_ops.rs), release mode, kernels required and embedded, stripped and
# gzipped (the device tool carries at most 64 MiB), plus the PyTorch counterpart of the
# timings. Everything goes to .gpu/ (git-ignored);
# then, on the device: `bash .gpu/gpu-check.sh` with `.gpu` carried along. (A device
# call sends the checkout its session started in: copy .gpu/ into that checkout's
# git-ignored .gpu/ when working from another worktree.)
set -euo pipefail
cd "$(dirname "$0")/.."

# The shipped PTX (kernels/ptx/), as users get it: no nvcc here or on the GPU machine.
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
mkdir -p .gpu/golden
cp "$tests" .gpu/cuda-tests
cp "$bench" .gpu/cuda-bench
strip .gpu/cuda-tests .gpu/cuda-bench
# The golden suites and parity sweeps, each run on the GPU by its tests named `cuda`
# (the `::cuda` variants and the `cuda_parity` modules).
for file in $(grep -lE 'device_test!|golden_cases!|mod cuda_parity' tests/*.rs); do
    name="$(basename "$file" .rs)"
    [[ "$name" == cuda ]] && continue
    cp "$(executable test --release --test "$name")" ".gpu/golden/$name"
    strip ".gpu/golden/$name"
    gzip -9 ".gpu/golden/$name"
done
# CUDA-only suites that run whole (no `::cuda` variants): the TF32 convolutions, whose
# process-wide switch keeps them out of the golden binaries.
for name in conv_tf32; do
    cp "$(executable test --release --test "$name")" ".gpu/$name"
    strip ".gpu/$name"
done
cp scripts/gpu_torch_bench.py scripts/gpu-check.sh .gpu/
git rev-parse --short HEAD > .gpu/commit.txt 2>/dev/null || true
pwd > .gpu/built-in.txt # the tests read data/ and tests/data/ at this path (CARGO_MANIFEST_DIR)
du -sh .gpu
ls -la .gpu
