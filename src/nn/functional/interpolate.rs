//! `F::interpolate`: nearest and (bi/tri)linear resampling of (N, C, L), (N, C, H, W)
//! and (N, C, D, H, W) inputs, by output size or scale factor, with PyTorch's
//! source-index formulas. Kernels: `backend/cpu/upsample.rs` (the reference) and
//! `kernels/upsample.cu`.

use crate::autograd::record;
use crate::backend::upsample::{UpsampleAxis, UpsampleMode, UpsampleParams};
use crate::shape::checked_product;
use crate::{Error, Result, Tensor};

/// How [`interpolate`] computes an output element, PyTorch's `mode` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InterpMode {
    /// The nearest input element by PyTorch's `nearest` rule (`floor(o · scale)`).
    #[default]
    Nearest,
    /// Linear interpolation along the length of a (N, C, L) input.
    Linear,
    /// Bilinear interpolation of a (N, C, H, W) input.
    Bilinear,
    /// Trilinear interpolation of a (N, C, D, H, W) input.
    Trilinear,
}

impl InterpMode {
    /// PyTorch's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            InterpMode::Nearest => "nearest",
            InterpMode::Linear => "linear",
            InterpMode::Bilinear => "bilinear",
            InterpMode::Trilinear => "trilinear",
        }
    }

    /// The spatial rank a linear mode needs (`None`: nearest takes 1 to 3).
    fn rank(self) -> Option<usize> {
        match self {
            InterpMode::Nearest => None,
            InterpMode::Linear => Some(1),
            InterpMode::Bilinear => Some(2),
            InterpMode::Trilinear => Some(3),
        }
    }
}

/// The output's size: given, or the input's scaled.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Size(Vec<usize>),
    Scales(Vec<f64>),
}

/// The options of [`interpolate`] (PyTorch's `size` or `scale_factor`, `mode`,
/// `align_corners`): `Interp::size(&[64, 64]).mode(InterpMode::Bilinear)`.
///
/// A size or scale list of one entry applies to every spatial axis (PyTorch's single
/// number); otherwise it has one entry per spatial axis. A scale factor gives the
/// output size `floor(input · scale)` and is itself used in the source-index formula
/// (PyTorch's `recompute_scale_factor=None`): coordinates map with `1 / scale`, not
/// `input / output`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interp {
    target: Target,
    mode: InterpMode,
    align_corners: Option<bool>,
}

impl Interp {
    /// Resample to `size` (one entry per spatial axis, or one for all).
    pub fn size(size: &[usize]) -> Interp {
        Interp::with(Target::Size(size.to_vec()))
    }

    /// Resample every spatial axis by `scale`.
    pub fn scale(scale: f64) -> Interp {
        Interp::with(Target::Scales(vec![scale]))
    }

    /// Resample each spatial axis by its scale factor.
    pub fn scales(scales: &[f64]) -> Interp {
        Interp::with(Target::Scales(scales.to_vec()))
    }

    fn with(target: Target) -> Interp {
        Interp {
            target,
            mode: InterpMode::Nearest,
            align_corners: None,
        }
    }

    /// The interpolation mode (default [`InterpMode::Nearest`]).
    pub fn mode(mut self, mode: InterpMode) -> Interp {
        self.mode = mode;
        self
    }

    /// PyTorch's `align_corners` (linear modes only; default false): the corner
    /// samples of input and output coincide and the scale is `(in − 1) / (out − 1)`.
    pub fn align_corners(mut self, align_corners: bool) -> Interp {
        self.align_corners = Some(align_corners);
        self
    }

    /// The PyTorch arguments, as `nn.Upsample` prints them.
    pub(crate) fn repr(&self) -> String {
        let target = match &self.target {
            Target::Size(s) if s.len() == 1 => format!("size={}, ", s[0]),
            Target::Size(s) => format!("size={}, ", tuple(s)),
            Target::Scales(s) if s.len() == 1 => format!("scale_factor={:?}, ", s[0]),
            Target::Scales(s) => format!("scale_factor={}, ", tuple(s)),
        };
        format!("{target}mode='{}'", self.mode.name())
    }
}

/// `(a, b)` as Python prints a tuple.
fn tuple<T: std::fmt::Debug>(v: &[T]) -> String {
    let items: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
    format!("({})", items.join(", "))
}

/// Resamples `input` (N, C, L), (N, C, H, W) or (N, C, D, H, W) like
/// `F.interpolate(input, size | scale_factor, mode, align_corners)`, with PyTorch's
/// source-index formulas; differentiable (the backward is a deterministic gather on
/// CUDA). Floats only.
///
/// Errors name `input` (rank, dtype, an empty spatial axis), `size` (wrong length,
/// zero), `scale_factor` (wrong length, not a finite number > 0, or an empty output),
/// `mode` (a linear mode for another rank) and `align_corners` (with nearest).
pub fn interpolate(input: &Tensor, opts: Interp) -> Result<Tensor> {
    let _op = crate::profiler::op("interpolate", &[input]);
    input.check_float("interpolate")?;
    let p = params(input, &opts)?;
    let spatial = &input.shape()[2..];
    let out_shape: Vec<usize> = input.shape()[..2]
        .iter()
        .copied()
        .chain(p.axes[3 - spatial.len()..].iter().map(|a| a.output))
        .collect();
    let in_shape = input.shape().to_vec();
    let xc = input.detach().contiguous()?;
    let out = Tensor::from_storage(xc.storage().upsample(xc.layout(), &p)?, &out_shape);
    Ok(record(out, "interpolate", &[input], move |_, g| {
        let g = g.contiguous()?;
        let gx = g.storage().upsample_backward(g.layout(), &p)?;
        Ok(vec![Some(Tensor::from_storage(gx, &in_shape))])
    }))
}

/// Validates the options against `x` like PyTorch and describes the resampling.
fn params(x: &Tensor, opts: &Interp) -> Result<UpsampleParams> {
    let shape = x.shape();
    let spatial = match shape.len() {
        3..=5 => &shape[2..],
        _ => {
            return Err(Error::arg(
                "input",
                format!(
                    "interpolate expects (N, C, L), (N, C, H, W) or (N, C, D, H, W), got shape \
                     {shape:?}"
                ),
            ))
        }
    };
    let rank = spatial.len();
    if let Some(needed) = opts.mode.rank().filter(|&r| r != rank) {
        return Err(Error::arg(
            "mode",
            format!(
                "'{}' needs {} spatial dimension(s), got shape {shape:?} ({rank})",
                opts.mode.name(),
                needed
            ),
        ));
    }
    if opts.mode == InterpMode::Nearest && opts.align_corners.is_some() {
        return Err(Error::arg(
            "align_corners",
            "can only be set with the linear modes (linear, bilinear, trilinear)",
        ));
    }
    if spatial.contains(&0) {
        return Err(Error::arg(
            "input",
            format!("needs non-empty spatial dimensions, got shape {shape:?}"),
        ));
    }
    let per_axis = |len: usize, name: &'static str| -> Result<()> {
        if len == 1 || len == rank {
            Ok(())
        } else {
            Err(Error::arg(
                name,
                format!("needs 1 or {rank} entries for a {rank}-d input, got {len}"),
            ))
        }
    };
    let mut axes = [UpsampleAxis::unit(); 3];
    for (i, &input) in spatial.iter().enumerate() {
        axes[3 - rank + i] = match &opts.target {
            Target::Size(s) => {
                per_axis(s.len(), "size")?;
                let output = s[if s.len() == 1 { 0 } else { i }];
                if output == 0 {
                    return Err(Error::arg("size", format!("must be at least 1, got {s:?}")));
                }
                UpsampleAxis {
                    input,
                    output,
                    scale: None,
                }
            }
            Target::Scales(s) => {
                per_axis(s.len(), "scale_factor")?;
                let scale = s[if s.len() == 1 { 0 } else { i }];
                scaled_axis(input, scale)?
            }
        };
    }
    let out: Vec<usize> = axes.iter().map(|a| a.output).collect();
    checked_product(
        "interpolate",
        "the output's element count",
        &[&shape[..2], &out].concat(),
    )?;
    Ok(UpsampleParams {
        planes: shape[0] * shape[1],
        axes,
        mode: match opts.mode {
            InterpMode::Nearest => UpsampleMode::Nearest,
            _ => UpsampleMode::Linear,
        },
        align_corners: opts.align_corners.unwrap_or(false),
    })
}

/// An axis resampled by `scale`: output `floor(input · scale)` (in f64, as PyTorch's
/// Python code computes it), which must be at least 1.
fn scaled_axis(input: usize, scale: f64) -> Result<UpsampleAxis> {
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::arg(
            "scale_factor",
            format!("must be a finite number > 0, got {scale}"),
        ));
    }
    let output = (input as f64 * scale).floor();
    if !(1.0..=isize::MAX as f64).contains(&output) {
        return Err(Error::arg(
            "scale_factor",
            format!("{scale} turns size {input} into {output}: the output must be at least 1"),
        ));
    }
    Ok(UpsampleAxis {
        input,
        output: output as usize,
        scale: Some(scale),
    })
}
