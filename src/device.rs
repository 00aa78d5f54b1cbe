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
    /// otherwise `Device::Cpu`. Never fails; why CUDA cannot be used is logged at
    /// `info` level through the `log` crate (`RUST_LOG=kiln=info` with `env_logger`).
    pub fn cuda_if_available(ordinal: usize) -> Device {
        match Device::cuda(ordinal) {
            Ok(dev) => {
                log::info!("using CUDA device {ordinal}");
                dev
            }
            Err(e) => {
                log::info!("CUDA device {ordinal} is not used, falling back to the CPU: {e}");
                Device::Cpu
            }
        }
    }

    /// `Device::Cuda(ordinal)`, or an error that says why the GPU cannot be used:
    /// [`crate::Error::CudaDriverNotFound`], [`crate::Error::NoCudaDevice`],
    /// [`crate::Error::CudaOrdinalOutOfRange`], [`crate::Error::KernelsNotBuilt`] (or a driver error
    /// while opening the device). The device is opened on the first call.
    pub fn cuda(ordinal: usize) -> Result<Device> {
        crate::backend::cuda::device(ordinal).map(|_| Device::Cuda(ordinal))
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

impl std::str::FromStr for Device {
    type Err = Error;

    /// `"cpu"`, `"cuda"` (ordinal 0) or `"cuda:N"`, as `torch.device` spells them. Says
    /// nothing about whether the device can be used ([`Device::cuda`] does).
    ///
    /// ```
    /// use kiln::Device;
    /// assert_eq!("cuda:1".parse::<Device>().unwrap(), Device::Cuda(1));
    /// assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
    /// assert!("gpu".parse::<Device>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Device> {
        match s.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| {
                    Error::arg(
                        "device",
                        format!("expected cpu, cuda or cuda:N (N a number), got {other:?}"),
                    )
                }),
        }
    }
}
