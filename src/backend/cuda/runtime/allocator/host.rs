//! A raw allocator over host memory, to run the caching logic without a GPU: unit
//! tests, the allocator benchmark, and an emulated device.

use super::{EventId, RawAllocError, RawAllocator, StreamId};
use crate::{Error, Result};
use std::alloc::Layout;
use std::collections::{HashMap, HashSet};

/// Host memory handed out as "device" segments (512-byte aligned), with an optional
/// capacity to provoke out-of-memory, and stream events whose completion a test
/// controls: work on a stream marked busy stays unfinished until the stream is finished.
#[derive(Debug, Default)]
pub struct HostRawAllocator {
    capacity: Option<usize>,
    live: HashMap<u64, usize>,
    live_bytes: usize,
    allocs: u64,
    frees: u64,
    busy: HashSet<StreamId>,
    events: HashMap<u64, (StreamId, bool)>,
    next_event: u64,
    syncs: u64,
}

impl HostRawAllocator {
    /// An allocator without a capacity limit.
    pub fn new() -> Self {
        Self::default()
    }

    /// An allocator that refuses (out of memory) to hold more than `bytes` at once.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut raw = Self::default();
        raw.capacity = Some(bytes);
        raw
    }

    /// Number of successful `alloc` calls.
    pub fn alloc_count(&self) -> u64 {
        self.allocs
    }

    /// Number of `free` calls.
    pub fn free_count(&self) -> u64 {
        self.frees
    }

    /// Bytes currently handed out.
    pub fn live_bytes(&self) -> usize {
        self.live_bytes
    }

    /// Number of `synchronize` calls.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Events recorded on `stream` from now on stay pending until [`Self::finish_stream`].
    pub fn set_busy(&mut self, stream: StreamId) {
        self.busy.insert(stream);
    }

    /// Completes all work (and events) on `stream`.
    pub fn finish_stream(&mut self, stream: StreamId) {
        self.busy.remove(&stream);
        for (s, done) in self.events.values_mut() {
            if *s == stream {
                *done = true;
            }
        }
    }

    /// Number of events recorded and not yet destroyed.
    pub fn live_events(&self) -> usize {
        self.events.len()
    }

    fn layout(bytes: usize) -> Option<Layout> {
        Layout::from_size_align(bytes.max(1), super::MIN_BLOCK_SIZE).ok()
    }
}

impl RawAllocator for HostRawAllocator {
    fn alloc(&mut self, bytes: usize) -> std::result::Result<u64, RawAllocError> {
        if self
            .capacity
            .is_some_and(|cap| self.live_bytes.saturating_add(bytes) > cap)
        {
            return Err(RawAllocError::OutOfMemory);
        }
        let layout = Self::layout(bytes).ok_or(RawAllocError::OutOfMemory)?;
        // SAFETY: `layout` has a non-zero size (at least 1 byte).
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return Err(RawAllocError::OutOfMemory);
        }
        let addr = ptr as u64;
        self.live.insert(addr, bytes);
        self.live_bytes += bytes;
        self.allocs += 1;
        Ok(addr)
    }

    fn free(&mut self, ptr: u64, bytes: usize) -> Result<()> {
        match self.live.remove(&ptr) {
            Some(size) if size == bytes => {}
            other => {
                return Err(Error::arg(
                    "ptr",
                    format!("host raw free of {ptr:#x} ({bytes} bytes) does not match a segment ({other:?})"),
                ))
            }
        }
        let layout = Self::layout(bytes).expect("the same layout was valid at alloc");
        // SAFETY: `ptr` came from `std::alloc::alloc` with this very layout (same size,
        // checked against `live` above) and is freed once (removed from `live`).
        unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
        self.live_bytes -= bytes;
        self.frees += 1;
        Ok(())
    }

    fn record_event(&mut self, stream: StreamId) -> Result<EventId> {
        self.next_event += 1;
        let done = !self.busy.contains(&stream);
        self.events.insert(self.next_event, (stream, done));
        Ok(EventId(self.next_event))
    }

    fn event_done(&mut self, event: EventId) -> Result<bool> {
        Ok(self.events.get(&event.0).is_some_and(|e| e.1))
    }

    fn wait_event(&mut self, event: EventId) -> Result<()> {
        if let Some(e) = self.events.get_mut(&event.0) {
            e.1 = true; // waiting on the host lets the stream's work finish
        }
        Ok(())
    }

    fn destroy_event(&mut self, event: EventId) {
        self.events.remove(&event.0);
    }

    fn synchronize(&mut self) -> Result<()> {
        // Everything queued so far finishes; streams marked busy stay busy for new work.
        self.syncs += 1;
        for e in self.events.values_mut() {
            e.1 = true;
        }
        Ok(())
    }

    fn mem_info(&mut self) -> Option<(usize, usize)> {
        self.capacity
            .map(|cap| (cap.saturating_sub(self.live_bytes), cap))
    }
}

impl Drop for HostRawAllocator {
    fn drop(&mut self) {
        for (ptr, bytes) in std::mem::take(&mut self.live) {
            if let Some(layout) = Self::layout(bytes) {
                // SAFETY: every entry of `live` is an allocation made with this layout
                // and not yet freed.
                unsafe { std::alloc::dealloc(ptr as *mut u8, layout) };
            }
        }
    }
}
