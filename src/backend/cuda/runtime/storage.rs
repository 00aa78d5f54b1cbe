//! [`CudaStorage`]: the elements of a tensor in device memory, the transfers to and
//! from the host, and the strided copy / dtype conversion kernel.

use super::device::{CudaDevice, DeviceBuffer};
use super::kernels::KernelId;
use super::launch::{plan, KernelArg};
use crate::backend::{BackendStorage, CpuStorage};
use crate::shape::Layout;
use crate::{DType, Device, Error, Result};
use half::{bf16, f16};
use std::sync::Arc;

/// Device memory holding `len` elements of one dtype.
pub(crate) struct CudaStorage {
    buf: DeviceBuffer,
    len: usize,
    dtype: DType,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage({:?} x {}, cuda:{})",
            self.dtype,
            self.len,
            self.buf.device().ordinal()
        )
    }
}

impl CudaStorage {
    /// Uninitialized storage for `len` elements of `dtype` on `device`.
    pub(crate) fn alloc(device: &Arc<CudaDevice>, len: usize, dtype: DType) -> Result<Self> {
        let bytes = len.checked_mul(dtype.size_in_bytes()).ok_or_else(|| {
            Error::arg("len", format!("{len} elements of {dtype:?} overflow usize"))
        })?;
        Ok(CudaStorage {
            buf: device.alloc(bytes)?,
            len,
            dtype,
        })
    }

    /// Storage over `buf`, which holds `len` elements of `dtype` (or will, once the
    /// copy queued into it has run).
    pub(crate) fn from_buffer(buf: DeviceBuffer, len: usize, dtype: DType) -> Self {
        CudaStorage { buf, len, dtype }
    }

    /// The allocation behind the storage.
    pub(crate) fn buffer(&self) -> &DeviceBuffer {
        &self.buf
    }

    /// A copy of host storage on `device`.
    pub(crate) fn from_cpu(device: &Arc<CudaDevice>, host: &CpuStorage) -> Result<Self> {
        let out = Self::alloc(device, host.len(), host.dtype())?;
        if out.len > 0 {
            device.copy_htod(out.buf.ptr(), host_bytes(host))?;
        }
        Ok(out)
    }

    /// The element type.
    pub(crate) fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The device ordinal.
    pub(crate) fn ordinal(&self) -> usize {
        self.buf.device().ordinal()
    }

    pub(crate) fn cuda_device(&self) -> &Arc<CudaDevice> {
        self.buf.device()
    }

    /// Device address of element `index`.
    pub(crate) fn ptr_at(&self, index: usize) -> u64 {
        self.buf.ptr() + (index * self.dtype.size_in_bytes()) as u64
    }

    /// The device address of the elements under `layout`, which must be one contiguous
    /// run of `len` elements: kernels that index NCHW planes directly (pool, pad) take
    /// operands the functional layer made contiguous. Anything else is an error rather
    /// than a read past the operand's memory.
    pub(crate) fn contiguous_run_ptr(
        &self,
        op: &'static str,
        layout: &Layout,
        len: usize,
    ) -> Result<u64> {
        if layout.numel() != len || !layout.is_contiguous() {
            return Err(Error::shape(
                op,
                format!(
                    "expected {len} contiguous elements, got shape {:?} strides {:?}",
                    layout.shape, layout.strides
                ),
            ));
        }
        Ok(self.ptr_at(layout.offset))
    }

    /// Device address of the first element.
    pub(crate) fn ptr(&self) -> u64 {
        self.buf.ptr()
    }

    /// The device address of the elements of `layout` laid out contiguously, and the
    /// contiguous copy that holds them when the storage does not (keep it alive until
    /// the kernels reading the address have been launched).
    pub(crate) fn contiguous_ptr(&self, layout: &Layout) -> Result<(u64, Option<CudaStorage>)> {
        if layout.is_contiguous() {
            return Ok((self.ptr_at(layout.offset), None));
        }
        let copy = self.copy_as(layout, self.dtype)?;
        Ok((copy.ptr(), Some(copy)))
    }
}

impl BackendStorage for CudaStorage {
    fn dtype(&self) -> DType {
        self.dtype
    }

    fn device(&self) -> Device {
        Device::Cuda(self.ordinal())
    }

    fn to_cpu(&self, layout: &Layout) -> Result<CpuStorage> {
        if !layout.is_contiguous() {
            return self
                .copy_as(layout, self.dtype)?
                .to_cpu(&Layout::contiguous(&layout.shape));
        }
        let n = layout.numel();
        let mut host = CpuStorage::full(n, 0.0, self.dtype)?;
        if n > 0 {
            self.cuda_device()
                .copy_dtoh(host_bytes_mut(&mut host), self.ptr_at(layout.offset))?;
        }
        Ok(host)
    }

    fn copy_as(&self, layout: &Layout, dtype: DType) -> Result<CudaStorage> {
        let n = layout.numel();
        let out = Self::alloc(self.cuda_device(), n, dtype)?;
        if n == 0 {
            return Ok(out);
        }
        if dtype == self.dtype && layout.is_contiguous() {
            let bytes = n * dtype.size_in_bytes();
            self.cuda_device()
                .exec()
                .copy_dtod(out.ptr(), self.ptr_at(layout.offset), bytes)?;
            return Ok(out);
        }
        let dst = Layout::contiguous(&layout.shape);
        copy_strided(self, layout, &out, &dst)?;
        Ok(out)
    }

    fn copy_from(
        &mut self,
        dst_layout: &Layout,
        src: &CudaStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        if dst_layout.shape != src_layout.shape {
            return Err(Error::ShapeMismatch {
                op: "copy_from",
                lhs: dst_layout.shape.clone(),
                rhs: src_layout.shape.clone(),
            });
        }
        if dst_layout.numel() == 0 {
            return Ok(());
        }
        copy_strided(src, src_layout, self, dst_layout)
    }
}

/// `dst[dl] = convert(src[sl])` with the copy kernel (layouts of one shape).
fn copy_strided(src: &CudaStorage, sl: &Layout, dst: &CudaStorage, dl: &Layout) -> Result<()> {
    let n = sl.numel() as u64;
    let p = plan("copy", &sl.shape, [&sl.strides, &dl.strides])?;
    let dev = src.cuda_device();
    let [rank, dims] = p.shape_args();
    dev.launch_grid_stride(
        KernelId::copy(src.dtype, dst.dtype)?,
        sl.numel(),
        &[
            KernelArg::U64(n),
            rank,
            dims,
            KernelArg::Ptr(src.ptr_at(sl.offset)),
            p.strides_arg(0),
            KernelArg::Ptr(dst.ptr_at(dl.offset)),
            p.strides_arg(1),
        ],
    )
}

/// The bytes of host storage.
pub(crate) fn host_bytes(s: &CpuStorage) -> &[u8] {
    match s {
        CpuStorage::F32(v) => pod_bytes(v),
        CpuStorage::F64(v) => pod_bytes(v),
        CpuStorage::F16(v) => pod_bytes(v),
        CpuStorage::BF16(v) => pod_bytes(v),
        CpuStorage::I64(v) => pod_bytes(v),
        CpuStorage::U8(v) => v,
    }
}

/// The bytes of host storage, writable.
fn host_bytes_mut(s: &mut CpuStorage) -> &mut [u8] {
    match s {
        CpuStorage::F32(v) => pod_bytes_mut(v),
        CpuStorage::F64(v) => pod_bytes_mut(v),
        CpuStorage::F16(v) => pod_bytes_mut(v),
        CpuStorage::BF16(v) => pod_bytes_mut(v),
        CpuStorage::I64(v) => pod_bytes_mut(v),
        CpuStorage::U8(v) => v,
    }
}

/// Element types whose every byte is data and every bit pattern a valid value.
trait Pod: Copy {}
impl Pod for f32 {}
impl Pod for f64 {}
impl Pod for f16 {}
impl Pod for bf16 {}
impl Pod for i64 {}

fn pod_bytes<T: Pod>(v: &[T]) -> &[u8] {
    // SAFETY: `Pod` types have no padding, so their memory is initialized bytes; the
    // byte slice covers exactly the same allocation and borrows it immutably.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

fn pod_bytes_mut<T: Pod>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: as in `pod_bytes`; moreover every bit pattern is a valid `Pod` value, so
    // any bytes written through the slice leave valid elements behind.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}
