//! The caching device-memory allocator, after PyTorch's `CUDACachingAllocator`.
//!
//! Asking the driver for memory (`cuMemAlloc`) is slow and synchronizing, so freed
//! blocks are kept and reused:
//!
//! * sizes are rounded up to 512 bytes; requests of at most 1 MiB come from the *small*
//!   pool, larger ones from the *large* pool;
//! * when no cached block fits, a *segment* is taken from the driver: 2 MiB for small
//!   requests, 20 MiB for requests below 10 MiB, else the request rounded up to 2 MiB;
//! * a request takes the smallest cached block that fits (best fit) on its stream; the
//!   rest of the block is split off when it is big enough to be useful (small pool: at
//!   least 512 bytes; large pool: more than 1 MiB);
//! * a freed block merges with its free neighbours in the same segment;
//! * blocks are reused only by their own stream, since stream order is what makes
//!   reuse safe without synchronizing; a block also used on another stream
//!   ([`CachingAllocator::record_stream`]) waits for events recorded on those streams;
//! * when the driver is out of memory, every cached whole segment is released and the
//!   allocation retried once; a second failure is [`Error::CudaOutOfMemory`].
//!
//! The driver is reached only through [`RawAllocator`], so the same logic is tested on
//! the host ([`HostRawAllocator`]) and, in the emulated device, runs without a GPU.
//! `KILN_CUDA_NO_CACHE=1` bypasses the cache (every allocation and free goes to the
//! raw allocator, with the exact size requested), which tools like compute-sanitizer
//! and the emulated device's guard pages need to see each buffer's bounds.

mod blocks;
mod host;
mod stats;
#[cfg(test)]
mod tests;

pub use host::HostRawAllocator;
pub use stats::{MemoryStats, Stat};

use crate::{Error, Result};
use blocks::{Block, Blocks, Idx, Pool};

/// Allocation granularity: every block size is a multiple of this.
pub const MIN_BLOCK_SIZE: usize = 512;
/// Requests up to this size use the small pool.
pub const SMALL_SIZE: usize = 1 << 20;
/// Segment size for small requests.
pub const SMALL_BUFFER: usize = 2 << 20;
/// Segment size for large requests below [`MIN_LARGE_ALLOC`].
pub const LARGE_BUFFER: usize = 20 << 20;
/// Large requests from this size get a segment of their own size (rounded).
pub const MIN_LARGE_ALLOC: usize = 10 << 20;
/// Rounding of segments for requests of at least [`MIN_LARGE_ALLOC`].
pub const ROUND_LARGE: usize = 2 << 20;

/// A stream of device work, as the allocator sees it: an opaque id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub u64);

/// An event recorded on a stream by the raw allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventId(pub u64);

/// Why a raw allocation failed.
#[derive(Debug)]
pub enum RawAllocError {
    /// The device has no room: the allocator may free its cache and retry.
    OutOfMemory,
    /// Any other failure, passed on unchanged.
    Failed(Error),
}

/// Where device memory really comes from: `cuMemAlloc`/`cuMemFree` and stream events
/// on a GPU, host memory in tests. Everything the caching logic needs from a device.
pub trait RawAllocator: Send {
    /// A new segment of exactly `bytes` bytes: a multiple of 512, aligned to 512, when
    /// caching; any size without the cache (aligned as the implementation can: the
    /// driver to 512, the emulator only to the size's own power-of-two factor, as it
    /// ends each allocation at a guard page).
    fn alloc(&mut self, bytes: usize) -> std::result::Result<u64, RawAllocError>;
    /// Returns a segment obtained from [`RawAllocator::alloc`].
    fn free(&mut self, ptr: u64, bytes: usize) -> Result<()>;
    /// Records an event on `stream`; it completes when the work queued so far does.
    fn record_event(&mut self, stream: StreamId) -> Result<EventId>;
    /// True once `event` has completed.
    fn event_done(&mut self, event: EventId) -> Result<bool>;
    /// Blocks until `event` has completed.
    fn wait_event(&mut self, event: EventId) -> Result<()>;
    /// Releases an event.
    fn destroy_event(&mut self, event: EventId);
    /// Blocks until all queued device work is done (before memory goes back to the driver).
    fn synchronize(&mut self) -> Result<()>;
    /// `(free, total)` device memory in bytes, when known (for out-of-memory messages).
    fn mem_info(&mut self) -> Option<(usize, usize)>;
}

impl<R: RawAllocator + ?Sized> RawAllocator for Box<R> {
    fn alloc(&mut self, bytes: usize) -> std::result::Result<u64, RawAllocError> {
        (**self).alloc(bytes)
    }
    fn free(&mut self, ptr: u64, bytes: usize) -> Result<()> {
        (**self).free(ptr, bytes)
    }
    fn record_event(&mut self, stream: StreamId) -> Result<EventId> {
        (**self).record_event(stream)
    }
    fn event_done(&mut self, event: EventId) -> Result<bool> {
        (**self).event_done(event)
    }
    fn wait_event(&mut self, event: EventId) -> Result<()> {
        (**self).wait_event(event)
    }
    fn destroy_event(&mut self, event: EventId) {
        (**self).destroy_event(event)
    }
    fn synchronize(&mut self) -> Result<()> {
        (**self).synchronize()
    }
    fn mem_info(&mut self) -> Option<(usize, usize)> {
        (**self).mem_info()
    }
}

/// `size` rounded up to a multiple of 512 (at least 512).
pub fn round_size(size: usize) -> Option<usize> {
    size.max(1).checked_next_multiple_of(MIN_BLOCK_SIZE)
}

/// The segment size fetched from the driver for a rounded request of `size`.
pub fn segment_size(size: usize) -> Option<usize> {
    if size <= SMALL_SIZE {
        Some(SMALL_BUFFER)
    } else if size < MIN_LARGE_ALLOC {
        Some(LARGE_BUFFER)
    } else {
        size.checked_next_multiple_of(ROUND_LARGE)
    }
}

/// The caching allocator of one device, over a raw allocator `R`. Not thread-safe by
/// itself: the device keeps it behind a mutex.
pub struct CachingAllocator<R: RawAllocator> {
    raw: R,
    ordinal: usize,
    caching: bool,
    blocks: Blocks,
    /// Freed blocks waiting for events recorded on the streams that used them.
    pending: Vec<(EventId, Idx)>,
    stats: MemoryStats,
}

impl<R: RawAllocator> std::fmt::Debug for CachingAllocator<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingAllocator")
            .field("ordinal", &self.ordinal)
            .field("caching", &self.caching)
            .field("stats", &self.stats())
            .finish()
    }
}

impl<R: RawAllocator> CachingAllocator<R> {
    /// An allocator for device `ordinal`; caching unless `KILN_CUDA_NO_CACHE=1`.
    pub fn new(raw: R, ordinal: usize) -> Self {
        let no_cache = std::env::var("KILN_CUDA_NO_CACHE").is_ok_and(|v| v == "1");
        Self::with_caching(raw, ordinal, !no_cache)
    }

    /// An allocator that caches freed blocks when `caching`, else passes every
    /// allocation and free straight to the raw allocator.
    pub fn with_caching(raw: R, ordinal: usize, caching: bool) -> Self {
        CachingAllocator {
            raw,
            ordinal,
            caching,
            blocks: Blocks::default(),
            pending: Vec::new(),
            stats: MemoryStats::default(),
        }
    }

    /// True unless the cache is bypassed.
    pub fn is_caching(&self) -> bool {
        self.caching
    }

    /// The raw allocator underneath.
    pub fn raw(&self) -> &R {
        &self.raw
    }

    /// The raw allocator underneath, mutably.
    pub fn raw_mut(&mut self) -> &mut R {
        &mut self.raw
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> MemoryStats {
        let mut s = self.stats;
        s.inactive_split = self.blocks.inactive_split;
        s.inactive_split_bytes = self.blocks.inactive_split_bytes;
        s
    }

    /// Sets every peak statistic to its current value.
    pub fn reset_peak_stats(&mut self) {
        self.stats.reset_peaks();
        self.blocks.reset_peaks();
    }

    /// The (rounded) size of the live allocation at `ptr`.
    pub fn allocation_size(&self, ptr: u64) -> Option<usize> {
        let i = self.blocks.live(ptr)?;
        let b = self.blocks.get(i);
        b.allocated.then_some(b.size)
    }

    /// Memory for `bytes` bytes, to be used on `stream`; the address is 512-aligned.
    pub fn alloc(&mut self, bytes: usize, stream: StreamId) -> Result<u64> {
        let size = round_size(bytes).ok_or_else(|| self.oom(bytes))?;
        self.process_events()?;
        let pool = if size <= SMALL_SIZE {
            Pool::Small
        } else {
            Pool::Large
        };
        let cached = if self.caching {
            self.blocks.take_best_fit(pool, stream, size)
        } else {
            None
        };
        let i = match cached {
            Some(i) => i,
            None => {
                // Without the cache, each tensor gets exactly its own size, so that a
                // checker (compute-sanitizer, the emulator's guard pages) sees its bounds.
                let segment = if self.caching {
                    segment_size(size).ok_or_else(|| self.oom(bytes))?
                } else {
                    bytes
                };
                self.new_segment(segment, bytes, pool, stream)?
            }
        };
        if self.caching && self.should_split(i, size) {
            self.blocks.split(i, size);
        }
        let block = self.blocks.get_mut(i);
        block.allocated = true;
        block.requested = bytes;
        let (ptr, size) = (block.ptr, block.size as u64);
        self.blocks.set_live(i);
        self.stats.allocated_bytes.increase(size);
        self.stats.active_bytes.increase(size);
        self.stats.requested_bytes.increase(bytes as u64);
        self.stats.allocation.increase(1);
        self.stats.active.increase(1);
        Ok(ptr)
    }

    /// Returns the allocation at `ptr` (from [`CachingAllocator::alloc`]) to the cache.
    pub fn free(&mut self, ptr: u64) -> Result<()> {
        let i = self.live_allocation(ptr)?;
        let block = self.blocks.get_mut(i);
        block.allocated = false;
        let (size, requested) = (block.size as u64, block.requested as u64);
        let uses = std::mem::take(&mut block.stream_uses);
        self.stats.allocated_bytes.decrease(size);
        self.stats.requested_bytes.decrease(requested);
        self.stats.allocation.decrease(1);
        if !self.caching {
            // Nothing tracks stream order without the cache: wait before freeing.
            self.raw.synchronize()?;
            self.stats.active_bytes.decrease(size);
            self.stats.active.decrease(1);
            self.blocks.drop_segment(i);
            return self.raw_free(ptr, size as usize);
        }
        if uses.is_empty() {
            self.free_block(i);
            return Ok(());
        }
        // Reuse must wait until the other streams are done with the block.
        for stream in uses {
            let event = self.raw.record_event(stream)?;
            self.pending.push((event, i));
            self.blocks.get_mut(i).event_count += 1;
        }
        Ok(())
    }

    /// Marks the allocation at `ptr` as used by `stream` too, so that after it is freed
    /// it is not reused before `stream`'s work queued until then has finished.
    pub fn record_stream(&mut self, ptr: u64, stream: StreamId) -> Result<()> {
        let i = self.live_allocation(ptr)?;
        let b = self.blocks.get_mut(i);
        if b.stream != stream && !b.stream_uses.contains(&stream) {
            b.stream_uses.push(stream);
        }
        Ok(())
    }

    /// Returns every cached segment that holds no live allocation to the driver
    /// (PyTorch's `empty_cache`). Waits for pending events first.
    pub fn empty_cache(&mut self) -> Result<()> {
        self.release_cached_segments()
    }

    fn live_allocation(&self, ptr: u64) -> Result<Idx> {
        self.blocks
            .live(ptr)
            .filter(|&i| self.blocks.get(i).allocated)
            .ok_or_else(|| {
                Error::arg(
                    "ptr",
                    format!(
                        "{ptr:#x} is not a live allocation of CUDA device {}",
                        self.ordinal
                    ),
                )
            })
    }

    /// Frees blocks whose pending events have completed.
    fn process_events(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut still_pending = Vec::new();
        for (event, i) in std::mem::take(&mut self.pending) {
            if self.raw.event_done(event)? {
                self.raw.destroy_event(event);
                self.event_finished(i);
            } else {
                still_pending.push((event, i));
            }
        }
        self.pending = still_pending;
        Ok(())
    }

    fn event_finished(&mut self, i: Idx) {
        let block = self.blocks.get_mut(i);
        block.event_count -= 1;
        if block.event_count == 0 {
            self.free_block(i);
        }
    }

    /// Returns the freed block `i` to its pool, merged with free neighbours.
    fn free_block(&mut self, i: Idx) {
        let size = self.blocks.get(i).size as u64;
        self.stats.active_bytes.decrease(size);
        self.stats.active.decrease(1);
        self.blocks.unset_live(i);
        self.blocks.release(i);
    }

    /// A fresh segment from the raw allocator; on out-of-memory, frees the cache and
    /// retries once.
    fn new_segment(
        &mut self,
        size: usize,
        requested: usize,
        pool: Pool,
        stream: StreamId,
    ) -> Result<Idx> {
        let ptr = match self.raw.alloc(size) {
            Ok(ptr) => ptr,
            Err(RawAllocError::Failed(e)) => return Err(e),
            Err(RawAllocError::OutOfMemory) => {
                self.stats.num_alloc_retries += 1;
                log::info!(
                    "CUDA device {}: out of memory for a {size}-byte segment; releasing the \
                     {} cached bytes no tensor uses and retrying",
                    self.ordinal,
                    self.stats.reserved_bytes.current - self.stats.allocated_bytes.current
                );
                self.release_cached_segments()?;
                match self.raw.alloc(size) {
                    Ok(ptr) => ptr,
                    Err(RawAllocError::Failed(e)) => return Err(e),
                    Err(RawAllocError::OutOfMemory) => {
                        self.stats.num_ooms += 1;
                        log::warn!(
                            "CUDA device {}: still out of memory for {size} bytes after \
                             emptying the cache",
                            self.ordinal
                        );
                        return Err(self.oom(requested));
                    }
                }
            }
        };
        self.stats.num_device_alloc += 1;
        self.stats.reserved_bytes.increase(size as u64);
        self.stats.segment.increase(1);
        Ok(self.blocks.add(Block {
            ptr,
            size,
            requested: 0,
            stream,
            pool,
            allocated: false,
            prev: None,
            next: None,
            stream_uses: Vec::new(),
            event_count: 0,
        }))
    }

    fn should_split(&self, i: Idx, size: usize) -> bool {
        let block = self.blocks.get(i);
        let remaining = block.size - size;
        match block.pool {
            Pool::Small => remaining >= MIN_BLOCK_SIZE,
            Pool::Large => remaining > SMALL_SIZE,
        }
    }

    /// Waits for pending events, then gives every free whole segment back to the driver.
    fn release_cached_segments(&mut self) -> Result<()> {
        self.raw.synchronize()?;
        for (event, i) in std::mem::take(&mut self.pending) {
            self.raw.wait_event(event)?;
            self.raw.destroy_event(event);
            self.event_finished(i);
        }
        for (ptr, size) in self.blocks.take_whole_segments() {
            self.raw_free(ptr, size)?;
        }
        Ok(())
    }

    /// Gives a whole, unused segment back to the raw allocator.
    fn raw_free(&mut self, ptr: u64, size: usize) -> Result<()> {
        self.raw.free(ptr, size)?;
        self.stats.num_device_free += 1;
        self.stats.reserved_bytes.decrease(size as u64);
        self.stats.segment.decrease(1);
        Ok(())
    }

    fn oom(&mut self, requested: usize) -> Error {
        let (free, total) = self.raw.mem_info().unwrap_or((0, 0));
        Error::CudaOutOfMemory {
            ordinal: self.ordinal,
            requested,
            allocated: self.stats.allocated_bytes.current as usize,
            reserved: self.stats.reserved_bytes.current as usize,
            free,
            total,
        }
    }
}
