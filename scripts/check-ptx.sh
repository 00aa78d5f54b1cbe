#!/usr/bin/env bash
# Checks every PTX file that build.rs embedded with ptxas, for sm_80 and sm_90 (the PTX
# is built for compute_80 and must assemble for every GPU kiln targets). Builds kiln
# with KILN_REQUIRE_KERNELS=1 first, so a missing nvcc or a failing kernel fails here.
# A kernel that spills registers to local memory fails too: spills are slow, and
# `ptxas -v` shows them without a GPU.
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
spilled=0
for file in "${ptx[@]}"; do
    for arch in sm_80 sm_90; do
        report="$("$PTXAS" -arch="$arch" -v "$file" -o /dev/null 2>&1)" || {
            echo "$report" >&2
            exit 1
        }
        # -v prints "Function properties for <kernel>" and then its spill line.
        spills="$(awk '/Function properties for/ { kernel = $NF }
            / bytes spill stores/ && !/ 0 bytes spill stores, 0 bytes spill loads/ {
                print kernel ":" $0 }' <<<"$report")"
        if [[ -n "$spills" ]]; then
            echo "ptxas -arch=$arch $(basename "$file"): spills" >&2
            echo "$spills" >&2
            spilled=1
        else
            echo "ptxas -arch=$arch $(basename "$file"): ok, no spills"
        fi
    done
done
exit "$spilled"
