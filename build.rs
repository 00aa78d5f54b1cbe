//! Compiles `kernels/*.cu` to PTX with nvcc and generates the kernel registry
//! (`$OUT_DIR/kernels.rs`, included by `src/backend/cuda/kernels.rs`).
//!
//! Without nvcc the registry is still generated (kernel names come from the sources),
//! but without PTX: the CUDA device then reports `Error::KernelsNotBuilt`.
//! `KILN_REQUIRE_KERNELS=1` turns a missing nvcc or a failing kernel into a build error.

#[cfg(feature = "cuda-emulator")]
#[path = "build/emulator.rs"]
mod emulator;
#[path = "build/nvcc.rs"]
mod nvcc;
#[path = "build/registry.rs"]
mod registry;

use std::path::PathBuf;

const ENV_VARS: [&str; 7] = [
    "NVCC",
    "CUDA_HOME",
    "CUDA_PATH",
    "PATH",
    "CUDA_COMPUTE_CAP",
    "KILN_REQUIRE_KERNELS",
    "KILN_NVCC_JOBS",
];

fn main() {
    println!("cargo:rerun-if-changed=kernels");
    println!("cargo:rerun-if-changed=build");
    for var in ENV_VARS {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let require = std::env::var("KILN_REQUIRE_KERNELS").is_ok_and(|v| v == "1");

    let modules = registry::scan("kernels").unwrap_or_else(|e| fail(&e));
    let defines = registry::scan_defines("kernels").unwrap_or_else(|e| fail(&e));
    let cap = nvcc::compute_cap().unwrap_or_else(|e| fail(&e));
    let built = nvcc::find()
        .and_then(|nvcc| nvcc::compile_all(&nvcc, &modules, &out_dir, cap))
        .and_then(|ptx| registry::check_entries(&modules, &ptx).map(|()| ptx));
    let ptx = match built {
        Ok(ptx) => Some(ptx),
        Err(why) if require => fail(&format!("KILN_REQUIRE_KERNELS=1: {why}")),
        Err(why) => {
            for line in why.lines().take(20) {
                println!("cargo:warning=kiln: {line}");
            }
            println!(
                "cargo:warning=kiln: building without CUDA kernels; Device::cuda() will return \
                 Error::KernelsNotBuilt. Run scripts/install-cuda-toolchain.sh (or install the \
                 CUDA toolkit) and rebuild."
            );
            None
        }
    };
    let ptx_modules = modules.len();
    let emulated = cfg!(feature = "cuda-emulator");
    #[cfg(feature = "cuda-emulator")]
    let modules = emulator::build(modules, &out_dir).unwrap_or_else(|e| fail(&e));
    let code = registry::generate(
        &modules,
        &defines,
        ptx_modules,
        ptx.as_deref(),
        cap,
        emulated,
    );
    std::fs::write(out_dir.join("kernels.rs"), code)
        .unwrap_or_else(|e| fail(&format!("cannot write the kernel registry: {e}")));
}

/// Stops the build with `msg` (cargo shows a build script's stderr when it fails).
fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}
