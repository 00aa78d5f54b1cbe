//! Mixed precision, like `torch.autocast` and `torch.amp.GradScaler`.
//!
//! While an [`autocast`] guard lives on a thread, the ops of that thread choose their
//! compute dtype by PyTorch's CUDA autocast lists (applied on every device, the CPU
//! included):
//!
//! * **lower precision** (the guard's BF16 or F16): [`Tensor::matmul`](crate::Tensor::matmul),
//!   [`F::linear`](crate::nn::functional::linear),
//!   [`F::conv2d`](crate::nn::functional::conv2d) — every floating-point input
//!   (input, weight, bias) is cast to the autocast dtype and so is the result;
//! * **f32**: [`F::softmax`](crate::nn::functional::softmax),
//!   [`F::log_softmax`](crate::nn::functional::log_softmax), the losses
//!   ([`F::cross_entropy`](crate::nn::functional::cross_entropy),
//!   [`F::cross_entropy_with`](crate::nn::functional::cross_entropy_with),
//!   [`F::nll_loss`](crate::nn::functional::nll_loss),
//!   [`F::mse_loss`](crate::nn::functional::mse_loss)), the reductions
//!   [`Tensor::sum`](crate::Tensor::sum), [`Tensor::sum_all`](crate::Tensor::sum_all), [`Tensor::mean`](crate::Tensor::mean), [`Tensor::mean_all`](crate::Tensor::mean_all),
//!   and [`Tensor::exp`](crate::Tensor::exp), [`Tensor::log`](crate::Tensor::log), [`Tensor::powf`](crate::Tensor::powf): F16/BF16 inputs are cast
//!   to f32, and the result is f32 (PyTorch's list has `sum` but not `mean`; kiln
//!   keeps every reduction in f32, as its API promises);
//! * **batch norm** ([`F::batch_norm`](crate::nn::functional::batch_norm)) is on
//!   neither list: on CUDA, PyTorch hands a low-precision input with f32 parameters
//!   to cuDNN, which computes in f32 and returns the input's dtype. kiln does the
//!   same: the input is cast to f32 (the dtype of the parameters and running
//!   statistics, which are used in place, never copied), and the result is cast back
//!   to the input's dtype;
//! * **promote**: the binary ops ([`Tensor::add`](crate::Tensor::add), `sub`, `mul`, `div`, `maximum`,
//!   `minimum`) run in the widest floating-point dtype of their inputs, so
//!   `bf16 + f32` is f32, as PyTorch's type promotion gives;
//! * every other op runs in its input's dtype.
//!
//! F64 tensors are never lowered (PyTorch's autocast leaves them alone), integer
//! tensors (class labels) are never cast, and a tensor that already has the target
//! dtype is used as it is, not copied. Casts are ordinary differentiable ops recorded
//! in the graph, so gradients reach f32 master weights in f32. Inside an op that
//! autocast has dispatched, autocast is off (the op's own building blocks are not
//! cast again), and `backward` always runs with autocast off: each gradient op runs
//! in the dtype its forward op ran in, as in PyTorch. With no guard alive the cost is
//! one thread-local read per op.

mod scaler;

pub use crate::tensor::autocast::{
    autocast, autocast_dtype, autocast_off, is_autocast_enabled, AutocastGuard,
};
pub use scaler::{GradScaler, GradScalerState};
