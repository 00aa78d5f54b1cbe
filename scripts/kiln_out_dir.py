#!/usr/bin/env python3
"""Prints the OUT_DIR of kiln's build script from `cargo build --message-format=json` on
stdin (used by scripts/check-ptx.sh).

Cargo names a package `path+file:///dir#kiln@0.1.0`, or `path+file:///.../kiln#0.1.0`
when the directory is named like the package, so the name is read from whichever form
it is: the result must not depend on what the checkout's directory is called.

    python3 scripts/kiln_out_dir.py --self-test   # checks the parser on both forms (CI)
"""
import json
import sys


def package_name(package_id):
    """The package name in a cargo package id, in either of its two forms."""
    url, _, fragment = package_id.rpartition("#")
    return fragment.split("@")[0] if "@" in fragment else url.rstrip("/").rsplit("/", 1)[-1]


def out_dir(messages):
    """The last OUT_DIR that kiln's build script reported, or None."""
    dirs = [m["out_dir"] for m in messages
            if m.get("reason") == "build-script-executed"
            and package_name(m["package_id"]) == "kiln"]
    return dirs[-1] if dirs else None


def self_test():
    cases = {
        "path+file:///tmp/checkout#kiln@0.1.0": "kiln",       # any directory name
        "path+file:///tmp/x/kiln#0.1.0": "kiln",              # directory named kiln
        "path+file:///tmp/kiln/kiln-derive#0.1.0": "kiln-derive",
        "path+file:///tmp/kiln#kiln-derive@0.1.0": "kiln-derive",
        "registry+https://github.com/rust-lang/crates.io-index#libc@0.2.1": "libc",
    }
    for package_id, want in cases.items():
        got = package_name(package_id)
        assert got == want, f"{package_id}: got {got}, want {want}"
    for checkout in ["kiln", "wt-harden-b"]:
        ids = [f"path+file:///tmp/{checkout}#kiln@0.1.0" if checkout != "kiln"
               else "path+file:///tmp/kiln#0.1.0",
               f"path+file:///tmp/{checkout}/kiln-derive#0.1.0"]
        msgs = [{"reason": "build-script-executed", "package_id": ids[1], "out_dir": "/derive"},
                {"reason": "build-script-executed", "package_id": ids[0], "out_dir": "/kiln"}]
        assert out_dir(msgs) == "/kiln", checkout
    print("kiln_out_dir: package-id parsing ok for both forms")


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        self_test()
        sys.exit(0)
    found = out_dir(json.loads(line) for line in sys.stdin if line.startswith("{"))
    if found is None:
        sys.exit("kiln_out_dir: cargo reported no build-script output for kiln")
    print(found)
