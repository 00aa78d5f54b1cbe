#!/usr/bin/env bash
# kiln as a user's crate gets it: `cargo publish --dry-run` packages kiln and kiln-derive
# (what crates.io would serve: the sources, kernels/*.cu and the shipped PTX), then
# ci/downstream, a small crate that depends on the *unpacked packages* (not on this
# repository), builds with KILN_REQUIRE_KERNELS=1 (no PTX is a build error) and runs one
# matmul on the CPU and one on the emulated CUDA device. It also fails unless the build
# embedded the shipped PTX of both variants, and prints the .crate's size (crates.io
# takes at most 10 MB).
#
#   scripts/downstream-check.sh [--allow-dirty]   # the flag passes to cargo publish
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo publish --dry-run (kiln-derive and kiln)"
# --no-verify: building the unpacked package below is the verification, done once.
cargo publish --dry-run --workspace --no-verify "$@" 2>&1 | grep -v "^warning: ignoring "
# The dry run leaves its .crate files in cargo's scratch folders: `cargo package` writes
# them where they are documented to be, target/package/.
cargo package --workspace --no-verify "$@" 2>&1 | grep -v "^warning: ignoring "
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)"
crate="target/package/kiln-$version.crate"
bytes="$(stat -c %s "$crate")"
echo "$crate: $bytes bytes"
if ((bytes > 10 * 1000 * 1000)); then
  echo "error: $crate is over crates.io's 10 MB" >&2
  exit 1
fi
for name in kiln kiln-derive; do
  rm -rf "target/package/$name-$version"
  tar -xzf "target/package/$name-$version.crate" -C target/package
done

echo "== ci/downstream against the packaged kiln: one op on the CPU, one on the emulated device"
# The shared target folder reuses the dependencies kiln's own builds compiled.
export CARGO_TARGET_DIR="$PWD/target"
cp Cargo.lock ci/downstream/Cargo.lock # the versions kiln was tested with
build_log="$(mktemp)"
trap 'rm -f "$build_log" ci/downstream/Cargo.lock' EXIT
KILN_REQUIRE_KERNELS=1 cargo build --manifest-path ci/downstream/Cargo.toml 2>&1 | tee "$build_log"
# build.rs says which PTX it embedded (a warning, shown for path dependencies).
grep -q "kiln: embedding the PTX shipped in kernels/ptx .* for compute_70 and compute_80" "$build_log" || {
  echo "error: the packaged kiln did not embed its shipped PTX (both variants)" >&2
  exit 1
}
KILN_CUDA_EMULATE=1 "$CARGO_TARGET_DIR/debug/kiln-downstream-check"
