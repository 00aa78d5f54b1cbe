//! The rendezvous key-value [`Store`], like c10d's `Store`: ranks `set` byte values
//! under string keys and `get` them, waiting up to a timeout for a key another rank has
//! not written yet. [`FileStore`] keeps the pairs in one shared file; the TCP store
//! (`tcp_store.rs`) on a server in rank 0's process.

use crate::{Error, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A key-value store shared by the ranks of a run (c10d's `Store`).
pub trait Store: Send + Sync {
    /// Stores `value` under `key` (a later `set` of the key replaces it).
    fn set(&self, key: &str, value: &[u8]) -> Result<()>;

    /// The value of `key`, waiting up to `wait` for a rank to set it: `Ok(None)` when
    /// it did not appear in time, `Err` when the store cannot be reached.
    fn try_get(&self, key: &str, wait: Duration) -> Result<Option<Vec<u8>>>;

    /// Where the store is (an address or a path), for messages.
    fn address(&self) -> String;
}

/// PyTorch's `FileStore`: every `set` appends one record (key and value, each after
/// its little-endian `u32` length) to a file all ranks can reach, in one `write` to a
/// file opened for appending, so records of concurrent writers never interleave; a
/// reader takes a key's last record and ignores a record still being written.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// The store in `path` (created by the first `set`; it must not hold an earlier
    /// run's records).
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    /// The last value of `key` in the file as it is now.
    fn lookup(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&self.path, e)),
        };
        let mut found = None;
        let mut rest = bytes.as_slice();
        while let Some((k, v, tail)) = next_record(rest) {
            if k == key.as_bytes() {
                found = Some(v.to_vec());
            }
            rest = tail;
        }
        Ok(found)
    }
}

/// The first complete record of `bytes` and what follows it.
fn next_record(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (key, rest) = next_field(bytes)?;
    let (value, rest) = next_field(rest)?;
    Some((key, value, rest))
}

/// A `u32`-length-prefixed field at the start of `bytes`, and what follows it.
fn next_field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let len: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_le_bytes(len)).ok()?;
    let rest = &bytes[4..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// `field` after its `u32` length; Err naming `what` when it is 4 GiB or more.
pub(crate) fn put_field(out: &mut Vec<u8>, field: &[u8], what: &'static str) -> Result<()> {
    let len = u32::try_from(field.len()).map_err(|_| {
        Error::arg(
            what,
            format!("{} bytes is too long for the store", field.len()),
        )
    })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(field);
    Ok(())
}

impl Store for FileStore {
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut record = Vec::with_capacity(8 + key.len() + value.len());
        put_field(&mut record, key.as_bytes(), "key")?;
        put_field(&mut record, value, "value")?;
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(&self.path, e))?;
        file.write_all(&record).map_err(|e| io_error(&self.path, e))
    }

    fn try_get(&self, key: &str, wait: Duration) -> Result<Option<Vec<u8>>> {
        poll_until(wait, || self.lookup(key))
    }

    fn address(&self) -> String {
        format!("file://{}", self.path.display())
    }
}

/// Calls `probe` until it finds a value or `wait` has passed (at least once), sleeping
/// between tries from 1 ms up to 50 ms.
fn poll_until(
    wait: Duration,
    mut probe: impl FnMut() -> Result<Option<Vec<u8>>>,
) -> Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(value) = probe()? {
            return Ok(Some(value));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// An I/O error with the store file's path.
fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}
