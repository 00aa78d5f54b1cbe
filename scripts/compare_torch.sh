#!/usr/bin/env bash
# Runs kiln's criterion benches and the same cases in PyTorch on this machine, then
# prints one markdown table: op | kiln ms | PyTorch ms | ratio (kiln/PyTorch).
#
# Usage: scripts/compare_torch.sh [--all] [FILTER]
#   FILTER   a regex on benchmark ids (e.g. 'matmul', 'cpu/sum_'), given to criterion
#            and to scripts/torch_bench.py alike; default: every case.
#   --all    run every bench target (`cargo bench`), not only `--bench tensor_ops`.
# Environment:
#   PYTHON         Python with torch (default: .venv/bin/python from scripts/torch-venv.sh,
#                  else python3)
#   TORCH_THREADS  torch.set_num_threads (default: all CPUs, as rayon uses for kiln)
#   TORCH_TIME     PyTorch measurement seconds per case (default 2)
#
# kiln numbers are criterion's mean point estimate (target/criterion/<id>/new/
# estimates.json) from this run; PyTorch numbers are torch_bench.py's mean per call.
# Ids are <device>/<case>; torch_bench.py is run once per device that kiln reported.
set -euo pipefail

cd "$(dirname "$0")/.."

all_benches=0
filter=""
for arg in "$@"; do
    case "$arg" in
        --all) all_benches=1 ;;
        -h | --help)
            sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        -*)
            echo "compare_torch.sh: unknown option $arg (see --help)" >&2
            exit 2
            ;;
        *)
            if [[ -n "$filter" ]]; then
                echo "compare_torch.sh: give one FILTER regex (got '$filter' and '$arg')" >&2
                exit 2
            fi
            filter="$arg"
            ;;
    esac
done

if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    py=.venv/bin/python
else
    py=python3
fi
if ! command -v "$py" >/dev/null 2>&1; then
    echo "compare_torch.sh: no Python found at '$py'; set PYTHON to a Python with torch installed" >&2
    exit 1
fi
if ! torch_version=$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null); then
    echo "compare_torch.sh: PyTorch is not installed for $py." >&2
    echo "  Run scripts/torch-venv.sh (the pinned torch in .venv) or set PYTHON to a Python that has it." >&2
    exit 1
fi

target_dir=$(cargo metadata --format-version 1 --no-deps |
    "$py" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')

# Results of this run are the estimates written after this stamp.
stamp=$(mktemp)
torch_json=$(mktemp)
trap 'rm -f "$stamp" "$torch_json"' EXIT

bench_args=(--bench tensor_ops)
[[ $all_benches == 1 ]] && bench_args=()
criterion_args=()
[[ -n "$filter" ]] && criterion_args=("$filter")
echo "== cargo bench ${bench_args[*]} -- ${criterion_args[*]}" >&2
cargo bench "${bench_args[@]}" -- "${criterion_args[@]}" >&2

mapfile -t kiln_files < <(find "$target_dir/criterion" -path '*/new/benchmark.json' -newer "$stamp" 2>/dev/null | sort)
if [[ ${#kiln_files[@]} -eq 0 ]]; then
    echo "compare_torch.sh: criterion wrote no results (does the filter '$filter' match any benchmark id?)" >&2
    exit 1
fi

# One torch_bench.py run per device prefix among kiln's ids (cpu, cuda, ...).
devices=$("$py" - "${kiln_files[@]}" <<'EOF'
import json, sys
ids = {json.load(open(f))["full_id"] for f in sys.argv[1:]}
print(" ".join(sorted({i.split("/", 1)[0] for i in ids})))
EOF
)
echo "{}" >"$torch_json"
threads_args=()
[[ -n "${TORCH_THREADS:-}" ]] && threads_args=(--threads "$TORCH_THREADS")
for device in $devices; do
    echo "== PyTorch $torch_version on $device" >&2
    out=$(mktemp)
    if "$py" scripts/torch_bench.py --device "$device" --filter "$filter" \
        --time "${TORCH_TIME:-2}" "${threads_args[@]}" >"$out"; then
        "$py" -c 'import json, sys; a = json.load(open(sys.argv[1])); a.update(json.load(open(sys.argv[2]))); json.dump(a, open(sys.argv[1], "w"))' \
            "$torch_json" "$out"
    else
        echo "compare_torch.sh: torch_bench.py failed on $device; its rows show n/a" >&2
    fi
    rm -f "$out"
done

cpu_model=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
[[ -z "$cpu_model" ]] && cpu_model=$(uname -m)
gpu=""
if [[ " $devices " == *" cuda "* ]] && command -v nvidia-smi >/dev/null 2>&1; then
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
fi

echo
echo "Machine: $cpu_model, $(nproc) cores${gpu:+, GPU $gpu}; kiln rayon threads: ${RAYON_NUM_THREADS:-$(nproc)}," \
    "PyTorch $torch_version threads: ${TORCH_THREADS:-$(nproc)}; $(rustc --version | cut -d' ' -f1-2)"
echo
"$py" - "$torch_json" "${kiln_files[@]}" <<'EOF'
import json, os, sys

torch_ms = json.load(open(sys.argv[1]))
kiln_ms = {}
for path in sys.argv[2:]:
    full_id = json.load(open(path))["full_id"]
    estimates = os.path.join(os.path.dirname(path), "estimates.json")
    kiln_ms[full_id] = json.load(open(estimates))["mean"]["point_estimate"] / 1e6  # ns -> ms

# PyTorch's registry order first (it is the table order), then kiln-only rows.
ids = list(torch_ms) + sorted(i for i in kiln_ms if i not in torch_ms)
fmt = lambda ms: "n/a" if ms is None else f"{ms:.3f}"
print("| op | kiln ms | PyTorch ms | ratio (kiln/PyTorch) |")
print("|---|---:|---:|---:|")
for i in ids:
    k, t = kiln_ms.get(i), torch_ms.get(i)
    ratio = f"{k / t:.2f}x" if k is not None and t else "n/a"
    print(f"| {i} | {fmt(k)} | {fmt(t)} | {ratio} |")
EOF
