//! The caching allocator's own cost, over host memory (no GPU needed): a cached
//! alloc+free pair must stay far below a driver call (issue target: <= 200 ns).

use criterion::{criterion_group, criterion_main, Criterion};
use kiln::internals::{CachingAllocator, HostRawAllocator, StreamId};
use std::hint::black_box;

fn cached_pairs(c: &mut Criterion) {
    let mut group = c.benchmark_group("allocator");
    for (name, bytes) in [("small_4KiB", 4 << 10), ("large_4MiB", 4 << 20)] {
        let mut alloc = CachingAllocator::with_caching(HostRawAllocator::new(), 0, true);
        // Warm the cache and keep a few live blocks so the pools are not trivially empty.
        let keep: Vec<u64> = (0..16)
            .map(|i| {
                alloc
                    .alloc(bytes + i * 512, StreamId(0))
                    .expect("host memory")
            })
            .collect();
        let p = alloc.alloc(bytes, StreamId(0)).expect("host memory");
        alloc.free(p).expect("live block");
        group.bench_function(format!("alloc_free_pair/{name}"), |b| {
            b.iter(|| {
                let p = alloc.alloc(black_box(bytes), StreamId(0)).expect("cached");
                alloc.free(black_box(p)).expect("live block");
            })
        });
        assert_eq!(alloc.raw().alloc_count(), alloc.stats().num_device_alloc);
        for p in keep {
            alloc.free(p).expect("live block");
        }
    }
    // A step of a training loop: eight activations of mixed sizes, then freed.
    let mut alloc = CachingAllocator::with_caching(HostRawAllocator::new(), 0, true);
    let sizes = [
        3 << 10,
        700 << 10,
        4 << 20,
        64,
        12 << 20,
        256 << 10,
        1 << 20,
        9 << 20,
    ];
    group.bench_function("training_step_8_buffers", |b| {
        b.iter(|| {
            let ptrs: Vec<u64> = sizes
                .iter()
                .map(|&n| alloc.alloc(n, StreamId(0)).expect("cached"))
                .collect();
            for p in ptrs.into_iter().rev() {
                alloc.free(p).expect("live block");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, cached_pairs);
criterion_main!(benches);
