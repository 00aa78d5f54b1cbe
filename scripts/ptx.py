#!/usr/bin/env python3
"""Writes and checks the PTX that kiln ships in kernels/ptx/, with the pinned NVRTC 12.0.

    ptx.py generate   # compile every kernels/*.cu for each variant into kernels/ptx/
    ptx.py check      # compile again and fail when kernels/ptx/ differs (stale or edited)
    ptx.py version    # print the NVRTC version (the install script's self-test)
    ptx.py driver-api # write the CUDA 12.0 driver API's symbols (DRIVER_API_LIST)

Run it with the Python of the pinned toolchain (scripts/ptx.sh does both steps):
`eval "$(scripts/install-ptx-toolchain.sh --env)"; "$KILN_NVRTC_PYTHON" scripts/ptx.py check`.
Standard library only; NVRTC is called through ctypes.

Layout: kernels/ptx/compute_<arch>/<module>.ptx.gz per variant and module, and
kernels/ptx/MANIFEST: the compiler, the options, the variants and a hash of the kernel
sources, which build.rs compares with the sources it builds (a stale PTX is a warning,
an error with KILN_REQUIRE_KERNELS=1). Files are compared by their decompressed text, so
a different zlib does not make them stale.
"""

import concurrent.futures
import ctypes
import gzip
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
KERNELS = ROOT / "kernels"
PTX_DIR = KERNELS / "ptx"
# compute_70: every kernel, tensor-core bodies compiled out by `#if __CUDA_ARCH__ >= 800`
# (the host picks the SIMT kernels below 8.0); compute_80: mma.sync, ldmatrix, cp.async.
VARIANTS = [70, 80]
# What nvcc -O3 -std=c++17 does for device code (NVRTC optimizes at -O3 by default).
OPTIONS = ["-std=c++17"]
# nvcc gets these from the host's headers, which NVRTC has none of: fixed-width integers
# (<stdint.h>, which common.cuh includes) and glibc's INFINITY / NAN.
STDINT_H = b"""#pragma once
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
typedef long long intptr_t;
typedef unsigned long long uintptr_t;
#define INT64_MAX 0x7fffffffffffffffLL
#define INT64_MIN (-INT64_MAX - 1)
#define UINT64_MAX 0xffffffffffffffffULL
"""
# The same bits as glibc's __builtin_inff() and __builtin_nanf(""), which NVRTC lacks.
PRELUDE_H = b"""#pragma once
#define INFINITY (__int_as_float(0x7f800000))
#define NAN (__int_as_float(0x7fc00000))
"""


# The functions a CUDA 12.0 driver exports, from the pinned 12.0 cuda.h: the driver
# symbols kiln calls are checked against it (src/backend/cuda/runtime/driver_api.rs).
DRIVER_API_LIST = ROOT / "src/backend/cuda/runtime/cuda-12.0-driver-api.txt"


def fnv1a64(chunks):
    """FNV-1a, 64 bits (build/ptx.rs computes the same): staleness, not security."""
    h = 0xCBF29CE484222325
    for chunk in chunks:
        for byte in chunk:
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def sources_hash():
    """The hash of every kernels/*.cu and *.cuh: name, NUL, text with LF line ends, NUL."""
    files = sorted(p for p in KERNELS.iterdir() if p.suffix in (".cu", ".cuh"))
    chunks = []
    for p in files:
        chunks += [p.name.encode(), b"\0", p.read_bytes().replace(b"\r\n", b"\n"), b"\0"]
    return f"fnv1a64:{fnv1a64(chunks):016x}"


def modules():
    return sorted(p.stem for p in KERNELS.glob("*.cu"))


class Nvrtc:
    """The NVRTC library of the `nvidia-cuda-nvrtc-cu12` wheel and its headers."""

    def __init__(self):
        import nvidia.cuda_nvrtc
        import nvidia.cuda_runtime

        lib_dir = pathlib.Path(list(nvidia.cuda_nvrtc.__path__)[0]) / "lib"
        self.lib = ctypes.CDLL(str(lib_dir / "libnvrtc.so.12"))
        self.include = pathlib.Path(list(nvidia.cuda_runtime.__path__)[0]) / "include"
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self.check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "version")
        return f"{major.value}.{minor.value}"

    def check(self, result, what):
        if result != 0:
            raise RuntimeError(f"NVRTC {what}: {self.lib.nvrtcGetErrorString(result).decode()}")

    def compile(self, module, arch):
        """The PTX text of kernels/<module>.cu for compute_<arch>."""
        name = f"{module}.cu"
        source = b'#include "kiln_nvrtc_prelude.h"\n#line 1 "' + name.encode() + b'"\n'
        source += (KERNELS / name).read_bytes()
        headers = (ctypes.c_char_p * 2)(STDINT_H, PRELUDE_H)
        header_names = (ctypes.c_char_p * 2)(b"stdint.h", b"kiln_nvrtc_prelude.h")
        prog = ctypes.c_void_p()
        self.check(
            self.lib.nvrtcCreateProgram(
                ctypes.byref(prog), source, name.encode(), 2, headers, header_names
            ),
            "create",
        )
        try:
            opts = OPTIONS + [
                f"--gpu-architecture=compute_{arch}",
                f"-I{KERNELS}",
                f"-I{self.include}",
            ]
            argv = (ctypes.c_char_p * len(opts))(*[o.encode() for o in opts])
            result = self.lib.nvrtcCompileProgram(prog, len(opts), argv)
            size = ctypes.c_size_t()
            self.lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            self.lib.nvrtcGetProgramLog(prog, log)
            if result != 0:
                raise RuntimeError(f"{name} for compute_{arch}:\n{log.value.decode()}")
            self.lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
            ptx = ctypes.create_string_buffer(size.value)
            self.check(self.lib.nvrtcGetPTX(prog, ptx), "get PTX")
            return ptx.value.decode()
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(prog))


def compile_all():
    """{(module, arch): PTX} for every module and variant, several at once. Each compiles
    in a process of its own: NVRTC numbers call sequences (`// callseq N` comments)
    across the compilations of a process, so only a fresh one writes the same PTX for the
    same source every time."""
    jobs = [(m, a) for a in VARIANTS for m in modules()]
    # The slowest (the tensor-core modules) first, so they do not finish last alone.
    jobs.sort(key=lambda j: -(KERNELS / f"{j[0]}.cu").stat().st_size * j[1])

    def run(job):
        module, arch = job
        cmd = [sys.executable, __file__, "compile", module, str(arch)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return job, done.stdout

    workers = int(os.environ.get("KILN_PTX_JOBS", os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(run, jobs))


def manifest(nvrtc_version):
    lines = [
        "# kiln's shipped PTX, written by scripts/ptx.py generate; do not edit.",
        f"compiler NVRTC {nvrtc_version} (nvidia-cuda-nvrtc-cu12, see scripts/install-ptx-toolchain.sh)",
        "options " + " ".join(OPTIONS),
        f"sources {sources_hash()}",
    ]
    lines += [f"variant compute_{a}" for a in VARIANTS]
    return "\n".join(lines) + "\n"


def ptx_path(module, arch):
    return PTX_DIR / f"compute_{arch}" / f"{module}.ptx.gz"


def shipped_files():
    return {p for p in PTX_DIR.glob("compute_*/*.ptx.gz")}


def read_shipped(path):
    try:
        return gzip.decompress(path.read_bytes()).decode()
    except (OSError, EOFError, UnicodeDecodeError):
        return None


def generate():
    want = compile_all()
    for (module, arch), ptx in sorted(want.items()):
        path = ptx_path(module, arch)
        if read_shipped(path) == ptx:
            continue  # unchanged: keep the file's bytes (another zlib compresses differently)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(ptx.encode(), compresslevel=9, mtime=0))
        print(f"wrote {path.relative_to(ROOT)}")
    for path in shipped_files() - {ptx_path(m, a) for m, a in want}:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)}")
    (PTX_DIR / "MANIFEST").write_text(manifest(Nvrtc().version()))


def check():
    want = compile_all()
    stale = [
        f"{ptx_path(m, a).relative_to(ROOT)} differs from what NVRTC writes now"
        for (m, a), ptx in sorted(want.items())
        if read_shipped(ptx_path(m, a)) != ptx
    ]
    stale += [
        f"{p.relative_to(ROOT)} has no kernels/*.cu module any more"
        for p in sorted(shipped_files() - {ptx_path(m, a) for m, a in want})
    ]
    manifest_path = PTX_DIR / "MANIFEST"
    if not manifest_path.exists() or manifest_path.read_text() != manifest(Nvrtc().version()):
        stale.append("kernels/ptx/MANIFEST differs (sources hash, compiler or options)")
    if stale:
        print("The shipped PTX is stale; regenerate it with `scripts/ptx.sh generate`:")
        print("\n".join(f"  {s}" for s in stale))
        sys.exit(1)
    print(f"kernels/ptx is fresh: {len(want)} PTX files ({len(VARIANTS)} variants)")


def driver_api_symbols():
    """The driver API functions of the pinned cuda.h: each declared `CUresult CUDAAPI f(`
    name, and what the header's `#define f f_v2` (or `__CUDA_API_PTSZ(f_v2)`) maps a name
    to: the symbol a program built with it resolves."""
    import re
    import nvidia.cuda_runtime

    header = pathlib.Path(list(nvidia.cuda_runtime.__path__)[0]) / "include" / "cuda.h"
    text = header.read_text()
    names = set(re.findall(r"CUresult\s+CUDAAPI\s+(cu\w+)\s*\(", text))
    for target in re.findall(
        r"^\s*#define\s+cu\w+\s+(?:__CUDA_API_PT[SD][ZS]\()?(cu\w+)\)?\s*$", text, re.M
    ):
        names.add(target)
    return sorted(names)


def write_driver_api():
    lines = [
        "# The functions of the CUDA 12.0 driver API (cuda.h of nvidia-cuda-runtime-cu12 12.0.146),",
        "# written by scripts/ptx.py driver-api. kiln calls only these (driver_api.rs's test).",
    ]
    DRIVER_API_LIST.write_text("\n".join(lines + driver_api_symbols()) + "\n")
    print(f"wrote {DRIVER_API_LIST.relative_to(ROOT)}")


def main():
    command = sys.argv[1] if len(sys.argv) in (2, 4) else None
    if command == "generate":
        generate()
    elif command == "check":
        check()
    elif command == "compile" and len(sys.argv) == 4:  # one job of compile_all
        sys.stdout.write(Nvrtc().compile(sys.argv[2], int(sys.argv[3])))
    elif command == "driver-api":
        write_driver_api()
    elif command == "version":
        print(f"NVRTC {Nvrtc().version()}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
