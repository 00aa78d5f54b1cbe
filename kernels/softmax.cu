// Softmax and log-softmax along one dimension, computed stably like the CPU backend:
// shift = the slice's maximum (0 when it is -inf, so a slice of -inf gives NaN as in
// PyTorch; a NaN anywhere makes its slice NaN), e = exp(x - shift),
// softmax = e * (1 / sum e), log_softmax = x - shift - log(sum e).
//
// The input is seen as `n_rows` slices (the other dimensions, strided: `odims`/`ostr`)
// of `len` elements with step `rstride`; the output is contiguous with the input's
// shape, so slice j, element k lands at (j / inner) * len * inner + k * inner + j % inner.
// A block per slice (contiguous slices: block reductions) or a thread per slice
// (softmax over a leading dimension: neighbouring threads read neighbouring slices).
#include "common.cuh"

__device__ __forceinline__ uint64_t out_index(uint64_t j, uint64_t k, uint64_t len,
                                              uint64_t inner) {
    return (j / inner) * len * inner + k * inner + j % inner;
}

template <typename T>
__device__ __forceinline__ void softmax_block(const T *x, int rank, const Dims &odims,
                                              const Strides &ostr, uint64_t n_rows,
                                              uint64_t len, int64_t rstride, uint64_t inner,
                                              T *out, uint32_t log_out) {
    typedef typename ComputeOf<T>::type C;
    for (uint64_t j = blockIdx.x; j < n_rows; j += gridDim.x) {
        const T *row = x + offset1(j, n_rows, rank, odims, ostr);
        C m = -(C)INFINITY;
        for (uint64_t k = threadIdx.x; k < len; k += blockDim.x)
            m = nan_max(m, widen(row[(int64_t)k * rstride]));
        m = block_all(m, true);
        C shift = m == -(C)INFINITY ? (C)0 : m;
        C sum = 0;
        for (uint64_t k = threadIdx.x; k < len; k += blockDim.x)
            sum += k_exp(widen(row[(int64_t)k * rstride]) - shift);
        sum = block_all(sum, false);
        C log_sum = k_log(sum), inv = (C)1 / sum;
        for (uint64_t k = threadIdx.x; k < len; k += blockDim.x) {
            C v = widen(row[(int64_t)k * rstride]);
            C r = log_out ? v - shift - log_sum : k_exp(v - shift) * inv;
            out[out_index(j, k, len, inner)] = narrow<T>(r);
        }
    }
}

template <typename T>
__device__ __forceinline__ void softmax_thread(const T *x, int rank, const Dims &odims,
                                               const Strides &ostr, uint64_t n_rows,
                                               uint64_t len, int64_t rstride, uint64_t inner,
                                               T *out, uint32_t log_out) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(j, n_rows) {
        const T *row = x + offset1(j, n_rows, rank, odims, ostr);
        C m = -(C)INFINITY;
        for (uint64_t k = 0; k < len; ++k) m = nan_max(m, widen(row[(int64_t)k * rstride]));
        C shift = m == -(C)INFINITY ? (C)0 : m;
        C sum = 0;
        for (uint64_t k = 0; k < len; ++k) sum += k_exp(widen(row[(int64_t)k * rstride]) - shift);
        C log_sum = k_log(sum), inv = (C)1 / sum;
        for (uint64_t k = 0; k < len; ++k) {
            C v = widen(row[(int64_t)k * rstride]);
            C r = log_out ? v - shift - log_sum : k_exp(v - shift) * inv;
            out[out_index(j, k, len, inner)] = narrow<T>(r);
        }
    }
}

extern "C" __global__ void softmax_block_f32(const float *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, float *out, uint32_t log_out) { softmax_block(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
extern "C" __global__ void softmax_block_f64(const double *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, double *out, uint32_t log_out) { softmax_block(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
extern "C" __global__ void softmax_block_f16(const f16 *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, f16 *out, uint32_t log_out) { softmax_block(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
extern "C" __global__ void softmax_block_bf16(const bf16 *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, bf16 *out, uint32_t log_out) { softmax_block(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }

extern "C" __global__ void softmax_thread_f32(const float *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, float *out, uint32_t log_out) { softmax_thread(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
extern "C" __global__ void softmax_thread_f64(const double *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, double *out, uint32_t log_out) { softmax_thread(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
extern "C" __global__ void softmax_thread_f16(const f16 *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, f16 *out, uint32_t log_out) { softmax_thread(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
extern "C" __global__ void softmax_thread_bf16(const bf16 *x, int rank, Dims odims, Strides ostr, uint64_t n_rows, uint64_t len, int64_t rstride, uint64_t inner, bf16 *out, uint32_t log_out) { softmax_thread(x, rank, odims, ostr, n_rows, len, rstride, inner, out, log_out); }
