//! The one way the CPU backend allocates a buffer: fallibly.
//!
//! `vec![x; n]`, `Vec::with_capacity(n)` and `collect()` abort the process when the
//! memory is not there (or panic when `n` bytes overflow). Every buffer the backend
//! makes for a result, or for a temporary as large as one, comes from these helpers
//! instead, so a request no memory can satisfy is [`Error::HostOutOfMemory`] naming
//! its size, and the caller can free something and go on.
//!
//! Large buffers are recycled ([`recycle`], called when a tensor's storage is
//! dropped): a fresh multi-megabyte allocation comes from the OS as unmapped pages,
//! and touching them costs a page fault and a page clear each 4 KiB — more than the
//! op that writes them (layer norm's forward+backward at 4096 × 768 spent 3/4 of its
//! time there). A training step asks for the same sizes every step, so it finds them
//! in the [`Pool`].

use crate::{Error, Result};
use parking_lot::Mutex;
use rayon::prelude::*;
use std::any::{Any, TypeId};
use std::sync::OnceLock;

/// An empty vector with room for at least `n` elements (a recycled buffer of up to
/// 1/8 more when the pool has one), or [`Error::HostOutOfMemory`] when the host
/// cannot give it (or its size in bytes does not fit in `usize`).
pub(crate) fn buffer<T: 'static>(n: usize) -> Result<Vec<T>> {
    let v = match pool().and_then(|p| p.lock().take(n)) {
        Some(v) => v,
        None => reserve(n)?,
    };
    counted(v)
}

/// `v`, counted by the profiler as an allocation (a recycled buffer is one too: a
/// tensor's storage, handed out again).
fn counted<T>(v: Vec<T>) -> Result<Vec<T>> {
    if v.capacity() > 0 {
        crate::profiler::alloc(v.capacity() * std::mem::size_of::<T>());
    }
    Ok(v)
}

/// A new allocation for exactly `n` elements. When the host refuses it, the pool's
/// buffers go back to it and the request is tried once more.
fn reserve<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    if v.try_reserve_exact(n).is_err() {
        if let Some(p) = pool() {
            p.lock().clear();
        }
        v.try_reserve_exact(n).map_err(|_| Error::HostOutOfMemory {
            bytes: n.saturating_mul(std::mem::size_of::<T>()),
        })?;
    }
    Ok(v)
}

/// `n` copies of `value` (the fallible `vec![value; n]`).
///
/// A recycled buffer is filled in place. Otherwise the reservation only probes that
/// the memory is there, and `vec!` then allocates it, because for a zero value it asks
/// for zeroed memory (calloc), whose pages the OS maps on first touch: a result buffer
/// that a kernel overwrites costs no extra pass, where `resize` on fresh memory would
/// write every element first (a 1.7× slowdown of dropout).
pub(crate) fn filled<T: Clone + 'static>(n: usize, value: T) -> Result<Vec<T>> {
    let v = match pool().and_then(|p| p.lock().take(n)) {
        Some(mut v) => {
            v.resize(n, value);
            v
        }
        None => {
            drop(reserve::<T>(n)?);
            vec![value; n]
        }
    };
    counted(v)
}

/// Hands a buffer that is no longer needed to the pool (or back to the allocator when
/// it is small or the pool is off or full).
pub(crate) fn recycle<T: Send + 'static>(v: Vec<T>) {
    if v.capacity() > 0 {
        crate::profiler::free(v.capacity() * std::mem::size_of::<T>());
    }
    if let Some(p) = pool() {
        p.lock().put(v);
    }
}

/// Buffers below this size go straight back to malloc, whose free lists serve them
/// without page faults.
const POOL_MIN_BYTES: usize = 64 << 10;

/// The bytes the pool keeps at most unless `KILN_CPU_CACHE_MB` says otherwise.
const POOL_DEFAULT_MB: usize = 1024;

/// The process's pool: `None` when `KILN_CPU_CACHE_MB=0` turned it off.
fn pool() -> Option<&'static Mutex<Pool>> {
    static POOL: OnceLock<Option<Mutex<Pool>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mb = std::env::var("KILN_CPU_CACHE_MB")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(POOL_DEFAULT_MB);
        (mb > 0).then(|| Mutex::new(Pool::new(mb << 20)))
    })
    .as_ref()
}

/// A freed buffer: a `Vec<T>` of some element type, with its capacity in elements and
/// in bytes.
struct Cached {
    element: TypeId,
    capacity: usize,
    bytes: usize,
    buffer: Box<dyn Any + Send>,
}

/// Freed buffers of at least [`POOL_MIN_BYTES`], oldest first, up to `limit` bytes in
/// all (the oldest leave first). A request takes the smallest one of its element type
/// with room for it and at most 1/8 to spare. A training step holds tens of distinct
/// sizes at most, so a linear search is enough.
struct Pool {
    cached: Vec<Cached>,
    bytes: usize,
    limit: usize,
}

impl Pool {
    const fn new(limit: usize) -> Pool {
        Pool {
            cached: Vec::new(),
            bytes: 0,
            limit,
        }
    }

    /// An empty buffer of `T` with room for `n` elements, if one is cached.
    fn take<T: 'static>(&mut self, n: usize) -> Option<Vec<T>> {
        if n.saturating_mul(std::mem::size_of::<T>()) < POOL_MIN_BYTES {
            return None;
        }
        let fits = |c: &Cached| {
            c.element == TypeId::of::<T>() && c.capacity >= n && c.capacity - n <= n / 8
        };
        let (i, _) = self
            .cached
            .iter()
            .enumerate()
            .filter(|(_, c)| fits(c))
            .min_by_key(|(_, c)| c.capacity)?;
        let c = self.cached.remove(i);
        self.bytes -= c.bytes;
        let mut v = *c.buffer.downcast::<Vec<T>>().ok()?;
        v.clear();
        Some(v)
    }

    /// Keeps `v` for reuse when it is large enough and fits under the limit, making
    /// room by dropping the oldest buffers.
    fn put<T: Send + 'static>(&mut self, v: Vec<T>) {
        let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
        if bytes < POOL_MIN_BYTES || bytes > self.limit {
            return;
        }
        let mut evict = 0;
        while self.bytes + bytes > self.limit {
            self.bytes -= self.cached[evict].bytes;
            evict += 1;
        }
        self.cached.drain(..evict);
        self.bytes += bytes;
        self.cached.push(Cached {
            element: TypeId::of::<T>(),
            capacity: v.capacity(),
            bytes,
            buffer: Box::new(v),
        });
    }

    /// Returns every cached buffer to the allocator.
    fn clear(&mut self) {
        self.cached.clear();
        self.bytes = 0;
    }
}

/// The items of an exact-size iterator, in order (the fallible `collect()`).
pub(crate) fn collect<I: ExactSizeIterator>(iter: I) -> Result<Vec<I::Item>>
where
    I::Item: 'static,
{
    let mut v = buffer(iter.len())?;
    v.extend(iter);
    Ok(v)
}

/// The items of an indexed parallel iterator, in order (the fallible parallel
/// `collect()`): the buffer is reserved first, so rayon's `par_extend` only fills it.
pub(crate) fn par_collect<I>(iter: I) -> Result<Vec<I::Item>>
where
    I: IndexedParallelIterator,
    I::Item: Send + 'static,
{
    let mut v = buffer(iter.len())?;
    v.par_extend(iter);
    Ok(v)
}

/// A copy of `src` (the fallible `to_vec()`).
pub(crate) fn copied<T: Clone + 'static>(src: &[T]) -> Result<Vec<T>> {
    let mut v = buffer(src.len())?;
    v.extend_from_slice(src);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request no host can satisfy is an error naming its size, not an abort; one
    /// whose size in bytes overflows `usize` saturates the reported size.
    #[test]
    fn impossible_requests_are_errors() {
        match buffer::<f32>(1 << 60) {
            Err(Error::HostOutOfMemory { bytes }) => assert_eq!(bytes, 1 << 62),
            other => panic!("expected HostOutOfMemory, got {other:?}"),
        }
        assert!(matches!(
            filled(usize::MAX, 0u64),
            Err(Error::HostOutOfMemory { bytes: usize::MAX })
        ));
        assert_eq!(filled(3, 7u8).unwrap(), vec![7, 7, 7]);
        assert_eq!(collect([1, 2].into_iter()).unwrap(), vec![1, 2]);
        assert_eq!(
            par_collect((0..4).into_par_iter()).unwrap(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(copied(&[5i64]).unwrap(), vec![5]);
    }

    /// f32 elements in a buffer twice the pool's threshold.
    const BIG: usize = POOL_MIN_BYTES / 2;

    /// A freed buffer serves the next request of its type that it fits with at most
    /// 1/8 to spare, empty; other types, sizes and small buffers miss.
    #[test]
    fn the_pool_reuses_buffers_of_the_same_type_and_near_size() {
        let mut pool = Pool::new(usize::MAX);
        let v = vec![1f32; BIG];
        let ptr = v.as_ptr();
        pool.put(v);
        assert!(pool.take::<i32>(BIG).is_none(), "another type");
        assert!(pool.take::<f32>(BIG + 1).is_none(), "too small");
        assert!(
            pool.take::<f32>(BIG * 8 / 9 - 1).is_none(),
            "too much to spare"
        );
        let got = pool.take::<f32>(BIG - 3).expect("a near size is served");
        assert_eq!((got.as_ptr(), got.len()), (ptr, 0));
        assert!(pool.take::<f32>(BIG).is_none(), "taken once");
        pool.put(vec![0u8; 100]);
        assert!(
            pool.cached.is_empty() && pool.bytes == 0,
            "small buffers go back"
        );
    }

    /// The smallest fitting buffer is taken; past the limit the oldest leave first.
    #[test]
    fn the_pool_stays_under_its_limit_dropping_the_oldest() {
        let size = BIG * 4;
        let mut pool = Pool::new(2 * size + size / 2);
        let (a, b, c) = (vec![0f32; BIG], vec![0f32; BIG + 2], vec![0f32; BIG + 1]);
        let pc = c.as_ptr();
        pool.put(a);
        pool.put(b);
        assert_eq!(pool.cached.len(), 2);
        pool.put(c);
        assert_eq!(pool.cached.len(), 2, "the oldest left");
        assert!(pool.bytes <= pool.limit);
        let smallest = pool.take::<f32>(BIG).unwrap();
        assert_eq!(smallest.as_ptr(), pc, "smallest fit");
        assert!(
            pool.cached.iter().all(|c| c.capacity != BIG),
            "a was dropped"
        );
        pool.put(vec![0f64; pool.limit]);
        assert!(
            pool.bytes <= pool.limit,
            "a buffer above the limit is not kept"
        );
        pool.clear();
        assert!(pool.cached.is_empty() && pool.bytes == 0);
    }

    /// A recycled buffer's old contents never show: `filled` writes every element and
    /// `buffer` hands it back empty.
    #[test]
    fn recycled_buffers_come_back_filled_or_empty() {
        for _ in 0..4 {
            recycle(vec![7f32; BIG]);
            assert!(filled(BIG, 0f32).unwrap().iter().all(|&x| x == 0.0));
            recycle(vec![7f32; BIG]);
            assert!(buffer::<f32>(BIG).unwrap().is_empty());
        }
    }
}
