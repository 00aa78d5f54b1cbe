//! The PTX that build.rs embeds: the PTX shipped in `kernels/ptx/` (written by
//! `scripts/ptx.py` with the pinned NVRTC 12.0), or with `KILN_NVCC=1` a local nvcc's
//! (nvcc.rs). Either way it comes in variants, one per target architecture, each with
//! every module; the device picks one when it opens. The PTX is embedded gzip-compressed
//! and inflated when its module first loads.

use crate::registry::Module;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where the shipped PTX lives, relative to the crate root.
pub const SHIPPED_DIR: &str = "kernels/ptx";

/// The PTX to embed: its variants, where it came from, the driver it needs.
pub struct Embedded {
    /// Lowest architecture first.
    pub variants: Vec<Variant>,
    /// "the PTX shipped in kernels/ptx (NVRTC 12.0)", "nvcc at build time (...)".
    pub origin: String,
    /// The newest PTX ISA among the modules, as (major, minor).
    pub isa: (u32, u32),
}

/// One architecture's PTX: a gzip file per module, in module order.
pub struct Variant {
    /// The compute capability it targets (`compute_80` → 80).
    pub arch: u32,
    pub files: Vec<PathBuf>,
}

/// The shipped PTX of `modules`, checked: the manifest's sources hash equals the hash of
/// `kernels/` (else the PTX is stale: the kernels were edited without
/// `scripts/ptx.sh generate`), and every kernel has its entry in every variant.
pub fn shipped(modules: &[Module], crate_dir: &Path) -> Result<Embedded, String> {
    let dir = crate_dir.join(SHIPPED_DIR);
    let manifest_path = dir.join("MANIFEST");
    let manifest = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let field = |key: &'static str| fields(&manifest, key);
    let hash = sources_hash(&crate_dir.join("kernels"))?;
    if field("sources").next() != Some(hash.as_str()) {
        return Err(format!(
            "the PTX shipped in {SHIPPED_DIR} is stale: kernels/*.cu or *.cuh changed since \
             it was written ({hash} now). Run scripts/ptx.sh generate, or build with \
             KILN_NVCC=1 to compile the kernels with a local nvcc"
        ));
    }
    let compiler = field("compiler").next().unwrap_or("unknown compiler");
    let mut texts = Vec::new();
    let mut variants = Vec::new();
    for name in field("variant") {
        let arch = name
            .strip_prefix("compute_")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("{}: bad variant {name:?}", manifest_path.display()))?;
        let files: Vec<PathBuf> = modules
            .iter()
            .map(|m| dir.join(name).join(format!("{}.ptx.gz", m.name)))
            .collect();
        let text: Result<Vec<String>, String> = files.iter().map(|f| gunzip(f)).collect();
        texts.push((arch, text?));
        variants.push(Variant { arch, files });
    }
    let isa = check(modules, &texts)?;
    Ok(Embedded {
        variants,
        origin: format!(
            "the PTX shipped in {SHIPPED_DIR} ({})",
            first_words(compiler, 2)
        ),
        isa,
    })
}

/// The values of the manifest's `key value` lines.
fn fields<'a>(manifest: &'a str, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    manifest
        .lines()
        .filter_map(move |l| l.strip_prefix(key)?.strip_prefix(' '))
}

/// Compresses each variant's PTX text files (nvcc's, under `out_dir`) next to them and
/// checks them like the shipped ones.
pub fn from_nvcc(
    modules: &[Module],
    built: Vec<(u32, Vec<PathBuf>)>,
    origin: String,
) -> Result<Embedded, String> {
    let mut texts = Vec::new();
    let mut variants = Vec::new();
    for (arch, paths) in built {
        let mut files = Vec::new();
        let mut text = Vec::new();
        for path in paths {
            let ptx = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let gz = path.with_extension("ptx.gz");
            gzip(&gz, ptx.as_bytes())?;
            files.push(gz);
            text.push(ptx);
        }
        texts.push((arch, text));
        variants.push(Variant { arch, files });
    }
    let isa = check(modules, &texts)?;
    Ok(Embedded {
        variants,
        origin,
        isa,
    })
}

/// Err unless there is a variant and each module's PTX in each has an `.entry` for each
/// scanned kernel; the newest `.version` (PTX ISA) among them.
fn check(modules: &[Module], texts: &[(u32, Vec<String>)]) -> Result<(u32, u32), String> {
    if texts.is_empty() {
        return Err("no PTX variant".into());
    }
    let mut isa = (0, 0);
    for (arch, variant) in texts {
        for (module, text) in modules.iter().zip(variant) {
            if let Some(kernel) = module
                .kernels
                .iter()
                .find(|k| !text.contains(&format!(".entry {}(", k.name)))
            {
                return Err(format!(
                    "the compute_{arch} PTX of {} has no entry for kernel {}",
                    module.name, kernel.name
                ));
            }
            let version = ptx_isa(text).ok_or_else(|| {
                format!("the compute_{arch} PTX of {} has no .version", module.name)
            })?;
            isa = isa.max(version);
        }
    }
    Ok(isa)
}

/// The `.version X.Y` directive of a PTX text.
fn ptx_isa(text: &str) -> Option<(u32, u32)> {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(".version "))?;
    let (major, minor) = line.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The CUDA version (as `cuDriverGetVersion` reports it: 1000·major + 10·minor) whose
/// drivers first load PTX ISA `isa` (the PTX ISA manual's release table).
pub fn driver_for_isa(isa: (u32, u32)) -> Result<u32, String> {
    let cuda = match isa {
        (7, m @ 0..=8) => (11, m),
        (8, m @ 0..=5) => (12, m),
        (8, 6) => (12, 7),
        (8, 7) => (12, 8),
        (8, 8) => (12, 9),
        (9, 0) => (13, 0),
        _ => {
            return Err(format!(
                "PTX ISA {}.{} is not in build/ptx.rs's table of the CUDA release that \
                 introduced it; add it there (or use an older nvcc)",
                isa.0, isa.1
            ))
        }
    };
    Ok(cuda.0 * 1000 + cuda.1 * 10)
}

/// The hash `scripts/ptx.py` writes into the manifest: FNV-1a (64 bits) over each
/// `*.cu` and `*.cuh` in `dir` by name: name, NUL, text with LF line ends, NUL. It tells
/// a stale PTX, not a forged one.
pub fn sources_hash(dir: &Path) -> Result<String, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu" || x == "cuh"))
        .collect();
    files.sort_by_key(|p| p.file_name().map(|n| n.to_os_string()));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for path in files {
        let text =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        feed(name.as_bytes());
        feed(b"\0");
        // Windows checkouts may turn LF into CRLF; the PTX does not depend on it.
        let mut rest = text.as_slice();
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            feed(&rest[..i]);
            rest = &rest[i + 1..];
        }
        feed(rest);
        feed(b"\0");
    }
    Ok(format!("fnv1a64:{h:016x}"))
}

fn gunzip(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes.as_slice())
        .read_to_string(&mut text)
        .map_err(|e| format!("{} is not gzip-compressed PTX: {e}", path.display()))?;
    Ok(text)
}

fn gzip(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes)
        .and_then(|()| enc.finish())
        .and_then(|gz| std::fs::write(path, gz))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The registry's PTX part: `PTX_VARIANTS`, `PTX_ORIGIN`, `PTX_ISA` and
/// `MIN_DRIVER_VERSION` (empty, why there is no PTX, and zeros when `embedded` is the
/// reason there is none).
pub fn generate(embedded: Result<&Embedded, &String>) -> Result<String, String> {
    let mut s = String::new();
    let (origin, isa, min_driver) = match embedded {
        Ok(e) => (e.origin.clone(), e.isa, driver_for_isa(e.isa)?),
        Err(why) => (format!("no PTX embedded: {why}"), (0, 0), 0),
    };
    let _ = writeln!(
        s,
        "/// Where the embedded PTX came from.\n\
         pub(crate) const PTX_ORIGIN: &str = {origin:?};\n\n\
         /// The newest PTX ISA (major, minor) among the embedded modules.\n\
         pub(crate) const PTX_ISA: (u32, u32) = ({}, {});\n\n\
         /// The oldest CUDA driver that loads every embedded module, as\n\
         /// `cuDriverGetVersion` reports it (1000 * major + 10 * minor).\n\
         pub(crate) const MIN_DRIVER_VERSION: u32 = {min_driver};\n",
        isa.0, isa.1
    );
    let _ = writeln!(
        s,
        "/// The embedded PTX variants, lowest architecture first: gzip-compressed PTX of each\n\
         /// `kernels/*.cu` module in `MODULE_NAMES` order.\n\
         pub(crate) const PTX_VARIANTS: &[PtxVariant] = &["
    );
    for v in embedded.map_or(&[][..], |e| &e.variants) {
        let _ = writeln!(
            s,
            "    PtxVariant {{\n        arch: {},\n        modules: &[",
            v.arch
        );
        for f in &v.files {
            let _ = writeln!(
                s,
                "            include_bytes!({:?}) as &[u8],",
                f.display().to_string()
            );
        }
        s.push_str("        ],\n    },\n");
    }
    s.push_str("];\n");
    Ok(s)
}
