//! Parameter-free ops: `use kiln::nn::functional as F;`.
//!
//! Each op lives in one file with its validation, forward and backward; its CPU
//! kernel is in `backend/cpu/` and its CUDA kernel in `kernels/`.

mod activation;
mod attention;
mod conv;
mod distance;
mod dropout;
mod embedding;
mod group_norm;
mod interpolate;
mod linear;
mod loss;
mod loss_pointwise;
mod norm;
mod one_hot;
mod pad;
mod pixel_shuffle;
mod pool;
mod pool_core;
mod pool_opts;
mod rnn;
mod softmax;

pub use activation::*;
pub use attention::*;
pub use conv::*;
pub use distance::*;
pub use dropout::*;
pub use embedding::*;
pub use group_norm::*;
pub use interpolate::*;
pub use linear::*;
pub use loss::*;
pub use loss_pointwise::*;
pub use norm::*;
pub use one_hot::*;
pub use pad::*;
pub use pixel_shuffle::*;
pub use pool::*;
pub use pool_opts::*;
pub use rnn::*;
pub use softmax::*;
