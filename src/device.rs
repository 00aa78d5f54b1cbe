//! Devices: where a tensor's memory lives and where its ops run.
//!
//! [`Device::cuda`] and [`Device::cuda_if_available`], which open a GPU, are defined
//! beside the rest of CUDA's public face in `src/cuda.rs`: this enum sits below the
//! backends (they name it), so it cannot call into them.

/// A compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The host CPU: the reference backend, always available.
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
}

impl Device {
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

/// Why a string does not name a device (`"gpu".parse::<Device>()`). It converts into
/// [`crate::Error::InvalidArgument`] naming `device`, so `?` works in a function that
/// returns [`crate::Result`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDeviceError {
    /// The string that was given.
    pub got: String,
}

impl std::fmt::Display for ParseDeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "expected cpu, cuda or cuda:N (N a number), got {:?}",
            self.got
        )
    }
}

impl std::error::Error for ParseDeviceError {}

impl std::str::FromStr for Device {
    type Err = ParseDeviceError;

    /// `"cpu"`, `"cuda"` (ordinal 0) or `"cuda:N"`, as `torch.device` spells them. Says
    /// nothing about whether the device can be used ([`Device::cuda`] does).
    ///
    /// ```
    /// use kiln::Device;
    /// assert_eq!("cuda:1".parse::<Device>().unwrap(), Device::Cuda(1));
    /// assert_eq!("cpu".parse::<Device>().unwrap(), Device::Cpu);
    /// assert!("gpu".parse::<Device>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Device, ParseDeviceError> {
        match s.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| ParseDeviceError {
                    got: other.to_string(),
                }),
        }
    }
}
