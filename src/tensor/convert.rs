//! Moving data: to the host, between dtypes, between devices, in place.

use super::{StorageLocks, Tensor};
use crate::autograd::record;
use crate::backend::Storage;
use crate::dtype::WithDType;
use crate::shape::Layout;
use crate::{DType, Device, Error, Result};

impl Tensor {
    /// The elements in row-major order, copied to the host. `T` must match the dtype.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                expected: self.dtype(),
                got: T::DTYPE,
            });
        }
        let host = self.storage().to_cpu(self.layout())?;
        Ok(host.as_slice::<T>().expect("dtype checked above").to_vec())
    }

    /// The value of a one-element tensor. `T` must match the dtype.
    pub fn item<T: WithDType>(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::NotScalar {
                op: "item",
                shape: self.shape().to_vec(),
            });
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// A copy converted to `dtype` (this tensor itself when it already has it).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        let _op = crate::profiler::op("to_dtype", &[self]);
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let source = self.dtype();
        let out = Tensor::from_storage(self.storage().copy_as(self.layout(), dtype)?, self.shape());
        if !dtype.is_float() {
            return Ok(out); // integer results carry no gradient
        }
        Ok(record(out, "to_dtype", &[self], move |_, g| {
            Ok(vec![Some(g.to_dtype(source)?)])
        }))
    }

    /// A copy on `device` (this tensor itself when it is already there).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        let _op = crate::profiler::op("to_device", &[self]);
        if *device == self.device() {
            return Ok(self.clone());
        }
        let host = self.storage().to_cpu(self.layout())?;
        let source = self.device();
        let out = Tensor::from_storage(Storage::from_cpu(host, device)?, self.shape());
        Ok(record(out, "to_device", &[self], move |_, g| {
            Ok(vec![Some(g.to_device(&source)?)])
        }))
    }

    /// Overwrites this tensor's elements with `src`'s (PyTorch's `copy_`): same shape,
    /// dtype converted. Every view of the storage sees the change. Not recorded by
    /// autograd: meant for parameter updates and loading weights.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "copy_",
                lhs: self.shape().to_vec(),
                rhs: src.shape().to_vec(),
            });
        }
        self.check_same_device("copy_", src)?;
        self.check_writable("copy_")?;
        self.copy_region_from(self.layout(), src)
    }

    /// Overwrites every element with `value` (PyTorch's `fill_`), converted to this
    /// tensor's dtype by PyTorch's scalar rules (see [`Tensor::full`]): a value the
    /// dtype cannot hold is an `Err` naming `value`, and nothing changes. Not recorded
    /// by autograd, like [`Tensor::copy_`].
    pub fn fill_(&self, value: f64) -> Result<()> {
        let fill = Tensor::full(&[], value, self.dtype(), &self.device())?;
        self.copy_(&fill.broadcast_as(self.shape())?)
    }

    /// Writes `src` into the elements of `region` (a layout of this tensor's storage
    /// with `src`'s shape). A source sharing this storage is copied first, and the
    /// two locks are taken in the global order ([`StorageLocks`]), so concurrent
    /// copies between the same tensors cannot deadlock.
    pub(crate) fn copy_region_from(&self, region: &Layout, src: &Tensor) -> Result<()> {
        let src = src.apart_from(&[self])?;
        let mut locks = StorageLocks::new("copy_", &[self], &[&src])?;
        let (mut dst, srcs) = locks.split();
        dst[0].copy_from(region, srcs[0], src.layout())
    }

    /// Err for a broadcast view, whose elements share memory locations: an in-place
    /// write (`op`) into it would race with itself.
    pub(crate) fn check_writable(&self, op: &'static str) -> Result<()> {
        let l = self.layout();
        if l.shape
            .iter()
            .zip(&l.strides)
            .any(|(&d, &s)| d > 1 && s == 0)
        {
            return Err(Error::arg(
                "self",
                format!(
                    "{op} into a broadcast view: several of its elements share one memory location"
                ),
            ));
        }
        Ok(())
    }
}
