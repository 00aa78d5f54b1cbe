// Dropout: out[i] = x[i] * (word(i) < threshold ? scale : 0), with word(i) from the
// Philox stream (seed, offset) exactly as src/rng.rs and the CPU backend draw it, so
// CPU and GPU masks are bit-identical. A product, not a select, so a dropped NaN or
// infinity still gives NaN (as in PyTorch). Halves compute in f32, like the CPU.
// Each thread computes one Philox block and handles its four elements.
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

extern "C" __global__ void dropout_f32(uint64_t n, int rank, Dims dims, const float *x, Strides xs, float *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_f64(uint64_t n, int rank, Dims dims, const double *x, Strides xs, double *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_f16(uint64_t n, int rank, Dims dims, const f16 *x, Strides xs, f16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
extern "C" __global__ void dropout_bf16(uint64_t n, int rank, Dims dims, const bf16 *x, Strides xs, bf16 *out, uint64_t seed, uint64_t offset, uint64_t threshold, double scale) { dropout_impl(n, rank, dims, x, xs, out, seed, offset, threshold, scale); }
