//! The one way the CPU backend allocates a buffer: fallibly.
//!
//! `vec![x; n]`, `Vec::with_capacity(n)` and `collect()` abort the process when the
//! memory is not there (or panic when `n` bytes overflow). Every buffer the backend
//! makes for a result, or for a temporary as large as one, comes from these helpers
//! instead, so a request no memory can satisfy is [`Error::HostOutOfMemory`] naming
//! its size, and the caller can free something and go on.

use crate::{Error, Result};
use rayon::prelude::*;

/// An empty vector with room for exactly `n` elements, or
/// [`Error::HostOutOfMemory`] when the host cannot give it (or its size in bytes
/// does not fit in `usize`).
pub(crate) fn buffer<T>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| Error::HostOutOfMemory {
        bytes: n.saturating_mul(std::mem::size_of::<T>()),
    })?;
    Ok(v)
}

/// `n` copies of `value` (the fallible `vec![value; n]`).
///
/// The reservation only probes that the memory is there; `vec!` then allocates it,
/// because for a zero value it asks for zeroed memory (calloc), whose pages the OS
/// maps on first touch: a result buffer that a kernel overwrites costs no extra pass,
/// where `resize` would write every element first (a 1.7× slowdown of dropout).
pub(crate) fn filled<T: Clone>(n: usize, value: T) -> Result<Vec<T>> {
    drop(buffer::<T>(n)?);
    Ok(vec![value; n])
}

/// The items of an exact-size iterator, in order (the fallible `collect()`).
pub(crate) fn collect<I: ExactSizeIterator>(iter: I) -> Result<Vec<I::Item>> {
    let mut v = buffer(iter.len())?;
    v.extend(iter);
    Ok(v)
}

/// The items of an indexed parallel iterator, in order (the fallible parallel
/// `collect()`): the buffer is reserved first, so rayon's `par_extend` only fills it.
pub(crate) fn par_collect<I>(iter: I) -> Result<Vec<I::Item>>
where
    I: IndexedParallelIterator,
    I::Item: Send,
{
    let mut v = buffer(iter.len())?;
    v.par_extend(iter);
    Ok(v)
}

/// A copy of `src` (the fallible `to_vec()`).
pub(crate) fn copied<T: Clone>(src: &[T]) -> Result<Vec<T>> {
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
}
