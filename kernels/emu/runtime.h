// The emulator's scheduler interface, shared by host_emu.h (what kernel code calls) and
// runtime.cpp (the scheduler). Each CUDA thread of a block is a fiber; blocks run one
// after another. A fiber runs until it reaches a barrier (__syncthreads: the whole
// block; __syncwarp and every warp-collective intrinsic: the lanes of its mask), so a
// kernel's threads interleave only where the CUDA model lets them.
#pragma once

#include <stddef.h>
#include <stdint.h>

struct uint3 {
    unsigned int x, y, z;
};

struct dim3 {
    unsigned int x, y, z;
};

namespace kiln_emu {

// The thread now running, and the block it belongs to (one launch at a time).
struct ThreadState {
    uint3 idx;
    unsigned int lane; // linear index % 32
    unsigned int warp; // linear index / 32
};

extern ThreadState *g_thread;
extern uint3 g_block_idx;
extern dim3 g_block_dim;
extern dim3 g_grid_dim;

// Waits until every thread of the block has arrived.
void sync_block();

// Waits until every lane of `mask` in this thread's warp has arrived at a warp
// barrier with the same mask; the calling lane must be in `mask`.
void sync_warp(unsigned int mask);

// Warp all-gather: publishes `bytes` (at most kMaxExchange) of this lane's data and,
// once every lane of `mask` has published, fills all[0 .. 32 * bytes) with lane i's data
// at all + i * bytes for each lane i that published (the rest is unspecified). Returns
// the mask of those lanes: `mask` without the lanes past the end of a partial warp.
const int kMaxExchange = 64;
unsigned int warp_all_gather(unsigned int mask, const void *mine, int bytes, void *all);

// Stops the launch with an error that names the kernel and this thread.
[[noreturn]] void fail(const char *what);

// The block's dynamic shared memory (`shared_bytes` of the launch, guarded at its end).
void *dynamic_shared();

// The block's static shared memory of the declaration keyed by `key` (`bytes`, aligned
// to 16): the same for every thread of the launch, poisoned before each block.
void *static_shared(const void *key, size_t bytes);

// Whether [p, p + bytes) lies in the block's shared memory (static or dynamic): the
// state space that ldmatrix and cp.async's destination require.
bool is_shared(const void *p, size_t bytes);

} // namespace kiln_emu
