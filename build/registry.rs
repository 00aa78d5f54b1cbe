//! The kernel registry: kernel names scanned from the sources, checked against the
//! PTX, and written out as Rust (a `KernelId` per kernel plus the embedded PTX).

use std::fmt::Write as _;
use std::path::PathBuf;

const MARKER: &str = "extern \"C\" __global__";

/// One `kernels/<name>.cu` file and the kernels it defines.
pub struct Module {
    pub name: String,
    pub source: PathBuf,
    pub kernels: Vec<Kernel>,
}

/// One `extern "C" __global__` function and its parameters.
pub struct Kernel {
    pub name: String,
    pub params: Vec<Param>,
}

/// One kernel parameter: its C type and the `ParamKind` (launch.rs) that passes it.
pub struct Param {
    pub c_type: String,
    pub kind: &'static str,
}

/// Every `*.cu` in `dir`, sorted by name, with its `extern "C" __global__` kernels.
pub fn scan(dir: &str) -> Result<Vec<Module>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {dir}/: {e}"))?;
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    sources.sort();
    let mut modules = Vec::new();
    for source in sources {
        let text = std::fs::read_to_string(&source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        let name = source
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let kernels = parse_kernels(&text).map_err(|e| format!("{}: {e}", source.display()))?;
        modules.push(Module {
            name,
            source,
            kernels,
        });
    }
    Ok(modules)
}

/// Kernels declared as `extern "C" __global__ void [__launch_bounds__(..)] NAME(PARAMS)`.
fn parse_kernels(text: &str) -> Result<Vec<Kernel>, String> {
    let mut kernels: Vec<Kernel> = Vec::new();
    let mut offset = 0;
    for (lineno, line) in text.split_inclusive('\n').enumerate() {
        let line_start = offset;
        offset += line.len();
        let at_line = |msg: String| format!("line {}: {msg}", lineno + 1);
        let code = line.split("//").next().unwrap_or_default();
        if code.contains("extern __shared__") {
            return Err(at_line(
                "declare dynamic shared memory with KILN_DYNAMIC_SHARED(T, name) from \
                 common.cuh, so the kernel also runs on the emulated device"
                    .into(),
            ));
        }
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let before = line[..at].trim();
        if before.starts_with("//") || before.starts_with('*') {
            continue;
        }
        if before.starts_with("#define") {
            return Err(at_line(
                "kernels defined by macros cannot be registered; write the \
                 `extern \"C\" __global__` line out"
                    .into(),
            ));
        }
        let kernel = parse_signature(&text[line_start + at + MARKER.len()..]).map_err(at_line)?;
        if kernels.iter().any(|k| k.name == kernel.name) {
            return Err(at_line(format!("kernel {} defined twice", kernel.name)));
        }
        kernels.push(kernel);
    }
    Ok(kernels)
}

/// The name and parameters of a kernel, from the text after the `extern "C" __global__`.
fn parse_signature(rest: &str) -> Result<Kernel, String> {
    let mut rest = rest.trim_start();
    rest = rest.strip_prefix("void").unwrap_or(rest).trim_start();
    if let Some(bounds) = rest.strip_prefix("__launch_bounds__") {
        let close = bounds.find(')').ok_or("unclosed __launch_bounds__")?;
        rest = bounds[close + 1..].trim_start();
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if name.is_empty() {
        return Err(format!("no kernel name after {MARKER}"));
    }
    let list = rest[name.len()..]
        .trim_start()
        .strip_prefix('(')
        .and_then(|r| r.split_once(')'))
        .ok_or(format!("kernel {name}: no parameter list"))?
        .0;
    let params = list
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "void")
        .map(|p| parse_param(p).map_err(|e| format!("kernel {name}: parameter `{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Kernel { name, params })
}

/// `const float *x` → (`const float *`, Ptr); `Dims dims` → (`Dims`, Dims).
fn parse_param(param: &str) -> Result<Param, String> {
    let name_len = param
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .count();
    let c_type = param[..param.len() - name_len].trim().to_string();
    let base = c_type.strip_prefix("const ").unwrap_or(&c_type).trim();
    let kind = if base.ends_with('*') {
        "Ptr"
    } else {
        match base {
            "int" => "I32",
            "uint32_t" | "unsigned" | "unsigned int" => "U32",
            "uint64_t" => "U64",
            "int64_t" => "I64",
            "double" => "F64",
            "Dims" => "Dims",
            "Strides" => "Strides",
            _ => {
                return Err(format!(
                    "type `{c_type}` has no KernelArg variant (pointers, int, uint32_t, \
                     uint64_t, int64_t, double, Dims, Strides); add one in launch.rs"
                ))
            }
        }
    };
    Ok(Param { c_type, kind })
}

/// Err unless each module's PTX has an `.entry` for each scanned kernel.
pub fn check_entries(modules: &[Module], ptx: &[PathBuf]) -> Result<(), String> {
    for (module, path) in modules.iter().zip(ptx) {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for kernel in &module.kernels {
            if !text.contains(&format!(".entry {}(", kernel.name)) {
                return Err(format!(
                    "{}.ptx has no entry for kernel {}",
                    module.name, kernel.name
                ));
            }
        }
    }
    Ok(())
}

/// The Rust source of the registry. `modules` are the PTX modules (`kernels/*.cu`)
/// followed by emulator-only ones; `ptx` is `None` when the kernels were not built for
/// the GPU; `cap` is the PTX target; `emulated` adds the table of host-compiled entry
/// points (see emulator.rs).
pub fn generate(
    modules: &[Module],
    ptx_modules: usize,
    ptx: Option<&[PathBuf]>,
    cap: u32,
    emulated: bool,
) -> String {
    let mut s = String::from("// @generated by build.rs from kernels/*.cu; do not edit.\n\n");
    let _ = writeln!(
        s,
        "/// The compute capability the PTX targets (`CUDA_COMPUTE_CAP`, e.g. 80).\n\
         pub(crate) const COMPUTE_CAP: u32 = {cap};\n"
    );
    let names: Vec<String> = modules.iter().map(|m| format!("{:?}", m.name)).collect();
    let _ = writeln!(
        s,
        "/// Kernel modules, one per `kernels/*.cu` (then emulator-only ones), in\n\
         /// `KernelId::module` order.\n\
         pub(crate) const MODULE_NAMES: [&str; {}] = [{}];\n",
        modules.len(),
        names.join(", ")
    );
    let ptx_texts = ptx.map(|paths| {
        paths
            .iter()
            .map(|p| {
                format!(
                    "concat!(include_str!({:?}), \"\\0\")",
                    p.display().to_string()
                )
            })
            .collect::<Vec<_>>()
            .join(",\n    ")
    });
    let _ = writeln!(
        s,
        "/// NUL-terminated PTX of each `kernels/*.cu` module; `None` when nvcc was not\n\
         /// available.\n\
         pub(crate) const MODULE_PTX: Option<[&str; {ptx_modules}]> = {};\n",
        ptx_texts.map_or("None".into(), |t| format!("Some([\n    {t},\n])"))
    );
    let all: Vec<(usize, &Kernel)> = modules
        .iter()
        .enumerate()
        .flat_map(|(i, m)| m.kernels.iter().map(move |k| (i, k)))
        .collect();
    s.push_str("/// One id per `extern \"C\" __global__` kernel in `kernels/*.cu`.\n");
    s.push_str("#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]\n#[repr(u16)]\n");
    s.push_str("pub enum KernelId {\n");
    for &(m, k) in &all {
        let types: Vec<&str> = k.params.iter().map(|p| p.c_type.as_str()).collect();
        let _ = writeln!(
            s,
            "    /// `{}({})` in `{}`.\n    {},",
            k.name,
            types.join(", "),
            modules[m].source.display(),
            camel(&k.name)
        );
    }
    s.push_str("}\n\nimpl KernelId {\n");
    let _ = writeln!(
        s,
        "    /// Every kernel, in id order.\n    pub const ALL: [KernelId; {}] = [",
        all.len()
    );
    for &(_, k) in &all {
        let _ = writeln!(s, "        KernelId::{},", camel(&k.name));
    }
    s.push_str("    ];\n\n");
    match_fn(
        &mut s,
        "The kernel's name in the PTX.",
        "name",
        "&'static str",
        &all,
        |_, k| format!("{:?}", k.name),
    );
    match_fn(
        &mut s,
        "Index of the module (in `MODULE_NAMES`) that defines the kernel.",
        "module",
        "usize",
        &all,
        |m, _| m.to_string(),
    );
    match_fn(
        &mut s,
        "The kernel's parameters, in order.",
        "params",
        "&'static [ParamKind]",
        &all,
        |_, k| {
            let kinds: Vec<String> = k
                .params
                .iter()
                .map(|p| format!("ParamKind::{}", p.kind))
                .collect();
            format!("&[{}]", kinds.join(", "))
        },
    );
    s.push_str("}\n");
    if emulated {
        emulator_table(&mut s, &all);
    }
    s
}

/// `pub const fn NAME(self) -> RET` matching every kernel to `value(module, kernel)`.
fn match_fn(
    s: &mut String,
    doc: &str,
    name: &str,
    ret: &str,
    all: &[(usize, &Kernel)],
    value: impl Fn(usize, &Kernel) -> String,
) {
    let _ = writeln!(
        s,
        "    /// {doc}\n    pub const fn {name}(self) -> {ret} {{\n        match self {{"
    );
    for &(m, k) in all {
        let _ = writeln!(
            s,
            "            KernelId::{} => {},",
            camel(&k.name),
            value(m, k)
        );
    }
    s.push_str("        }\n    }\n\n");
}

/// `EMULATED_ENTRIES`: the host-compiled entry point of each kernel, in id order.
fn emulator_table(s: &mut String, all: &[(usize, &Kernel)]) {
    s.push_str("\nextern \"C\" {\n");
    for &(_, k) in all {
        let _ = writeln!(
            s,
            "    fn kiln_emu_run_{}(args: *const *const core::ffi::c_void);",
            k.name
        );
    }
    let _ = writeln!(
        s,
        "}}\n\n/// Host-compiled kernels (`cuda-emulator`), in id order: each takes one pointer\n\
         /// per parameter, to a value of the parameter's type.\n\
         pub(crate) const EMULATED_ENTRIES: [unsafe extern \"C\" fn(*const *const core::ffi::c_void); {}] = [",
        all.len()
    );
    for &(_, k) in all {
        let _ = writeln!(s, "    kiln_emu_run_{},", k.name);
    }
    s.push_str("];\n");
}

/// `copy_f32_f16` → `CopyF32F16`.
fn camel(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
