//! The [`Tensor`]: a cheap-to-clone handle to a view of device memory, with an
//! optional place in the autograd graph.
//!
//! Cloning a tensor clones a pointer; views (`transpose`, `narrow`, `reshape` of a
//! contiguous tensor, ...) share the storage and differ only in their [`Layout`].

mod advanced_index;
mod arith;
pub(crate) mod autocast;
mod construct;
mod convert;
mod create;
mod einsum;
mod index;
mod locks;
mod math;
mod matmul;
mod operators;
mod optim;
mod rearrange;
mod reduce;
mod reductions;
mod relocate;
mod scan;
mod sort;
mod staging;
mod view;

use crate::autograd::Node;
use crate::backend::Storage;
use crate::shape::Layout;
use crate::{DType, Device, Error, Result};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) use create::checked_scalar;
pub use create::{rng_state, set_rng_state};
pub use einsum::einsum;
pub(crate) use locks::StorageLocks;
pub(crate) use relocate::relocate_in_place;
use relocate::StorageCell;
pub(crate) use staging::{PendingUpload, Uploader};

/// A unique id per tensor handle (views get their own), used by autograd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An n-dimensional array on a device. See the crate docs for an overview.
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

pub(crate) struct TensorInner {
    id: TensorId,
    /// The memory, shared by every view; it also records the memory's dtype and
    /// device, so that moving it in place (`Module::to_device`) is seen by them all.
    storage: Arc<StorageCell>,
    layout: Layout,
    /// Set on leaves created with [`Tensor::requires_grad`].
    requires_grad: bool,
    /// Set on the handle held by an `nn::Parameter`, so optimizers can tell the
    /// weights of a module from other leaves. Views and detached copies drop it.
    is_parameter: bool,
    /// The op that made this tensor, when it was recorded for autograd.
    grad_fn: Option<Arc<Node>>,
    /// Accumulated gradient of a leaf.
    grad: Mutex<Option<Tensor>>,
}

impl Tensor {
    /// A contiguous tensor owning `storage`.
    pub(crate) fn from_storage(storage: Storage, shape: &[usize]) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage: Arc::new(StorageCell::new(storage)),
            layout: Layout::contiguous(shape),
            requires_grad: false,
            is_parameter: false,
            grad_fn: None,
            grad: Mutex::new(None),
        }))
    }

    /// A new handle on the same storage with another layout and autograd state.
    fn rebuild(&self, layout: Layout, requires_grad: bool, grad_fn: Option<Arc<Node>>) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::new(),
            storage: self.0.storage.clone(),
            layout,
            requires_grad,
            is_parameter: false,
            grad_fn,
            grad: Mutex::new(None),
        }))
    }

    /// A new leaf handle on the same storage that requires grad and is marked as a
    /// module parameter (see [`Tensor::is_parameter`]). Used by `nn::Parameter`.
    pub(crate) fn to_parameter_leaf(&self) -> Tensor {
        let mut leaf = self.rebuild(self.0.layout.clone(), true, None);
        if let Some(inner) = Arc::get_mut(&mut leaf.0) {
            inner.is_parameter = true; // always taken: `leaf` is the only handle yet
        }
        leaf
    }

    /// A view of the same storage with `layout`, outside the graph.
    pub(crate) fn with_layout(&self, layout: Layout) -> Tensor {
        self.rebuild(layout, false, None)
    }

    /// This tensor as the output of `node` in the autograd graph.
    pub(crate) fn with_grad_fn(self, node: Node) -> Tensor {
        self.rebuild(self.0.layout.clone(), false, Some(Arc::new(node)))
    }

    /// The unique id of this handle.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The extent of each dimension.
    pub fn shape(&self) -> &[usize] {
        &self.0.layout.shape
    }

    /// The storage step of each dimension, in elements.
    pub fn strides(&self) -> &[usize] {
        &self.0.layout.strides
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.layout.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    /// The device the memory is on.
    pub fn device(&self) -> Device {
        self.0.storage.device()
    }

    /// The index of the first element in the storage (PyTorch's `storage_offset()`):
    /// non-zero for views such as `narrow`.
    pub fn storage_offset(&self) -> usize {
        self.0.layout.offset
    }

    /// Where the elements live in the storage.
    pub(crate) fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// True when the elements are row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Read access to the storage.
    pub(crate) fn storage(&self) -> parking_lot::RwLockReadGuard<'_, Storage> {
        self.0.storage.data.read()
    }

    /// Write access to the storage (in-place updates, under no-grad).
    pub(crate) fn storage_mut(&self) -> parking_lot::RwLockWriteGuard<'_, Storage> {
        self.0.storage.data.write()
    }

    /// True when two handles share one storage.
    pub(crate) fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// The same data as a leaf that accumulates gradients in [`Tensor::grad`].
    ///
    /// Only float tensors have gradients: on an integer tensor this returns the
    /// tensor unchanged (not requiring grad), so that a chained constructor never
    /// panics; use [`Tensor::try_requires_grad`] to get an `Err` instead, as
    /// PyTorch raises.
    pub fn requires_grad(self) -> Tensor {
        if !self.dtype().is_float() {
            return self;
        }
        self.rebuild(self.0.layout.clone(), true, None)
    }

    /// [`Tensor::requires_grad`], or [`Error::UnsupportedDType`] for an integer
    /// tensor (only floats have gradients).
    pub fn try_requires_grad(self) -> Result<Tensor> {
        self.check_float("requires_grad")?;
        Ok(self.requires_grad())
    }

    /// True when gradients flow to this tensor: a leaf created with
    /// [`Tensor::requires_grad`] or the result of a recorded op.
    pub fn requires_grad_flag(&self) -> bool {
        self.0.requires_grad || self.0.grad_fn.is_some()
    }

    /// True for the handle held by an `nn::Parameter` (and its clones, which share
    /// it). Views, `detach()` and the results of ops are not parameters.
    pub fn is_parameter(&self) -> bool {
        self.0.is_parameter
    }

    /// True for a tensor that was not produced by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.grad_fn.is_none()
    }

    /// The same data, cut from the graph (shares the storage).
    pub fn detach(&self) -> Tensor {
        self.rebuild(self.0.layout.clone(), false, None)
    }

    /// The gradient accumulated by `backward` on this leaf, if any.
    pub fn grad(&self) -> Option<Tensor> {
        self.0.grad.lock().clone()
    }

    /// Clears the accumulated gradient (PyTorch's `set_to_none`).
    pub fn zero_grad(&self) {
        *self.0.grad.lock() = None;
    }

    /// Replaces the accumulated gradient (used by autograd and optimizers).
    pub(crate) fn set_grad(&self, grad: Option<Tensor>) {
        *self.0.grad.lock() = grad;
    }

    pub(crate) fn grad_fn(&self) -> Option<&Arc<Node>> {
        self.0.grad_fn.as_ref()
    }

    /// Err unless `other` is on the same device.
    pub(crate) fn check_same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.device() == other.device() {
            Ok(())
        } else {
            Err(Error::DeviceMismatch {
                op,
                lhs: self.device(),
                rhs: other.device(),
            })
        }
    }

    /// Err unless `other` has the same dtype.
    pub(crate) fn check_same_dtype(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.dtype() == other.dtype() {
            Ok(())
        } else {
            Err(Error::DTypeMismatch {
                op,
                expected: self.dtype(),
                got: other.dtype(),
            })
        }
    }

    /// Err unless the dtype is a float dtype.
    pub(crate) fn check_float(&self, op: &'static str) -> Result<()> {
        if self.dtype().is_float() {
            Ok(())
        } else {
            Err(Error::UnsupportedDType {
                op,
                dtype: self.dtype(),
            })
        }
    }
}

/// The profiler notes each op's inputs' shapes, dtype and device.
impl crate::profiler::Input for Tensor {
    fn shape(&self) -> &[usize] {
        Tensor::shape(self)
    }

    fn dtype(&self) -> DType {
        Tensor::dtype(self)
    }

    fn device(&self) -> Device {
        Tensor::device(self)
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor[{:?}, {:?}, {}]",
            self.shape(),
            self.dtype(),
            self.device()
        )?;
        if self.numel() <= 16 {
            if let Ok(v) = self
                .detach()
                .to_dtype(DType::F64)
                .and_then(|t| t.to_vec::<f64>())
            {
                write!(f, " {v:?}")?;
            }
        }
        Ok(())
    }
}
