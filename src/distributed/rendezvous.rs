//! [`rendezvous`]: the ranks of a run meet through a [`Store`], check that they agree on
//! the world, and from then on can wait for each other ([`Rendezvous::barrier`]) and
//! hand rank 0's bytes to every rank ([`Rendezvous::share_from_root`], how NCCL's unique
//! id travels).

use super::opts::{InitMethod, InitOpts};
use super::store::{FileStore, Store};
use super::tcp_store::TcpStore;
use crate::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// This process's place in a run that has met: its rank, the world, and the store
/// shared with the other ranks.
pub struct Rendezvous {
    rank: usize,
    world_size: usize,
    local_rank: usize,
    local_world_size: Option<usize>,
    timeout: Duration,
    store: Box<dyn Store>,
    /// Barriers this rank has passed: each barrier's keys carry its number, so the
    /// store never needs to forget a key.
    barriers: AtomicU64,
    /// Every rank joined: only then does rank 0 wait for the others when it leaves.
    met: bool,
}

impl std::fmt::Debug for Rendezvous {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendezvous")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("local_rank", &self.local_rank)
            .field("store", &self.store.address())
            .finish()
    }
}

/// Joins the run `opts` describes: opens its store (rank 0 hosts the TCP one), then
/// waits until every rank has joined and checks that they agree on the world size.
/// Err naming the argument for a rank outside the world; an [`Error::Distributed`]
/// naming this rank, the store's address and the ranks that did not join within the
/// timeout, or a rank that reports another world size.
pub fn rendezvous(opts: &InitOpts) -> Result<Rendezvous> {
    opts.validate()?;
    let store: Box<dyn Store> = match &opts.method {
        InitMethod::Tcp { addr, port } => Box::new(TcpStore::new(
            addr,
            *port,
            opts.rank == 0,
            opts.rank,
            opts.timeout,
        )?),
        InitMethod::File(path) => Box::new(FileStore::new(path)),
    };
    let mut rdzv = Rendezvous {
        rank: opts.rank,
        world_size: opts.world_size,
        local_rank: opts.local_rank,
        local_world_size: opts.local_world_size,
        timeout: opts.timeout,
        store,
        barriers: AtomicU64::new(0),
        met: false,
    };
    let sizes = rdzv.exchange("join", &opts.world_size.to_string())?;
    if let Some((rank, size)) = sizes
        .iter()
        .enumerate()
        .find(|(_, size)| size.as_slice() != opts.world_size.to_string().as_bytes())
    {
        return Err(rdzv.error(format!(
            "rank {rank} joined a world of {} ranks, this rank one of {}",
            String::from_utf8_lossy(size),
            opts.world_size
        )));
    }
    rdzv.met = true;
    Ok(rdzv)
}

/// Rank 0 may host the store (TCP, in its process): it leaves last, once every other
/// rank has said it is done with the store or the timeout has passed, so that no rank
/// finds the store gone in the middle of its last request (the final barrier's reads).
impl Drop for Rendezvous {
    fn drop(&mut self) {
        if !self.met {
            return;
        }
        if self.rank != 0 {
            let _ = self.store.set(&format!("left/{}", self.rank), b"");
            return;
        }
        let deadline = Instant::now() + self.timeout;
        for rank in 1..self.world_size {
            let left = deadline.saturating_duration_since(Instant::now());
            if !matches!(
                self.store.try_get(&format!("left/{rank}"), left),
                Ok(Some(_))
            ) {
                break;
            }
        }
    }
}

impl Rendezvous {
    /// This process's rank, `0..world_size`.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// This process's rank on its machine (its GPU's ordinal).
    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// The number of ranks on this machine when the launcher said.
    pub fn local_world_size(&self) -> Option<usize> {
        self.local_world_size
    }

    /// How long a wait for the other ranks may take before it is an `Err`.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The store shared by the ranks.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Returns once every rank has called `barrier` as many times as this one; an
    /// [`Error::Distributed`] naming the ranks that did not arrive within the timeout.
    pub fn barrier(&self) -> Result<()> {
        let n = self.barriers.fetch_add(1, Ordering::Relaxed);
        self.exchange(&format!("barrier/{n}"), "").map(drop)
    }

    /// Rank 0's `make()` on every rank: rank 0 calls it and publishes the bytes under
    /// `key`, the others wait for them (within the timeout, else an `Err` naming rank
    /// 0 and the store). Each `key` is used once per run.
    pub fn share_from_root(
        &self,
        key: &str,
        make: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let key = format!("root/{key}");
        if self.rank == 0 {
            let value = make()?;
            self.store.set(&key, &value)?;
            return Ok(value);
        }
        self.store.try_get(&key, self.timeout)?.ok_or_else(|| {
            self.error(format!(
                "rank 0 did not publish `{key}` within {:?}",
                self.timeout
            ))
        })
    }

    /// Every rank's `value` under `<prefix>/<rank>`, waiting for all of them until the
    /// timeout; an `Err` naming those that did not come.
    fn exchange(&self, prefix: &str, value: &str) -> Result<Vec<Vec<u8>>> {
        self.store
            .set(&format!("{prefix}/{}", self.rank), value.as_bytes())?;
        let deadline = Instant::now() + self.timeout;
        let mut values = Vec::with_capacity(self.world_size);
        let mut missing = Vec::new();
        for rank in 0..self.world_size {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.store.try_get(&format!("{prefix}/{rank}"), left)? {
                Some(v) => values.push(v),
                None => missing.push(rank),
            }
        }
        if missing.is_empty() {
            return Ok(values);
        }
        Err(self.error(format!(
            "ranks {missing:?} of {} did not reach `{prefix}` within {:?}",
            self.world_size, self.timeout
        )))
    }

    /// An [`Error::Distributed`] of this rank about the store at its address.
    fn error(&self, what: String) -> Error {
        Error::Distributed {
            rank: self.rank,
            msg: format!("{what} (store {})", self.store.address()),
        }
    }
}
