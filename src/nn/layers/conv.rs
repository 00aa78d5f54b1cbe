//! The convolution layers, each owning its weight and bias: `nn::Conv1d`, `Conv2d`,
//! `Conv3d` and the transposed `ConvTranspose1d`, `ConvTranspose2d`.

use crate::nn::functional::{
    self as F, tuple, Conv1dOpts, Conv2dOpts, Conv3dOpts, ConvTranspose1dOpts, ConvTranspose2dOpts,
    PaddingMode, Size2d, Size3d, Spatial, Spec,
};
use crate::nn::{self, init, Forward, Mode, Parameter};
use crate::{Device, Error, Result, Tensor};

/// The weight and bias of a layer with `spec`'s options, initialised like PyTorch's
/// `_ConvNd.reset_parameters`: the weight is (out, in/groups, k..) for a convolution
/// and (in, out/groups, k..) for a transposed one; the bias has `out` elements.
fn parameters(
    in_channels: usize,
    out_channels: usize,
    kernel: [usize; 3],
    spec: &Spec,
    (bias, dtype): (bool, crate::DType),
    device: &Device,
) -> Result<(Parameter, Option<Parameter>)> {
    init::check_param_dtype(dtype)?;
    let groups = spec.groups;
    if groups == 0 {
        return Err(Error::arg("groups", "must be at least 1"));
    }
    for (name, channels) in [("in_channels", in_channels), ("out_channels", out_channels)] {
        if channels == 0 || channels % groups != 0 {
            return Err(Error::arg(
                name,
                format!("{channels} must be a positive multiple of groups ({groups})"),
            ));
        }
    }
    let kernel = &kernel[3 - spec.dims..];
    if kernel.contains(&0) {
        return Err(Error::arg(
            "kernel_size",
            "must be at least 1 in each dimension",
        ));
    }
    let (first, second) = if spec.transposed {
        (in_channels, out_channels / groups)
    } else {
        (out_channels, in_channels / groups)
    };
    let shape: Vec<usize> = [first, second].iter().chain(kernel).copied().collect();
    init::weight_and_bias_of_len(&shape, bias.then_some(out_channels), dtype, device)
}

/// PyTorch's `_ConvNd.extra_repr` of a layer with `spec`'s options and `weight`: the
/// defaults of padding, dilation, output padding, groups, bias and padding mode are
/// left out.
fn extra_repr(weight: &[usize], spec: &Spec, has_bias: bool) -> String {
    let [a, b, kernel @ ..] = weight else {
        return String::new();
    };
    let (c_in, c_out) = if spec.transposed {
        (*a, b * spec.groups)
    } else {
        (b * spec.groups, *a)
    };
    let axes = |v: [usize; 3]| tuple(&v[3 - spec.dims..]);
    let mut s = format!(
        "{c_in}, {c_out}, kernel_size={}, stride={}",
        tuple(kernel),
        axes(spec.stride)
    );
    match spec.padding {
        F::PadSpec::Explicit([0, 0, 0]) => {}
        F::PadSpec::Explicit(p) => s += &format!(", padding={}", axes(p)),
        F::PadSpec::Same => s += ", padding=same",
        F::PadSpec::Valid => s += ", padding=valid",
    }
    if spec.dilation != [1; 3] {
        s += &format!(", dilation={}", axes(spec.dilation));
    }
    if spec.output_padding != [0; 3] {
        s += &format!(", output_padding={}", axes(spec.output_padding));
    }
    if spec.groups != 1 {
        s += &format!(", groups={}", spec.groups);
    }
    if !has_bias {
        s += ", bias=False";
    }
    if spec.padding_mode != PaddingMode::Zeros {
        s += &format!(", padding_mode={}", spec.padding_mode.name());
    }
    s
}

/// Defines a convolution layer `$name` with options `$opts`, a kernel size of type
/// `$kernel`, and `forward` = `$f` with the layer's options.
macro_rules! conv_layer {
    ($(#[$doc:meta])* $name:ident, $opts:ident, $kernel:ty, $karg:ty, $f:path, $weight:literal) => {
        $(#[$doc])*
        #[derive(Debug, nn::Module)]
        #[module(extra_repr)]
        pub struct $name {
            #[doc = concat!("The kernels, ", $weight, ".")]
            pub weight: Parameter,
            /// One bias per output channel, when the layer has one.
            pub bias: Option<Parameter>,
            #[module(skip)]
            opts: $opts,
            mode: Mode,
        }

        // A 1-d layer's kernel size is a `usize` already: its `.into()` converts nothing.
        #[allow(clippy::useless_conversion)]
        impl $name {
            #[doc = concat!("`nn.", stringify!($name), "(in_channels, out_channels, kernel, ...)`: with a")]
            /// bias unless `opts.bias(false)`, parameters of `opts.dtype` (a float dtype;
            /// F32 by default). Errors name `in_channels`, `out_channels` (not positive
            /// multiples of `groups`), `groups`, `kernel_size` or `dtype`.
            pub fn new(
                in_channels: usize,
                out_channels: usize,
                kernel: $karg,
                opts: $opts,
                device: &Device,
            ) -> Result<$name> {
                let kernel: $kernel = kernel.into();
                let kernel = kernel.axes(1);
                let (bias, dtype) = (opts.bias, opts.dtype);
                let (weight, bias) =
                    parameters(in_channels, out_channels, kernel, &opts.spec(), (bias, dtype), device)?;
                Ok($name {
                    weight,
                    bias,
                    opts,
                    mode: Mode::default(),
                })
            }

            /// The same layer without a bias (`bias=False`), whatever `opts.bias` says.
            pub fn no_bias(
                in_channels: usize,
                out_channels: usize,
                kernel: $karg,
                opts: $opts,
                device: &Device,
            ) -> Result<$name> {
                $name::new(in_channels, out_channels, kernel, opts.bias(false), device)
            }

            /// The layer's options (`bias` and `dtype` as the layer was built).
            pub fn opts(&self) -> $opts {
                self.opts
            }

            /// PyTorch's `extra_repr`.
            fn extra_repr(&self) -> String {
                extra_repr(self.weight.shape(), &self.opts.spec(), self.bias.is_some())
            }
        }

        impl Forward for $name {
            fn forward(&self, x: &Tensor) -> Result<Tensor> {
                $f(x, &self.weight, self.bias.as_deref(), self.opts)
            }
        }
    };
}

conv_layer! {
    /// `nn.Conv1d`: weight (out, in/groups, k) and optional bias (out), initialised like
    /// PyTorch; `forward` is [`F::conv1d`] on (N, C, L) or (C, L) with the layer's
    /// options (stride, padding, dilation, groups, `padding_mode`).
    ///
    /// ```
    /// use kiln::nn::{self, Conv1dOpts};
    /// use kiln::Device;
    /// # fn main() -> kiln::Result<()> {
    /// let conv = nn::Conv1d::new(80, 256, 3, Conv1dOpts::new().padding(1).stride(2), &Device::Cpu)?;
    /// assert_eq!(nn::repr(&conv), "Conv1d(80, 256, kernel_size=(3,), stride=(2,), padding=(1,))");
    /// # Ok(())
    /// # }
    /// ```
    Conv1d, Conv1dOpts, usize, usize, F::conv1d, "(out_channels, in_channels / groups, k)"
}

conv_layer! {
    /// `nn.Conv2d`: weight (out, in/groups, kh, kw) and optional bias (out), initialised
    /// like PyTorch; `forward` is [`F::conv2d`] with the layer's options (stride,
    /// padding, dilation, groups, `padding_mode`). `opts.bias(false)` leaves the bias
    /// out and `opts.dtype(..)` sets the parameters' dtype (F32 by default).
    ///
    /// ```
    /// use kiln::nn::{self, Conv2dOpts, PaddingMode};
    /// use kiln::{DType, Device};
    /// # fn main() -> kiln::Result<()> {
    /// let opts = Conv2dOpts::new().padding(1).padding_mode(PaddingMode::Reflect).bias(false);
    /// let conv = nn::Conv2d::new(3, 8, 3, opts.dtype(DType::F64), &Device::Cpu)?;
    /// assert!(conv.bias.is_none() && conv.weight.dtype() == DType::F64);
    /// assert_eq!(
    ///     nn::repr(&conv),
    ///     "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False, padding_mode=reflect)"
    /// );
    /// # Ok(())
    /// # }
    /// ```
    Conv2d, Conv2dOpts, Size2d, impl Into<Size2d>, F::conv2d, "(out_channels, in_channels / groups, kh, kw)"
}

conv_layer! {
    /// `nn.Conv3d`: weight (out, in/groups, kd, kh, kw) and optional bias (out),
    /// initialised like PyTorch; `forward` is [`F::conv3d`] on (N, C, D, H, W) or
    /// (C, D, H, W) with the layer's options.
    ///
    /// ```
    /// use kiln::nn::{self, Conv3dOpts};
    /// use kiln::Device;
    /// # fn main() -> kiln::Result<()> {
    /// let conv = nn::Conv3d::new(3, 64, 3, Conv3dOpts::new().padding(1), &Device::Cpu)?;
    /// assert_eq!(conv.weight.shape(), &[64, 3, 3, 3, 3]);
    /// # Ok(())
    /// # }
    /// ```
    Conv3d, Conv3dOpts, Size3d, impl Into<Size3d>, F::conv3d, "(out_channels, in_channels / groups, kd, kh, kw)"
}

conv_layer! {
    /// `nn.ConvTranspose1d`: weight (in, out/groups, k) — PyTorch's layout — and optional
    /// bias (out), initialised like PyTorch; `forward` is [`F::conv_transpose1d`] with
    /// the layer's options (stride, padding, output_padding, groups, dilation).
    ///
    /// ```
    /// use kiln::nn::{self, ConvTranspose1dOpts};
    /// use kiln::Device;
    /// # fn main() -> kiln::Result<()> {
    /// let opts = ConvTranspose1dOpts::new().stride(2).output_padding(1);
    /// let up = nn::ConvTranspose1d::new(16, 8, 3, opts, &Device::Cpu)?;
    /// assert_eq!(up.weight.shape(), &[16, 8, 3]);
    /// assert_eq!(
    ///     nn::repr(&up),
    ///     "ConvTranspose1d(16, 8, kernel_size=(3,), stride=(2,), output_padding=(1,))"
    /// );
    /// # Ok(())
    /// # }
    /// ```
    ConvTranspose1d, ConvTranspose1dOpts, usize, usize, F::conv_transpose1d,
    "(in_channels, out_channels / groups, k)"
}

conv_layer! {
    /// `nn.ConvTranspose2d`: weight (in, out/groups, kh, kw) — PyTorch's layout — and
    /// optional bias (out), initialised like PyTorch; `forward` is
    /// [`F::conv_transpose2d`] with the layer's options (stride, padding,
    /// output_padding, groups, dilation).
    ///
    /// ```
    /// use kiln::nn::{self, ConvTranspose2dOpts};
    /// use kiln::Device;
    /// # fn main() -> kiln::Result<()> {
    /// let up = nn::ConvTranspose2d::new(64, 32, 2, ConvTranspose2dOpts::new().stride(2), &Device::Cpu)?;
    /// assert_eq!(up.weight.shape(), &[64, 32, 2, 2]);
    /// assert_eq!(nn::repr(&up), "ConvTranspose2d(64, 32, kernel_size=(2, 2), stride=(2, 2))");
    /// # Ok(())
    /// # }
    /// ```
    ConvTranspose2d, ConvTranspose2dOpts, Size2d, impl Into<Size2d>, F::conv_transpose2d,
    "(in_channels, out_channels / groups, kh, kw)"
}
