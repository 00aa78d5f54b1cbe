//! The crate's structure, checked against its source (docs/ARCHITECTURE.md says why):
//!
//! * every `crate::` path in code points down the layers, or sideways within one —
//!   and the only pair of modules that import each other is tensor ↔ autograd;
//! * `src/data` and `src/nn` never name a backend's storage or the CUDA backend;
//! * the CUDA runtime imports no op family;
//! * every op family is complete (trait file, CPU file, CUDA ops file, kernels) and
//!   listed in docs/ARCHITECTURE.md's family table, whose file paths all exist;
//! * every kernel source has a coverage test, which checks that a parity sweep
//!   launches each of its kernels.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, bottom to top: a module may use its own layer (without a cycle) and
/// those below. `nn::functional` is its own layer below the rest of `nn`.
const LAYERS: &[&[&str]] = &[
    &["error", "dtype", "shape", "rng", "device", "profiler"],
    &["backend"],
    &["tensor", "autograd", "cuda", "distributed"],
    &["nn::functional", "utils"],
    &["nn", "data"],
    &["optim"],
    &["amp", "models"],
];

/// The one pair of modules allowed to import each other.
const CYCLE: (&str, &str) = ("tensor", "autograd");

/// Files of `src/backend/cpu` that are the CPU backend's shared code, not a family.
const CPU_SHARED: &[&str] = &["mod", "alloc", "dtype", "gemm_util", "lanes", "math"];

/// Kernel sources that belong to no family: the copy kernels of the memory primitives
/// (`BackendStorage::copy_as` and friends, `backend/cuda/runtime/storage.rs`).
const MEMORY_KERNELS: &[&str] = &["copy"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module (as named in [`LAYERS`]) a source file belongs to; `None` for lib.rs,
/// which re-exports from everywhere.
fn module_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        [only] if only == "lib" => None,
        [only] => Some(only.clone()),
        [first, second, ..] if first == "nn" && second == "functional" => {
            Some("nn::functional".into())
        }
        [first, ..] => Some(first.clone()),
        [] => None,
    }
}

/// `text` without comments (line, block and doc comments) and string literals, so
/// that only code is scanned.
fn code_only(text: &str) -> String {
    let b = text.as_bytes();
    let (mut out, mut i) = (String::with_capacity(text.len()), 0);
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let end = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            i = end;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Root-level names (`crate::Tensor`, `crate::no_grad`, ...) and the module each
/// comes from, read from lib.rs's `pub use` lines.
fn root_reexports() -> BTreeMap<String, String> {
    let lib = code_only(&std::fs::read_to_string(root().join("src/lib.rs")).unwrap());
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let Some(rest) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_start_matches("crate::");
        if rest.starts_with('{') || rest.starts_with("self") {
            continue; // the prelude's re-exports of re-exports
        }
        let module = rest.split("::").next().unwrap().trim().to_string();
        let module = if rest.starts_with("nn::functional") {
            "nn::functional".to_string()
        } else {
            module
        };
        let names = rest.rsplit("::").next().unwrap();
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.split(" as ").last().unwrap().trim();
            if !name.is_empty() {
                map.entry(name.to_string())
                    .or_insert_with(|| module.clone());
            }
        }
    }
    map
}

/// The modules a piece of code names through `crate::` paths, grouped `use
/// crate::{..}` imports included.
fn targets(code: &str, reexports: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |path: &str| {
        let mut segs = path.split("::").map(str::trim);
        let first = segs.next().unwrap_or("");
        let module = match first {
            "nn" if segs.next() == Some("functional") => "nn::functional".to_string(),
            f if reexports.contains_key(f) => reexports[f].clone(),
            f => f.to_string(),
        };
        if !module.is_empty() && module != "self" {
            found.insert(module);
        }
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` in a macro, or part of a longer name
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top_level(&group[..end]) {
                add(item);
            }
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            add(&rest[..end]);
        }
    }
    found
}

fn matching_brace(s: &str) -> usize {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every source file under `src/`, relative to it, with its code (comments and
/// strings removed).
fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root().join("src")).unwrap().to_path_buf();
            (rel, code_only(&std::fs::read_to_string(&f).unwrap()))
        })
        .collect()
}

#[test]
fn imports_point_down_the_layers() {
    let reexports = root_reexports();
    let mut edges: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    let mut unknown = Vec::new();
    for (rel, code) in sources() {
        let Some(from) = module_of(&rel) else {
            continue;
        };
        if layer_of(&from).is_none() {
            unknown.push(format!("{} (module {from})", rel.display()));
            continue;
        }
        for to in targets(&code, &reexports) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| rel.clone());
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from LAYERS: {unknown:?}"
    );
    let mut wrong = Vec::new();
    for ((from, to), file) in &edges {
        let (Some(lf), Some(lt)) = (layer_of(from), layer_of(to)) else {
            wrong.push(format!(
                "{}: names `crate::{to}`, in no layer",
                file.display()
            ));
            continue;
        };
        let cycle = edges.contains_key(&(to.clone(), from.clone()));
        let allowed_cycle =
            (from.as_str(), to.as_str()) == CYCLE || (to.as_str(), from.as_str()) == CYCLE;
        if lt > lf {
            wrong.push(format!(
                "{}: {from} (layer {lf}) imports {to} (layer {lt})",
                file.display()
            ));
        } else if cycle && !allowed_cycle {
            wrong.push(format!(
                "{}: {from} and {to} import each other",
                file.display()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn data_and_nn_never_name_a_backend_storage() {
    let mut wrong = Vec::new();
    for (rel, code) in sources() {
        let top = rel.iter().next().unwrap().to_string_lossy();
        if top != "data" && top != "nn" {
            continue;
        }
        for name in ["Storage::Cpu", "Storage::Cuda", "backend::cuda"] {
            if code.contains(name) {
                wrong.push(format!("{} names {name}", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

/// The op families: the `pub(crate) mod <family>;` lines of backend/mod.rs.
fn families() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("src/backend/mod.rs")).unwrap();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("pub(crate) mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .filter(|m| m != "cpu" && m != "cuda")
        .collect()
}

fn stems(dir: &str, ext: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join(dir))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == ext).then(|| path.file_stem().unwrap().to_string_lossy().into())
        })
        .collect()
}

#[test]
fn the_cuda_runtime_imports_no_op_family() {
    let families = families();
    let mut wrong = Vec::new();
    for (rel, code) in sources() {
        if !rel.starts_with("backend/cuda/runtime") {
            continue;
        }
        for family in &families {
            if code.contains(&format!("crate::backend::{family}::")) {
                wrong.push(format!("{} uses the {family} family", rel.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn every_family_is_complete() {
    let families = families();
    assert!(
        families.len() >= 16,
        "families read from backend/mod.rs: {families:?}"
    );
    let mut wrong = Vec::new();
    for family in &families {
        let trait_file = std::fs::read_to_string(root().join(format!("src/backend/{family}.rs")))
            .unwrap_or_default();
        for declared in [format!("cpu/{family}.rs"), format!("cuda/ops/{family}.rs")] {
            if !trait_file.contains(&format!("#[path = \"{declared}\"]")) {
                wrong.push(format!("backend/{family}.rs does not declare {declared}"));
            }
        }
        if !root().join(format!("kernels/{family}.cu")).exists() {
            wrong.push(format!("no kernels/{family}.cu"));
        }
    }
    // Every kernel source, CPU file and CUDA ops file belongs to a family.
    let belongs = |stem: &str| {
        families.contains(stem) || families.iter().any(|f| stem.starts_with(&format!("{f}_")))
    };
    for stem in stems("kernels", "cu") {
        if !belongs(&stem) && !MEMORY_KERNELS.contains(&stem.as_str()) {
            wrong.push(format!("kernels/{stem}.cu belongs to no family"));
        }
    }
    // A family's CPU file may split off a part of its own (`#[path = "part.rs"] mod part;`).
    let family_cpu_code: String = families
        .iter()
        .map(|f| std::fs::read_to_string(root().join(format!("src/backend/cpu/{f}.rs"))))
        .filter_map(|r| r.ok())
        .collect();
    for stem in stems("src/backend/cpu", "rs") {
        let part_of_a_family = family_cpu_code.contains(&format!("#[path = \"{stem}.rs\"]"));
        if !families.contains(&stem) && !CPU_SHARED.contains(&stem.as_str()) && !part_of_a_family {
            wrong.push(format!(
                "backend/cpu/{stem}.rs is neither a family nor shared code"
            ));
        }
    }
    for stem in stems("src/backend/cuda/ops", "rs") {
        if !belongs(&stem) {
            wrong.push(format!("backend/cuda/ops/{stem}.rs belongs to no family"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_architecture_table_lists_every_family_and_its_files() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let start = doc
        .find("| family |")
        .expect("docs/ARCHITECTURE.md has the family table");
    let rows: Vec<Vec<&str>> = doc[start..]
        .lines()
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let listed: BTreeSet<String> = rows
        .iter()
        .map(|r| {
            r[0].split(' ')
                .next()
                .unwrap()
                .trim_end_matches(',')
                .to_string()
        })
        .collect();
    let mut missing: Vec<String> = families().difference(&listed).cloned().collect();
    for row in &rows {
        for cell in row {
            for path in cell.split('`').skip(1).step_by(2) {
                let path = path.split(" (").next().unwrap();
                let looks_like_file =
                    path.ends_with(".rs") || path.ends_with(".cu") || path.ends_with(".cuh");
                let exists = root().join(path).exists() || root().join("src").join(path).exists();
                if looks_like_file && !exists {
                    missing.push(format!("the table names {path}, which does not exist"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

/// The text of every `.rs` file under `tests/`.
fn test_sources() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join("tests"), &mut files);
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

/// The body of `fn <name>()` in `text` (to the closing brace at the `fn`'s indentation).
fn fn_body<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let at = text.find(&format!("fn {name}()"))?;
    let indent = &text[text[..at].rfind('\n').map_or(0, |i| i + 1)..at];
    let body = &text[at..];
    Some(&body[..body.find(&format!("\n{indent}}}")).unwrap_or(body.len())])
}

/// Every kernel source has a coverage test: `every_<family>_kernel_is_launched`, in
/// some file under tests/, which passes its family to
/// `parity::assert_every_kernel_launched` — so the kernels of a new family or source
/// must be launched by its parity sweep (docs/ARCHITECTURE.md, "Tests on every
/// device"). The family of `kernels/<family>_<part>.cu` is `<family>`; the memory
/// kernels' is their own name.
#[test]
fn every_kernel_source_has_a_coverage_test() {
    let families = families();
    let tests = test_sources();
    let mut missing = Vec::new();
    for stem in stems("kernels", "cu") {
        let family = if families.contains(&stem) {
            stem.clone()
        } else {
            let part_of = |f: &&String| stem.starts_with(&format!("{f}_"));
            families
                .iter()
                .find(part_of)
                .cloned()
                .unwrap_or(stem.clone())
        };
        let test = format!("every_{family}_kernel_is_launched");
        let checks = |body: &str| {
            body.contains("assert_every_kernel_launched(")
                && body.contains(&format!("\"{family}\""))
        };
        if !tests.iter().any(|t| fn_body(t, &test).is_some_and(checks)) {
            missing.push(format!(
                "kernels/{stem}.cu: no test `{test}` under tests/ calling \
                 parity::assert_every_kernel_launched(\"{family}\", ..)"
            ));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
