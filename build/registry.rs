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
    /// Its `enum <Name>Code` op-code tables.
    pub codes: Vec<CodeTable>,
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

/// One `enum <Name>Code { ... }` of a kernel source: op codes the host passes to kernels.
pub struct CodeTable {
    pub name: String,
    /// (enumerator, value), in declaration order.
    pub entries: Vec<(String, u32)>,
}

/// An integer `#define NAME VALUE` of a kernel source or header: a tile size or limit
/// that the host shares with the kernels, declared once there.
pub struct Define {
    pub name: String,
    pub value: u64,
    pub source: PathBuf,
}

/// The integer `#define`s of every `*.cu` and `*.cuh` in `dir`: an upper-case name
/// whose value is an integer expression (`+ - * /`, parentheses, decimal literals and
/// names defined before it). A name defined twice is an error; other defines (floats,
/// macros with parameters) are not the host's business and are skipped.
pub fn scan_defines(dir: &str) -> Result<Vec<Define>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read {dir}/: {e}"))?;
    let mut sources: Vec<PathBuf> = entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu" || x == "cuh"))
        .collect();
    sources.sort();
    let mut defines: Vec<Define> = Vec::new();
    for source in sources {
        let text = std::fs::read_to_string(&source)
            .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        for line in strip_comments(&text).lines() {
            let Some(rest) = line.trim_start().strip_prefix("#define ") else {
                continue;
            };
            let rest = rest.trim();
            let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
            let (name, value) = rest.split_at(name_len.unwrap_or(rest.len()));
            let upper = name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            // `NAME(` with no space is a macro with parameters.
            if !upper || value.starts_with('(') {
                continue;
            }
            let Some(value) = eval(value, &defines) else {
                continue;
            };
            if let Some(first) = defines.iter().find(|d| d.name == name) {
                return Err(format!(
                    "{}: #define {name} again (first in {})",
                    source.display(),
                    first.source.display()
                ));
            }
            defines.push(Define {
                name: name.to_string(),
                value,
                source: source.clone(),
            });
        }
    }
    Ok(defines)
}

/// The value of an integer expression over earlier `defines`; `None` when `text` is
/// not one (a float, a string, an unknown name, a division by zero, an overflow).
fn eval(text: &str, defines: &[Define]) -> Option<u64> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let value = sum(&tokens, &mut pos, defines)?;
    (pos == tokens.len()).then_some(value)
}

fn tokenize(text: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if "+-*/()".contains(c) {
            tokens.push(c.to_string());
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars
                .peek()
                .filter(|c| c.is_ascii_alphanumeric() || **c == '_')
            {
                word.push(c);
                chars.next();
            }
            tokens.push(word);
        } else {
            return None;
        }
    }
    (!tokens.is_empty()).then_some(tokens)
}

fn sum(tokens: &[String], pos: &mut usize, defines: &[Define]) -> Option<u64> {
    let mut value = product(tokens, pos, defines)?;
    while let Some(op) = tokens.get(*pos).filter(|t| *t == "+" || *t == "-") {
        *pos += 1;
        let rhs = product(tokens, pos, defines)?;
        value = if op == "+" {
            value.checked_add(rhs)?
        } else {
            value.checked_sub(rhs)?
        };
    }
    Some(value)
}

fn product(tokens: &[String], pos: &mut usize, defines: &[Define]) -> Option<u64> {
    let mut value = atom(tokens, pos, defines)?;
    while let Some(op) = tokens.get(*pos).filter(|t| *t == "*" || *t == "/") {
        *pos += 1;
        let rhs = atom(tokens, pos, defines)?;
        value = if op == "*" {
            value.checked_mul(rhs)?
        } else {
            value.checked_div(rhs)?
        };
    }
    Some(value)
}

fn atom(tokens: &[String], pos: &mut usize, defines: &[Define]) -> Option<u64> {
    let token = tokens.get(*pos)?;
    *pos += 1;
    if token == "(" {
        let value = sum(tokens, pos, defines)?;
        (tokens.get(*pos)? == ")").then(|| *pos += 1)?;
        return Some(value);
    }
    token
        .parse()
        .ok()
        .or_else(|| defines.iter().find(|d| d.name == *token).map(|d| d.value))
}

/// Every `*.cu` in `dir`, sorted by name, with its `extern "C" __global__` kernels and
/// its op-code enums.
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
        let at_file = |e: String| format!("{}: {e}", source.display());
        let kernels = parse_kernels(&text).map_err(at_file)?;
        let codes = parse_code_tables(&text).map_err(at_file)?;
        modules.push(Module {
            name,
            source,
            kernels,
            codes,
        });
    }
    let mut tables: Vec<&str> = modules
        .iter()
        .flat_map(|m| m.codes.iter().map(|t| t.name.as_str()))
        .collect();
    tables.sort_unstable();
    if let Some(twice) = tables.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "enum {} is declared in two files of {dir}/",
            twice[0]
        ));
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
        if code.contains("__shared__") {
            return Err(at_line(
                "declare shared memory with KILN_SHARED(T, name, dims) from common.cuh, \
                 so the emulated device poisons and checks it (in templates too)"
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

/// The source with every comment blanked out (newlines kept, so line numbers hold).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let (open, block) = match (rest.find("//"), rest.find("/*")) {
            (Some(l), Some(b)) if b < l => (b, true),
            (Some(l), _) => (l, false),
            (None, Some(b)) => (b, true),
            (None, None) => {
                out.push_str(rest);
                break;
            }
        };
        out.push_str(&rest[..open]);
        // A line comment ends before its newline (which stays), a block one after `*/`.
        let end = if block {
            rest[open + 2..]
                .find("*/")
                .map_or(rest.len(), |e| open + 4 + e)
        } else {
            rest[open..].find('\n').map_or(rest.len(), |e| open + e)
        };
        let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
        out.extend(rest[open..end].chars().map(blank));
        rest = &rest[end..];
    }
    out
}

/// Every `enum <Name>Code { ... }` in `text` (several lines, `= N` initialisers or
/// implicit increments), checked: literal values only, one `PREFIX_` for all
/// enumerators, no value twice.
fn parse_code_tables(text: &str) -> Result<Vec<CodeTable>, String> {
    let code = strip_comments(text);
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut tables: Vec<CodeTable> = Vec::new();
    let mut from = 0;
    while let Some(found) = code[from..].find("enum") {
        let at = from + found;
        from = at + 4;
        let before_ok = !code[..at].ends_with(is_ident);
        let after = &code[at + 4..];
        if !before_ok || !after.starts_with(char::is_whitespace) {
            continue; // part of a longer identifier
        }
        let lineno = code[..at].matches('\n').count() + 1;
        let mut rest = after.trim_start();
        for keyword in ["class ", "struct "] {
            rest = rest.strip_prefix(keyword).unwrap_or(rest).trim_start();
        }
        let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
        if !name.ends_with("Code") {
            continue;
        }
        let at_line = |msg: String| format!("line {lineno}: enum {name}: {msg}");
        let body = rest[name.len()..]
            .find('{')
            .filter(|&open| {
                // Only an underlying type (`: uint32_t`) may stand before the `{`.
                let head = rest[name.len()..name.len() + open].trim();
                head.is_empty() || head.starts_with(':')
            })
            .and_then(|open| {
                let body = &rest[name.len() + open + 1..];
                body.find('}').map(|close| &body[..close])
            })
            .ok_or_else(|| at_line("expected `{ ENUMERATORS }`".into()))?;
        let entries = parse_enumerators(body).map_err(at_line)?;
        if tables.iter().any(|t| t.name == name) {
            return Err(at_line("declared twice".into()));
        }
        tables.push(CodeTable { name, entries });
    }
    Ok(tables)
}

/// `U_NEG = 0, U_EXP, ...` → [("U_NEG", 0), ("U_EXP", 1), ...].
fn parse_enumerators(body: &str) -> Result<Vec<(String, u32)>, String> {
    let mut entries: Vec<(String, u32)> = Vec::new();
    let mut next: u64 = 0;
    let mut prefix: Option<&str> = None;
    for item in body.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (item, None),
        };
        let well_formed = name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && name
                .split_once('_')
                .is_some_and(|(p, op)| !p.is_empty() && !op.is_empty());
        if !well_formed {
            return Err(format!(
                "enumerator `{name}` is not PREFIX_OPNAME in upper case (the host finds it \
                 by the op's name)"
            ));
        }
        let this_prefix = name.split('_').next().unwrap_or_default();
        if *prefix.get_or_insert(this_prefix) != this_prefix {
            return Err(format!(
                "enumerator `{name}` does not share the prefix `{}_` of the others",
                prefix.unwrap_or_default()
            ));
        }
        if let Some(v) = value {
            next = parse_literal(v).ok_or(format!(
                "`{item}`: the registry reads only unsigned integer literals as values"
            ))?;
        }
        let value = u32::try_from(next).map_err(|_| format!("`{item}`: value out of range"))?;
        if entries.iter().any(|(n, _)| n == name) {
            return Err(format!("enumerator `{name}` declared twice"));
        }
        if let Some((other, _)) = entries.iter().find(|(_, v)| *v == value) {
            return Err(format!(
                "`{other}` and `{name}` both have the value {value}: each op needs a code \
                 of its own"
            ));
        }
        entries.push((name.to_string(), value));
        next += 1;
    }
    if entries.is_empty() {
        return Err("no enumerators".into());
    }
    Ok(entries)
}

/// `12`, `0x1f` (with an optional `u` suffix) as a number.
fn parse_literal(v: &str) -> Option<u64> {
    let v = v.trim_end_matches(['u', 'U']);
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The Rust source of the registry (ptx.rs adds the PTX). `modules` are the PTX modules
/// (`kernels/*.cu`, the first `ptx_modules`) followed by emulator-only ones; `emulated`
/// adds the table of host-compiled entry points (see emulator.rs).
pub fn generate(
    modules: &[Module],
    defines: &[Define],
    ptx_modules: usize,
    emulated: bool,
) -> String {
    let mut s = String::from("// @generated by build.rs from kernels/*.cu; do not edit.\n\n");
    s.push_str(
        "/// The integer `#define`s of kernels/*.cu and *.cuh: tile sizes and limits the host\n\
         /// shares with the kernels, declared once in the kernel source.\n\
         #[allow(dead_code)]\npub(crate) mod defines {\n",
    );
    for d in defines {
        let _ = writeln!(
            s,
            "    /// `#define {0} {1}` in `{2}`.\n    pub(crate) const {0}: usize = {1};",
            d.name,
            d.value,
            d.source.display()
        );
    }
    s.push_str("}\n\n");
    let names: Vec<String> = modules.iter().map(|m| format!("{:?}", m.name)).collect();
    let _ = writeln!(
        s,
        "/// Kernel modules, one per `kernels/*.cu` (then emulator-only ones), in\n\
         /// `KernelId::module` order.\n\
         pub(crate) const MODULE_NAMES: [&str; {}] = [{}];\n",
        modules.len(),
        names.join(", ")
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
    // The emulator's self-test kernels stay out of the lookups by dtype and op: those
    // are the same with and without the `cuda-emulator` feature.
    let kiln_modules = &modules[..ptx_modules];
    let kiln: Vec<&Kernel> = kiln_modules.iter().flat_map(|m| &m.kernels).collect();
    dtype_lookups(&mut s, &kiln);
    s.push_str("}\n");
    op_code_fn(&mut s, kiln_modules);
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

/// The dtype suffixes of per-dtype kernel names and the `DType` each stands for.
const DTYPES: [(&str, &str); 6] = [
    ("f32", "F32"),
    ("f64", "F64"),
    ("f16", "F16"),
    ("bf16", "BF16"),
    ("i64", "I64"),
    ("u8", "U8"),
];

/// The `DType` variant of a kernel name's dtype suffix (`bf16` → `BF16`).
fn dtype_of(suffix: &str) -> Option<&'static str> {
    DTYPES.iter().find(|(s, _)| *s == suffix).map(|(_, d)| *d)
}

/// `copy_f32_f16` → (`F32`, `F16`).
fn copy_dtypes(name: &str) -> Option<(&'static str, &'static str)> {
    let (src, dst) = name.strip_prefix("copy_")?.split_once('_')?;
    Some((dtype_of(src)?, dtype_of(dst)?))
}

/// `reduce_block_bf16` → (`reduce_block`, `BF16`); None for the copy kernels, which
/// `KernelId::copy` finds by both dtypes.
fn family_dtype(name: &str) -> Option<(&str, &'static str)> {
    if copy_dtypes(name).is_some() {
        return None;
    }
    let (family, suffix) = name.rsplit_once('_')?;
    Some((family, dtype_of(suffix)?))
}

/// `KernelId::for_dtype` and `KernelId::copy`: the kernel of a per-dtype family, so
/// host code names the family instead of keeping a table per dtype.
fn dtype_lookups(s: &mut String, kernels: &[&Kernel]) {
    s.push_str(
        "    /// The kernel of family `family` for `dtype` (`unary_f32` for (\"unary\", F32)),\n\
         \x20   /// or `Error::UnsupportedDType` when kernels/*.cu defines none.\n\
         \x20   pub(crate) fn for_dtype(family: &'static str, dtype: crate::DType) -> crate::Result<KernelId> {\n\
         \x20       match (family, dtype) {\n",
    );
    for k in kernels {
        if let Some((family, dtype)) = family_dtype(&k.name) {
            let _ = writeln!(
                s,
                "            ({family:?}, crate::DType::{dtype}) => Ok(KernelId::{}),",
                camel(&k.name)
            );
        }
    }
    s.push_str(
        "            _ => Err(crate::Error::UnsupportedDType { op: family, dtype }),\n\
         \x20       }\n    }\n\n\
         \x20   /// `copy_<src>_<dst>`: converts `src` elements to `dst`.\n\
         \x20   pub(crate) fn copy(src: crate::DType, dst: crate::DType) -> crate::Result<KernelId> {\n\
         \x20       match (src, dst) {\n",
    );
    let mut pairs = 0;
    for k in kernels {
        if let Some((src, dst)) = copy_dtypes(&k.name) {
            pairs += 1;
            let _ = writeln!(
                s,
                "            (crate::DType::{src}, crate::DType::{dst}) => Ok(KernelId::{}),",
                camel(&k.name)
            );
        }
    }
    // With every pair defined, a catch-all arm would be unreachable (a warning).
    if pairs < DTYPES.len() * DTYPES.len() {
        s.push_str(
            "            _ => Err(crate::Error::UnsupportedDType { op: \"copy\", dtype: dst }),\n",
        );
    }
    s.push_str("        }\n    }\n");
}

/// `op_code`: the value of each op-code enumerator, by table and op name, so host code
/// never numbers the ops itself.
fn op_code_fn(s: &mut String, modules: &[Module]) {
    s.push_str(
        "\n/// The value of the enumerator of `enum <table>` in kernels/*.cu whose name, after its\n\
         /// prefix (`U_`, `B_`, ...), is `op` in upper case: `op_code(\"UnaryCode\", \"add_scalar\")`\n\
         /// is `U_ADD_SCALAR`. None when there is no such table or enumerator.\n\
         pub(crate) fn op_code(table: &str, op: &str) -> Option<u32> {\n    match (table, op) {\n",
    );
    for table in modules.iter().flat_map(|m| &m.codes) {
        for (name, value) in &table.entries {
            let op = name
                .split_once('_')
                .map_or("", |(_, op)| op)
                .to_ascii_lowercase();
            let _ = writeln!(s, "        ({:?}, {op:?}) => Some({value}),", table.name);
        }
    }
    s.push_str("        _ => None,\n    }\n}\n");
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
