//! The block store of the caching allocator: every block of every segment in a slab,
//! neighbours linked by slab index, free blocks in best-fit order per pool, and live
//! blocks by address. Only `alloc` and `free` touch the address map; splitting and
//! merging follow indices, which keeps a cached alloc+free pair cheap.

use super::stats::Stat;
use super::StreamId;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

/// A slab index.
pub(super) type Idx = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pool {
    Small,
    Large,
}

/// A piece of a segment: free (cached in a pool), allocated, or freed but waiting for
/// events.
#[derive(Debug)]
pub(super) struct Block {
    pub ptr: u64,
    pub size: usize,
    pub requested: usize,
    pub stream: StreamId,
    pub pool: Pool,
    pub allocated: bool,
    pub prev: Option<Idx>,
    pub next: Option<Idx>,
    /// Other streams that used the block (see `record_stream`).
    pub stream_uses: Vec<StreamId>,
    /// Events still pending before the freed block may be reused.
    pub event_count: usize,
}

impl Block {
    pub fn is_split(&self) -> bool {
        self.prev.is_some() || self.next.is_some()
    }

    fn key(&self) -> PoolKey {
        (self.stream, self.size, self.ptr)
    }
}

/// Pool order: stream, then size, then address (best fit = first at or after the request).
pub(super) type PoolKey = (StreamId, usize, u64);

/// A cheap hash for block addresses (multiples of 512): a multiply spreads them.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct AddrHash;

#[derive(Debug, Default)]
pub(super) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (v >> 9 ^ v).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl BuildHasher for AddrHash {
    type Hasher = AddrHasher;
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

#[derive(Debug, Default)]
pub(super) struct Blocks {
    slab: Vec<Block>,
    vacant: Vec<Idx>,
    /// Allocated blocks and blocks waiting for events, by address.
    live: HashMap<u64, Idx, AddrHash>,
    small: BTreeMap<PoolKey, Idx>,
    large: BTreeMap<PoolKey, Idx>,
    /// Free blocks that are parts of split segments (PyTorch's "inactive_split").
    pub inactive_split: Stat,
    pub inactive_split_bytes: Stat,
}

impl Blocks {
    pub fn get(&self, i: Idx) -> &Block {
        &self.slab[i as usize]
    }

    pub fn get_mut(&mut self, i: Idx) -> &mut Block {
        &mut self.slab[i as usize]
    }

    /// The live (allocated or pending) block at `ptr`.
    pub fn live(&self, ptr: u64) -> Option<Idx> {
        self.live.get(&ptr).copied()
    }

    pub fn set_live(&mut self, i: Idx) {
        let ptr = self.get(i).ptr;
        self.live.insert(ptr, i);
    }

    pub fn unset_live(&mut self, i: Idx) {
        let ptr = self.get(i).ptr;
        self.live.remove(&ptr);
    }

    /// A new free block (not yet in a pool).
    pub fn add(&mut self, block: Block) -> Idx {
        match self.vacant.pop() {
            Some(i) => {
                self.slab[i as usize] = block;
                i
            }
            None => {
                self.slab.push(block);
                (self.slab.len() - 1) as Idx
            }
        }
    }

    /// Forgets block `i` (merged away or released); its slot is reused.
    fn remove(&mut self, i: Idx) {
        self.vacant.push(i);
    }

    /// True for a block that can be reused or merged: not allocated, no pending event.
    pub fn is_free(&self, i: Idx) -> bool {
        let b = self.get(i);
        !b.allocated && b.event_count == 0
    }

    fn pool(&mut self, pool: Pool) -> &mut BTreeMap<PoolKey, Idx> {
        match pool {
            Pool::Small => &mut self.small,
            Pool::Large => &mut self.large,
        }
    }

    /// Caches the free block `i` in its pool.
    pub fn pool_insert(&mut self, i: Idx) {
        let b = &self.slab[i as usize];
        let (key, pool, split, size) = (b.key(), b.pool, b.is_split(), b.size as u64);
        if split {
            self.inactive_split.increase(1);
            self.inactive_split_bytes.increase(size);
        }
        self.pool(pool).insert(key, i);
    }

    /// Takes the free block `i` out of its pool.
    pub fn pool_remove(&mut self, i: Idx) {
        let b = &self.slab[i as usize];
        let (key, pool, split, size) = (b.key(), b.pool, b.is_split(), b.size as u64);
        if split {
            self.inactive_split.decrease(1);
            self.inactive_split_bytes.decrease(size);
        }
        self.pool(pool).remove(&key);
    }

    /// Removes and returns the smallest cached block of `pool` on `stream` holding `size`.
    pub fn take_best_fit(&mut self, pool: Pool, stream: StreamId, size: usize) -> Option<Idx> {
        let (&(s, _, _), &i) = self.pool(pool).range((stream, size, 0)..).next()?;
        if s != stream {
            return None;
        }
        self.pool_remove(i);
        Some(i)
    }

    /// Cuts block `i` (taken out of its pool) to `size` and caches the rest.
    pub fn split(&mut self, i: Idx, size: usize) {
        let b = self.get_mut(i);
        let rest = Block {
            ptr: b.ptr + size as u64,
            size: b.size - size,
            requested: 0,
            stream: b.stream,
            pool: b.pool,
            allocated: false,
            prev: Some(i),
            next: b.next,
            stream_uses: Vec::new(),
            event_count: 0,
        };
        b.size = size;
        let next = rest.next;
        let r = self.add(rest);
        self.get_mut(i).next = Some(r);
        if let Some(n) = next {
            self.get_mut(n).prev = Some(r);
        }
        self.pool_insert(r);
    }

    /// Merges the now-free block `i` with free neighbours and caches the result.
    pub fn release(&mut self, i: Idx) {
        let mut i = i;
        if let Some(p) = self.get(i).prev.filter(|&p| self.is_free(p)) {
            self.pool_remove(p);
            self.absorb(p, i);
            i = p;
        }
        if let Some(n) = self.get(i).next.filter(|&n| self.is_free(n)) {
            self.pool_remove(n);
            self.absorb(i, n);
        }
        self.pool_insert(i);
    }

    /// Block `second` (right after `first` in its segment) becomes part of `first`.
    fn absorb(&mut self, first: Idx, second: Idx) {
        let (size, next) = {
            let s = self.get(second);
            (s.size, s.next)
        };
        let f = self.get_mut(first);
        f.size += size;
        f.next = next;
        if let Some(n) = next {
            self.get_mut(n).prev = Some(first);
        }
        self.remove(second);
    }

    /// Every cached block that is a whole segment, taken out of the pools and the slab:
    /// (address, size) pairs for the raw allocator.
    pub fn take_whole_segments(&mut self) -> Vec<(u64, usize)> {
        let whole: Vec<Idx> = self
            .small
            .values()
            .chain(self.large.values())
            .copied()
            .filter(|&i| !self.get(i).is_split())
            .collect();
        whole
            .into_iter()
            .map(|i| {
                let (ptr, size) = (self.get(i).ptr, self.get(i).size);
                self.pool_remove(i);
                self.remove(i);
                (ptr, size)
            })
            .collect()
    }

    /// Forgets the whole segment `i` (live, not cached) for the no-cache path.
    pub fn drop_segment(&mut self, i: Idx) {
        self.unset_live(i);
        self.remove(i);
    }

    pub fn reset_peaks(&mut self) {
        for s in [&mut self.inactive_split, &mut self.inactive_split_bytes] {
            s.peak = s.current;
        }
    }

    /// Every block in use (not vacant), for invariant checks.
    #[cfg(test)]
    pub fn all(&self) -> Vec<Idx> {
        let vacant: std::collections::HashSet<Idx> = self.vacant.iter().copied().collect();
        (0..self.slab.len() as Idx)
            .filter(|i| !vacant.contains(i))
            .collect()
    }

    /// True when the free block `i` is cached in its pool.
    #[cfg(test)]
    pub fn in_pool(&self, i: Idx) -> bool {
        let b = self.get(i);
        let pool = match b.pool {
            Pool::Small => &self.small,
            Pool::Large => &self.large,
        };
        pool.get(&b.key()) == Some(&i)
    }

    /// Number of cached blocks in the small pool.
    #[cfg(test)]
    pub fn small_len(&self) -> usize {
        self.small.len()
    }
}
