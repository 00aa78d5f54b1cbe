//! The CUDA driver functions kiln calls, and the driver it needs.
//!
//! cudarc resolves each driver function the first time it is called and panics when the
//! driver lacks it, and its bindings are CUDA 13.0's: a wrapper may call a function
//! newer than the CUDA 12.0 drivers kiln supports (`result::event::elapsed` calls
//! `cuEventElapsedTime_v2`, which came with 12.8). So every call into the driver is
//! listed in [`SYMBOLS`] with the function it resolves (audited against cudarc 0.19's
//! `driver::result`), the test below checks the list against the code and against CUDA
//! 12.0's `cuda.h` (`cuda-12.0-driver-api.txt`, from `scripts/ptx.py driver-api`), and
//! a device opens only where the driver is new enough and has all of them.

/// Each driver call in the backend as the code spells it, and the driver function it
/// resolves.
pub(crate) const SYMBOLS: [(&str, &str); 31] = [
    ("cu::init", "cuInit"),
    ("cu::device::get_count", "cuDeviceGetCount"),
    ("cu::device::get", "cuDeviceGet"),
    ("cu::device::get_attribute", "cuDeviceGetAttribute"),
    ("cu::device::get_name", "cuDeviceGetName"),
    ("cu::primary_ctx::retain", "cuDevicePrimaryCtxRetain"),
    ("cu::ctx::set_current", "cuCtxSetCurrent"),
    ("cu::ctx::synchronize", "cuCtxSynchronize"),
    ("cu::stream::create", "cuStreamCreate"),
    ("cu::stream::synchronize", "cuStreamSynchronize"),
    ("cu::stream::wait_event", "cuStreamWaitEvent"),
    ("cu::module::load_data", "cuModuleLoadData"),
    ("cu::module::get_function", "cuModuleGetFunction"),
    ("cu::launch_kernel", "cuLaunchKernel"),
    ("cu::memcpy_htod_async", "cuMemcpyHtoDAsync_v2"),
    ("cu::memcpy_dtoh_async", "cuMemcpyDtoHAsync_v2"),
    ("cu::memcpy_dtod_async", "cuMemcpyDtoDAsync_v2"),
    ("cu::malloc_sync", "cuMemAlloc_v2"),
    ("cu::free_sync", "cuMemFree_v2"),
    ("cu::malloc_host", "cuMemHostAlloc"),
    ("cu::free_host", "cuMemFreeHost"),
    ("cu::mem_get_info", "cuMemGetInfo_v2"),
    ("cu::event::create", "cuEventCreate"),
    ("cu::event::record", "cuEventRecord"),
    ("cu::event::query", "cuEventQuery"),
    ("cu::event::synchronize", "cuEventSynchronize"),
    ("cu::event::destroy", "cuEventDestroy_v2"),
    ("b\"cuEventElapsedTime\"", "cuEventElapsedTime"),
    ("sys::cuDriverGetVersion", "cuDriverGetVersion"),
    (".error_name", "cuGetErrorName"),
    (".error_string", "cuGetErrorString"),
];

/// `12000` → "12.0" (`cuDriverGetVersion`'s encoding: 1000 * major + 10 * minor).
pub(crate) fn cuda_version(v: u32) -> String {
    format!("{}.{}", v / 1000, v % 1000 / 10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The driver calls in `text`: `cu::path(`, `sys::cuName(`, `.error_name(` and
    /// `.error_string(` (the `DriverError` methods that call the driver), and the
    /// functions looked up by name (`b"cuName"`).
    fn driver_calls(text: &str) -> Vec<String> {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
        let mut calls = Vec::new();
        for prefix in ["cu::", "sys::cu", ".error_name(", ".error_string("] {
            for (at, _) in text.match_indices(prefix) {
                let before = text[..at].chars().next_back();
                if prefix.starts_with(char::is_alphabetic) && before.is_some_and(ident) {
                    continue; // `result::cu::...` or `xsys::`: not this prefix
                }
                let rest = &text[at..];
                let len = rest[1..]
                    .find(|c: char| !ident(c))
                    .map_or(rest.len(), |n| n + 1);
                let path = &rest[..len];
                // A call, not a `use` or a type (`sys::CUresult` has no `cu` prefix),
                // nor cudarc's `sys::culib()` (the library, not a driver function).
                let driver_fn = prefix != "sys::cu" || path[7..].starts_with(char::is_uppercase);
                if rest[len..].starts_with('(') && driver_fn {
                    calls.push(path.trim_end_matches('(').to_string());
                }
            }
        }
        // A function looked up by name: `lib.get::<F>(b"cuName")`.
        for piece in text.split("b\"cu").skip(1) {
            if let Some(end) = piece.find('"') {
                calls.push(format!("b\"cu{}\"", &piece[..end]));
            }
        }
        calls
    }

    /// Every `.rs` file under `dir`, recursively.
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_list_is_exactly_the_driver_calls_of_the_code() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut called = std::collections::BTreeSet::new();
        let mut users = Vec::new();
        for file in files.iter().filter(|f| !f.ends_with("driver_api.rs")) {
            let text = std::fs::read_to_string(file).unwrap();
            if text.contains("cudarc::driver") {
                users.push(file.file_name().unwrap().to_string_lossy().into_owned());
                called.extend(driver_calls(&text));
            }
        }
        assert_eq!(users, ["driver.rs"], "only driver.rs calls the driver");
        let listed: std::collections::BTreeSet<String> =
            SYMBOLS.iter().map(|(call, _)| call.to_string()).collect();
        let unlisted: Vec<&String> = called.difference(&listed).collect();
        let unused: Vec<&String> = listed.difference(&called).collect();
        assert!(
            unlisted.is_empty(),
            "driver calls missing from driver_api::SYMBOLS (add each with the driver \
             function it resolves, after checking it exists in CUDA 12.0): {unlisted:?}"
        );
        assert!(
            unused.is_empty(),
            "SYMBOLS lists calls the code no longer makes: {unused:?}"
        );
    }

    #[test]
    fn every_driver_function_kiln_calls_is_in_cuda_12_0() {
        let api: Vec<&str> = include_str!("cuda-12.0-driver-api.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert!(api.len() > 400, "{}", api.len());
        for (call, symbol) in SYMBOLS {
            assert!(
                api.contains(&symbol),
                "{call} resolves {symbol}, not in CUDA 12.0"
            );
        }
        // What the audit is for: cudarc's event::elapsed (CUDA 13 bindings) resolves
        // this one, which CUDA 12.0 lacks.
        assert!(!api.contains(&"cuEventElapsedTime_v2"));
    }

    #[test]
    fn the_scanner_finds_calls_and_skips_the_rest() {
        let text = "use cudarc::driver::result::{self as cu};\n\
                    let c = cu::device::get_count().map_err(x)?;\n\
                    unsafe { sys::cuDriverGetVersion(&mut v) };\n\
                    let lib = unsafe { sys::culib() };\n\
                    let t: sys::CUresult = e.error_string().ok();\n\
                    cu::stream::StreamKind::NonBlocking;\n\
                    lib.get::<F>(b\"cuEventElapsedTime\")";
        assert_eq!(
            driver_calls(text),
            [
                "cu::device::get_count",
                "sys::cuDriverGetVersion",
                ".error_string",
                "b\"cuEventElapsedTime\""
            ]
        );
    }

    #[test]
    fn versions_print_as_cuda_does() {
        assert_eq!(cuda_version(12000), "12.0");
        assert_eq!(cuda_version(12080), "12.8");
        assert_eq!(cuda_version(13000), "13.0");
    }
}
