// Dropout: out[i] = x[i] * (word(i) < threshold ? scale : 0), with word(i) from the
// Philox stream (seed, offset) exactly as src/rng.rs and the CPU backend draw it, so
// CPU and GPU masks are bit-identical. A product, not a select, so a dropped NaN or
// infinity still gives NaN (as in PyTorch). Halves compute in f32, like the CPU (the
// scale too: f32 for f32, f16 and bf16, as the CPU's `T::from_f64`).
//
// Thread mapping: each thread computes one Philox block b (one call gives four words)
// and handles elements 4b .. 4b+3 with them. Two kernels:
//   dropout_<dt>         any layout: each element's offset from its logical index;
//   dropout_contig_<dt>  contiguous input: the four elements are adjacent, so where
//                        both pointers are aligned to a pack (16 bytes for f32/f64,
//                        8 for f16/bf16) they move as vector accesses (Pack4) and the
//                        kernel runs at memory speed; the last, partial block and
//                        misaligned views (a narrow() at an odd offset) go element by
//                        element, with the same words.
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void dropout_impl(uint64_t n, int rank, const Dims &dims, const T *x,
                                             const Strides &xs, T *out, uint64_t seed,
                                             uint64_t offset, uint64_t threshold, double scale) {
    typedef typename ComputeOf<T>::type C;
    const C keep = (C)scale, drop = (C)0;
    uint64_t blocks = (n + 3) / 4;
    KILN_FOR_EACH(b, blocks) {
        uint4 w = philox_block(seed, offset, b);
        uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            uint64_t i = 4 * b + j;
            if (i < n) {
                C factor = (uint64_t)words[j] < threshold ? keep : drop;
                out[i] = narrow<T>(widen(x[offset1(i, n, rank, dims, xs)]) * factor);
            }
        }
    }
}

// The vector type that moves four consecutive elements of T (two of them for f64).
template <typename T> struct VecOf;
template <> struct VecOf<float> { typedef float4 V; };
template <> struct VecOf<double> { typedef double2 V; };
template <> struct VecOf<f16> { typedef uint2 V; };
template <> struct VecOf<bf16> { typedef uint2 V; };

// Four consecutive elements, aligned for the vector accesses of VecOf<T>.
template <typename T> struct __align__(16) Pack4 {
    T v[4];
};

template <typename T>
__device__ __forceinline__ void dropout_contig_impl(uint64_t n, const T *x, T *out, uint64_t seed,
                                                    uint64_t offset, uint64_t threshold,
                                                    double scale) {
    typedef typename ComputeOf<T>::type C;
    typedef typename VecOf<T>::V V;
    const int per_pack = 4 * sizeof(T) / sizeof(V);
    const C keep = (C)scale, drop = (C)0;
    // The same for every thread: whether x and out sit on pack boundaries.
    const bool aligned = (((uintptr_t)x | (uintptr_t)out) % sizeof(V)) == 0;
    uint64_t full = n / 4, blocks = (n + 3) / 4;
    KILN_FOR_EACH(b, blocks) {
        uint4 w = philox_block(seed, offset, b);
        uint32_t words[4] = {w.x, w.y, w.z, w.w};
        if (aligned && b < full) {
            Pack4<T> p;
            const V *src = reinterpret_cast<const V *>(x + 4 * b);
#pragma unroll
            for (int k = 0; k < per_pack; ++k)
                reinterpret_cast<V *>(p.v)[k] = src[k];
#pragma unroll
            for (int j = 0; j < 4; ++j)
                p.v[j] = narrow<T>(widen(p.v[j]) * ((uint64_t)words[j] < threshold ? keep : drop));
            V *dst = reinterpret_cast<V *>(out + 4 * b);
#pragma unroll
            for (int k = 0; k < per_pack; ++k)
                dst[k] = reinterpret_cast<const V *>(p.v)[k];
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                uint64_t i = 4 * b + j;
                if (i < n) {
                    C factor = (uint64_t)words[j] < threshold ? keep : drop;
                    out[i] = narrow<T>(widen(x[i]) * factor);
                }
            }
        }
    }
}

extern "C" __global__ void dropout_f32(uint64_t n, int rank, Dims dims, const float *x, Strides xs, float *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_f64(uint64_t n, int rank, Dims dims, const double *x, Strides xs, double *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_f16(uint64_t n, int rank, Dims dims, const f16 *x, Strides xs, f16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_bf16(uint64_t n, int rank, Dims dims, const bf16 *x, Strides xs, bf16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_contig_f32(uint64_t n, const float *x, float *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_contig_impl(n, x, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_contig_f64(uint64_t n, const double *x, double *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_contig_impl(n, x, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_contig_f16(uint64_t n, const f16 *x, f16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_contig_impl(n, x, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_contig_bf16(uint64_t n, const bf16 *x, bf16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_contig_impl(n, x, out, seed, offset, threshold, scale); }

// ---- F::bias_dropout_add: out = residual + dropout(x + bias), the transformer block's
// bias, dropout and residual add in one pass. x and residual are contiguous (rows, d),
// bias (d). Element i is kept iff its Philox word is below threshold, dropout's rule, so
// the mask is F::dropout's for the same stream; threshold 2^32 (eval, p = 0) keeps every
// element without drawing words. Each step rounds to T as the separate ops do, so f32 and
// f64 results equal theirs bit for bit.
//
// Thread mappings, and why:
//   * bias_dropout_add_<dt>: grid-stride over the rows * d elements (elementwise).
//   * bias_dropout_add_backward_<dt>: one thread per bias column (grid-stride over d),
//     walking the rows in order: it writes grad_x = g * factor (skipped when grad_x is
//     null: nothing dropped, grad_x is g) and sums it into grad_bias, a fixed order
//     (deterministic, no atomics, no second kernel), loads coalesced across a warp's
//     adjacent columns. Only d threads run: enough for a transformer's widths on the
//     emulator and small GPUs; splitting the rows over blocks would need a second pass.
__device__ __forceinline__ bool keeps(uint64_t seed, uint64_t offset, uint64_t i,
                                      uint64_t threshold) {
    return threshold > 0xFFFFFFFFull || (uint64_t)philox_word(seed, offset, i) < threshold;
}

template <typename T>
__device__ __forceinline__ void bias_dropout_add_impl(uint64_t n, uint64_t d, const T *x,
                                                      const T *bias, const T *residual, T *out,
                                                      uint64_t seed, uint64_t offset,
                                                      uint64_t threshold, double scale) {
    typedef typename ComputeOf<T>::type C;
    const C keep = (C)scale, drop = (C)0;
    KILN_FOR_EACH(i, n) {
        T biased = narrow<T>(widen(x[i]) + widen(bias[i % d]));
        T dropped = narrow<T>(widen(biased) * (keeps(seed, offset, i, threshold) ? keep : drop));
        out[i] = narrow<T>(widen(residual[i]) + widen(dropped));
    }
}

template <typename T>
__device__ __forceinline__ void bias_dropout_add_backward_impl(uint64_t rows, uint64_t d,
                                                               const T *g, T *gx, T *gbias,
                                                               uint64_t seed, uint64_t offset,
                                                               uint64_t threshold, double scale) {
    typedef typename ComputeOf<T>::type C;
    const C keep = (C)scale, drop = (C)0;
    KILN_FOR_EACH(j, d) {
        C sum = 0;
        for (uint64_t r = 0; r < rows; ++r) {
            uint64_t i = r * d + j;
            T v = narrow<T>(widen(g[i]) * (keeps(seed, offset, i, threshold) ? keep : drop));
            if (gx) gx[i] = v;
            sum += widen(v);
        }
        gbias[j] = narrow<T>(sum);
    }
}

extern "C" __global__ void bias_dropout_add_f32(uint64_t n, uint64_t d, const float *x, const float *bias, const float *residual, float *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_impl(n, d, x, bias, residual, out, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_f64(uint64_t n, uint64_t d, const double *x, const double *bias, const double *residual, double *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_impl(n, d, x, bias, residual, out, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_f16(uint64_t n, uint64_t d, const f16 *x, const f16 *bias, const f16 *residual, f16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_impl(n, d, x, bias, residual, out, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_bf16(uint64_t n, uint64_t d, const bf16 *x, const bf16 *bias, const bf16 *residual, bf16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_impl(n, d, x, bias, residual, out, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_backward_f32(uint64_t rows, uint64_t d, const float *g, float *gx, float *gbias, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_backward_impl(rows, d, g, gx, gbias, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_backward_f64(uint64_t rows, uint64_t d, const double *g, double *gx, double *gbias, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_backward_impl(rows, d, g, gx, gbias, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_backward_f16(uint64_t rows, uint64_t d, const f16 *g, f16 *gx, f16 *gbias, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_backward_impl(rows, d, g, gx, gbias, seed, offset, threshold, scale); }
extern "C" __global__ void bias_dropout_add_backward_bf16(uint64_t rows, uint64_t d, const bf16 *g, bf16 *gx, bf16 *gbias, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { bias_dropout_add_backward_impl(rows, d, g, gx, gbias, seed, offset, threshold, scale); }
