#!/usr/bin/env bash
# The shipped PTX (kernels/ptx/): installs the pinned toolchain if needed, then
#   scripts/ptx.sh generate   # after editing kernels/*.cu: rewrite kernels/ptx/ (commit it)
#   scripts/ptx.sh check      # CI: fail when kernels/ptx/ is not what the pinned NVRTC writes
# See scripts/ptx.py for the layout and scripts/install-ptx-toolchain.sh for the pins.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/install-ptx-toolchain.sh --env)"
exec "$KILN_NVRTC_PYTHON" scripts/ptx.py "$@"
