//! Folding a batch norm into the convolution before it, for inference
//! (`torch.nn.utils.fusion.fuse_conv_bn_eval`): one layer and one pass over memory
//! where there were two.

use crate::nn::{BatchNorm2d, Conv2d, Module};
use crate::{rng, Error, Result};

/// A new convolution that computes `bn(conv(x))` for `conv` followed by `bn`, both in
/// eval mode (PyTorch's `fuse_conv_bn_eval`): with `s = bn.weight / sqrt(running_var +
/// eps)`, the weight is `conv.weight · s` per output channel and the bias
/// `(conv.bias − running_mean) · s + bn.bias` (`conv.bias` taken as 0 when absent).
/// The result has `conv`'s options and dtype, a bias, is in eval mode, and draws no
/// random numbers; `conv` and `bn` are unchanged.
///
/// Err naming `conv`/`bn` when either is in training mode (batch norm then normalises
/// with each batch's statistics, which no fixed weights reproduce) or when `bn`'s
/// channels are not `conv`'s output channels.
///
/// ```
/// use kiln::prelude::*;
/// # fn main() -> kiln::Result<()> {
/// let dev = Device::Cpu;
/// let conv = nn::Conv2d::new(3, 8, 3, nn::Conv2dOpts::new().padding(1), &dev)?;
/// let bn = nn::BatchNorm2d::new(8, &dev)?;
/// conv.eval();
/// bn.eval();
/// let fused = nn::utils::fuse_conv_bn_eval(&conv, &bn)?;
/// let x = Tensor::randn(&[1, 3, 5, 5], DType::F32, &dev)?;
/// let two = bn.forward(&conv.forward(&x)?)?;
/// let one = fused.forward(&x)?;
/// assert!(one.sub(&two)?.abs()?.sum_all()?.item::<f32>()? < 1e-3);
/// # Ok(())
/// # }
/// ```
pub fn fuse_conv_bn_eval(conv: &Conv2d, bn: &BatchNorm2d) -> Result<Conv2d> {
    for (name, training) in [("conv", conv.is_training()), ("bn", bn.is_training())] {
        if training {
            return Err(Error::arg(
                name,
                "is in training mode: fusion is for inference, call eval() on both layers first",
            ));
        }
    }
    let w = conv.weight.tensor();
    let (out_channels, in_per_group) = (w.shape()[0], w.shape()[1]);
    if bn.weight.numel() != out_channels {
        return Err(Error::arg(
            "bn",
            format!(
                "normalises {} channels, the convolution has {out_channels} output channels",
                bn.weight.numel()
            ),
        ));
    }
    let _no_grad = crate::no_grad();
    // PyTorch's order of operations, so the fused values match its to the last bit.
    let rsqrt = bn.running_var.add_scalar(bn.eps())?.rsqrt()?;
    let scale = bn.weight.mul(&rsqrt)?.reshape(&[out_channels, 1, 1, 1])?;
    let weight = w.mul(&scale)?.to_dtype(w.dtype())?;
    let conv_bias = match &conv.bias {
        Some(b) => b.tensor().clone(),
        None => bn.running_mean.zeros_like()?,
    };
    let bias = conv_bias
        .sub(&bn.running_mean)?
        .mul(&rsqrt)?
        .mul(&bn.weight)?
        .add(&bn.bias)?
        .to_dtype(w.dtype())?;

    let opts = conv.opts().bias(true).dtype(w.dtype());
    let kernel = (w.shape()[2], w.shape()[3]);
    let in_channels = in_per_group * opts.groups;
    // `Conv2d::new` initialises its parameters at random; put the generator back so
    // that fusing leaves the random stream of the program as it was.
    let (seed, offset) = rng::state();
    let fused = Conv2d::new(in_channels, out_channels, kernel, opts, &w.device());
    rng::set_state(seed, offset);
    let fused = fused?;
    fused.weight.copy_(&weight)?;
    if let Some(b) = &fused.bias {
        b.copy_(&bias)?;
    }
    fused.eval();
    Ok(fused)
}
