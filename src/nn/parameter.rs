//! The state a module holds: learnable [`Parameter`]s, non-learnable [`Buffer`]s
//! and the train/eval [`Mode`] flag.

use crate::{Error, Result, Tensor};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

/// A learnable tensor of a module: a leaf that requires grad, marked as a parameter
/// ([`Tensor::is_parameter`]) so optimizers can tell module weights from other leaves.
///
/// A `Parameter` dereferences to [`Tensor`], so `&self.weight` passes wherever a
/// `&Tensor` is expected and every tensor method works on it. Cloning is cheap and
/// shares the data and the gradient (both handles are the same tensor), which is how
/// `Module::parameters` hands parameters to an optimizer; a `#[derive(Clone)]` on a
/// module therefore gives a second module that *shares* its weights.
///
/// Each `Parameter` value also carries a slot for the mode of the module that holds
/// it, so a module whose only fields are parameters (the functional style) still
/// follows `train()`/`eval()`; a clone gets its own slot (see `Module::is_training`).
#[derive(Clone)]
pub struct Parameter(Tensor, Mode);

impl Parameter {
    /// Makes `tensor`'s data a parameter on the tensor's device. The parameter shares
    /// the storage, is a leaf (any graph history is dropped, like `nn.Parameter(t)`)
    /// and requires grad. Err for a non-float dtype (only floats have gradients) and
    /// for a broadcast view (`broadcast_as`, a stride-0 dimension of size > 1): its
    /// elements share memory, so an optimizer step or `load` could not write them.
    /// Call `.contiguous()` first to give such a tensor memory of its own.
    pub fn new(tensor: Tensor) -> Result<Parameter> {
        if !tensor.dtype().is_float() {
            return Err(Error::arg(
                "tensor",
                format!(
                    "a Parameter must have a float dtype to receive gradients, got {:?}",
                    tensor.dtype()
                ),
            ));
        }
        tensor.check_writable("nn::Parameter::new").map_err(|_| {
            Error::arg(
                "tensor",
                format!(
                    "a broadcast view of shape {:?} (strides {:?}) cannot be a Parameter: its \
                     elements share memory; call .contiguous() first",
                    tensor.shape(),
                    tensor.strides()
                ),
            )
        })?;
        Ok(Parameter(tensor.to_parameter_leaf(), Mode::default()))
    }

    /// The parameter's tensor (the same handle `Deref` gives).
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// The mode slot of the module holding this value (see `Module::is_training`).
    pub(crate) fn holder_mode(&self) -> &Mode {
        &self.1
    }
}

impl Deref for Parameter {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

impl AsRef<Tensor> for Parameter {
    fn as_ref(&self) -> &Tensor {
        &self.0
    }
}

impl std::fmt::Debug for Parameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Parameter({:?})", self.0)
    }
}

/// Non-learnable state of a module that belongs in its checkpoint, such as
/// BatchNorm's running statistics and `num_batches_tracked` (I64): PyTorch's
/// registered (persistent) buffers.
///
/// A buffer never requires grad. It dereferences to [`Tensor`]; ops that update it
/// write into its storage in place (for example with [`Tensor::copy_`]), which every
/// clone of the buffer sees.
///
/// Like [`Parameter`], each `Buffer` value carries a slot for its holder's mode.
#[derive(Clone)]
pub struct Buffer(Tensor, Mode);

impl Buffer {
    /// Makes `tensor`'s data a buffer (shares the storage, cut from the graph).
    pub fn new(tensor: Tensor) -> Buffer {
        Buffer(tensor.detach(), Mode::default())
    }

    /// The buffer's tensor (the same handle `Deref` gives).
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// The mode slot of the module holding this value (see `Module::is_training`).
    pub(crate) fn holder_mode(&self) -> &Mode {
        &self.1
    }
}

impl Deref for Buffer {
    type Target = Tensor;
    fn deref(&self) -> &Tensor {
        &self.0
    }
}

impl AsRef<Tensor> for Buffer {
    fn as_ref(&self) -> &Tensor {
        &self.0
    }
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Buffer({:?})", self.0)
    }
}

/// A module's train/eval flag: PyTorch's `module.training`.
///
/// `Mode::default()` is training mode. The flag is interior-mutable (an atomic), so
/// `Module::train` and `Module::eval` work through `&self` and modules stay `Send +
/// Sync`. Put a `Mode` field in a derived module to give it its own flag; a module
/// without one reports its children's (see `Module::is_training`).
#[derive(Debug)]
pub struct Mode(AtomicBool);

impl Mode {
    /// A flag in training mode when `training` is true, else in eval mode.
    pub fn new(training: bool) -> Mode {
        Mode(AtomicBool::new(training))
    }

    /// True in training mode.
    pub fn is_training(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Sets training mode (`true`) or eval mode (`false`).
    pub fn set_training(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed);
    }
}

impl Default for Mode {
    /// Training mode, like a freshly built PyTorch module.
    fn default() -> Mode {
        Mode::new(true)
    }
}

impl Clone for Mode {
    /// An independent flag with the same value.
    fn clone(&self) -> Mode {
        Mode::new(self.is_training())
    }
}
