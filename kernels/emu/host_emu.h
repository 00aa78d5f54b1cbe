// CUDA device code compiled for the host: included (by the build's generated wrapper)
// before each `kernels/*.cu` when kiln is built with the `cuda-emulator` feature.
//
// It supplies what kernel code uses from CUDA: the qualifiers, the built-in index
// variables (per thread, set by the scheduler in runtime.cpp), vector types, __half and
// __nv_bfloat16 (half.h), math and integer intrinsics, atomics, block and warp barriers,
// warp shuffles and votes (lanes exchange data through the scheduler), and WMMA
// fragments (wmma.h) and the mma.sync / ldmatrix / cp.async instructions of
// kernels/mma.cuh (mma.h). `__CUDA_ARCH__` is 800, the architecture the PTX targets.
//
// Shared memory (`KILN_SHARED`, `KILN_DYNAMIC_SHARED` from common.cuh) is one arena per
// launch, used by the block now running, and filled with 0xFF bytes (NaN, -1) before
// each block starts so a kernel that reads shared memory no thread of its block wrote
// sees garbage, not a plausible value left over from another block. A `KILN_SHARED`
// declaration is a reference into the arena, at the slot its `static` key gets on the
// launch's first call: one per declaration, per template instantiation too (GCC drops
// a `section` attribute on a static of a template instantiation, which is why shared
// memory is not a `static` here).
#pragma once

#define KILN_HOST_EMU 1
#define __CUDA_ARCH__ 800

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "half.h"
#include "runtime.h"

// ---- Qualifiers.
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define KILN_SHARED(T, name, dims)                                                            \
    static char name##_kiln_slot;                                                            \
    T(&name) dims = *reinterpret_cast<T(*) dims>(                                            \
        kiln_emu::static_shared(&name##_kiln_slot, sizeof(T dims)))
#define KILN_DYNAMIC_SHARED(T, name) T *name = (T *)kiln_emu::dynamic_shared()

// ---- Built-in variables.
#define threadIdx (kiln_emu::g_thread->idx)
#define blockIdx (kiln_emu::g_block_idx)
#define blockDim (kiln_emu::g_block_dim)
#define gridDim (kiln_emu::g_grid_dim)
#define warpSize 32

// ---- Vector types.
struct __align__(8) uint2 { unsigned int x, y; };
struct __align__(16) uint4 { unsigned int x, y, z, w; };
struct __align__(8) int2 { int x, y; };
struct __align__(16) int4 { int x, y, z, w; };
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
struct __align__(16) double2 { double x, y; };

inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) {
    return {x, y, z, w};
}
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline double2 make_double2(double x, double y) { return {x, y}; }

// ---- Math and integer intrinsics (the host libm stands in for CUDA's).
template <typename A, typename B> inline auto min(A a, B b) -> decltype(a + b) {
    return b < a ? b : a;
}
template <typename A, typename B> inline auto max(A a, B b) -> decltype(a + b) {
    return a < b ? b : a;
}
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((uint64_t)a * b) >> 32);
}
inline uint64_t __umul64hi(uint64_t a, uint64_t b) {
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}
inline float __uint_as_float(unsigned int u) { return kiln_emu_bits_float(u); }
inline unsigned int __float_as_uint(float f) { return kiln_emu_float_bits(f); }
inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(uint64_t x) { return __builtin_popcountll(x); }
inline int __clz(unsigned int x) { return x ? __builtin_clz(x) : 32; }
inline int __ffs(unsigned int x) { return __builtin_ffs((int)x); }
template <typename T> inline T __ldg(const T *p) { return *p; }
inline void __threadfence() {}
inline void __threadfence_block() {}
// On the GPU the launch fails (an illegal-instruction or launch-failure error); here it
// fails with an error naming the kernel and the trapping thread.
[[noreturn]] inline void __trap() { kiln_emu::fail("the kernel trapped (__trap())"); }

// ---- Atomics. Fibers switch only at barriers, so a read-modify-write is atomic.
#define KILN_EMU_ATOMIC(name, update)                                                   \
    template <typename T> inline T name(T *p, T v) {                                    \
        T old = *p;                                                                     \
        *p = (update);                                                                  \
        return old;                                                                     \
    }
KILN_EMU_ATOMIC(atomicAdd, old + v)
KILN_EMU_ATOMIC(atomicSub, old - v)
KILN_EMU_ATOMIC(atomicMax, old < v ? v : old)
KILN_EMU_ATOMIC(atomicMin, v < old ? v : old)
KILN_EMU_ATOMIC(atomicExch, v)
KILN_EMU_ATOMIC(atomicAnd, old & v)
KILN_EMU_ATOMIC(atomicOr, old | v)
KILN_EMU_ATOMIC(atomicXor, old ^ v)
template <typename T> inline T atomicCAS(T *p, T compare, T v) {
    T old = *p;
    if (old == compare) *p = v;
    return old;
}

// ---- Barriers.
inline void __syncthreads() { kiln_emu::sync_block(); }
inline void __syncwarp(unsigned int mask = 0xffffffffu) { kiln_emu::sync_warp(mask); }

// ---- Warp shuffles and votes: every lane of `mask` publishes its value, then each
// picks its source lane, as the hardware does. Reading a lane outside the mask (or past
// the end of a partial warp) is an error, where the GPU would return garbage.
namespace kiln_emu {

template <typename T> inline T shuffle(unsigned int mask, T v, int src, int width, bool own) {
    static_assert(sizeof(T) <= kMaxExchange, "shuffled values are at most 64 bytes");
    if (width <= 0 || width > 32 || (width & (width - 1)))
        fail("__shfl_*_sync: width must be a power of two in 1..32");
    T all[32];
    unsigned int published = warp_all_gather(mask, &v, (int)sizeof(T), all);
    if (own) return v;
    if (src < 0 || src > 31 || !((published >> src) & 1u))
        fail("__shfl_*_sync reads a lane outside its mask (the GPU returns garbage)");
    return all[src];
}

inline unsigned int lane() { return g_thread->lane; }

template <typename T> inline unsigned int vote(unsigned int mask, T pred) {
    int all[32];
    int mine = pred ? 1 : 0;
    unsigned int published = warp_all_gather(mask, &mine, (int)sizeof(int), all);
    unsigned int bits = 0;
    for (int i = 0; i < 32; ++i)
        if (((published >> i) & 1u) && all[i]) bits |= 1u << i;
    return bits;
}

} // namespace kiln_emu

template <typename T> inline T __shfl_sync(unsigned int mask, T v, int src, int width = 32) {
    int base = (int)kiln_emu::lane() & ~(width - 1);
    return kiln_emu::shuffle(mask, v, base + (src & (width - 1)), width, false);
}
template <typename T>
inline T __shfl_up_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {
    int lane = (int)kiln_emu::lane();
    bool own = (lane & (width - 1)) < (int)delta;
    return kiln_emu::shuffle(mask, v, lane - (int)delta, width, own);
}
template <typename T>
inline T __shfl_down_sync(unsigned int mask, T v, unsigned int delta, int width = 32) {
    int lane = (int)kiln_emu::lane();
    bool own = (lane & (width - 1)) + (int)delta >= width;
    return kiln_emu::shuffle(mask, v, lane + (int)delta, width, own);
}
template <typename T>
inline T __shfl_xor_sync(unsigned int mask, T v, int lane_mask, int width = 32) {
    int lane = (int)kiln_emu::lane(), src = lane ^ lane_mask;
    bool own = (src & ~(width - 1)) != (lane & ~(width - 1));
    return kiln_emu::shuffle(mask, v, src, width, own);
}
template <typename T> inline unsigned int __ballot_sync(unsigned int mask, T pred) {
    return kiln_emu::vote(mask, pred);
}
template <typename T> inline int __any_sync(unsigned int mask, T pred) {
    return kiln_emu::vote(mask, pred) != 0;
}
template <typename T> inline int __all_sync(unsigned int mask, T pred) {
    return kiln_emu::vote(mask, !pred) == 0;
}

#include "wmma.h"
#include "mma.h"
