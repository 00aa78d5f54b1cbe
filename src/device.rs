//! Devices: where a tensor's memory lives and where its ops run.

use crate::{Error, Result};

/// A compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The host CPU: the reference backend, always available.
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

impl Device {
    /// `Device::Cuda(ordinal)` when a GPU, its driver and kiln's kernels are usable,
    /// otherwise `Device::Cpu`. Never fails.
    pub fn cuda_if_available(ordinal: usize) -> Device {
        Device::cuda(ordinal).unwrap_or(Device::Cpu)
    }

    /// `Device::Cuda(ordinal)`, or an error that says why the GPU cannot be used.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        Err(Error::CudaUnavailable {
            ordinal,
            reason: "this build of kiln has no CUDA backend yet".into(),
        })
    }

    /// True for [`Device::Cpu`].
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// True for [`Device::Cuda`].
    pub fn is_cuda(&self) -> bool {
        matches!(self, Device::Cuda(_))
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}
