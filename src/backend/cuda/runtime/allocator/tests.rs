//! The caching logic, driven by host memory: sizes, splitting, coalescing, streams,
//! events, the out-of-memory retry, statistics and the steady state.

use super::*;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;
const S0: StreamId = StreamId(0);
const S1: StreamId = StreamId(1);

fn caching(raw: HostRawAllocator) -> CachingAllocator<HostRawAllocator> {
    CachingAllocator::with_caching(raw, 0, true)
}

/// Structural invariants: segments are address-contiguous lists, statistics agree with
/// the blocks, the pools hold exactly the reusable blocks, and no two free neighbours
/// were left unmerged.
fn check_invariants(a: &CachingAllocator<HostRawAllocator>) {
    let (mut reserved, mut allocated, mut segments) = (0u64, 0u64, 0u64);
    let (mut split_free, mut split_free_bytes) = (0u64, 0u64);
    let blocks = &a.blocks;
    for i in blocks.all() {
        let b = blocks.get(i);
        if b.allocated {
            allocated += b.size as u64;
            assert_eq!(
                blocks.live(b.ptr),
                Some(i),
                "allocated blocks are found by address"
            );
        }
        if let Some(n) = b.next {
            assert_eq!(
                b.ptr + b.size as u64,
                blocks.get(n).ptr,
                "segment blocks are contiguous"
            );
            assert_eq!(blocks.get(n).prev, Some(i));
            assert!(
                !(blocks.is_free(i) && blocks.is_free(n)),
                "free neighbours merged"
            );
        }
        assert_eq!(
            blocks.in_pool(i),
            blocks.is_free(i),
            "pool holds exactly the free blocks"
        );
        if blocks.is_free(i) && b.is_split() {
            split_free += 1;
            split_free_bytes += b.size as u64;
        }
        if b.prev.is_none() {
            segments += 1;
            let mut at = Some(i);
            while let Some(j) = at {
                reserved += blocks.get(j).size as u64;
                at = blocks.get(j).next;
            }
        }
    }
    let s = a.stats();
    assert_eq!(s.reserved_bytes.current, reserved);
    assert_eq!(s.allocated_bytes.current, allocated);
    assert_eq!(s.segment.current, segments);
    assert_eq!(s.inactive_split.current, split_free);
    assert_eq!(s.inactive_split_bytes.current, split_free_bytes);
    assert_eq!(a.raw().live_bytes() as u64, reserved);
}

#[test]
fn sizes_round_like_pytorch() {
    assert_eq!(round_size(0), Some(512));
    assert_eq!(round_size(1), Some(512));
    assert_eq!(round_size(512), Some(512));
    assert_eq!(round_size(513), Some(1024));
    assert_eq!(round_size(usize::MAX), None);
    assert_eq!(segment_size(512), Some(2 * MIB));
    assert_eq!(segment_size(MIB), Some(2 * MIB));
    assert_eq!(segment_size(MIB + 512), Some(20 * MIB));
    assert_eq!(segment_size(10 * MIB - 512), Some(20 * MIB));
    assert_eq!(segment_size(10 * MIB), Some(10 * MIB));
    assert_eq!(segment_size(11 * MIB), Some(12 * MIB));
}

#[test]
fn small_requests_share_a_two_mib_segment() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(1000, S0).unwrap();
    let q = a.alloc(100, S0).unwrap();
    assert_eq!(
        q,
        p + 1024,
        "the second block is split off the first segment"
    );
    assert_eq!(a.allocation_size(p), Some(1024));
    assert_eq!(a.allocation_size(q), Some(512));
    assert_eq!(a.raw().alloc_count(), 1);
    let s = a.stats();
    assert_eq!(s.reserved_bytes.current, 2 * MIB as u64);
    assert_eq!(s.allocated_bytes.current, 1536);
    assert_eq!(s.requested_bytes.current, 1100);
    assert_eq!((s.allocation.current, s.segment.current), (2, 1));
    assert_eq!(
        s.inactive_split.current, 1,
        "the segment's tail is a free split block"
    );
    check_invariants(&a);
}

#[test]
fn large_requests_follow_the_segment_rules() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(3 * MIB, S0).unwrap();
    assert_eq!(a.stats().reserved_bytes.current, 20 * MIB as u64);
    assert_eq!(
        a.allocation_size(p),
        Some(3 * MIB),
        "17 MiB > 1 MiB remain: split"
    );
    // A request of >= 10 MiB gets its own 2 MiB-rounded segment.
    let q = a.alloc(19 * MIB + 512 * KIB, S0).unwrap();
    assert_eq!(a.stats().reserved_bytes.current, 40 * MIB as u64);
    assert_eq!(
        a.allocation_size(q),
        Some(20 * MIB),
        "0.5 MiB remain: not split"
    );
    // 16.5 MiB of the first segment's 17 MiB tail: 0.5 MiB would remain, so no split.
    let r = a.alloc(16 * MIB + 512 * KIB, S0).unwrap();
    assert_eq!(r, p + 3 * MIB as u64);
    assert_eq!(a.allocation_size(r), Some(17 * MIB));
    assert_eq!(a.raw().alloc_count(), 2);
    check_invariants(&a);
}

#[test]
fn small_split_keeps_remainders_of_at_least_512_bytes() {
    let mut b = caching(HostRawAllocator::new());
    let q = b.alloc(MIB, S0).unwrap();
    let r = b.alloc(MIB - 512, S0).unwrap();
    let t = b.alloc(512, S0).unwrap();
    assert_eq!((r, t), (q + MIB as u64, q + 2 * MIB as u64 - 512));
    assert_eq!(
        b.raw().alloc_count(),
        1,
        "three blocks fill one 2 MiB segment exactly"
    );
    check_invariants(&b);
}

#[test]
fn best_fit_takes_the_smallest_block_that_fits() {
    let mut a = caching(HostRawAllocator::new());
    let blocks: Vec<u64> = [4 * KIB, KIB, 8 * KIB, 2 * KIB, 16 * KIB]
        .iter()
        .map(|&n| a.alloc(n, S0).unwrap())
        .collect();
    // Free 4K and 8K (not neighbours: 1K, 2K and 16K stay live).
    for &i in &[0, 2] {
        a.free(blocks[i]).unwrap();
    }
    let p = a.alloc(3 * KIB, S0).unwrap();
    assert_eq!(
        p, blocks[0],
        "4 KiB is the smallest free block holding 3 KiB"
    );
    check_invariants(&a);
}

#[test]
fn freed_neighbours_coalesce() {
    let mut a = caching(HostRawAllocator::new());
    let ptrs: Vec<u64> = (0..4).map(|_| a.alloc(4 * KIB, S0).unwrap()).collect();
    a.free(ptrs[0]).unwrap();
    a.free(ptrs[2]).unwrap();
    check_invariants(&a);
    assert_eq!(
        a.stats().inactive_split.current,
        3,
        "two holes and the tail"
    );
    a.free(ptrs[1]).unwrap(); // joins both holes
    check_invariants(&a);
    assert_eq!(
        a.stats().inactive_split.current,
        2,
        "one 12 KiB hole and the tail"
    );
    a.free(ptrs[3]).unwrap();
    check_invariants(&a);
    let s = a.stats();
    assert_eq!(
        s.inactive_split.current, 0,
        "the whole segment is one block again"
    );
    assert_eq!(a.blocks.small_len(), 1);
    a.empty_cache().unwrap();
    assert_eq!(a.raw().free_count(), 1);
    assert_eq!(a.stats().reserved_bytes.current, 0);
    check_invariants(&a);
}

#[test]
fn blocks_are_reused_only_on_their_stream() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(4 * KIB, S0).unwrap();
    a.free(p).unwrap();
    let q = a.alloc(4 * KIB, S1).unwrap();
    assert_ne!(q, p);
    assert_eq!(a.raw().alloc_count(), 2, "stream 1 gets its own segment");
    let r = a.alloc(4 * KIB, S0).unwrap();
    assert_eq!(r, p, "stream 0 reuses its block");
    check_invariants(&a);
}

#[test]
fn a_block_used_on_another_stream_waits_for_its_event() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(64 * KIB, S0).unwrap();
    a.raw_mut().set_busy(S1);
    a.record_stream(p, S1).unwrap();
    a.free(p).unwrap();
    let s = a.stats();
    assert_eq!(s.allocated_bytes.current, 0);
    assert_eq!(
        s.active_bytes.current,
        64 * KIB as u64,
        "still active until stream 1 is done"
    );
    let q = a.alloc(64 * KIB, S0).unwrap();
    assert_ne!(q, p, "not reused while stream 1 may still read it");
    a.free(q).unwrap();
    a.raw_mut().finish_stream(S1);
    let r = a.alloc(64 * KIB, S0).unwrap();
    assert_eq!(r, p, "reused once the event completed");
    assert_eq!(a.raw().live_events(), 0, "the event was destroyed");
    check_invariants(&a);
}

#[test]
fn empty_cache_waits_for_pending_events() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(64 * KIB, S0).unwrap();
    a.raw_mut().set_busy(S1);
    a.record_stream(p, S1).unwrap();
    a.free(p).unwrap();
    a.empty_cache().unwrap();
    assert_eq!(a.stats().reserved_bytes.current, 0);
    assert_eq!(a.stats().active.current, 0);
    assert_eq!(a.raw().live_events(), 0);
    check_invariants(&a);
}

#[test]
fn out_of_memory_frees_the_cache_and_retries_once() {
    let mut a = caching(HostRawAllocator::with_capacity(21 * MIB));
    let big = a.alloc(3 * MIB, S0).unwrap(); // a 20 MiB segment
    a.free(big).unwrap();
    let small = a.alloc(KIB, S0).unwrap(); // needs 2 MiB more: 22 > 21 MiB
    let s = a.stats();
    assert_eq!(s.num_alloc_retries, 1);
    assert_eq!(s.num_ooms, 0);
    assert_eq!(s.num_device_free, 1, "the cached 20 MiB segment went back");
    assert_eq!(s.reserved_bytes.current, 2 * MIB as u64);
    check_invariants(&a);

    let err = a.alloc(30 * MIB, S0).unwrap_err();
    match err {
        Error::CudaOutOfMemory {
            ordinal,
            requested,
            allocated,
            reserved,
            free,
            total,
        } => {
            assert_eq!((ordinal, requested), (0, 30 * MIB));
            assert_eq!((allocated, reserved), (KIB, 2 * MIB));
            assert_eq!((free, total), (19 * MIB, 21 * MIB));
        }
        other => panic!("expected CudaOutOfMemory, got {other}"),
    }
    let s = a.stats();
    assert_eq!((s.num_alloc_retries, s.num_ooms), (2, 1));
    assert!(
        a.allocation_size(small).is_some(),
        "a live block survives the retry"
    );
    check_invariants(&a);
}

#[test]
fn split_segments_with_live_blocks_are_not_released() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(KIB, S0).unwrap();
    let q = a.alloc(KIB, S0).unwrap();
    a.free(q).unwrap();
    a.empty_cache().unwrap();
    assert_eq!(a.stats().reserved_bytes.current, 2 * MIB as u64);
    a.free(p).unwrap();
    a.empty_cache().unwrap();
    assert_eq!(a.stats().reserved_bytes.current, 0);
    assert_eq!(a.stats().num_device_free, 1);
    check_invariants(&a);
}

#[test]
fn no_cache_mode_goes_to_the_raw_allocator_every_time() {
    let mut a = CachingAllocator::with_caching(HostRawAllocator::new(), 0, false);
    assert!(!a.is_caching());
    for _ in 0..3 {
        let p = a.alloc(1000, S0).unwrap();
        assert_eq!(
            a.allocation_size(p),
            Some(1000),
            "no segment: exactly the requested size"
        );
        a.free(p).unwrap();
    }
    let s = a.stats();
    assert_eq!((s.num_device_alloc, s.num_device_free), (3, 3));
    assert_eq!(a.raw().live_bytes(), 0);
    assert_eq!((s.reserved_bytes.current, s.active.current), (0, 0));
    assert!(
        a.raw().sync_count() >= 3,
        "each free waits for the device first"
    );
}

#[test]
fn bad_frees_are_errors() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(KIB, S0).unwrap();
    assert!(a.free(p + 512).is_err(), "not the start of an allocation");
    a.free(p).unwrap();
    assert!(a.free(p).is_err(), "double free");
    assert!(a.record_stream(p, S1).is_err());
    check_invariants(&a);
}

#[test]
fn peaks_reset_to_current() {
    let mut a = caching(HostRawAllocator::new());
    let p = a.alloc(100 * KIB, S0).unwrap();
    let q = a.alloc(100 * KIB, S0).unwrap();
    a.free(q).unwrap();
    assert_eq!(a.stats().allocated_bytes.peak, 200 * KIB as u64);
    a.reset_peak_stats();
    assert_eq!(a.stats().allocated_bytes.peak, 100 * KIB as u64);
    a.free(p).unwrap();
    assert_eq!(a.stats().allocated_bytes.freed, 200 * KIB as u64);
}

/// A training-loop-like pattern (activations of several sizes, small and large, freed in
/// another order): after the first iteration, no raw allocation happens again.
#[test]
fn steady_state_needs_no_raw_allocations() {
    let mut a = caching(HostRawAllocator::new());
    let sizes = [
        3 * KIB,
        700 * KIB,
        4 * MIB,
        64,
        12 * MIB + 5,
        256 * KIB,
        MIB + 1,
        40,
        9 * MIB,
    ];
    let mut after_warmup = None;
    for iter in 0..50 {
        let ptrs: Vec<u64> = sizes.iter().map(|&n| a.alloc(n, S0).unwrap()).collect();
        // Odd positions first, then even ones: holes form and then merge.
        for &p in ptrs.iter().skip(1).step_by(2).chain(ptrs.iter().step_by(2)) {
            a.free(p).unwrap();
        }
        if iter == 0 {
            after_warmup = Some(a.raw().alloc_count());
        }
    }
    assert_eq!(Some(a.raw().alloc_count()), after_warmup);
    assert_eq!(a.stats().allocated_bytes.current, 0);
    check_invariants(&a);
}

/// Random allocations and frees on two streams keep every invariant, and live blocks
/// never overlap.
#[test]
fn random_traffic_keeps_invariants() {
    let mut a = caching(HostRawAllocator::with_capacity(96 * MIB));
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut live: Vec<(u64, usize)> = Vec::new();
    for step in 0..3000 {
        let r = next();
        if live.is_empty() || r % 3 != 0 {
            let size = match r % 10 {
                0..=5 => (r >> 8) as usize % (64 * KIB) + 1,
                6..=8 => (r >> 8) as usize % (2 * MIB) + 1,
                _ => (r >> 8) as usize % (24 * MIB) + 1,
            };
            let stream = StreamId((r >> 40) % 2);
            match a.alloc(size, stream) {
                Ok(p) => live.push((p, a.allocation_size(p).unwrap())),
                Err(Error::CudaOutOfMemory { .. }) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        } else {
            let (p, _) = live.swap_remove((r >> 8) as usize % live.len());
            a.free(p).unwrap();
        }
        if step % 100 == 0 {
            check_invariants(&a);
            let mut sorted = live.clone();
            sorted.sort();
            for w in sorted.windows(2) {
                assert!(w[0].0 + w[0].1 as u64 <= w[1].0, "live blocks overlap");
            }
        }
    }
    for (p, _) in live {
        a.free(p).unwrap();
    }
    a.empty_cache().unwrap();
    check_invariants(&a);
    assert_eq!(a.raw().live_bytes(), 0);
    assert_eq!(a.stats().active.current, 0);
}
