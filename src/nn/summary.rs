//! `nn::summary`: a module tree printed as PyTorch's `print(model)` prints it, plus
//! the parameter counts.

use super::Module;

/// The module tree as PyTorch's `repr(model)` writes it, then a line with the
/// parameter counts:
///
/// ```text
/// Net(
///   (conv): Conv2d(1, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
///   (fc): Linear(in_features=512, out_features=10, bias=True)
/// )
/// Total params: 5,210 (trainable 5,210)
/// ```
///
/// Each module prints its [`Module::type_name`] and, in parentheses, its
/// [`Module::extra_repr`] (the built-in layers print PyTorch's arguments) and its
/// children, one per line, as `(name): ...`, indented two spaces per level. A
/// `Vec` field `heads` lists its elements as `(heads.0)`, `(heads.1)`, … (kiln has
/// no `ModuleList` wrapper). Parameters reachable twice are counted once;
/// trainable ones are those that require grad.
///
/// ```
/// use kiln::nn;
/// # fn main() -> kiln::Result<()> {
/// let net = nn::Sequential::new().add(nn::Linear::new(4, 2, &kiln::Device::Cpu)?).add(nn::ReLU);
/// assert_eq!(
///     nn::summary(&net),
///     "Sequential(\n  (0): Linear(in_features=4, out_features=2, bias=True)\n  (1): ReLU()\n)\n\
///      Total params: 10 (trainable 10)"
/// );
/// # Ok(())
/// # }
/// ```
pub fn summary<M: Module + ?Sized>(module: &M) -> String {
    let params = module.parameters();
    let total: usize = params.iter().map(|p| p.numel()).sum();
    let trainable: usize = params
        .iter()
        .filter(|p| p.requires_grad_flag())
        .map(|p| p.numel())
        .sum();
    format!(
        "{}\nTotal params: {} (trainable {})",
        repr(module),
        thousands(total),
        thousands(trainable)
    )
}

/// The module tree alone, exactly PyTorch's `Module.__repr__`.
pub fn repr<M: Module + ?Sized>(module: &M) -> String {
    let extra = module.extra_repr();
    let extra_lines: Vec<&str> = if extra.is_empty() {
        Vec::new()
    } else {
        extra.split('\n').collect()
    };
    let children: Vec<String> = module
        .named_children()
        .into_iter()
        // PyTorch's _addindent: every line after the first indented by two spaces.
        .map(|(name, child)| format!("({name}): {}", repr(child).replace('\n', "\n  ")))
        .collect();
    let mut out = module.type_name() + "(";
    if extra_lines.len() == 1 && children.is_empty() {
        out += extra_lines[0];
    } else if !extra_lines.is_empty() || !children.is_empty() {
        let lines: Vec<&str> = extra_lines
            .iter()
            .copied()
            .chain(children.iter().map(String::as_str))
            .collect();
        out += "\n  ";
        out += &lines.join("\n  ");
        out += "\n";
    }
    out + ")"
}

/// `5210` → `5,210`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float as Python's `repr` writes it: the shortest round-trip digits, with
/// `.0` on whole numbers and scientific notation below 1e-4 or from 1e16
/// (`1e-05`, `0.1`, `1.0`).
pub(crate) fn py_float(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    format!("{v:?}")
}

/// A shape as Python prints a tuple: `(64,)`, `(4, 8)`.
pub(crate) fn py_shape(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Python's `True`/`False`.
pub(crate) fn py_bool(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_and_counts_print_like_python() {
        for (v, want) in [
            (0.25, "0.25"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e-5, "1e-05"),
            (1e-3, "0.001"),
            (1.5e-7, "1.5e-07"),
            (0.0, "0.0"),
            (2e16, "2e+16"),
        ] {
            assert_eq!(py_float(v), want);
        }
        assert_eq!(thousands(5210), "5,210");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
