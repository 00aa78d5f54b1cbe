//! Finding nvcc and compiling kernel modules to PTX, several at once.

use crate::registry::Module;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// nvcc, searched in this order: `NVCC`, `CUDA_HOME`/`CUDA_PATH`, `PATH`, `/usr/local/cuda`.
pub fn find() -> Result<PathBuf, String> {
    if let Some(nvcc) = std::env::var_os("NVCC").filter(|v| !v.is_empty()) {
        let nvcc = PathBuf::from(nvcc);
        return if nvcc.is_file() {
            Ok(nvcc)
        } else {
            Err(format!("NVCC={} is not a file", nvcc.display()))
        };
    }
    let roots = ["CUDA_HOME", "CUDA_PATH"]
        .iter()
        .filter_map(std::env::var_os)
        .map(|root| PathBuf::from(root).join("bin"));
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    roots
        .chain(path_dirs)
        .chain([PathBuf::from("/usr/local/cuda/bin")])
        .map(|dir| dir.join("nvcc"))
        .find(|nvcc| nvcc.is_file())
        .ok_or_else(|| {
            "nvcc not found (looked at $NVCC, $CUDA_HOME/bin, $CUDA_PATH/bin, $PATH, \
             /usr/local/cuda/bin)"
                .to_string()
        })
}

/// The PTX target from `CUDA_COMPUTE_CAP` (default 80).
pub fn compute_cap() -> Result<u32, String> {
    match std::env::var("CUDA_COMPUTE_CAP") {
        Err(_) => Ok(80),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("CUDA_COMPUTE_CAP={v:?} is not a number like 80 or 90")),
    }
}

/// Compiles every module to `out_dir/<name>.ptx`; returns the PTX paths in module order,
/// or nvcc's messages for every module that failed.
pub fn compile_all(
    nvcc: &Path,
    modules: &[Module],
    out_dir: &Path,
    cap: u32,
) -> Result<Vec<PathBuf>, String> {
    let jobs = ["KILN_NVCC_JOBS", "NUM_JOBS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse::<usize>().ok())
        .unwrap_or(2)
        .clamp(1, modules.len().max(1));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(vec![None; modules.len()]);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(module) = modules.get(i) else { break };
                let result = compile(
                    nvcc,
                    &module.source,
                    &out_dir.join(format!("{}.ptx", module.name)),
                    cap,
                );
                results.lock().expect("no panics while holding the lock")[i] = Some(result);
            });
        }
    });
    let results = results.into_inner().expect("threads finished");
    let mut errors = String::new();
    let mut paths = Vec::new();
    for result in results.into_iter().flatten() {
        match result {
            Ok(p) => paths.push(p),
            Err(e) => errors.push_str(&e),
        }
    }
    if errors.is_empty() {
        Ok(paths)
    } else {
        Err(errors)
    }
}

fn compile(nvcc: &Path, source: &Path, ptx: &Path, cap: u32) -> Result<PathBuf, String> {
    let output = Command::new(nvcc)
        .args(["--ptx", "-O3", "-std=c++17"])
        .arg(format!("-arch=compute_{cap}"))
        .arg("-Ikernels")
        .arg("-o")
        .arg(ptx)
        .arg(source)
        .output()
        .map_err(|e| format!("cannot run {}: {e}\n", nvcc.display()))?;
    if output.status.success() {
        Ok(ptx.to_path_buf())
    } else {
        Err(format!(
            "nvcc failed on {} ({}):\n{}{}",
            source.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
