// Shared device code: strided indexing, dtype conversions, Philox4x32-10.
//
// Layout convention (see src/backend/cuda/launch.rs): a strided operand is passed as
// `Dims` (sizes) and `Strides` (element steps) with dimension 0 the INNERMOST one, and
// the operand's pointer already advanced to its first element. The host merges the
// dimensions that all operands walk contiguously, so most launches have rank 1 and the
// index math has no division at all.
#pragma once

#ifndef KILN_HOST_EMU // the emulated device supplies these (kernels/emu/host_emu.h)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
// Dynamic shared memory, `KILN_DYNAMIC_SHARED(float, tile);` in a kernel: the one
// spelling that also compiles for the emulated device (`extern __shared__` is refused).
#define KILN_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
// Static shared memory, `KILN_SHARED(float, tile, [64][65]);` is `__shared__ float
// tile[64][65];`, in a kernel or in any device function, templates included: the one
// spelling the emulated device can place in its per-block shared memory (a `static`
// in a template instantiation escapes the section GCC is asked to put it in, so a
// literal `__shared__` is refused).
#define KILN_SHARED(T, name, dims) __shared__ T name dims
#endif
#include <stdint.h>

#define KILN_MAX_DIMS 8

struct Dims {
    uint64_t d[KILN_MAX_DIMS];
};

struct Strides {
    int64_t s[KILN_MAX_DIMS];
};

typedef __half f16;
typedef __nv_bfloat16 bf16;

// Grid-stride loop over [0, n).
#define KILN_FOR_EACH(i, n)                                                             \
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);        \
         i += (uint64_t)blockDim.x * gridDim.x)

// Storage offsets of logical element `i` (row-major over `dims`) in two operands.
// Rank 1 (everything contiguous or one strided run) needs no division. The loop is
// fully unrolled with a rank guard so that the strides stay in registers: indexing
// them with a run-time dimension would copy them to local memory.
template <typename I>
__device__ __forceinline__ void strided_offsets2(I i, int rank, const Dims &dims,
                                                 const Strides &sa, const Strides &sb,
                                                 int64_t &oa, int64_t &ob) {
    if (rank == 1) {
        oa = (int64_t)i * sa.s[0];
        ob = (int64_t)i * sb.s[0];
        return;
    }
    oa = 0;
    ob = 0;
#pragma unroll
    for (int k = 0; k < KILN_MAX_DIMS; ++k) {
        if (k < rank) {
            I size = (I)dims.d[k];
            I q = i / size;
            I r = i - q * size;
            oa += (int64_t)r * sa.s[k];
            ob += (int64_t)r * sb.s[k];
            i = q;
        }
    }
}

// `strided_offsets2` with 32-bit division when the index fits (much cheaper on GPUs).
__device__ __forceinline__ void offsets2(uint64_t i, uint64_t n, int rank, const Dims &dims,
                                         const Strides &sa, const Strides &sb, int64_t &oa,
                                         int64_t &ob) {
    if (n <= 0xffffffffull) {
        strided_offsets2<uint32_t>((uint32_t)i, rank, dims, sa, sb, oa, ob);
    } else {
        strided_offsets2<uint64_t>(i, rank, dims, sa, sb, oa, ob);
    }
}

__device__ __forceinline__ int64_t offset1(uint64_t i, uint64_t n, int rank, const Dims &dims,
                                           const Strides &sa) {
    int64_t oa, unused;
    offsets2(i, n, rank, dims, sa, sa, oa, unused);
    return oa;
}

// ---- Compute types: halves compute in f32, everything else in itself. ----

__device__ __forceinline__ float widen(f16 x) { return __half2float(x); }
__device__ __forceinline__ float widen(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float widen(float x) { return x; }
__device__ __forceinline__ double widen(double x) { return x; }
__device__ __forceinline__ int64_t widen(int64_t x) { return x; }
__device__ __forceinline__ uint8_t widen(uint8_t x) { return x; }

template <typename T> struct ComputeOf { typedef T type; };
template <> struct ComputeOf<f16> { typedef float type; };
template <> struct ComputeOf<bf16> { typedef float type; };

template <typename T> __device__ __forceinline__ T narrow(typename ComputeOf<T>::type v) {
    return v;
}
template <> __device__ __forceinline__ f16 narrow<f16>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ bf16 narrow<bf16>(float v) {
    return __float2bfloat16_rn(v);
}

// ---- Math and block reductions shared by the softmax, norm and loss kernels.

__device__ __forceinline__ float k_exp(float x) { return expf(x); }
__device__ __forceinline__ double k_exp(double x) { return exp(x); }
__device__ __forceinline__ float k_log(float x) { return logf(x); }
__device__ __forceinline__ double k_log(double x) { return log(x); }
__device__ __forceinline__ float k_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double k_tanh(double x) { return tanh(x); }

// GELU's tanh approximation, term by term as the CPU backend writes it (the gelu_tanh
// op, and the GEMM epilogue of linear_act).
#define KILN_SQRT_2_OVER_PI 0.7978845608028654
#define KILN_GELU_CUBIC 0.044715
template <typename C> __device__ __forceinline__ C gelu_tanh(C x) {
    C u = (C)KILN_SQRT_2_OVER_PI * (x + (C)KILN_GELU_CUBIC * x * x * x);
    return (C)0.5 * x * ((C)1 + k_tanh(u));
}

// Maximum that lets a NaN on either side win.
template <typename C> __device__ __forceinline__ C nan_max(C a, C b) {
    return (a != a || a > b) ? a : b;
}

// The block-wide maximum (is_max) or sum of `v`, returned to every thread, combined in
// a fixed order (shuffle tree, then warps in index order) so results are deterministic.
// blockDim.x is a multiple of 32, at most 1024; every thread of the block must call it.
template <typename C> __device__ __forceinline__ C block_all(C v, bool is_max) {
    KILN_SHARED(C, partial, [32]);
#pragma unroll
    for (int d = 16; d > 0; d /= 2) {
        C o = __shfl_xor_sync(0xffffffffu, v, d);
        v = is_max ? nan_max(v, o) : v + o;
    }
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    __syncthreads(); // `partial` may still be read from the previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = partial[0];
    for (int w = 1; w < warps; ++w) v = is_max ? nan_max(v, partial[w]) : v + partial[w];
    return v;
}

// ---- Conversions with Rust's `as` semantics (the CPU backend converts through f64):
// float to integer truncates toward zero, saturates at the bounds, and maps NaN to 0.

__device__ __forceinline__ int64_t sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

__device__ __forceinline__ uint8_t sat_u8(double v) {
    if (!(v > 0.0)) return 0; // negatives, -0 and NaN
    if (v >= 255.0) return 255;
    return (uint8_t)(uint32_t)v;
}

__device__ __forceinline__ double to_f64(float x) { return x; }
__device__ __forceinline__ double to_f64(double x) { return x; }
__device__ __forceinline__ double to_f64(f16 x) { return __half2float(x); }
__device__ __forceinline__ double to_f64(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ double to_f64(int64_t x) { return (double)x; }
__device__ __forceinline__ double to_f64(uint8_t x) { return x; }

template <typename D> __device__ __forceinline__ D from_f64(double v);
template <> __device__ __forceinline__ float from_f64<float>(double v) { return (float)v; }
template <> __device__ __forceinline__ double from_f64<double>(double v) { return v; }
// Through f32, as the CPU's `half::f16::from_f64` does on x86 (f16c) and as PyTorch
// does: the double rounding must match the reference, not be "more exact" than it.
template <> __device__ __forceinline__ f16 from_f64<f16>(double v) {
    return __float2half_rn((float)v);
}
template <> __device__ __forceinline__ bf16 from_f64<bf16>(double v) {
    return __double2bfloat16(v);
}
template <> __device__ __forceinline__ int64_t from_f64<int64_t>(double v) { return sat_i64(v); }
template <> __device__ __forceinline__ uint8_t from_f64<uint8_t>(double v) { return sat_u8(v); }

// `S` to `D` exactly as the CPU does (S -> f64 -> D). A same-type copy is exact, and
// f32 is a cheaper (and identical) intermediate for sources that widen to f32 exactly.
template <typename S, typename D> struct Convert {
    __device__ __forceinline__ static D apply(S x) { return from_f64<D>(to_f64(x)); }
};
template <typename T> struct Convert<T, T> {
    __device__ __forceinline__ static T apply(T x) { return x; }
};
template <> struct Convert<float, f16> {
    __device__ __forceinline__ static f16 apply(float x) { return __float2half_rn(x); }
};
template <> struct Convert<float, bf16> {
    __device__ __forceinline__ static bf16 apply(float x) { return __float2bfloat16_rn(x); }
};
template <> struct Convert<f16, float> {
    __device__ __forceinline__ static float apply(f16 x) { return __half2float(x); }
};
template <> struct Convert<bf16, float> {
    __device__ __forceinline__ static float apply(bf16 x) { return __bfloat162float(x); }
};

// ---- Philox4x32-10, identical to src/rng.rs: element i uses word i % 4 of the block
// for counter (offset + i / 4) as (low, high, 0, 0) under key (low, high of the seed).

#define KILN_PHILOX_M0 0xD2511F53u
#define KILN_PHILOX_M1 0xCD9E8D57u
#define KILN_PHILOX_W0 0x9E3779B9u
#define KILN_PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k.x += KILN_PHILOX_W0;
            k.y += KILN_PHILOX_W1;
        }
        uint32_t lo0 = KILN_PHILOX_M0 * c.x;
        uint32_t hi0 = __umulhi(KILN_PHILOX_M0, c.x);
        uint32_t lo1 = KILN_PHILOX_M1 * c.z;
        uint32_t hi1 = __umulhi(KILN_PHILOX_M1, c.z);
        c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    }
    return c;
}

// The four random words for elements 4*b .. 4*b+3 of the stream (seed, offset).
__device__ __forceinline__ uint4 philox_block(uint64_t seed, uint64_t offset, uint64_t b) {
    uint64_t n = offset + b;
    return philox4x32_10(make_uint4((uint32_t)n, (uint32_t)(n >> 32), 0u, 0u),
                         make_uint2((uint32_t)seed, (uint32_t)(seed >> 32)));
}

// The random word of element i of the stream (seed, offset).
__device__ __forceinline__ uint32_t philox_word(uint64_t seed, uint64_t offset, uint64_t i) {
    uint4 w = philox_block(seed, offset, i / 4);
    switch (i % 4) {
    case 0: return w.x;
    case 1: return w.y;
    case 2: return w.z;
    case 3: return w.w;
    default: __trap(); return 0; // unreachable (i % 4 < 4): every switch lists its cases
    }
}

// A word as a uniform number in [0, 1) with 24 random bits (as rng::uniform).
__device__ __forceinline__ float philox_uniform(uint32_t word) {
    return (float)(word >> 8) * (1.0f / 16777216.0f);
}

// One BK-deep slice of a 64×64 tile product held in shared memory, for the SIMT GEMMs
// (matmul.cu) and implicit GEMMs (conv.cu): thread (tx, ty) of 16×16 accumulates its
// 4×4 outputs at rows ty + 16i and columns tx + 16j, so a warp's reads of `bs` are
// consecutive and the 16 values it loads per step feed 16 FMAs from registers.
template <int BK, int BM, int BN, typename C>
__device__ __forceinline__ void tile_fma_4x4(const C (&as)[BK][BM], const C (&bs)[BK][BN],
                                             C (&acc)[4][4], int tx, int ty) {
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
        C af[4], bf[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) af[i] = as[kk][ty + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) bf[j] = bs[kk][tx + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = fma(af[i], bf[j], acc[i][j]);
    }
}
