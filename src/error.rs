//! The one error type of kiln. Every fallible public function returns [`Result`].
//!
//! Variants name the problem and carry what a user needs to fix it: the operation,
//! the argument, the expected and the actual values.

use crate::device::ParseDeviceError;
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
    /// `backward` reached a part of the graph that an earlier `backward` released
    /// (PyTorch's "Trying to backward through the graph a second time").
    #[error("backward through the graph a second time: the saved values of `{op}` were released by an earlier backward; call backward_retain_graph() for every backward but the last")]
    GraphReleased {
        /// The recorded op whose gradient closure was released.
        op: &'static str,
    },
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
    /// The crate was built without CUDA kernels (no nvcc at build time, or a kernel
    /// failed to compile; the build printed a warning saying which).
    #[error("kiln was built without CUDA kernels: nvcc was not found at build time or a kernel failed to compile (see the build's warnings). Install the CUDA toolkit or run scripts/install-cuda-toolchain.sh, put nvcc on PATH (or set NVCC / CUDA_HOME), then rebuild; KILN_REQUIRE_KERNELS=1 makes a missing nvcc a build error")]
    KernelsNotBuilt,
    /// The CUDA driver library (`libcuda.so`) could not be loaded.
    #[error("CUDA device {ordinal} is not usable: the CUDA driver library (libcuda.so) was not found. Install the NVIDIA driver (and make libcuda.so.1 visible to the dynamic loader), or use Device::cuda_if_available to fall back to the CPU")]
    CudaDriverNotFound {
        /// The device ordinal asked for.
        ordinal: usize,
    },
    /// The driver is present but reports no CUDA device.
    #[error("CUDA device {ordinal} is not usable: the driver reports no CUDA device ({reason}). Check nvidia-smi and CUDA_VISIBLE_DEVICES")]
    NoCudaDevice {
        /// The device ordinal asked for.
        ordinal: usize,
        /// What the driver said.
        reason: String,
    },
    /// The device ordinal is not below the number of devices.
    #[error("CUDA device {ordinal} does not exist: there {} {count} device{} (ordinals 0..{count})", if *count == 1 { "is" } else { "are" }, if *count == 1 { "" } else { "s" })]
    CudaOrdinalOutOfRange {
        /// The device ordinal asked for.
        ordinal: usize,
        /// How many devices the driver reports.
        count: usize,
    },
    /// The device has no memory left for an allocation, even after kiln's cache was freed.
    #[error("CUDA out of memory on device {ordinal}: tried to allocate {} ({} free of {} total; {} allocated by tensors, {} reserved by kiln's cache). Free tensors or use smaller batches; kiln::cuda::memory_stats shows the details", mib(*requested), mib(*free), mib(*total), mib(*allocated), mib(*reserved))]
    CudaOutOfMemory {
        /// The device ordinal.
        ordinal: usize,
        /// Bytes requested.
        requested: usize,
        /// Bytes held by live tensors.
        allocated: usize,
        /// Bytes obtained from the driver by kiln's caching allocator.
        reserved: usize,
        /// Free device memory reported by the driver (0 when unknown).
        free: usize,
        /// Total device memory (0 when unknown).
        total: usize,
    },
    /// The host could not give a buffer kiln needed (or its size overflows `usize`).
    #[error("out of host memory: tried to allocate {} ({bytes} bytes). Use smaller tensors or batches", human_bytes(*bytes))]
    HostOutOfMemory {
        /// Bytes requested (`usize::MAX` when the size itself overflows).
        bytes: usize,
    },
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
    /// The CUDA kernels this build embeds have no case for an op the host asks for
    /// (kernels and Rust out of step): refused before launch, never computed as some
    /// other op.
    #[error("{op}: the CUDA kernels declare no case for it in `enum {table}` (kernels/*.cu); this build of kiln is inconsistent, please report it")]
    MissingKernelCase {
        /// The op the host asked for.
        op: &'static str,
        /// The kernel enum that lacks it.
        table: &'static str,
    },
    /// A checkpoint cannot be read or does not match the model.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The file involved.
        path: String,
        /// What is wrong: missing, unexpected or mis-shaped keys, or a corrupt file.
        msg: String,
    },
    /// A rendezvous or collective of a distributed run could not finish: a rank or the
    /// store did not answer in time, or the ranks disagree.
    #[error("distributed rank {rank}: {msg}")]
    Distributed {
        /// The rank that reports it.
        rank: usize,
        /// What failed, naming the address and the ranks waited for.
        msg: String,
    },
}

/// A byte count in MiB for messages.
fn mib(bytes: usize) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A byte count in the largest binary unit that keeps it at least 1, for messages.
fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
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

impl From<ParseDeviceError> for Error {
    fn from(e: ParseDeviceError) -> Self {
        Error::arg("device", e.to_string())
    }
}
