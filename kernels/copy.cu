// Strided copy with dtype conversion: `dst[layout d] = convert(src[layout s])`.
//
// Both operands are strided (the host merges dimensions first), so one kernel serves
// `contiguous`, `to_dtype`, `copy_` into a view, `cat` and every dtype conversion.
// Conversions follow the CPU backend exactly (through f64, Rust `as` semantics).
#include "common.cuh"

template <typename S, typename D>
__device__ __forceinline__ void copy_impl(uint64_t n, int rank, const Dims &dims, const S *src,
                                          const Strides &ss, D *dst, const Strides &ds) {
    KILN_FOR_EACH(i, n) {
        int64_t os, od;
        offsets2(i, n, rank, dims, ss, ds, os, od);
        dst[od] = Convert<S, D>::apply(src[os]);
    }
}

// One kernel per (source, destination) dtype pair.
extern "C" __global__ void copy_f32_f32(uint64_t n, int rank, Dims dims, const float *src, Strides ss, float *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f32_f64(uint64_t n, int rank, Dims dims, const float *src, Strides ss, double *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f32_f16(uint64_t n, int rank, Dims dims, const float *src, Strides ss, f16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f32_bf16(uint64_t n, int rank, Dims dims, const float *src, Strides ss, bf16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f32_i64(uint64_t n, int rank, Dims dims, const float *src, Strides ss, int64_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f32_u8(uint64_t n, int rank, Dims dims, const float *src, Strides ss, uint8_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f64_f32(uint64_t n, int rank, Dims dims, const double *src, Strides ss, float *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f64_f64(uint64_t n, int rank, Dims dims, const double *src, Strides ss, double *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f64_f16(uint64_t n, int rank, Dims dims, const double *src, Strides ss, f16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f64_bf16(uint64_t n, int rank, Dims dims, const double *src, Strides ss, bf16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f64_i64(uint64_t n, int rank, Dims dims, const double *src, Strides ss, int64_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f64_u8(uint64_t n, int rank, Dims dims, const double *src, Strides ss, uint8_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f16_f32(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, float *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f16_f64(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, double *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f16_f16(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, f16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f16_bf16(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, bf16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f16_i64(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, int64_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_f16_u8(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, uint8_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_bf16_f32(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, float *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_bf16_f64(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, double *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_bf16_f16(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, f16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_bf16_bf16(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, bf16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_bf16_i64(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, int64_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_bf16_u8(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, uint8_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_i64_f32(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, float *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_i64_f64(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, double *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_i64_f16(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, f16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_i64_bf16(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, bf16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_i64_i64(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, int64_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_i64_u8(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, uint8_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_u8_f32(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, float *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_u8_f64(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, double *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_u8_f16(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, f16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_u8_bf16(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, bf16 *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_u8_i64(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, int64_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
extern "C" __global__ void copy_u8_u8(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, uint8_t *dst, Strides ds) { copy_impl(n, rank, dims, src, ss, dst, ds); }
