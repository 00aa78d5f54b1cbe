//! The one error type of kiln. Every fallible public function returns [`Result`].
//!
//! Variants name the problem and carry what a user needs to fix it: the operation,
//! the argument, the expected and the actual values.

use crate::{DType, Device};

/// Everything that can go wrong in kiln.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two shapes that must agree (or broadcast) do not.
    #[error("{op}: shape mismatch: {lhs:?} vs {rhs:?}")]
    ShapeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's shape.
        lhs: Vec<usize>,
        /// The second operand's shape.
        rhs: Vec<usize>,
    },
    /// A tensor's shape is not what the operation needs.
    #[error("{op}: {msg}")]
    Shape {
        /// The operation that failed.
        op: &'static str,
        /// What was expected and what was given.
        msg: String,
    },
    /// The number of elements given does not match the shape.
    #[error("{op}: shape {shape:?} holds {expected} elements but {got} were given")]
    ElementCount {
        /// The operation that failed.
        op: &'static str,
        /// The requested shape.
        shape: Vec<usize>,
        /// Elements the shape holds.
        expected: usize,
        /// Elements given.
        got: usize,
    },
    /// A dimension index is outside the tensor's rank.
    #[error("{op}: dimension {dim} is out of range for a tensor of rank {rank}")]
    DimOutOfRange {
        /// The operation that failed.
        op: &'static str,
        /// The dimension asked for.
        dim: usize,
        /// The tensor's rank.
        rank: usize,
    },
    /// Two dtypes that must agree do not.
    #[error("{op}: dtype mismatch: expected {expected:?}, got {got:?}")]
    DTypeMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The dtype the operation needs.
        expected: DType,
        /// The dtype given.
        got: DType,
    },
    /// The operation is not defined for this dtype.
    #[error("{op}: not supported for dtype {dtype:?}")]
    UnsupportedDType {
        /// The operation that failed.
        op: &'static str,
        /// The dtype given.
        dtype: DType,
    },
    /// Operands live on different devices.
    #[error("{op}: device mismatch: {lhs:?} vs {rhs:?}; move one with .to_device()")]
    DeviceMismatch {
        /// The operation that failed.
        op: &'static str,
        /// The first operand's device.
        lhs: Device,
        /// The second operand's device.
        rhs: Device,
    },
    /// An argument has an invalid value.
    #[error("invalid argument `{name}`: {msg}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// What is wrong and what is expected.
        msg: String,
    },
    /// A scalar was required (`item`, `backward`).
    #[error("{op}: expected a tensor with one element, got shape {shape:?}")]
    NotScalar {
        /// The operation that failed.
        op: &'static str,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// `backward` was called on a tensor that no gradient flows to.
    #[error("backward: the tensor does not require grad and has no grad_fn; call .requires_grad() on a leaf it depends on")]
    NoGraph,
    /// Autograd's gradient disagrees with finite differences (see `autograd::gradcheck`).
    #[error("gradcheck failed: {msg}")]
    Gradcheck {
        /// Which input and element, and both values.
        msg: String,
    },
    /// Gradients reached parameters that the optimizer does not hold.
    #[error("optimizer step: the last backward reached {} parameter(s) this optimizer does not hold (shapes {shapes:?}). \
The usual cause is a layer built inside `forward`: it gets fresh random weights on every call and never learns. \
Build layers once, in the model's constructor. If this is intended (e.g. a GAN's generator step that also reaches the \
discriminator), use `.allow_unregistered(true)`", shapes.len())]
    UnregisteredParameters {
        /// The shape of each such parameter.
        shapes: Vec<Vec<usize>>,
    },
    /// Parameters held by the optimizer got no gradient since the last `zero_grad`.
    #[error("optimizer step: {} parameter(s) got no gradient since the last zero_grad: {}. \
Check that forward uses them (or that backward was called); to allow it, use `.allow_unused(true)`", names.len(), names.join(", "))]
    UnusedParameters {
        /// The names of the parameters without a gradient.
        names: Vec<String>,
    },
    /// The CUDA device cannot be used.
    #[error("CUDA device {ordinal} is not usable: {reason}")]
    CudaUnavailable {
        /// The device ordinal asked for.
        ordinal: usize,
        /// Why, and how to fix it.
        reason: String,
    },
    /// The crate was built without CUDA kernels (no nvcc at build time).
    #[error("kiln was built without CUDA kernels: nvcc was not found at build time. Install the CUDA toolkit or run scripts/install-cuda-toolchain.sh, put nvcc on PATH (or set NVCC / CUDA_HOME), then rebuild")]
    KernelsNotBuilt,
    /// An error reported by the CUDA driver.
    #[error("CUDA driver error in {op}: {msg}")]
    CudaDriver {
        /// What kiln was doing.
        op: &'static str,
        /// The driver's message.
        msg: String,
    },
    /// An I/O error, with the path involved.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint cannot be read or does not match the model.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The file involved.
        path: String,
        /// What is wrong: missing, unexpected or mis-shaped keys, or a corrupt file.
        msg: String,
    },
}

/// `std::result::Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn arg(name: &'static str, msg: impl Into<String>) -> Self {
        Error::InvalidArgument {
            name,
            msg: msg.into(),
        }
    }

    /// Shorthand for [`Error::Shape`].
    pub(crate) fn shape(op: &'static str, msg: impl Into<String>) -> Self {
        Error::Shape {
            op,
            msg: msg.into(),
        }
    }
}
