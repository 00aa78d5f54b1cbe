//! Uploads of host tensors ahead of their use, for the DataLoader's background thread:
//! on CUDA through pinned buffers on the device's copy stream
//! (`backend/cuda/runtime/staging.rs`), overlapping the compute stream's work; on the
//! CPU there is nothing to copy.

use crate::backend::cuda::runtime::staging::{Stager, Upload};
use crate::backend::Storage;
use crate::{Device, Error, Result, Tensor};

/// Moves host tensors to one device; see the module docs.
pub(crate) struct Uploader {
    /// `None` for the CPU.
    stager: Option<Stager>,
}

/// Tensors whose upload may still be queued; [`PendingUpload::ready`] hands them to
/// the compute stream.
pub(crate) struct PendingUpload {
    tensors: Vec<Tensor>,
    upload: Option<Upload>,
}

impl Uploader {
    /// An uploader to `device` (on CUDA, opens the device and its copy stream).
    pub(crate) fn new(device: &Device) -> Result<Uploader> {
        let stager = match device {
            Device::Cpu => None,
            Device::Cuda(ordinal) => Some(Stager::new(*ordinal)?),
        };
        Ok(Uploader { stager })
    }

    /// Starts copying `tensors` (on the CPU) to the uploader's device: one counted
    /// host-to-device copy each, queued on the copy stream. On the CPU they are
    /// returned as they are.
    pub(crate) fn upload(&mut self, tensors: Vec<Tensor>) -> Result<PendingUpload> {
        let Some(stager) = &mut self.stager else {
            return Ok(PendingUpload {
                tensors,
                upload: None,
            });
        };
        let guards: Vec<_> = tensors.iter().map(|t| t.storage()).collect();
        let hosts = guards
            .iter()
            .zip(&tensors)
            .map(|(g, t)| match &**g {
                Storage::Cpu(s) => Ok((s, t.storage_offset(), t.numel())),
                Storage::Cuda(_) => Err(Error::arg("tensors", "an upload takes CPU tensors")),
            })
            .collect::<Result<Vec<_>>>()?;
        let (storages, upload) = stager.upload(&hosts)?;
        let tensors = storages
            .into_iter()
            .zip(&tensors)
            .map(|(s, t)| Tensor::from_storage(Storage::Cuda(s), t.shape()))
            .collect();
        Ok(PendingUpload {
            tensors,
            upload: Some(upload),
        })
    }
}

impl PendingUpload {
    /// The tensors, usable on the compute stream: it waits (on the device) for their
    /// copies, and their blocks are marked as used by it.
    pub(crate) fn ready(self) -> Result<Vec<Tensor>> {
        if let Some(upload) = self.upload {
            let guards: Vec<_> = self.tensors.iter().map(|t| t.storage()).collect();
            let storages: Vec<_> = guards
                .iter()
                .filter_map(|g| match &**g {
                    Storage::Cuda(s) => Some(s),
                    Storage::Cpu(_) => None,
                })
                .collect();
            upload.finish(&storages)?;
        }
        Ok(self.tensors)
    }
}
