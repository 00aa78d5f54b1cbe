//! [`InitOpts`]: who this process is in a distributed run and where the ranks meet,
//! PyTorch's `init_method` (`env://`, `file://`, `tcp://`) with its variables.

use crate::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Where the ranks meet to exchange what they need before the first collective.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitMethod {
    /// A TCP key-value store on `addr:port`, hosted by rank 0 (`env://`'s
    /// `MASTER_ADDR`/`MASTER_PORT`, or `tcp://addr:port`).
    Tcp {
        /// Host name or IP address of rank 0's machine.
        addr: String,
        /// The port rank 0 listens on.
        port: u16,
    },
    /// A file every rank can reach (`file://PATH`, e.g. on a shared file system).
    File(PathBuf),
}

/// How this process joins a distributed run; see [`super::rendezvous`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOpts {
    pub(crate) method: InitMethod,
    pub(crate) rank: usize,
    pub(crate) world_size: usize,
    pub(crate) local_rank: usize,
    pub(crate) local_world_size: Option<usize>,
    pub(crate) timeout: Duration,
}

/// PyTorch's default timeout of a process group (10 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl InitOpts {
    /// PyTorch's `env://`, as torchrun sets it: `RANK`, `WORLD_SIZE`, `LOCAL_RANK`
    /// (default: the rank), `LOCAL_WORLD_SIZE` (optional), `MASTER_ADDR`,
    /// `MASTER_PORT`. Under Slurm's `srun`, without `RANK` and `WORLD_SIZE`,
    /// `SLURM_PROCID`, `SLURM_NTASKS` and `SLURM_LOCALID` stand in for them (the
    /// `MASTER_*` variables are still needed). Err naming the variable that is missing
    /// or not a number, or a rank not below the world size.
    pub fn from_env() -> Result<InitOpts> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`InitOpts::from_env`] with the variables looked up by `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<InitOpts> {
        let number = |name: &'static str| -> Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        Error::arg(name, format!("`{v}` is not a non-negative integer"))
                    })
                })
                .transpose()
        };
        let torchrun = (number("RANK")?, number("WORLD_SIZE")?);
        let (rank, world_size) = match torchrun {
            (Some(rank), Some(world)) => (rank, world),
            (None, None) => match (number("SLURM_PROCID")?, number("SLURM_NTASKS")?) {
                (Some(rank), Some(world)) => (rank, world),
                _ => return Err(Error::arg(
                    "RANK",
                    "env:// needs RANK and WORLD_SIZE (set by torchrun) or SLURM_PROCID and SLURM_NTASKS (set by srun)",
                )),
            },
            (None, Some(_)) => return Err(Error::arg("RANK", "WORLD_SIZE is set but RANK is not")),
            (Some(_), None) => {
                return Err(Error::arg("WORLD_SIZE", "RANK is set but WORLD_SIZE is not"))
            }
        };
        let local_rank = match number("LOCAL_RANK")? {
            Some(local) => local,
            None => number("SLURM_LOCALID")?.unwrap_or(rank),
        };
        let addr = var("MASTER_ADDR")
            .filter(|a| !a.trim().is_empty())
            .ok_or_else(|| {
                Error::arg("MASTER_ADDR", "env:// needs the address of rank 0's host")
            })?;
        let port = var("MASTER_PORT")
            .ok_or_else(|| Error::arg("MASTER_PORT", "env:// needs the port of rank 0's store"))?;
        let port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| Error::arg("MASTER_PORT", format!("`{port}` is not a port number")))?;
        let opts = InitOpts {
            method: InitMethod::Tcp {
                addr: addr.trim().to_string(),
                port,
            },
            rank,
            world_size,
            local_rank,
            local_world_size: number("LOCAL_WORLD_SIZE")?,
            timeout: DEFAULT_TIMEOUT,
        };
        opts.validate()?;
        Ok(opts)
    }

    /// PyTorch's `file://PATH`: the ranks meet through `path`, which every rank can
    /// reach and which must not exist or be empty when the run starts (as PyTorch's).
    pub fn file(path: impl Into<PathBuf>, rank: usize, world_size: usize) -> InitOpts {
        Self::with_method(InitMethod::File(path.into()), rank, world_size)
    }

    /// PyTorch's `tcp://addr:port`: rank 0 hosts the store on `addr:port`.
    pub fn tcp(addr: impl Into<String>, port: u16, rank: usize, world_size: usize) -> InitOpts {
        let addr = addr.into();
        Self::with_method(InitMethod::Tcp { addr, port }, rank, world_size)
    }

    fn with_method(method: InitMethod, rank: usize, world_size: usize) -> InitOpts {
        InitOpts {
            method,
            rank,
            world_size,
            local_rank: std::env::var("LOCAL_RANK")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(rank),
            local_world_size: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// This rank's index among the ranks of its machine (its GPU's ordinal).
    pub fn local_rank(mut self, local_rank: usize) -> Self {
        self.local_rank = local_rank;
        self
    }

    /// The number of ranks on this machine (`LOCAL_WORLD_SIZE`), when known.
    pub fn local_world_size(mut self, local_world_size: usize) -> Self {
        self.local_world_size = Some(local_world_size);
        self
    }

    /// How long a rendezvous or collective may wait for the other ranks before it
    /// fails with an `Err` naming them (default 10 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Err naming `world_size` when it is 0, `rank` when it is not below it.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.world_size == 0 {
            return Err(Error::arg("world_size", "must be at least 1"));
        }
        if self.rank >= self.world_size {
            return Err(Error::arg(
                "rank",
                format!(
                    "rank {} is out of range for a world of {}",
                    self.rank, self.world_size
                ),
            ));
        }
        Ok(())
    }

    /// Where the ranks meet.
    pub fn method(&self) -> &InitMethod {
        &self.method
    }

    /// This process's rank, `0..world_size`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }
}
