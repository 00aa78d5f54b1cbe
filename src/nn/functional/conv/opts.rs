//! The options of the convolutions: sizes along one, two or three axes, padding, and
//! the `Conv*Opts` / `ConvTranspose*Opts` builders (PyTorch's arguments and defaults),
//! each of which describes itself as a [`Spec`] in three spatial dimensions.

use crate::DType;

/// A size along height and width. Converts from a `usize` (both the same) or an
/// `(h, w)` pair, so options accept either: `.stride(2)`, `.stride((2, 1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Size2d {
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl std::fmt::Display for Size2d {
    /// `(h, w)`, as PyTorch prints sizes in its messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.h, self.w)
    }
}

impl From<usize> for Size2d {
    fn from(v: usize) -> Self {
        Size2d { h: v, w: v }
    }
}

impl From<(usize, usize)> for Size2d {
    fn from((h, w): (usize, usize)) -> Self {
        Size2d { h, w }
    }
}

/// A size along depth, height and width. Converts from a `usize` (all three the same)
/// or a `(d, h, w)` triple: `.stride(2)`, `.stride((1, 2, 2))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Size3d {
    /// Along the depth (frames, slices).
    pub d: usize,
    /// Along the height (rows).
    pub h: usize,
    /// Along the width (columns).
    pub w: usize,
}

impl std::fmt::Display for Size3d {
    /// `(d, h, w)`, as PyTorch prints sizes in its messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {}, {})", self.d, self.h, self.w)
    }
}

impl From<usize> for Size3d {
    fn from(v: usize) -> Self {
        Size3d { d: v, h: v, w: v }
    }
}

impl From<(usize, usize, usize)> for Size3d {
    fn from((d, h, w): (usize, usize, usize)) -> Self {
        Size3d { d, h, w }
    }
}

/// A size along the spatial axes of an op, as (depth, height, width) with the axes
/// the op lacks set to `fill` (1 for strides and dilations, 0 for paddings).
pub(crate) trait Spatial: Copy {
    /// The size as three axes, missing leading ones `fill`.
    fn axes(self, fill: usize) -> [usize; 3];
}

impl Spatial for usize {
    fn axes(self, fill: usize) -> [usize; 3] {
        [fill, fill, self]
    }
}

impl Spatial for Size2d {
    fn axes(self, fill: usize) -> [usize; 3] {
        [fill, self.h, self.w]
    }
}

impl Spatial for Size3d {
    fn axes(self, _: usize) -> [usize; 3] {
        [self.d, self.h, self.w]
    }
}

/// Padding of a 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding {
    /// Zero rows and columns added on each side: (height, width). A number or a pair
    /// converts to this.
    Explicit(usize, usize),
    /// Output as large as the input (stride 1 only, like PyTorch's `padding="same"`);
    /// when the total padding `dilation·(kernel-1)` is odd, the extra row/column goes
    /// at the bottom/right, as PyTorch does.
    Same,
    /// No padding (PyTorch's `padding="valid"`).
    Valid,
}

impl From<(usize, usize)> for Padding {
    fn from((h, w): (usize, usize)) -> Self {
        Padding::Explicit(h, w)
    }
}

/// Padding of a 1-D convolution: like [`Padding`], along the length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding1d {
    /// Zeros added on each side. A number converts to this.
    Explicit(usize),
    /// Output as long as the input (stride 1 only, `padding="same"`; an odd total
    /// padding puts the extra element at the end).
    Same,
    /// No padding (`padding="valid"`).
    Valid,
}

/// Padding of a 3-D convolution: like [`Padding`], along (depth, height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Padding3d {
    /// Zeros added on each side: (depth, height, width). A number or a triple converts
    /// to this.
    Explicit(usize, usize, usize),
    /// Output as large as the input (stride 1 only, `padding="same"`; an odd total
    /// padding puts the extra slice/row/column at the back/bottom/right).
    Same,
    /// No padding (`padding="valid"`).
    Valid,
}

impl From<(usize, usize, usize)> for Padding3d {
    fn from((d, h, w): (usize, usize, usize)) -> Self {
        Padding3d::Explicit(d, h, w)
    }
}

/// A padding as (depth, height, width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PadSpec {
    /// Zeros added before and after along each axis.
    Explicit([usize; 3]),
    /// PyTorch's `padding="same"`.
    Same,
    /// No padding.
    Valid,
}

/// Defines a padding type's `Default` (no padding), its conversion from a number (the
/// same on every axis) and to a [`PadSpec`].
macro_rules! padding_impls {
    ($($ty:ident: |$v:ident| $explicit:expr, ($($f:ident),+) => $spec:expr;)*) => {$(
        impl Default for $ty {
            fn default() -> Self {
                $ty::from(0)
            }
        }

        impl From<usize> for $ty {
            fn from($v: usize) -> Self {
                $explicit
            }
        }

        impl $ty {
            /// The padding as (depth, height, width).
            pub(crate) fn spec(self) -> PadSpec {
                match self {
                    $ty::Explicit($($f),+) => PadSpec::Explicit($spec),
                    $ty::Same => PadSpec::Same,
                    $ty::Valid => PadSpec::Valid,
                }
            }
        }
    )*};
}

padding_impls! {
    Padding1d: |v| Padding1d::Explicit(v), (w) => [0, 0, w];
    Padding: |v| Padding::Explicit(v, v), (h, w) => [0, h, w];
    Padding3d: |v| Padding3d::Explicit(v, v, v), (d, h, w) => [d, h, w];
}

/// How a convolution fills its padding, like `nn.Conv2d`'s `padding_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaddingMode {
    /// Zeros (`'zeros'`, the default): the implicit padding of the kernels.
    #[default]
    Zeros,
    /// The input mirrored at its edges (`'reflect'`); each pad must be smaller than
    /// the side it pads.
    Reflect,
    /// The edge values repeated (`'replicate'`).
    Replicate,
    /// The input wrapped around (`'circular'`); each pad at most the side it pads.
    Circular,
}

impl PaddingMode {
    /// PyTorch's name of the mode (`"zeros"`, `"reflect"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            PaddingMode::Zeros => "zeros",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Circular => "circular",
        }
    }
}

/// A convolution's options in three spatial dimensions (depth, height, width): the
/// axes an op lacks have stride and dilation 1 and no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    /// The op's spatial dimensions: 1, 2 or 3.
    pub dims: usize,
    /// Stride per axis.
    pub stride: [usize; 3],
    /// Padding.
    pub padding: PadSpec,
    /// Dilation per axis.
    pub dilation: [usize; 3],
    /// Channel groups.
    pub groups: usize,
    /// How the padding is filled (zeros for transposed convolutions).
    pub padding_mode: PaddingMode,
    /// Transposed convolutions only: rows added at the end of the output.
    pub output_padding: [usize; 3],
    /// Whether the op is a transposed convolution.
    pub transposed: bool,
}

/// Defines the options of a convolution in `$dims` dimensions (sizes `$size`, padding
/// `$padding`) with PyTorch's defaults, their builder methods and their [`Spec`].
macro_rules! conv_opts {
    ($(#[$doc:meta])* $name:ident, $dims:literal, $size:ty, $arg:ty, $padding:ty, $module:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// Step between output positions.
            pub stride: $size,
            /// Padding of the input.
            pub padding: $padding,
            /// Spacing between kernel taps.
            pub dilation: $size,
            /// Channel groups: input and output channels split into this many
            /// independent convolutions (`groups == in_channels` is depthwise).
            pub groups: usize,
            /// How the padding is filled ([`PaddingMode::Zeros`] by default).
            pub padding_mode: PaddingMode,
            #[doc = concat!("Whether `nn::", $module, "::new` gives the layer a bias (`true` by")]
            /// default); the functional op takes its bias as an argument and ignores this.
            pub bias: bool,
            #[doc = concat!("The dtype of `nn::", $module, "`'s parameters (F32 by default); the")]
            /// functional op computes in its operands' dtype and ignores this.
            pub dtype: DType,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    stride: <$size>::from(1usize),
                    padding: <$padding>::default(),
                    dilation: <$size>::from(1usize),
                    groups: 1,
                    padding_mode: PaddingMode::Zeros,
                    bias: true,
                    dtype: DType::F32,
                }
            }
        }

        // A 1-d op's sizes are `usize` already: their `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            /// The defaults: stride 1, padding 0, dilation 1, groups 1, zero padding
            /// mode, with a bias, F32.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the stride (a number, or one per axis).
            pub fn stride(mut self, stride: $arg) -> Self {
                self.stride = stride.into();
                self
            }

            /// Sets the padding: a number, one per axis, `Same` or `Valid`.
            pub fn padding(mut self, padding: impl Into<$padding>) -> Self {
                self.padding = padding.into();
                self
            }

            /// Sets the dilation (a number, or one per axis).
            pub fn dilation(mut self, dilation: $arg) -> Self {
                self.dilation = dilation.into();
                self
            }

            /// Sets the number of channel groups.
            pub fn groups(mut self, groups: usize) -> Self {
                self.groups = groups;
                self
            }

            /// Sets how the padding is filled (`padding_mode=`).
            pub fn padding_mode(mut self, mode: PaddingMode) -> Self {
                self.padding_mode = mode;
                self
            }

            /// Whether the layer makes a bias (`bias=False` is `.bias(false)`).
            pub fn bias(mut self, bias: bool) -> Self {
                self.bias = bias;
                self
            }

            /// The dtype of the layer's parameters (a float dtype).
            pub fn dtype(mut self, dtype: DType) -> Self {
                self.dtype = dtype;
                self
            }

            /// The options in three spatial dimensions.
            pub(crate) fn spec(&self) -> Spec {
                Spec {
                    dims: $dims,
                    stride: self.stride.axes(1),
                    padding: self.padding.spec(),
                    dilation: self.dilation.axes(1),
                    groups: self.groups,
                    padding_mode: self.padding_mode,
                    output_padding: [0; 3],
                    transposed: false,
                }
            }
        }
    };
}

conv_opts! {
    /// Options of a 1-D convolution, built like
    /// `Conv1dOpts::new().stride(2).padding(1).dilation(2).groups(2)`. The defaults are
    /// PyTorch's: stride 1, no padding, dilation 1, one group, zero padding mode; for
    /// `nn::Conv1d` also a bias and F32 parameters.
    Conv1dOpts, 1, usize, usize, Padding1d, "Conv1d"
}

conv_opts! {
    /// Options of a 2-D convolution, built like
    /// `Conv2dOpts::new().stride(2).padding(1).dilation((1, 2)).groups(2)`.
    /// The defaults are PyTorch's: stride 1, no padding, dilation 1, one group, zero
    /// padding mode; for `nn::Conv2d` also a bias and F32 parameters.
    Conv2dOpts, 2, Size2d, impl Into<Size2d>, Padding, "Conv2d"
}

conv_opts! {
    /// Options of a 3-D convolution, built like
    /// `Conv3dOpts::new().stride((1, 2, 2)).padding(1)`; sizes are a number or a
    /// `(d, h, w)` triple. The defaults are PyTorch's: stride 1, no padding, dilation
    /// 1, one group, zero padding mode; for `nn::Conv3d` also a bias and F32
    /// parameters.
    Conv3dOpts, 3, Size3d, impl Into<Size3d>, Padding3d, "Conv3d"
}

/// Defines the options of a transposed convolution in `$dims` dimensions (sizes
/// `$size`) with PyTorch's defaults, their builder methods and their [`Spec`].
macro_rules! conv_transpose_opts {
    ($(#[$doc:meta])* $name:ident, $dims:literal, $size:ty, $arg:ty, $module:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name {
            /// Step between input positions in the output (the upsampling factor).
            pub stride: $size,
            /// Rows removed from each side of the full output (`dilation·(kernel-1) -
            /// padding` zeros pad the input of the equivalent convolution).
            pub padding: $size,
            /// Rows added at the end of the output, to choose among the sizes that a
            /// stride above 1 maps to one input size; below the stride or the dilation.
            pub output_padding: $size,
            /// Channel groups: input and output channels split into this many
            /// independent convolutions.
            pub groups: usize,
            /// Spacing between kernel taps.
            pub dilation: $size,
            #[doc = concat!("Whether `nn::", $module, "::new` gives the layer a bias (`true` by")]
            /// default); the functional op takes its bias as an argument and ignores this.
            pub bias: bool,
            #[doc = concat!("The dtype of `nn::", $module, "`'s parameters (F32 by default); the")]
            /// functional op computes in its operands' dtype and ignores this.
            pub dtype: DType,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    stride: <$size>::from(1usize),
                    padding: <$size>::from(0usize),
                    output_padding: <$size>::from(0usize),
                    groups: 1,
                    dilation: <$size>::from(1usize),
                    bias: true,
                    dtype: DType::F32,
                }
            }
        }

        // A 1-d op's sizes are `usize` already: their `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            /// The defaults: stride 1, padding 0, output padding 0, groups 1, dilation
            /// 1, with a bias, F32.
            pub fn new() -> Self {
                Self::default()
            }

            /// Sets the stride (a number, or one per axis).
            pub fn stride(mut self, stride: $arg) -> Self {
                self.stride = stride.into();
                self
            }

            /// Sets the padding (a number, or one per axis).
            pub fn padding(mut self, padding: $arg) -> Self {
                self.padding = padding.into();
                self
            }

            /// Sets the output padding (a number, or one per axis).
            pub fn output_padding(mut self, output_padding: $arg) -> Self {
                self.output_padding = output_padding.into();
                self
            }

            /// Sets the number of channel groups.
            pub fn groups(mut self, groups: usize) -> Self {
                self.groups = groups;
                self
            }

            /// Sets the dilation (a number, or one per axis).
            pub fn dilation(mut self, dilation: $arg) -> Self {
                self.dilation = dilation.into();
                self
            }

            /// Whether the layer makes a bias (`bias=False` is `.bias(false)`).
            pub fn bias(mut self, bias: bool) -> Self {
                self.bias = bias;
                self
            }

            /// The dtype of the layer's parameters (a float dtype).
            pub fn dtype(mut self, dtype: DType) -> Self {
                self.dtype = dtype;
                self
            }

            /// The options in three spatial dimensions.
            pub(crate) fn spec(&self) -> Spec {
                Spec {
                    dims: $dims,
                    stride: self.stride.axes(1),
                    padding: PadSpec::Explicit(self.padding.axes(0)),
                    dilation: self.dilation.axes(1),
                    groups: self.groups,
                    padding_mode: PaddingMode::Zeros,
                    output_padding: self.output_padding.axes(0),
                    transposed: true,
                }
            }
        }
    };
}

conv_transpose_opts! {
    /// Options of a 1-D transposed convolution, built like
    /// `ConvTranspose1dOpts::new().stride(2).output_padding(1)`. The defaults are
    /// PyTorch's: stride 1, no padding or output padding, one group, dilation 1; for
    /// `nn::ConvTranspose1d` also a bias and F32 parameters. Only zero padding exists
    /// (PyTorch refuses the other modes for transposed convolutions).
    ConvTranspose1dOpts, 1, usize, usize, "ConvTranspose1d"
}

conv_transpose_opts! {
    /// Options of a 2-D transposed convolution, built like
    /// `ConvTranspose2dOpts::new().stride(2).padding(1).output_padding(1)`; sizes are a
    /// number or an `(h, w)` pair. The defaults are PyTorch's: stride 1, no padding or
    /// output padding, one group, dilation 1; for `nn::ConvTranspose2d` also a bias and
    /// F32 parameters. Only zero padding exists (PyTorch refuses the other modes for
    /// transposed convolutions).
    ConvTranspose2dOpts, 2, Size2d, impl Into<Size2d>, "ConvTranspose2d"
}
