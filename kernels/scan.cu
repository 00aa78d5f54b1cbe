// Scans along one dim of a contiguous tensor viewed as (outer, len, inner): cumulative
// sums and products, and the gradient of the product.
//
// A thread per line (o, i) walks its `len` elements in order, keeping the running value
// in PyTorch's CPU accumulator (double for f32 and f64, float for f16 and bf16,
// wrapping int64) and rounding each output once — the CPU backend's order and types,
// so the two agree bit for bit. The lines are independent, so a scan over a short dim
// of a large tensor fills the GPU; one long line runs on one thread. (A blocked parallel
// scan would add in another order and so round differently from the CPU.)
#include "common.cuh"

enum ScanCode { S_SUM = 0, S_PROD = 1 };

template <typename T> struct AccOf { typedef double type; };
template <> struct AccOf<f16> { typedef float type; };
template <> struct AccOf<bf16> { typedef float type; };
template <> struct AccOf<int64_t> { typedef int64_t type; };

template <typename A> __device__ __forceinline__ A scan_combine(uint32_t op, A a, A b) {
    switch (op) {
    case S_SUM: return a + b;
    case S_PROD: return a * b;
    default: __trap(); return a;
    }
}

// Integers wrap on overflow, as PyTorch's do (unsigned: signed overflow is undefined).
template <> __device__ __forceinline__ int64_t scan_combine<int64_t>(uint32_t op, int64_t a,
                                                                     int64_t b) {
    typedef unsigned long long U;
    switch (op) {
    case S_SUM: return (int64_t)((U)a + (U)b);
    case S_PROD: return (int64_t)((U)a * (U)b);
    default: __trap(); return a;
    }
}

template <typename T> __device__ __forceinline__ T from_acc(typename AccOf<T>::type a) {
    return (T)a;
}
template <> __device__ __forceinline__ f16 from_acc<f16>(float a) { return narrow<f16>(a); }
template <> __device__ __forceinline__ bf16 from_acc<bf16>(float a) { return narrow<bf16>(a); }

template <typename T>
__device__ __forceinline__ void scan_impl(uint64_t outer, uint64_t len, uint64_t inner,
                                          const T *x, T *y, uint32_t op, uint32_t reverse) {
    typedef typename AccOf<T>::type A;
    KILN_FOR_EACH(line, outer * inner) {
        uint64_t o = line / inner, i = line - o * inner;
        uint64_t base = o * len * inner + i;
        A acc = 0;
        for (uint64_t j = 0; j < len; ++j) {
            uint64_t at = base + inner * (reverse ? len - 1 - j : j);
            A v = (A)widen(x[at]);
            acc = j == 0 ? v : scan_combine<A>(op, acc, v);
            y[at] = from_acc<T>(acc);
        }
    }
}

// The gradient of y = cumprod(x) in double (as on the CPU), exact where a line holds
// zeros: before its first zero z, gx[k] = sum_{j>=k} g[j] y[j] / x[k]; at z, the sum
// over j >= z of g[j] times the product of x[0..j] without x[z]; after z, 0.
template <typename T>
__device__ __forceinline__ void cumprod_backward_impl(uint64_t outer, uint64_t len,
                                                      uint64_t inner, const T *x, const T *y,
                                                      const T *g, T *gx) {
    KILN_FOR_EACH(line, outer * inner) {
        uint64_t o = line / inner, i = line - o * inner;
        uint64_t base = o * len * inner + i;
        uint64_t zero = len;
        for (uint64_t j = 0; j < len; ++j) {
            if (to_f64(x[base + inner * j]) == 0.0) {
                zero = j;
                break;
            }
        }
        double tail = 0.0;
        for (uint64_t j = len; j-- > 0;) {
            uint64_t at = base + inner * j;
            tail += to_f64(g[at]) * to_f64(y[at]);
            gx[at] = from_f64<T>(j < zero ? tail / to_f64(x[at]) : 0.0);
        }
        if (zero < len) {
            double prefix = zero == 0 ? 1.0 : to_f64(y[base + inner * (zero - 1)]);
            double sum = 0.0;
            for (uint64_t j = zero; j < len; ++j) {
                if (j > zero) prefix *= to_f64(x[base + inner * j]);
                sum += to_f64(g[base + inner * j]) * prefix;
            }
            gx[base + inner * zero] = from_f64<T>(sum);
        }
    }
}

extern "C" __global__ void scan_f32(uint64_t outer, uint64_t len, uint64_t inner, const float *x, float *y, uint32_t op, uint32_t reverse) { scan_impl(outer, len, inner, x, y, op, reverse); }
extern "C" __global__ void scan_f64(uint64_t outer, uint64_t len, uint64_t inner, const double *x, double *y, uint32_t op, uint32_t reverse) { scan_impl(outer, len, inner, x, y, op, reverse); }
extern "C" __global__ void scan_f16(uint64_t outer, uint64_t len, uint64_t inner, const f16 *x, f16 *y, uint32_t op, uint32_t reverse) { scan_impl(outer, len, inner, x, y, op, reverse); }
extern "C" __global__ void scan_bf16(uint64_t outer, uint64_t len, uint64_t inner, const bf16 *x, bf16 *y, uint32_t op, uint32_t reverse) { scan_impl(outer, len, inner, x, y, op, reverse); }
extern "C" __global__ void scan_i64(uint64_t outer, uint64_t len, uint64_t inner, const int64_t *x, int64_t *y, uint32_t op, uint32_t reverse) { scan_impl(outer, len, inner, x, y, op, reverse); }

extern "C" __global__ void cumprod_backward_f32(uint64_t outer, uint64_t len, uint64_t inner, const float *x, const float *y, const float *g, float *gx) { cumprod_backward_impl(outer, len, inner, x, y, g, gx); }
extern "C" __global__ void cumprod_backward_f64(uint64_t outer, uint64_t len, uint64_t inner, const double *x, const double *y, const double *g, double *gx) { cumprod_backward_impl(outer, len, inner, x, y, g, gx); }
extern "C" __global__ void cumprod_backward_f16(uint64_t outer, uint64_t len, uint64_t inner, const f16 *x, const f16 *y, const f16 *g, f16 *gx) { cumprod_backward_impl(outer, len, inner, x, y, g, gx); }
extern "C" __global__ void cumprod_backward_bf16(uint64_t outer, uint64_t len, uint64_t inner, const bf16 *x, const bf16 *y, const bf16 *g, bf16 *gx) { cumprod_backward_impl(outer, len, inner, x, y, g, gx); }
