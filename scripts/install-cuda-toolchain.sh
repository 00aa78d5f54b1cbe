#!/usr/bin/env bash
# Installs the pinned CUDA compiler (nvcc, cicc, ptxas, headers) from NVIDIA's Python
# wheels into .cuda-toolchain/ (git-ignored), so build.rs can compile kernels/*.cu to
# PTX on a machine without a CUDA toolkit. No GPU or driver is needed.
#
#   scripts/install-cuda-toolchain.sh            # install (idempotent), then print the PATH to use
#   eval "$(scripts/install-cuda-toolchain.sh --env)"   # install quietly and export NVCC and PATH
#
# nvcc is pinned to 13.0: the PTX it writes (ISA 9.0) loads on drivers >= 580, and a
# newer nvcc writes PTX that driver 580 rejects (see shared/GPU.md).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${KILN_CUDA_TOOLCHAIN_DIR:-$ROOT/.cuda-toolchain}"
VENV="$DEST/venv"
PYTHON="${PYTHON:-python3}"

# The pins (keep in sync with DEVELOPERS.md).
REQUIREMENTS=(
  "nvidia-cuda-nvcc==13.0.88"   # nvcc driver, ptxas, headers it needs
  "nvidia-nvvm==13.0.88"        # cicc (the device front end nvcc runs) and libdevice
  "nvidia-cuda-runtime==13.0.*" # cuda_runtime.h and the headers nvcc force-includes
  "nvidia-cuda-crt==13.0.*"     # crt/ headers (host_defines.h, math_functions.h, ...)
  "nvidia-cuda-cccl==13.0.*"    # libcu++ / CCCL headers on nvcc's -isystem path
)

quiet=0
[[ "${1:-}" == "--env" ]] && quiet=1
log() { if [[ $quiet == 0 ]]; then echo "$@"; else echo "$@" >&2; fi; }

STAMP="$DEST/installed.txt"
WANT="$(printf '%s\n' "${REQUIREMENTS[@]}")"

find_cu_root() {
  # The wheels unpack under site-packages/nvidia/cu13/{bin,nvvm,include,lib}.
  local sp
  sp="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$sp/nvidia/cu13"
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" && -x "$VENV/bin/python" ]] \
   && [[ -x "$(find_cu_root)/bin/nvcc" ]]; then
  log "CUDA toolchain already installed in $DEST"
else
  log "Installing the CUDA toolchain into $DEST"
  mkdir -p "$DEST"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}" >&2
  printf '%s\n' "$WANT" > "$STAMP"
fi

CU="$(find_cu_root)"
NVCC="$CU/bin/nvcc"
# nvcc finds cicc and libdevice through bin/nvcc.profile (../nvvm/bin, ../nvvm/libdevice)
# and headers through ../include; check that the layout really compiles, so a broken
# install fails here rather than in build.rs.
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
cat > "$probe_dir/probe.cu" <<'CU'
#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void probe(__half *x) { x[0] = __float2half(1.0f); }
CU
if ! "$NVCC" --ptx -arch=compute_80 "$probe_dir/probe.cu" -o "$probe_dir/probe.ptx" >&2; then
  echo "error: $NVCC cannot compile a probe kernel; delete $DEST and rerun" >&2
  exit 1
fi
"$CU/bin/ptxas" -arch=sm_80 "$probe_dir/probe.ptx" -o /dev/null >&2

if [[ $quiet == 1 ]]; then
  echo "export NVCC='$NVCC'"
  echo "export PATH='$CU/bin':\"\$PATH\""
else
  echo "$("$NVCC" --version | tail -n 2 | head -n 1)"
  echo
  echo "Use it with:"
  echo "  export NVCC=$NVCC"
  echo "  export PATH=$CU/bin:\$PATH    # ptxas for checking PTX"
fi
