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

/// The PTX variants a local nvcc writes: the oldest architecture it still targets from
/// 7.0 on (nvcc 13 dropped compute_70, so 7.5 there) for the SIMT kernels, and 8.0 for
/// tensor cores — the shipped PTX's two, where nvcc can.
pub fn variants(nvcc: &Path) -> Result<Vec<u32>, String> {
    let output = Command::new(nvcc)
        .arg("--list-gpu-arch")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", nvcc.display()))?;
    let listed: Vec<u32> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("compute_")?.parse().ok())
        .collect();
    let simt = listed
        .iter()
        .copied()
        .filter(|&a| (70..80).contains(&a))
        .min();
    match (simt, listed.contains(&80)) {
        (Some(simt), true) => Ok(vec![simt, 80]),
        (None, true) => Ok(vec![80]),
        _ => Err(format!(
            "{} --list-gpu-arch lists no compute_80 (it printed {:?})",
            nvcc.display(),
            String::from_utf8_lossy(&output.stdout)
        )),
    }
}

/// nvcc's release line (`Cuda compilation tools, release 13.0, V13.0.88`).
pub fn version(nvcc: &Path) -> String {
    Command::new(nvcc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.lines()
                .find(|l| l.contains("release"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "unknown version".into())
}

/// Compiles every module for every architecture in `archs` to
/// `out_dir/compute_<arch>/<name>.ptx`; returns each architecture's PTX paths in module
/// order, or nvcc's messages for every module that failed.
pub fn compile_all(
    nvcc: &Path,
    modules: &[Module],
    out_dir: &Path,
    archs: &[u32],
) -> Result<Vec<(u32, Vec<PathBuf>)>, String> {
    let mut built = Vec::new();
    for &arch in archs {
        let dir = out_dir.join(format!("compute_{arch}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        built.push((arch, compile_variant(nvcc, modules, &dir, arch)?));
    }
    Ok(built)
}

/// One architecture's modules, several nvcc processes at once.
fn compile_variant(
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
