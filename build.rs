//! Generates the kernel registry (`$OUT_DIR/kernels.rs`, included by
//! `src/backend/cuda/runtime/kernels.rs`) from `kernels/*.cu`, with the PTX to embed:
//!
//! * by default the PTX shipped in `kernels/ptx/` (written by `scripts/ptx.sh generate`
//!   with the pinned NVRTC 12.0; loads on every CUDA 12 driver), so a build needs no
//!   CUDA toolkit;
//! * with `KILN_NVCC=1`, PTX compiled here by a local nvcc (found through `NVCC`,
//!   `CUDA_HOME`/`CUDA_PATH`, `PATH`, `/usr/local/cuda`), for kernel work.
//!
//! Without usable PTX (shipped PTX stale against the kernels, nvcc failing) the registry
//! is still generated, without PTX: the CUDA device then reports
//! `Error::KernelsNotBuilt`. `KILN_REQUIRE_KERNELS=1` turns that into a build error.

#[cfg(feature = "cuda-emulator")]
#[path = "build/emulator.rs"]
mod emulator;
#[path = "build/nvcc.rs"]
mod nvcc;
#[path = "build/ptx.rs"]
mod ptx;
#[path = "build/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};

/// What the build reads besides the files; the nvcc ones only with `KILN_NVCC=1`.
const ENV_VARS: [&str; 2] = ["KILN_NVCC", "KILN_REQUIRE_KERNELS"];
const NVCC_ENV_VARS: [&str; 5] = ["NVCC", "CUDA_HOME", "CUDA_PATH", "PATH", "KILN_NVCC_JOBS"];

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=build");
    let use_nvcc = std::env::var("KILN_NVCC").is_ok_and(|v| v == "1");
    let vars = ENV_VARS
        .iter()
        .chain(if use_nvcc { &NVCC_ENV_VARS[..] } else { &[] });
    for var in vars {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let crate_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let require = std::env::var("KILN_REQUIRE_KERNELS").is_ok_and(|v| v == "1");

    let modules = registry::scan("kernels").unwrap_or_else(|e| fail(&e));
    let defines = registry::scan_defines("kernels").unwrap_or_else(|e| fail(&e));
    let mut built = ptx::shipped(&modules, &crate_dir);
    if use_nvcc {
        built = match local_nvcc(&modules, &out_dir) {
            Ok(e) => Ok(e),
            Err(why) if require => fail(&format!("KILN_REQUIRE_KERNELS=1 and KILN_NVCC=1: {why}")),
            Err(why) => {
                warn(&why);
                warn("KILN_NVCC=1, but nvcc failed: embedding the shipped PTX instead");
                built
            }
        };
    }
    let embedded = match built.and_then(|e| ptx::driver_for_isa(e.isa).map(|_| e)) {
        Ok(e) => {
            warn_origin(&e);
            Ok(e)
        }
        Err(why) if require => fail(&format!("KILN_REQUIRE_KERNELS=1: {why}")),
        Err(why) => {
            warn(&why);
            warn(
                "building without CUDA kernels; Device::cuda() will return \
                 Error::KernelsNotBuilt (the emulated device still works)",
            );
            Err(why)
        }
    };
    let ptx_modules = modules.len();
    let emulated = cfg!(feature = "cuda-emulator");
    #[cfg(feature = "cuda-emulator")]
    let modules = emulator::build(modules, &out_dir).unwrap_or_else(|e| fail(&e));
    let mut code = registry::generate(&modules, &defines, ptx_modules, emulated);
    code += &ptx::generate(embedded.as_ref()).unwrap_or_else(|e| fail(&e));
    std::fs::write(out_dir.join("kernels.rs"), code)
        .unwrap_or_else(|e| fail(&format!("cannot write the kernel registry: {e}")));
}

/// Every module compiled by the local nvcc, for each variant it can write.
fn local_nvcc(modules: &[registry::Module], out_dir: &Path) -> Result<ptx::Embedded, String> {
    let nvcc = nvcc::find()?;
    let archs = nvcc::variants(&nvcc)?;
    let built = nvcc::compile_all(&nvcc, modules, out_dir, &archs)?;
    let origin = format!("nvcc at build time ({})", nvcc::version(&nvcc));
    ptx::from_nvcc(modules, built, origin)
}

/// Says which PTX the build embeds (a build-script warning: cargo shows it for kiln's
/// own builds and hides it when kiln is a registry dependency).
fn warn_origin(e: &ptx::Embedded) {
    let archs: Vec<String> = e
        .variants
        .iter()
        .map(|v| format!("compute_{}", v.arch))
        .collect();
    let driver = ptx::driver_for_isa(e.isa).unwrap_or(0);
    warn(&format!(
        "embedding {} for {} (PTX ISA {}.{}: needs a driver for CUDA {}.{} or newer)",
        e.origin,
        archs.join(" and "),
        e.isa.0,
        e.isa.1,
        driver / 1000,
        driver % 1000 / 10
    ));
}

/// Prints `msg` as build warnings (cargo shows them), one per line, at most 20 lines.
fn warn(msg: &str) {
    for line in msg.lines().take(20) {
        println!("cargo:warning=kiln: {line}");
    }
}

/// Stops the build with `msg` (cargo shows a build script's stderr when it fails).
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
