//! Backends: where tensor memory lives and the primitive ops that run on it.
//!
//! [`Storage`] is the memory of one tensor (or of several views): host memory
//! ([`CpuStorage`], the reference) or device memory ([`CudaStorage`]). Every higher
//! op — autograd included — is written with the primitives declared here, so a
//! backend that implements them runs all of kiln.
//!
//! Each op family (the `pub(crate) mod` lines below) declares its primitives once, as
//! a trait in its own file, with its `Storage` methods, and declares its two
//! implementations there: `cpu/<family>.rs` and `cuda/ops/<family>.rs`. The compiler
//! keeps the two backends' signatures identical. `Storage`'s methods are one-line
//! [`dispatch!`] calls: the operands are checked to share one device once, then the
//! family's trait method runs on that backend (docs/ARCHITECTURE.md, "The backend
//! seam").

pub(crate) mod cpu;
pub(crate) mod cuda;

pub(crate) mod amp;
pub(crate) mod attention;
pub(crate) mod conv;
pub(crate) mod dropout;
pub(crate) mod elementwise;
pub(crate) mod fill;
pub(crate) mod image;
pub(crate) mod index;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod optim;
pub(crate) mod pad;
pub(crate) mod pool;
pub(crate) mod reduce;
pub(crate) mod rnn;
pub(crate) mod scan;
pub(crate) mod softmax;
pub(crate) mod sort;
pub(crate) mod upsample;

pub(crate) use cpu::CpuStorage;
pub(crate) use cuda::CudaStorage;

use crate::shape::Layout;
use crate::{DType, Device, Error, Result};

/// The memory primitives every backend's storage implements. The op families' traits
/// (`backend/<family>.rs`) are not listed here: each family's `Storage` methods call
/// its trait on both backends through [`dispatch!`], so a backend that lacks a family
/// does not compile, and a new family registers nowhere but its `mod` line above.
pub(crate) trait BackendStorage: Sized {
    /// The element type.
    fn dtype(&self) -> DType;

    /// The device the memory is on.
    fn device(&self) -> Device;

    /// A contiguous copy of the elements of `layout`, converted to `dtype`.
    fn copy_as(&self, layout: &Layout, dtype: DType) -> Result<Self>;

    /// Writes the elements of `src` (at `src_layout`) into `self` at `dst_layout`
    /// (one shape), converting the dtype.
    fn copy_from(&mut self, dst_layout: &Layout, src: &Self, src_layout: &Layout) -> Result<()>;

    /// The elements of `layout` on the host, contiguous.
    fn to_cpu(&self, layout: &Layout) -> Result<CpuStorage>;
}

/// The memory of a tensor on one device.
#[derive(Debug)]
pub(crate) enum Storage {
    /// Host memory.
    Cpu(CpuStorage),
    /// Memory of a CUDA device.
    Cuda(CudaStorage),
}

/// The operands of one primitive, unwrapped to the backend they all live on.
pub(crate) enum OnBackend<C, G> {
    /// Every operand is host memory.
    Cpu(C),
    /// Every operand is on one CUDA device.
    Cuda(G),
}

/// One storage operand of a primitive: `&Storage`, `&mut Storage`, or
/// `Option<&Storage>` for an optional one (a bias), which matches any device when
/// absent.
pub(crate) trait Operand {
    /// The operand on the CPU backend.
    type Cpu;
    /// The operand on the CUDA backend.
    type Cuda;
    /// The device, or `None` for an absent optional operand.
    fn device(&self) -> Option<Device>;
    /// The CPU operand; `None` when it lives elsewhere.
    fn cpu(self) -> Option<Self::Cpu>;
    /// The CUDA operand; `None` when it lives elsewhere.
    fn cuda(self) -> Option<Self::Cuda>;
}

/// `Operand` for a shared or a mutable reference to a [`Storage`].
macro_rules! storage_operand {
    ($storage:ty, $cpu:ty, $cuda:ty) => {
        impl<'a> Operand for $storage {
            type Cpu = $cpu;
            type Cuda = $cuda;
            fn device(&self) -> Option<Device> {
                Some(Storage::device(self))
            }
            fn cpu(self) -> Option<Self::Cpu> {
                match self {
                    Storage::Cpu(s) => Some(s),
                    Storage::Cuda(_) => None,
                }
            }
            fn cuda(self) -> Option<Self::Cuda> {
                match self {
                    Storage::Cuda(s) => Some(s),
                    Storage::Cpu(_) => None,
                }
            }
        }
    };
}
storage_operand!(&'a Storage, &'a CpuStorage, &'a CudaStorage);
storage_operand!(&'a mut Storage, &'a mut CpuStorage, &'a mut CudaStorage);

impl<T: Operand> Operand for Option<T> {
    type Cpu = Option<T::Cpu>;
    type Cuda = Option<T::Cuda>;
    fn device(&self) -> Option<Device> {
        self.as_ref().and_then(Operand::device)
    }
    fn cpu(self) -> Option<Self::Cpu> {
        match self {
            None => Some(None),
            Some(s) => s.cpu().map(Some),
        }
    }
    fn cuda(self) -> Option<Self::Cuda> {
        match self {
            None => Some(None),
            Some(s) => s.cuda().map(Some),
        }
    }
}

/// A tuple of [`Operand`]s that must share one device.
pub(crate) trait Operands {
    /// The operands on the CPU backend.
    type Cpu;
    /// The operands on the CUDA backend.
    type Cuda;
    /// The operands on their common backend, or `Error::DeviceMismatch` naming `op`
    /// and the first two devices that differ.
    fn on_one_backend(self, op: &'static str) -> Result<OnBackend<Self::Cpu, Self::Cuda>>;
}

/// The device all of `devices` (absent optional operands aside) share.
fn common_device(op: &'static str, devices: &[Option<Device>]) -> Result<Device> {
    let mut present = devices.iter().flatten();
    let first = *present.next().unwrap_or(&Device::Cpu);
    match present.find(|d| **d != first) {
        Some(&other) => Err(Error::DeviceMismatch {
            op,
            lhs: first,
            rhs: other,
        }),
        None => Ok(first),
    }
}

/// The error for an operand that is not where [`common_device`] found them all; it
/// cannot happen, but a wrong answer here must not become a panic.
fn lost_operand(op: &'static str) -> Error {
    Error::Shape {
        op,
        msg: "internal error: an operand changed device during dispatch".into(),
    }
}

macro_rules! operands_tuple {
    ($($t:ident $i:tt),+) => {
        impl<$($t: Operand),+> Operands for ($($t,)+) {
            type Cpu = ($($t::Cpu,)+);
            type Cuda = ($($t::Cuda,)+);
            fn on_one_backend(self, op: &'static str) -> Result<OnBackend<Self::Cpu, Self::Cuda>> {
                Ok(match common_device(op, &[$(self.$i.device()),+])? {
                    Device::Cpu => OnBackend::Cpu(($(self.$i.cpu().ok_or_else(|| lost_operand(op))?,)+)),
                    Device::Cuda(_) => OnBackend::Cuda(($(self.$i.cuda().ok_or_else(|| lost_operand(op))?,)+)),
                })
            }
        }
    };
}
operands_tuple!(A 0);
operands_tuple!(A 0, B 1);
operands_tuple!(A 0, B 1, C 2);
operands_tuple!(A 0, B 1, C 2, D 3);
operands_tuple!(A 0, B 1, C 2, D 3, E 4);
operands_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
operands_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);

/// A primitive's result on one backend, wrapped back into [`Storage`].
pub(crate) trait IntoStorage {
    /// The backend-independent result.
    type Out;
    /// Wraps the result.
    fn into_storage(self) -> Self::Out;
}

impl IntoStorage for CpuStorage {
    type Out = Storage;
    fn into_storage(self) -> Storage {
        Storage::Cpu(self)
    }
}

impl IntoStorage for CudaStorage {
    type Out = Storage;
    fn into_storage(self) -> Storage {
        Storage::Cuda(self)
    }
}

impl<A: IntoStorage, B: IntoStorage> IntoStorage for (A, B) {
    type Out = (A::Out, B::Out);
    fn into_storage(self) -> Self::Out {
        (self.0.into_storage(), self.1.into_storage())
    }
}

impl<A: IntoStorage, B: IntoStorage, C: IntoStorage> IntoStorage for (A, B, C) {
    type Out = (A::Out, B::Out, C::Out);
    fn into_storage(self) -> Self::Out {
        (
            self.0.into_storage(),
            self.1.into_storage(),
            self.2.into_storage(),
        )
    }
}

impl<A: IntoStorage, B: IntoStorage, C: IntoStorage, D: IntoStorage> IntoStorage for (A, B, C, D) {
    type Out = (A::Out, B::Out, C::Out, D::Out);
    fn into_storage(self) -> Self::Out {
        (
            self.0.into_storage(),
            self.1.into_storage(),
            self.2.into_storage(),
            self.3.into_storage(),
        )
    }
}

impl<A: IntoStorage> IntoStorage for Option<A> {
    type Out = Option<A::Out>;
    fn into_storage(self) -> Self::Out {
        self.map(IntoStorage::into_storage)
    }
}

impl IntoStorage for () {
    type Out = ();
    fn into_storage(self) {}
}

/// A plain value (a backend's limit, a count) passes through unchanged.
impl IntoStorage for usize {
    type Out = usize;
    fn into_storage(self) -> usize {
        self
    }
}

/// `dispatch!(op_name, (operands..), |(bindings..)| call)`: checks that the storage
/// operands share one device (else `Err(DeviceMismatch)` naming `op_name`), binds
/// each to its backend's storage and evaluates `call` — a trait method, so both
/// expansions have one signature — wrapping the result back into [`Storage`].
macro_rules! dispatch {
    ($op:expr, ($($operand:expr),+ $(,)?), |($($bind:pat),+ $(,)?)| $call:expr) => {
        match $crate::backend::Operands::on_one_backend(($($operand,)+), $op)? {
            $crate::backend::OnBackend::Cpu(($($bind,)+)) => {
                Ok($crate::backend::IntoStorage::into_storage($call?))
            }
            $crate::backend::OnBackend::Cuda(($($bind,)+)) => {
                Ok($crate::backend::IntoStorage::into_storage($call?))
            }
        }
    };
}
pub(crate) use dispatch;

impl Storage {
    /// Number of elements stored.
    pub(crate) fn len(&self) -> usize {
        match self {
            Storage::Cpu(s) => s.len(),
            Storage::Cuda(s) => s.len(),
        }
    }

    /// The device this memory is on.
    pub(crate) fn device(&self) -> Device {
        match self {
            Storage::Cpu(s) => s.device(),
            Storage::Cuda(s) => s.device(),
        }
    }

    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        match self {
            Storage::Cpu(s) => BackendStorage::dtype(s),
            Storage::Cuda(s) => BackendStorage::dtype(s),
        }
    }

    /// A contiguous copy of the elements of `layout`, converted to `dtype`.
    pub(crate) fn copy_as(&self, layout: &Layout, dtype: DType) -> Result<Storage> {
        dispatch!("copy_as", (self), |(s)| s.copy_as(layout, dtype))
    }

    /// Writes the elements of `src` (at `src_layout`) into `self` at `dst_layout`.
    pub(crate) fn copy_from(
        &mut self,
        dst_layout: &Layout,
        src: &Storage,
        src_layout: &Layout,
    ) -> Result<()> {
        dispatch!("copy_from", (self, src), |(d, s)| d
            .copy_from(dst_layout, s, src_layout))
    }

    /// The elements of `layout` on the host, as a CPU storage.
    pub(crate) fn to_cpu(&self, layout: &Layout) -> Result<CpuStorage> {
        match self {
            Storage::Cpu(s) => s.to_cpu(layout),
            Storage::Cuda(s) => s.to_cpu(layout),
        }
    }

    /// A copy of host storage on `device`.
    pub(crate) fn from_cpu(host: CpuStorage, device: &Device) -> Result<Storage> {
        match device {
            Device::Cpu => Ok(Storage::Cpu(host)),
            Device::Cuda(n) => Ok(Storage::Cuda(CudaStorage::from_cpu(
                &cuda::device(*n)?,
                &host,
            )?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Mixed devices are refused by name, an absent optional operand matches any
    /// device, and present operands are unwrapped in order.
    #[test]
    fn operands_share_one_device_or_the_op_is_named() {
        let a = Storage::Cpu(CpuStorage::F32(vec![1.0]));
        let b = Storage::Cpu(CpuStorage::F32(vec![2.0]));
        let none: Option<&Storage> = None;
        match (&a, &b, none).on_one_backend("op").unwrap() {
            OnBackend::Cpu((x, y, z)) => {
                assert_eq!((x.len(), y.len(), z.is_none()), (1, 1, true))
            }
            OnBackend::Cuda(_) => panic!("cpu operands went to cuda"),
        }
        let devices = [Some(Device::Cpu), None, Some(Device::Cuda(1))];
        match common_device("conv2d", &devices) {
            Err(Error::DeviceMismatch { op, lhs, rhs }) => {
                assert_eq!((op, lhs, rhs), ("conv2d", Device::Cpu, Device::Cuda(1)))
            }
            other => panic!("expected a device mismatch, got {other:?}"),
        }
        let cudas = [Some(Device::Cuda(0)), Some(Device::Cuda(1))];
        assert!(common_device("add", &cudas).is_err());
    }
}
