#!/usr/bin/env bash
# Installs the pinned toolchain that writes and checks the PTX shipped in kernels/ptx/,
# from NVIDIA's Python wheels, into .ptx-toolchain/ (git-ignored). No GPU, driver or
# CUDA toolkit is needed.
#
#   scripts/install-ptx-toolchain.sh                   # install (idempotent), print what it has
#   eval "$(scripts/install-ptx-toolchain.sh --env)"   # install quietly, export the tools' paths
#
# Exports KILN_NVRTC_PYTHON (a Python whose `nvidia` packages hold NVRTC 12.0 and the
# CUDA 12.0 headers: run scripts/ptx.py with it), KILN_PTXAS_12_0 and KILN_PTXAS_12_8.
#
# Why these pins (DEVELOPERS.md has the table):
# * The compiler is CUDA 12.0, the oldest 12.x: its PTX (ISA 8.0) loads on every CUDA 12
#   driver (>= 525.60.13), and it has all the kernels use (C++17, bf16/f16 headers,
#   inline-asm mma.sync/ldmatrix/cp.async, which need only PTX ISA 7.0). NVIDIA's cu12
#   wheels ship no nvcc (nvidia-cuda-nvcc-cu12 holds ptxas only), so the compiler is
#   NVRTC 12.0 — the same front end and NVVM as nvcc 12.0, as a library.
# * ptxas 12.0 checks sm_70 to sm_90 as the oldest CUDA 12 driver's JIT would; ptxas
#   12.8, the first that knows sm_100 and sm_120, checks those (drivers for those GPUs
#   are 12.8 or newer).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${KILN_PTX_TOOLCHAIN_DIR:-$ROOT/.ptx-toolchain}"
PYTHON="${PYTHON:-python3}"

# venv name -> its pinned wheels (keep in sync with DEVELOPERS.md).
declare -A PINS=(
  [cu12.0]="nvidia-cuda-nvrtc-cu12==12.0.140 nvidia-cuda-runtime-cu12==12.0.146 nvidia-cuda-nvcc-cu12==12.0.140"
  [cu12.8]="nvidia-cuda-nvcc-cu12==12.8.93"
)

quiet=0
[[ "${1:-}" == "--env" ]] && quiet=1
log() { if [[ $quiet == 0 ]]; then echo "$@"; else echo "$@" >&2; fi; }

# The `nvidia` package folder of venv $1.
nvidia_dir() {
  "$DEST/$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"] + "/nvidia")'
}

for venv in "${!PINS[@]}"; do
  want="${PINS[$venv]}"
  stamp="$DEST/$venv/installed.txt"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$DEST/$venv/bin/python" ]]; then
    log "PTX toolchain $venv already installed in $DEST/$venv"
    continue
  fi
  log "Installing the PTX toolchain $venv into $DEST/$venv"
  mkdir -p "$DEST"
  [[ -x "$DEST/$venv/bin/python" ]] || "$PYTHON" -m venv "$DEST/$venv"
  # shellcheck disable=SC2086 # the pins are words
  "$DEST/$venv/bin/python" -m pip install --quiet --disable-pip-version-check $want >&2
  echo "$want" >"$stamp"
done

NVRTC_PYTHON="$DEST/cu12.0/bin/python"
PTXAS_12_0="$(nvidia_dir cu12.0)/cuda_nvcc/bin/ptxas"
PTXAS_12_8="$(nvidia_dir cu12.8)/cuda_nvcc/bin/ptxas"
# Check that the layout really works, so a broken install fails here.
"$NVRTC_PYTHON" "$ROOT/scripts/ptx.py" version >&2
check_ptxas() { # $1 the ptxas, $2 its release
  [[ "$("$1" --version)" == *"release $2,"* ]] || { echo "error: $1 is not ptxas $2" >&2; exit 1; }
}
check_ptxas "$PTXAS_12_0" 12.0
check_ptxas "$PTXAS_12_8" 12.8

if [[ $quiet == 1 ]]; then
  echo "export KILN_NVRTC_PYTHON='$NVRTC_PYTHON'"
  echo "export KILN_PTXAS_12_0='$PTXAS_12_0'"
  echo "export KILN_PTXAS_12_8='$PTXAS_12_8'"
else
  echo "NVRTC Python: $NVRTC_PYTHON"
  echo "ptxas 12.0:   $PTXAS_12_0"
  echo "ptxas 12.8:   $PTXAS_12_8"
fi
