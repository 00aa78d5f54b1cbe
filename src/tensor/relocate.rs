//! Moving and casting tensors' memory *in place*, for `Module::to_device` and
//! `Module::to_dtype`: every handle on a storage (the parameter an optimizer holds,
//! its views, `state_dict` entries) sees the new device and dtype, because the
//! storage cell records them next to the memory.

use super::Tensor;
use crate::backend::Storage;
use crate::shape::Layout;
use crate::{DType, Device, Result};
use parking_lot::RwLock;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memory of a tensor and of all its views, with its dtype and device packed in
/// an atomic (read on every `Tensor::dtype()`/`device()` without taking the lock).
pub(crate) struct StorageCell {
    pub(super) data: RwLock<Storage>,
    meta: AtomicU64,
}

/// Every dtype, in the order of its packed code.
const DTYPES: [DType; 6] = [
    DType::F32,
    DType::F64,
    DType::F16,
    DType::BF16,
    DType::I64,
    DType::U8,
];

/// dtype in the low 8 bits; the device above them (0 for the CPU, `n + 1` for CUDA `n`).
fn pack(dtype: DType, device: Device) -> u64 {
    let code = DTYPES.iter().position(|d| *d == dtype).unwrap_or(0) as u64;
    let dev = match device {
        Device::Cpu => 0,
        Device::Cuda(n) => n as u64 + 1,
    };
    code | (dev << 8)
}

impl StorageCell {
    pub(super) fn new(storage: Storage) -> StorageCell {
        let meta = AtomicU64::new(pack(storage.dtype(), storage.device()));
        StorageCell {
            data: RwLock::new(storage),
            meta,
        }
    }

    pub(super) fn dtype(&self) -> DType {
        DTYPES[(self.meta.load(Ordering::Acquire) & 0xff) as usize]
    }

    pub(super) fn device(&self) -> Device {
        match self.meta.load(Ordering::Acquire) >> 8 {
            0 => Device::Cpu,
            n => Device::Cuda((n - 1) as usize),
        }
    }

    /// Swaps in `storage` (same element count), with its dtype and device.
    fn replace(&self, storage: Storage) {
        let mut guard = self.data.write();
        self.meta
            .store(pack(storage.dtype(), storage.device()), Ordering::Release);
        *guard = storage;
    }
}

/// Host memory goes back to the CPU allocator's pool, to serve the next result of its
/// size without the OS mapping fresh pages (device memory has its caching allocator).
impl Drop for StorageCell {
    fn drop(&mut self) {
        if let Storage::Cpu(cpu) = self.data.get_mut() {
            cpu.recycle();
        }
    }
}

impl Tensor {
    /// This optimizer state tensor on `param`'s device and in its dtype: itself when
    /// it already is, else a copy (the parameter was moved by `Module::to_device` or
    /// cast by `Module::to_dtype` after the state was made).
    pub(crate) fn follow(&self, param: &Tensor) -> Result<Tensor> {
        if self.device() == param.device() && self.dtype() == param.dtype() {
            return Ok(self.clone());
        }
        self.to_dtype(param.dtype())?.to_device(&param.device())
    }

    /// A copy of this tensor's *whole* storage (so every view's layout stays valid)
    /// converted to `dtype` on `device`: cast where the memory is, then moved.
    fn converted_storage(&self, device: &Device, dtype: DType) -> Result<Storage> {
        let storage = self.storage();
        let full = Layout::contiguous(&[storage.len()]);
        let cast = if dtype != storage.dtype() {
            Some(storage.copy_as(&full, dtype)?)
        } else {
            None
        };
        let source = cast.as_ref().unwrap_or(&*storage);
        if source.device() == *device {
            // Only reached with a cast: `relocate_in_place` skips storages already there.
            return match cast {
                Some(cast) => Ok(cast),
                None => source.copy_as(&full, dtype),
            };
        }
        Storage::from_cpu(source.to_cpu(&full)?, device)
    }
}

/// Moves the memory of every tensor in `tensors` to `device` (each stays where it is
/// when `None`), cast to
/// `dtype_of(its dtype)`, in place, and the accumulated gradients with it (as
/// PyTorch's `Module.to` does). All-or-nothing: every new storage and gradient is
/// made first, and only when all succeeded are they swapped in; on an error nothing
/// has changed. A storage shared by several tensors is converted once.
pub(crate) fn relocate_in_place(
    tensors: &[Tensor],
    device: Option<&Device>,
    dtype_of: &dyn Fn(DType) -> DType,
) -> Result<()> {
    let _guard = crate::no_grad();
    let mut seen = HashSet::new();
    let mut storages = Vec::new();
    let mut grads = Vec::new();
    for t in tensors {
        let dtype = dtype_of(t.dtype());
        let device = &device.copied().unwrap_or(t.device());
        if let Some(g) = t.grad() {
            if g.device() != *device || g.dtype() != dtype {
                grads.push((t, g.detach().to_dtype(dtype)?.to_device(device)?));
            }
        }
        if !seen.insert(t.storage_addr()) || (t.device() == *device && t.dtype() == dtype) {
            continue;
        }
        storages.push((t, t.converted_storage(device, dtype)?));
    }
    for (t, storage) in storages {
        t.0.storage.replace(storage);
    }
    for (t, g) in grads {
        t.set_grad(Some(g));
    }
    Ok(())
}
