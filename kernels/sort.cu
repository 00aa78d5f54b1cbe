// Sorting along one dim of a contiguous tensor viewed as (outer, len, inner): every
// line (o, i) is sorted by a bitonic network over the line padded to a power of two
// `padded`, keeping the first `k` elements (sort: k = len; topk: k < len) and their
// positions in the line (int64).
//
// The order is a total one, so the network (which is not stable by itself) gives the
// stable sort's result: values ascending (descending), NaN after (before) every
// number as PyTorch orders it, equal values (and NaNs, and -0.0 with 0.0) by position;
// padding (positions >= len) after everything. The CPU backend sorts by the same
// order, so both agree exactly.
//
// Lines of up to SORT_TILE (padded) elements are sorted by one block in shared memory
// (sort_tile, one launch). Longer lines are sorted tile by tile in shared memory into
// the network's alternating runs (sort_tile into the scratch `keys`/`pos`), then each
// merge stage `size` = 2·SORT_TILE .. padded runs its steps with stride >= SORT_TILE
// over global memory (sort_step, a thread per pair) and its steps below SORT_TILE in
// shared memory (sort_merge, a block per tile), which writes the result after the
// last stage. Pair `e` of a step of stride s compares positions lo = 2s·(e / s) + e % s
// and lo + s, into ascending order when (lo & size) == 0 (the bitonic network's
// direction, read from the position in the whole line, so tiles sorted separately are
// the network's runs).
//
// sort_scatter is the gradient's scatter through the indices: gx[o, idx, i] = g[o, j, i].
// A sort's indices are distinct in each line, so every write has one writer: no
// atomics, deterministic.
#include "common.cuh"

// Elements of a line one block sorts in shared memory (a power of two).
#define SORT_TILE 2048
// Most threads of a block of sort_tile and sort_merge (each handles tile/2/threads pairs).
#define SORT_THREADS 512

// True when (a, ia) comes before (b, ib) in a sorted line of `len` elements.
template <typename C>
__device__ __forceinline__ bool sort_before(C a, int64_t ia, C b, int64_t ib, int64_t len,
                                            uint32_t desc) {
    if (ia >= len || ib >= len) return ia < ib; // padding, after every element
    bool an = a != a, bn = b != b;
    if (an || bn) return an && bn ? ia < ib : (desc ? an : bn);
    if (a == b) return ia < ib;
    return desc ? a > b : a < b;
}

// Orders positions lo and hi (lo < hi) of `keys`/`pos` ascending (`up`) or descending
// under sort_before.
template <typename T>
__device__ __forceinline__ void sort_exchange(T *keys, int64_t *pos, uint64_t lo, uint64_t hi,
                                              bool up, int64_t len, uint32_t desc) {
    T a = keys[lo], b = keys[hi];
    int64_t ia = pos[lo], ib = pos[hi];
    bool swap = up ? sort_before(widen(b), ib, widen(a), ia, len, desc)
                   : sort_before(widen(a), ia, widen(b), ib, len, desc);
    if (swap) {
        keys[lo] = b;
        keys[hi] = a;
        pos[lo] = ib;
        pos[hi] = ia;
    }
}

// One step (stage `size`, stride `stride`) of the network over a tile of `tile`
// elements in shared memory starting at position `start` of its line; the block's
// threads share the tile/2 pairs. Ends at a barrier.
template <typename T>
__device__ __forceinline__ void sort_tile_step(T *keys, int64_t *pos, uint64_t tile,
                                               uint64_t start, uint64_t size, uint64_t stride,
                                               int64_t len, uint32_t desc) {
    for (uint64_t e = threadIdx.x; e < tile / 2; e += blockDim.x) {
        uint64_t lo = (e / stride) * 2 * stride + e % stride;
        sort_exchange(keys, pos, lo, lo + stride, ((start + lo) & size) == 0, len, desc);
    }
    __syncthreads();
}

// The shared tile of a block: `tile` positions, then `tile` keys.
template <typename T> __device__ __forceinline__ T *tile_keys(int64_t *smem, uint64_t tile) {
    return (T *)(smem + tile);
}

// Writes a sorted tile: its elements among the first `k` of the line to the outputs
// (vals, idx: (outer, k, inner)) when `last`, else all of it back to the scratch line.
template <typename T>
__device__ __forceinline__ void sort_store(const T *keys, const int64_t *pos, uint64_t tile,
                                           uint64_t start, bool last, uint64_t line,
                                           uint64_t inner, uint64_t k, uint64_t padded,
                                           T *gkeys, int64_t *gpos, T *vals, int64_t *idx) {
    uint64_t o = line / inner, i = line - o * inner;
    for (uint64_t e = threadIdx.x; e < tile; e += blockDim.x) {
        uint64_t j = start + e;
        if (last) {
            if (j < k) {
                vals[(o * k + j) * inner + i] = keys[e];
                idx[(o * k + j) * inner + i] = pos[e];
            }
        } else {
            gkeys[line * padded + j] = keys[e];
            gpos[line * padded + j] = pos[e];
        }
    }
    __syncthreads(); // the next tile of this block overwrites the shared memory
}

// Sorts every tile of every line of x in shared memory: the whole sort when the line
// is one tile (padded <= SORT_TILE), else the runs of the first SORT_TILE-wide stages.
template <typename T>
__device__ __forceinline__ void sort_tile_impl(uint64_t outer, uint64_t len, uint64_t inner,
                                               uint64_t padded, uint64_t tile, const T *x,
                                               T *gkeys, int64_t *gpos, T *vals, int64_t *idx,
                                               uint64_t k, uint32_t desc) {
    KILN_DYNAMIC_SHARED(int64_t, sort_smem);
    int64_t *pos = sort_smem;
    T *keys = tile_keys<T>(sort_smem, tile);
    uint64_t tiles = padded / tile, lines = outer * inner;
    for (uint64_t b = blockIdx.x; b < lines * tiles; b += gridDim.x) {
        uint64_t line = b / tiles, start = (b - line * tiles) * tile;
        uint64_t o = line / inner, i = line - o * inner;
        const T *src = x + o * len * inner + i;
        for (uint64_t e = threadIdx.x; e < tile; e += blockDim.x) {
            uint64_t j = start + e;
            pos[e] = (int64_t)j;
            keys[e] = j < len ? src[j * inner] : from_f64<T>(0.0);
        }
        __syncthreads();
        for (uint64_t size = 2; size <= tile; size *= 2) {
            for (uint64_t stride = size / 2; stride > 0; stride /= 2) {
                sort_tile_step(keys, pos, tile, start, size, stride, (int64_t)len, desc);
            }
        }
        sort_store(keys, pos, tile, start, tiles == 1, line, inner, k, padded, gkeys, gpos,
                   vals, idx);
    }
}

// The steps of stage `size` with stride `stride` >= SORT_TILE, on the scratch lines: a
// thread per pair.
template <typename T>
__device__ __forceinline__ void sort_step_impl(uint64_t lines, uint64_t len, uint64_t padded,
                                               uint64_t size, uint64_t stride, T *gkeys,
                                               int64_t *gpos, uint32_t desc) {
    uint64_t half = padded / 2;
    KILN_FOR_EACH(p, lines * half) {
        uint64_t line = p / half, e = p - line * half;
        uint64_t lo = (e / stride) * 2 * stride + e % stride;
        sort_exchange(gkeys + line * padded, gpos + line * padded, lo, lo + stride,
                      (lo & size) == 0, (int64_t)len, desc);
    }
}

// The steps of stage `size` with strides below SORT_TILE: a block per tile of the
// scratch lines, in shared memory; the last stage (size == padded) writes the outputs.
template <typename T>
__device__ __forceinline__ void sort_merge_impl(uint64_t outer, uint64_t len, uint64_t inner,
                                                uint64_t padded, uint64_t size, T *gkeys,
                                                int64_t *gpos, T *vals, int64_t *idx,
                                                uint64_t k, uint32_t desc) {
    KILN_DYNAMIC_SHARED(int64_t, sort_smem);
    const uint64_t tile = SORT_TILE;
    int64_t *pos = sort_smem;
    T *keys = tile_keys<T>(sort_smem, tile);
    uint64_t tiles = padded / tile, lines = outer * inner;
    for (uint64_t b = blockIdx.x; b < lines * tiles; b += gridDim.x) {
        uint64_t line = b / tiles, start = (b - line * tiles) * tile;
        for (uint64_t e = threadIdx.x; e < tile; e += blockDim.x) {
            keys[e] = gkeys[line * padded + start + e];
            pos[e] = gpos[line * padded + start + e];
        }
        __syncthreads();
        for (uint64_t stride = tile / 2; stride > 0; stride /= 2) {
            sort_tile_step(keys, pos, tile, start, size, stride, (int64_t)len, desc);
        }
        sort_store(keys, pos, tile, start, size == padded, line, inner, k, padded, gkeys,
                   gpos, vals, idx);
    }
}

// gx[o, idx[o, j, i], i] = g[o, j, i] for idx and g contiguous (outer, k, inner) and gx
// contiguous (outer, len, inner); an index outside [0, len) writes nothing.
template <typename T>
__device__ __forceinline__ void sort_scatter_impl(uint64_t outer, uint64_t k, uint64_t len,
                                                  uint64_t inner, const int64_t *idx,
                                                  const T *g, T *gx) {
    KILN_FOR_EACH(n, outer * k * inner) {
        uint64_t o = n / (k * inner), i = n % inner;
        int64_t j = idx[n];
        if (j >= 0 && (uint64_t)j < len) {
            gx[(o * len + (uint64_t)j) * inner + i] = g[n];
        }
    }
}

extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_tile_f32(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t tile, const float *x, float *gkeys, int64_t *gpos, float *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_tile_impl(outer, len, inner, padded, tile, x, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_tile_f64(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t tile, const double *x, double *gkeys, int64_t *gpos, double *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_tile_impl(outer, len, inner, padded, tile, x, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_tile_f16(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t tile, const f16 *x, f16 *gkeys, int64_t *gpos, f16 *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_tile_impl(outer, len, inner, padded, tile, x, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_tile_bf16(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t tile, const bf16 *x, bf16 *gkeys, int64_t *gpos, bf16 *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_tile_impl(outer, len, inner, padded, tile, x, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_tile_i64(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t tile, const int64_t *x, int64_t *gkeys, int64_t *gpos, int64_t *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_tile_impl(outer, len, inner, padded, tile, x, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_tile_u8(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t tile, const uint8_t *x, uint8_t *gkeys, int64_t *gpos, uint8_t *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_tile_impl(outer, len, inner, padded, tile, x, gkeys, gpos, vals, idx, k, desc); }

extern "C" __global__ void sort_step_f32(uint64_t lines, uint64_t len, uint64_t padded, uint64_t size, uint64_t stride, float *gkeys, int64_t *gpos, uint32_t desc) { sort_step_impl(lines, len, padded, size, stride, gkeys, gpos, desc); }
extern "C" __global__ void sort_step_f64(uint64_t lines, uint64_t len, uint64_t padded, uint64_t size, uint64_t stride, double *gkeys, int64_t *gpos, uint32_t desc) { sort_step_impl(lines, len, padded, size, stride, gkeys, gpos, desc); }
extern "C" __global__ void sort_step_f16(uint64_t lines, uint64_t len, uint64_t padded, uint64_t size, uint64_t stride, f16 *gkeys, int64_t *gpos, uint32_t desc) { sort_step_impl(lines, len, padded, size, stride, gkeys, gpos, desc); }
extern "C" __global__ void sort_step_bf16(uint64_t lines, uint64_t len, uint64_t padded, uint64_t size, uint64_t stride, bf16 *gkeys, int64_t *gpos, uint32_t desc) { sort_step_impl(lines, len, padded, size, stride, gkeys, gpos, desc); }
extern "C" __global__ void sort_step_i64(uint64_t lines, uint64_t len, uint64_t padded, uint64_t size, uint64_t stride, int64_t *gkeys, int64_t *gpos, uint32_t desc) { sort_step_impl(lines, len, padded, size, stride, gkeys, gpos, desc); }
extern "C" __global__ void sort_step_u8(uint64_t lines, uint64_t len, uint64_t padded, uint64_t size, uint64_t stride, uint8_t *gkeys, int64_t *gpos, uint32_t desc) { sort_step_impl(lines, len, padded, size, stride, gkeys, gpos, desc); }

extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_merge_f32(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t size, float *gkeys, int64_t *gpos, float *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_merge_impl(outer, len, inner, padded, size, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_merge_f64(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t size, double *gkeys, int64_t *gpos, double *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_merge_impl(outer, len, inner, padded, size, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_merge_f16(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t size, f16 *gkeys, int64_t *gpos, f16 *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_merge_impl(outer, len, inner, padded, size, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_merge_bf16(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t size, bf16 *gkeys, int64_t *gpos, bf16 *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_merge_impl(outer, len, inner, padded, size, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_merge_i64(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t size, int64_t *gkeys, int64_t *gpos, int64_t *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_merge_impl(outer, len, inner, padded, size, gkeys, gpos, vals, idx, k, desc); }
extern "C" __global__ void __launch_bounds__(SORT_THREADS) sort_merge_u8(uint64_t outer, uint64_t len, uint64_t inner, uint64_t padded, uint64_t size, uint8_t *gkeys, int64_t *gpos, uint8_t *vals, int64_t *idx, uint64_t k, uint32_t desc) { sort_merge_impl(outer, len, inner, padded, size, gkeys, gpos, vals, idx, k, desc); }

extern "C" __global__ void sort_scatter_f32(uint64_t outer, uint64_t k, uint64_t len, uint64_t inner, const int64_t *idx, const float *g, float *gx) { sort_scatter_impl(outer, k, len, inner, idx, g, gx); }
extern "C" __global__ void sort_scatter_f64(uint64_t outer, uint64_t k, uint64_t len, uint64_t inner, const int64_t *idx, const double *g, double *gx) { sort_scatter_impl(outer, k, len, inner, idx, g, gx); }
extern "C" __global__ void sort_scatter_f16(uint64_t outer, uint64_t k, uint64_t len, uint64_t inner, const int64_t *idx, const f16 *g, f16 *gx) { sort_scatter_impl(outer, k, len, inner, idx, g, gx); }
extern "C" __global__ void sort_scatter_bf16(uint64_t outer, uint64_t k, uint64_t len, uint64_t inner, const int64_t *idx, const bf16 *g, bf16 *gx) { sort_scatter_impl(outer, k, len, inner, idx, g, gx); }
