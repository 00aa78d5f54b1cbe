//! Uploads that overlap compute, for the `DataLoader`: host data is copied into
//! page-locked (pinned) buffers, then to the device asynchronously on the device's copy
//! stream, while the compute stream keeps running the previous batch. An event recorded
//! after the copies orders the compute stream behind them (`cuStreamWaitEvent`: the
//! device waits, the host does not), and the new buffers are marked as used by the
//! compute stream, so the caching allocator reuses them only after that work.
//!
//! A pinned buffer is reused once the copy that last read it has completed; buffers
//! cycle through a queue at least two batches deep, so that wait is normally over
//! before it starts.

use super::allocator::{EventId, StreamId};
use super::device::CudaDevice;
use super::storage::{host_bytes, CudaStorage};
use crate::backend::CpuStorage;
use crate::Result;
use std::collections::VecDeque;
use std::sync::Arc;

/// An event on one of the device's streams, destroyed with its last holder.
struct Event {
    device: Arc<CudaDevice>,
    id: EventId,
}

impl Drop for Event {
    fn drop(&mut self) {
        self.device.exec().destroy_event(self.id);
    }
}

/// A page-locked host buffer and the event after the last copy that read it.
struct Pinned {
    device: Arc<CudaDevice>,
    ptr: u64,
    bytes: usize,
    last_copy: Option<Arc<Event>>,
}

impl Pinned {
    /// Waits until no queued copy reads the buffer any more.
    fn wait_idle(&mut self) -> Result<()> {
        if let Some(event) = self.last_copy.take() {
            self.device.exec().event_synchronize(event.id)?;
        }
        Ok(())
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        // Freeing memory a queued copy still reads would corrupt the upload; if the
        // wait itself fails the device is broken and leaking the buffer is safer.
        if self.wait_idle().is_ok() {
            self.device.exec().free_pinned(self.ptr, self.bytes);
        }
    }
}

/// Stages host data to one device through pinned buffers on its copy stream.
pub(crate) struct Stager {
    device: Arc<CudaDevice>,
    stream: StreamId,
    pool: VecDeque<Pinned>,
}

/// The copies of one upload, queued on the copy stream; [`Upload::finish`] hands the
/// result to the compute stream.
pub(crate) struct Upload {
    device: Arc<CudaDevice>,
    event: Arc<Event>,
}

impl Stager {
    /// A stager for device `ordinal` (creates its copy stream on first use).
    pub(crate) fn new(ordinal: usize) -> Result<Stager> {
        let device = super::device(ordinal)?;
        let stream = device.exec().copy_stream()?;
        Ok(Stager {
            device,
            stream,
            pool: VecDeque::new(),
        })
    }

    /// A pinned buffer of at least `bytes` bytes that no queued copy reads: a new one
    /// while the queue holds fewer than `2 * fields` buffers, else the oldest (grown
    /// when too small).
    fn buffer(&mut self, bytes: usize, fields: usize) -> Result<Pinned> {
        if self.pool.len() >= 2 * fields {
            if let Some(mut old) = self.pool.pop_front() {
                old.wait_idle()?;
                if old.bytes >= bytes {
                    return Ok(old);
                }
            }
        }
        let ptr = self.device.exec().alloc_pinned(bytes)?;
        Ok(Pinned {
            device: self.device.clone(),
            ptr,
            bytes,
            last_copy: None,
        })
    }

    /// Copies each host range `(storage, first element, element count)` to new device
    /// storage: into a pinned buffer, then asynchronously on the copy stream (one
    /// counted host-to-device copy per non-empty range). The storages may be used on
    /// the compute stream only after [`Upload::finish`].
    pub(crate) fn upload(
        &mut self,
        hosts: &[(&CpuStorage, usize, usize)],
    ) -> Result<(Vec<CudaStorage>, Upload)> {
        let mut out = Vec::with_capacity(hosts.len());
        let mut used = Vec::with_capacity(hosts.len());
        for &(host, first, len) in hosts {
            let size = host.dtype().size_in_bytes();
            let bytes = len * size;
            let buf = self.device.alloc_on(bytes, self.stream)?;
            if bytes > 0 {
                let src = &host_bytes(host)[first * size..first * size + bytes];
                let pinned = self.buffer(bytes, hosts.len())?;
                // SAFETY: `pinned` owns `pinned.bytes >= bytes` bytes of host memory that
                // no queued copy reads (`buffer` waited), and `src` is ordinary host
                // memory, so the ranges are disjoint.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), pinned.ptr as *mut u8, bytes)
                };
                self.device
                    .copy_htod_async(buf.ptr(), pinned.ptr, bytes, self.stream)?;
                used.push(pinned);
            }
            out.push(CudaStorage::from_buffer(buf, len, host.dtype()));
        }
        let event = Arc::new(Event {
            device: self.device.clone(),
            id: self.device.exec().record_event(self.stream)?,
        });
        for mut pinned in used {
            pinned.last_copy = Some(event.clone());
            self.pool.push_back(pinned);
        }
        let upload = Upload {
            device: self.device.clone(),
            event,
        };
        Ok((out, upload))
    }
}

impl Upload {
    /// Makes the compute stream wait (on the device) for the copies, and marks the
    /// uploaded storages as used by it, so their blocks are reused only after the
    /// compute work queued before they are freed.
    pub(crate) fn finish(self, storages: &[&CudaStorage]) -> Result<()> {
        let exec = self.device.exec();
        exec.stream_wait_event(exec.stream(), self.event.id)?;
        for s in storages {
            self.device.record_compute_use(s.buffer())?;
        }
        Ok(())
    }
}
