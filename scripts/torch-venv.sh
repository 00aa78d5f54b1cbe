#!/usr/bin/env bash
# Creates .venv (git-ignored) at the repository root with the pinned PyTorch that made
# the golden fixtures (scripts/requirements-torch.txt), and prints its Python. Idempotent:
# an existing .venv that already has the pinned torch is left as it is.
#
#   scripts/torch-venv.sh                            # create or check; prints .venv/bin/python
#   .venv/bin/python scripts/golden/conv.py          # regenerate a fixture
#   scripts/compare_torch.sh                         # uses .venv/bin/python by itself
#
# Needs python3 with the venv module (Debian: apt-get install python3-venv) and access
# to PyPI. The CPU wheel of torch is enough: the fixtures are computed on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=scripts/requirements-torch.txt
want=$(sed -n 's/^torch==//p' "$requirements")
py=.venv/bin/python

if [[ -x "$py" ]] && [[ "$("$py" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)" == "$want" ]]; then
    echo "$py"
    exit 0
fi
python3 -m venv .venv >&2
"$py" -m pip install --quiet --upgrade pip >&2
"$py" -m pip install --quiet -r "$requirements" >&2
echo "$py"
