//! What every example's command line shares: `--device` and `--seed`, the choice of
//! device (saying why CUDA is not used), and logging (`RUST_LOG=kiln=info` shows
//! kiln's diagnostics). Included by the examples with `#[path]`; not an example itself.

use clap::Args;
use kiln::Device;

/// `--device` and `--seed`.
#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// cpu, cuda or cuda:N [default: cuda:0 when usable, else cpu]
    #[arg(long)]
    pub device: Option<Device>,
    /// Seed of kiln's generator (initial weights, shuffling, augmentation, dropout).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl DeviceArgs {
    /// Installs the logger, seeds kiln and returns the device to run on, printing it.
    /// Without `--device`: CUDA device 0 when usable, else the CPU and why. With
    /// `--device cuda:N` that cannot be used: the reason, and the process exits.
    pub fn setup(&self) -> Device {
        let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
            .try_init();
        kiln::manual_seed(self.seed);
        let dev = match self.device {
            Some(Device::Cpu) => Device::Cpu,
            Some(Device::Cuda(n)) => match Device::cuda(n) {
                Ok(dev) => dev,
                Err(e) => {
                    eprintln!("--device cuda:{n} cannot be used: {e}");
                    std::process::exit(2);
                }
            },
            None => match Device::cuda(0) {
                Ok(dev) => dev,
                Err(e) => {
                    println!("CUDA is not used: {e}");
                    Device::Cpu
                }
            },
        };
        match dev {
            Device::Cuda(n) => println!(
                "device: {dev} ({})",
                kiln::cuda::device_name(n).unwrap_or_default()
            ),
            Device::Cpu => println!("device: cpu"),
        }
        dev
    }
}
