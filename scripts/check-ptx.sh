#!/usr/bin/env bash
# Checks every PTX file that build.rs embedded with ptxas, for sm_80 and sm_90 (the PTX
# is built for compute_80 and must assemble for every GPU kiln targets). Builds kiln
# with KILN_REQUIRE_KERNELS=1 first, so a missing nvcc or a failing kernel fails here.
# Needs nvcc/ptxas: run scripts/install-cuda-toolchain.sh first (this script uses it).
#
#   scripts/check-ptx.sh [extra cargo build args, e.g. --release]
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(scripts/install-cuda-toolchain.sh --env)"
export KILN_REQUIRE_KERNELS=1
PTXAS="$(dirname "$NVCC")/ptxas"

# The OUT_DIR of kiln's build script in this build, from cargo's own report (the
# parser, and why it reads both forms of a package id, is in kiln_out_dir.py).
out_dir="$(cargo build --lib "$@" --message-format=json-render-diagnostics |
    python3 scripts/kiln_out_dir.py)"

shopt -s nullglob
ptx=("$out_dir"/*.ptx)
if [[ ${#ptx[@]} -eq 0 ]]; then
    echo "check-ptx: no PTX in $out_dir" >&2
    exit 1
fi
for file in "${ptx[@]}"; do
    for arch in sm_80 sm_90; do
        "$PTXAS" -arch="$arch" "$file" -o /dev/null
        echo "ptxas -arch=$arch $(basename "$file"): ok"
    done
done
