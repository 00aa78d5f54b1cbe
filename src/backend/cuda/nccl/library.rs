//! The real NCCL, loaded at run time: `libnccl.so.2` from the system's library path or
//! from the `nvidia-nccl` Python wheel that PyTorch installs (`site-packages/nvidia/
//! nccl/lib`). cudarc 0.19's NCCL loader is not used: its candidate names
//! (`get_lib_name_candidates`) stop at `libnccl.so.13/.12/.11/.10/.9/.1`, lacking the
//! `.so.2` that every NCCL 2 release installs, and it panics when nothing loads.
//!
//! Probed once per process; when NCCL is missing, the reason is logged and returned as
//! an `Err`, never a panic.

use crate::{Error, Result};
use std::ffi::{c_char, c_int, CStr};
use std::path::PathBuf;
use std::sync::OnceLock;

/// `ncclGetVersion(int*)`.
type GetVersion = unsafe extern "C" fn(*mut c_int) -> c_int;
/// `ncclGetErrorString(ncclResult_t)`.
type GetErrorString = unsafe extern "C" fn(c_int) -> *const c_char;

/// The loaded library and the entry points kiln calls.
pub(crate) struct Nccl {
    /// Keeps the library mapped while the function pointers are used.
    _lib: libloading::Library,
    path: String,
    get_version: GetVersion,
    get_error_string: GetErrorString,
}

impl Nccl {
    /// Where the library was loaded from.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// NCCL's version as `major.minor.patch` (ncclGetVersion's code decoded).
    pub(crate) fn version(&self) -> Result<String> {
        let mut code: c_int = 0;
        // SAFETY: `get_version` is ncclGetVersion from the still-mapped library; it
        // writes one int through the valid pointer it is given.
        let status = unsafe { (self.get_version)(&mut code) };
        if status != 0 {
            return Err(Error::CudaDriver {
                op: "ncclGetVersion",
                msg: self.error_string(status),
            });
        }
        Ok(decode_version(code))
    }

    /// NCCL's message for a result code.
    fn error_string(&self, status: c_int) -> String {
        // SAFETY: ncclGetErrorString returns a pointer to a static, NUL-terminated
        // string for any code (NCCL's "unknown result code" for unknown ones).
        let msg = unsafe { CStr::from_ptr((self.get_error_string)(status)) };
        format!("NCCL error {status}: {}", msg.to_string_lossy())
    }
}

/// `major.minor.patch` of ncclGetVersion's code: `major*10000 + minor*100 + patch`
/// since NCCL 2.9, `major*1000 + minor*100 + patch` before.
fn decode_version(code: c_int) -> String {
    let code = code.max(0) as u32;
    if code >= 10000 {
        format!("{}.{}.{}", code / 10000, code % 10000 / 100, code % 100)
    } else {
        format!("{}.{}.{}", code / 1000, code % 1000 / 100, code % 100)
    }
}

/// The process's NCCL, loaded on first use; the `Err` says where kiln looked.
pub(crate) fn nccl() -> Result<&'static Nccl> {
    static NCCL: OnceLock<std::result::Result<Nccl, String>> = OnceLock::new();
    NCCL.get_or_init(|| {
        let loaded = load();
        match &loaded {
            Ok(n) => log::info!("kiln: NCCL loaded from {}", n.path),
            Err(why) => log::info!("kiln: NCCL unavailable: {why}"),
        }
        loaded
    })
    .as_ref()
    .map_err(|why| Error::CudaUnavailable {
        ordinal: 0,
        reason: why.clone(),
    })
}

/// The first candidate that loads and has every entry point, or why none did.
fn load() -> std::result::Result<Nccl, String> {
    load_first(candidates(&python_prefixes()))
}

/// The first of `candidates` that loads and has every entry point, or why none did.
fn load_first(candidates: Vec<String>) -> std::result::Result<Nccl, String> {
    let mut tried = Vec::new();
    for candidate in candidates {
        match open(&candidate) {
            Ok(nccl) => return Ok(nccl),
            Err(e) => tried.push(format!("{candidate}: {e}")),
        }
    }
    Err(format!(
        "NCCL (libnccl.so.2) not found; install it (apt's libnccl2, or `pip install \
         nvidia-nccl-cu12`) or add its folder to LD_LIBRARY_PATH. Tried: {}",
        tried.join("; ")
    ))
}

/// Loads `path` and resolves the entry points.
fn open(path: &str) -> std::result::Result<Nccl, libloading::Error> {
    // SAFETY: loading runs the library's initializers; NCCL's only set up its own
    // state. The library stays loaded as long as the returned `Nccl` (the process).
    let lib = unsafe { libloading::Library::new(path)? };
    // SAFETY: the symbols are NCCL's exported C functions with exactly these
    // signatures (nccl.h); the pointers are used only while `lib` is alive.
    let (get_version, get_error_string) = unsafe {
        (
            *lib.get::<GetVersion>(b"ncclGetVersion\0")?,
            *lib.get::<GetErrorString>(b"ncclGetErrorString\0")?,
        )
    };
    Ok(Nccl {
        _lib: lib,
        path: path.to_string(),
        get_version,
        get_error_string,
    })
}

/// The library's names and paths in the order tried: the dynamic loader's search
/// (system, LD_LIBRARY_PATH), then the `nvidia-nccl` wheel of the Python environments
/// at `prefixes`.
fn candidates(prefixes: &[PathBuf]) -> Vec<String> {
    let mut out = vec!["libnccl.so.2".to_string(), "libnccl.so".to_string()];
    for prefix in prefixes {
        let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with("python") {
                continue;
            }
            // pip's folder, and Debian's for the system Python.
            for packages in ["site-packages", "dist-packages"] {
                let lib = entry
                    .path()
                    .join(packages)
                    .join("nvidia/nccl/lib/libnccl.so.2");
                if lib.exists() {
                    out.push(lib.to_string_lossy().into_owned());
                }
            }
        }
    }
    out
}

/// Prefixes of Python environments: `VIRTUAL_ENV`, `CONDA_PREFIX`, the user's
/// `~/.local` (`pip install --user`), and the folder above each `bin/` on PATH that
/// holds a `python3`.
fn python_prefixes() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = ["VIRTUAL_ENV", "CONDA_PREFIX"]
        .iter()
        .filter_map(std::env::var_os)
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".local"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("python3").exists() {
                if let Some(prefix) = dir.parent() {
                    out.push(prefix.to_path_buf());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_in_both_encodings() {
        assert_eq!(decode_version(22105), "2.21.5");
        assert_eq!(decode_version(2804), "2.8.4");
    }

    /// A wheel's library is found under a Python prefix; one that does not load is an
    /// `Err` naming it, not a panic.
    #[test]
    fn the_wheel_is_a_candidate_and_a_broken_one_is_an_err() {
        let prefix = std::env::temp_dir().join(format!("kiln-nccl-wheel-{}", std::process::id()));
        let dir = prefix.join("lib/python3.12/site-packages/nvidia/nccl/lib");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("libnccl.so.2"), b"not a library").unwrap();
        let found = candidates(std::slice::from_ref(&prefix));
        let wheel = dir.join("libnccl.so.2").to_string_lossy().into_owned();
        assert_eq!(found.last(), Some(&wheel));
        let err = load_first(vec![wheel.clone()]).err().unwrap();
        assert!(
            err.starts_with("NCCL (libnccl.so.2) not found") && err.contains(&wheel),
            "{err}"
        );
        std::fs::remove_dir_all(&prefix).unwrap();
    }
}
