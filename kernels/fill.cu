// Creating tensors on the device: constants and ranges (fill_*), uniform (rand_*) and
// standard normal (randn_*) samples of kiln's Philox stream, with the values the CPU
// backend computes (src/backend/cpu/fill.rs): every value is made in f64 and converted
// to the dtype with the CPU's conversion (from_f64), so rand is bit-identical and
// randn differs only where the device's f64 log/sin/cos round differently.
#include "common.cuh"

#define KILN_PI 3.14159265358979323846

// out[i] = start + step*i (just start when step is 0, so -0.0 and infinities stay).
// Thread mapping: grid-stride, one element per iteration: pure coalesced stores.
template <typename T> __device__ __forceinline__ void fill_impl(uint64_t n, double start, double step, T *out) {
    KILN_FOR_EACH(i, n) {
        out[i] = from_f64<T>(step == 0.0 ? start : start + step * (double)i);
    }
}

// out[i] = uniform(word i) = (word >> 8) / 2^24, exactly as rng::uniform.
// Thread mapping: one Philox block per thread, so each thread computes the four words
// it writes (elements 4b .. 4b+3) once; the mapping does not depend on the grid.
template <typename T> __device__ __forceinline__ void rand_impl(uint64_t n, uint64_t seed, uint64_t offset, T *out) {
    KILN_FOR_EACH(b, (n + 3) / 4) {
        uint4 w = philox_block(seed, offset, b);
        uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            uint64_t i = 4 * b + j;
            if (i < n) out[i] = from_f64<T>((double)(words[j] >> 8) * (1.0 / 16777216.0));
        }
    }
}

// Box–Muller on the word pair (a, c), as rng::normal_values: elements i and i+1 get
// r·cos θ and r·sin θ with u1 = (a+1)/2^32 in (0, 1], u2 = c/2^32, r = sqrt(-2 ln u1),
// θ = 2π·u2, all in f64.
template <typename T>
__device__ __forceinline__ void box_muller(uint32_t a, uint32_t c, uint64_t i, uint64_t n, T *out) {
    double u1 = ((double)a + 1.0) / 4294967296.0;
    double u2 = (double)c / 4294967296.0;
    double r = sqrt(-2.0 * log(u1));
    double theta = 2.0 * KILN_PI * u2;
    if (i < n) out[i] = from_f64<T>(r * cos(theta));
    if (i + 1 < n) out[i + 1] = from_f64<T>(r * sin(theta));
}

// Thread mapping: one Philox block per thread = two Box–Muller pairs = elements
// 4b .. 4b+3, so the pairing (2j, 2j+1) of the CPU falls inside one thread.
template <typename T> __device__ __forceinline__ void randn_impl(uint64_t n, uint64_t seed, uint64_t offset, T *out) {
    KILN_FOR_EACH(b, (n + 3) / 4) {
        uint4 w = philox_block(seed, offset, b);
        box_muller(w.x, w.y, 4 * b, n, out);
        box_muller(w.z, w.w, 4 * b + 2, n, out);
    }
}

extern "C" __global__ void fill_f32(uint64_t n, double start, double step, float *out) { fill_impl(n, start, step, out); }
extern "C" __global__ void fill_f64(uint64_t n, double start, double step, double *out) { fill_impl(n, start, step, out); }
extern "C" __global__ void fill_f16(uint64_t n, double start, double step, f16 *out) { fill_impl(n, start, step, out); }
extern "C" __global__ void fill_bf16(uint64_t n, double start, double step, bf16 *out) { fill_impl(n, start, step, out); }
extern "C" __global__ void fill_i64(uint64_t n, double start, double step, int64_t *out) { fill_impl(n, start, step, out); }
extern "C" __global__ void fill_u8(uint64_t n, double start, double step, uint8_t *out) { fill_impl(n, start, step, out); }

extern "C" __global__ void rand_f32(uint64_t n, uint64_t seed, uint64_t offset, float *out) { rand_impl(n, seed, offset, out); }
extern "C" __global__ void rand_f64(uint64_t n, uint64_t seed, uint64_t offset, double *out) { rand_impl(n, seed, offset, out); }
extern "C" __global__ void rand_f16(uint64_t n, uint64_t seed, uint64_t offset, f16 *out) { rand_impl(n, seed, offset, out); }
extern "C" __global__ void rand_bf16(uint64_t n, uint64_t seed, uint64_t offset, bf16 *out) { rand_impl(n, seed, offset, out); }

extern "C" __global__ void randn_f32(uint64_t n, uint64_t seed, uint64_t offset, float *out) { randn_impl(n, seed, offset, out); }
extern "C" __global__ void randn_f64(uint64_t n, uint64_t seed, uint64_t offset, double *out) { randn_impl(n, seed, offset, out); }
extern "C" __global__ void randn_f16(uint64_t n, uint64_t seed, uint64_t offset, f16 *out) { randn_impl(n, seed, offset, out); }
extern "C" __global__ void randn_bf16(uint64_t n, uint64_t seed, uint64_t offset, bf16 *out) { randn_impl(n, seed, offset, out); }

// out[i] = word i of the stream (seed, offset): the same words as
// `rng::PhiloxStream { seed, offset }.words(n)` on the CPU. Each thread computes one
// Philox block and writes its four words.
extern "C" __global__ void philox_words(uint64_t n, uint64_t seed, uint64_t offset, uint32_t *out) {
    uint64_t blocks = (n + 3) / 4;
    KILN_FOR_EACH(b, blocks) {
        uint4 w = philox_block(seed, offset, b);
        uint32_t words[4] = {w.x, w.y, w.z, w.w};
        for (int j = 0; j < 4 && 4 * b + j < n; ++j) {
            out[4 * b + j] = words[j];
        }
    }
}
