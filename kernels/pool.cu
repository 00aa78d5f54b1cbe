// 2-D pooling over contiguous NCHW planes, exactly as the CPU reference
// (src/backend/cpu/pool.rs): max keeps the first largest value of its dilated window
// and lets every NaN win (the index is the last NaN's, as on the CPU), average divides
// by the window's size including padding (PyTorch's count_include_pad=True) or by the
// input elements it holds (False), adaptive windows are
// floor(i*in/out) .. ceil((i+1)*in/out). Halves compute in f32, like the CPU.
//
// Forward kernels: one thread per OUTPUT element (grid-stride), which reads its window.
// Backward kernels gather instead of scatter: one thread per INPUT element iterates the
// few outputs whose window covers it, in row-major output order. Every sum thus has one
// writer and the CPU's order of additions, so gradients are deterministic (no float
// atomics) and bit-identical to the CPU's.
#include "common.cuh"

// The geometry of one windowed pooling (Pool2dParams in src/backend/pool.rs).
// dh, dw: dilation (max only); include_pad: count_include_pad (average only).
struct Pool2d {
    uint64_t planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad;
};

// The input rows [lo, hi) that average window `o` reads (clipped to the input) and
// `count`, the window's size that the average divides by: with include_pad, padding
// counts and the part beyond the padded input (ceil mode's overhang) does not
// (PyTorch's pool_size); without, the rows read alone.
struct Span {
    uint64_t lo, hi, count;
};

__device__ __forceinline__ Span pool_window(uint64_t o, uint64_t stride, uint64_t pad,
                                            uint64_t k, uint64_t size, uint64_t include_pad) {
    int64_t start = (int64_t)(o * stride) - (int64_t)pad;
    int64_t end = min(start + (int64_t)k, (int64_t)(size + pad));
    Span s;
    s.lo = (uint64_t)max(start, (int64_t)0);
    s.hi = max((uint64_t)min(max(end, (int64_t)0), (int64_t)size), s.lo);
    s.count = include_pad ? (uint64_t)max(end - start, (int64_t)0) : s.hi - s.lo;
    return s;
}

// The rows [lo, hi) of dilated max window `o`, read every `d`-th: lo is its first row
// inside the input (the start moved on by whole dilations past the padding), hi the
// end of its span clipped to the input (PyTorch's hstart/hend of max pooling).
__device__ __forceinline__ void max_window(uint64_t o, uint64_t stride, uint64_t pad,
                                           uint64_t k, uint64_t d, uint64_t size,
                                           uint64_t &lo, uint64_t &hi) {
    int64_t start = (int64_t)(o * stride) - (int64_t)pad;
    int64_t end = min(start + (int64_t)((k - 1) * d + 1), (int64_t)size);
    if (start < 0) start += ((-start + (int64_t)d - 1) / (int64_t)d) * (int64_t)d;
    lo = (uint64_t)start;
    hi = (uint64_t)max(end, (int64_t)0);
}

// The outputs [lo, hi) whose window (start = o*stride - pad, k wide: the span of a
// dilated window) covers input row `y`: start <= y < start + k, i.e.
// (y + pad - k) / stride < o <= (y + pad) / stride.
__device__ __forceinline__ void covering(uint64_t y, uint64_t stride, uint64_t pad, uint64_t k,
                                         uint64_t out, uint64_t &lo, uint64_t &hi) {
    uint64_t a = y + pad;
    lo = a < k ? 0 : (a - k) / stride + 1;
    hi = min(a / stride + 1, out);
}

// Adaptive window of output `i`: input rows floor(i*in/out) .. ceil((i+1)*in/out).
__device__ __forceinline__ void adaptive_window(uint64_t i, uint64_t in, uint64_t out,
                                                uint64_t &lo, uint64_t &hi) {
    lo = i * in / out;
    hi = ((i + 1) * in + out - 1) / out;
}

// The outputs [lo, hi) whose adaptive window covers input row `y`: floor(o*in/out) <= y
// holds for o < ceil((y+1)*out/in), and y < ceil((o+1)*in/out) for o >= floor(y*out/in).
__device__ __forceinline__ void adaptive_covering(uint64_t y, uint64_t in, uint64_t out,
                                                  uint64_t &lo, uint64_t &hi) {
    lo = y * out / in;
    hi = min(((y + 1) * out + in - 1) / in, out);
}

// Splits element i of contiguous (planes, rows, cols) into plane, row and column, with
// 32-bit division when every index of the launch (< n) fits: several times cheaper on
// GPUs than 64-bit division.
__device__ __forceinline__ void split_plane(uint64_t i, uint64_t n, uint64_t rows,
                                            uint64_t cols, uint64_t &plane, uint64_t &r,
                                            uint64_t &c) {
    if (n <= 0xffffffffull) {
        uint32_t j = (uint32_t)i, q = j / (uint32_t)cols, p = q / (uint32_t)rows;
        c = j - q * (uint32_t)cols;
        r = q - p * (uint32_t)rows;
        plane = p;
    } else {
        uint64_t q = i / cols;
        c = i - q * cols;
        plane = q / rows;
        r = q - plane * rows;
    }
}

// One thread per output: the window's maximum and its index in the h*w plane.
template <typename T>
__device__ __forceinline__ void max_pool2d_impl(const T *x, const Pool2d &p, T *out,
                                                int64_t *idx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = p.planes * p.out_h * p.out_w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, oy, ox;
        split_plane(i, n, p.out_h, p.out_w, plane, oy, ox);
        uint64_t y0, y1, x0, x1;
        max_window(oy, p.sh, p.ph, p.kh, p.dh, p.h, y0, y1);
        max_window(ox, p.sw, p.pw, p.kw, p.dw, p.w, x0, x1);
        const T *src = x + plane * p.h * p.w;
        C best = -(C)INFINITY;
        uint64_t at = y0 * p.w + x0;
        for (uint64_t y = y0; y < y1; y += p.dh) {
            for (uint64_t xx = x0; xx < x1; xx += p.dw) {
                C v = widen(src[y * p.w + xx]);
                if (v > best || v != v) {
                    best = v;
                    at = y * p.w + xx;
                }
            }
        }
        out[i] = narrow<T>(best);
        idx[i] = (int64_t)at;
    }
}

// One thread per input element: the sum of the gradients of the covering outputs that
// took this element (saved index == its index in the plane). Outputs whose dilated
// window spans the element without reading it never saved its index.
template <typename T>
__device__ __forceinline__ void max_pool2d_backward_impl(const T *g, const int64_t *idx,
                                                         const Pool2d &p, T *gx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = p.planes * p.h * p.w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, y, x, oy0, oy1, ox0, ox1;
        split_plane(i, n, p.h, p.w, plane, y, x);
        covering(y, p.sh, p.ph, (p.kh - 1) * p.dh + 1, p.out_h, oy0, oy1);
        covering(x, p.sw, p.pw, (p.kw - 1) * p.dw + 1, p.out_w, ox0, ox1);
        uint64_t base = plane * p.out_h * p.out_w;
        int64_t here = (int64_t)(y * p.w + x);
        C acc = 0;
        for (uint64_t oy = oy0; oy < oy1; ++oy) {
            for (uint64_t ox = ox0; ox < ox1; ++ox) {
                uint64_t j = base + oy * p.out_w + ox;
                if (idx[j] == here) acc += widen(g[j]);
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

// One thread per output: the window's sum over its divisor (0 for a window that reads
// no input, as on the CPU).
template <typename T>
__device__ __forceinline__ void avg_pool2d_impl(const T *x, const Pool2d &p, T *out) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = p.planes * p.out_h * p.out_w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, oy, ox;
        split_plane(i, n, p.out_h, p.out_w, plane, oy, ox);
        Span ys = pool_window(oy, p.sh, p.ph, p.kh, p.h, p.include_pad);
        Span xs = pool_window(ox, p.sw, p.pw, p.kw, p.w, p.include_pad);
        const T *src = x + plane * p.h * p.w;
        C sum = 0;
        for (uint64_t y = ys.lo; y < ys.hi; ++y)
            for (uint64_t xx = xs.lo; xx < xs.hi; ++xx) sum += widen(src[y * p.w + xx]);
        bool reads = ys.lo < ys.hi && xs.lo < xs.hi;
        out[i] = narrow<T>(reads ? sum / (C)(ys.count * xs.count) : (C)0);
    }
}

// One thread per input element: each covering output's gradient over its divisor.
template <typename T>
__device__ __forceinline__ void avg_pool2d_backward_impl(const T *g, const Pool2d &p, T *gx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = p.planes * p.h * p.w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, y, x, oy0, oy1, ox0, ox1;
        split_plane(i, n, p.h, p.w, plane, y, x);
        covering(y, p.sh, p.ph, p.kh, p.out_h, oy0, oy1);
        covering(x, p.sw, p.pw, p.kw, p.out_w, ox0, ox1);
        const T *gs = g + plane * p.out_h * p.out_w;
        C acc = 0;
        for (uint64_t oy = oy0; oy < oy1; ++oy) {
            uint64_t ch = pool_window(oy, p.sh, p.ph, p.kh, p.h, p.include_pad).count;
            for (uint64_t ox = ox0; ox < ox1; ++ox) {
                uint64_t cw = pool_window(ox, p.sw, p.pw, p.kw, p.w, p.include_pad).count;
                acc += widen(gs[oy * p.out_w + ox]) / (C)(ch * cw);
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

// One thread per output: the mean of its adaptive window.
template <typename T>
__device__ __forceinline__ void adaptive_avg_pool2d_impl(const T *x, uint64_t planes,
                                                         uint64_t h, uint64_t w,
                                                         uint64_t out_h, uint64_t out_w,
                                                         T *out) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = planes * out_h * out_w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, oy, ox, y0, y1, x0, x1;
        split_plane(i, n, out_h, out_w, plane, oy, ox);
        adaptive_window(oy, h, out_h, y0, y1);
        adaptive_window(ox, w, out_w, x0, x1);
        const T *src = x + plane * h * w;
        C sum = 0;
        for (uint64_t y = y0; y < y1; ++y)
            for (uint64_t xx = x0; xx < x1; ++xx) sum += widen(src[y * w + xx]);
        out[i] = narrow<T>(sum / (C)((y1 - y0) * (x1 - x0)));
    }
}

// One thread per input element: each covering output's gradient over its window size.
template <typename T>
__device__ __forceinline__ void adaptive_avg_pool2d_backward_impl(const T *g, uint64_t planes,
                                                                  uint64_t h, uint64_t w,
                                                                  uint64_t out_h,
                                                                  uint64_t out_w, T *gx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = planes * h * w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, y, x, oy0, oy1, ox0, ox1;
        split_plane(i, n, h, w, plane, y, x);
        adaptive_covering(y, h, out_h, oy0, oy1);
        adaptive_covering(x, w, out_w, ox0, ox1);
        const T *gs = g + plane * out_h * out_w;
        C acc = 0;
        for (uint64_t oy = oy0; oy < oy1; ++oy) {
            uint64_t y0, y1;
            adaptive_window(oy, h, out_h, y0, y1);
            for (uint64_t ox = ox0; ox < ox1; ++ox) {
                uint64_t x0, x1;
                adaptive_window(ox, w, out_w, x0, x1);
                acc += widen(gs[oy * out_w + ox]) / (C)((y1 - y0) * (x1 - x0));
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

// The windowed kernels take Pool2dParams as scalars (kernel arguments are scalars,
// pointers, Dims or Strides), in the order of the Pool2d struct.

extern "C" __global__ void max_pool2d_f32(const float *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, float *out, int64_t *idx) { max_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out, idx); }
extern "C" __global__ void max_pool2d_f64(const double *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, double *out, int64_t *idx) { max_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out, idx); }
extern "C" __global__ void max_pool2d_f16(const f16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, f16 *out, int64_t *idx) { max_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out, idx); }
extern "C" __global__ void max_pool2d_bf16(const bf16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, bf16 *out, int64_t *idx) { max_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out, idx); }

extern "C" __global__ void max_pool2d_backward_f32(const float *g, const int64_t *idx, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, float *gx) { max_pool2d_backward_impl(g, idx, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }
extern "C" __global__ void max_pool2d_backward_f64(const double *g, const int64_t *idx, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, double *gx) { max_pool2d_backward_impl(g, idx, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }
extern "C" __global__ void max_pool2d_backward_f16(const f16 *g, const int64_t *idx, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, f16 *gx) { max_pool2d_backward_impl(g, idx, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }
extern "C" __global__ void max_pool2d_backward_bf16(const bf16 *g, const int64_t *idx, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, bf16 *gx) { max_pool2d_backward_impl(g, idx, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }

extern "C" __global__ void avg_pool2d_f32(const float *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, float *out) { avg_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out); }
extern "C" __global__ void avg_pool2d_f64(const double *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, double *out) { avg_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out); }
extern "C" __global__ void avg_pool2d_f16(const f16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, f16 *out) { avg_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out); }
extern "C" __global__ void avg_pool2d_bf16(const bf16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, bf16 *out) { avg_pool2d_impl(x, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, out); }

extern "C" __global__ void avg_pool2d_backward_f32(const float *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, float *gx) { avg_pool2d_backward_impl(g, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }
extern "C" __global__ void avg_pool2d_backward_f64(const double *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, double *gx) { avg_pool2d_backward_impl(g, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }
extern "C" __global__ void avg_pool2d_backward_f16(const f16 *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, f16 *gx) { avg_pool2d_backward_impl(g, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }
extern "C" __global__ void avg_pool2d_backward_bf16(const bf16 *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t kh, uint64_t kw, uint64_t sh, uint64_t sw, uint64_t ph, uint64_t pw, uint64_t dh, uint64_t dw, uint64_t include_pad, bf16 *gx) { avg_pool2d_backward_impl(g, Pool2d{planes, h, w, out_h, out_w, kh, kw, sh, sw, ph, pw, dh, dw, include_pad}, gx); }

extern "C" __global__ void adaptive_avg_pool2d_f32(const float *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, float *out) { adaptive_avg_pool2d_impl(x, planes, h, w, out_h, out_w, out); }
extern "C" __global__ void adaptive_avg_pool2d_f64(const double *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, double *out) { adaptive_avg_pool2d_impl(x, planes, h, w, out_h, out_w, out); }
extern "C" __global__ void adaptive_avg_pool2d_f16(const f16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, f16 *out) { adaptive_avg_pool2d_impl(x, planes, h, w, out_h, out_w, out); }
extern "C" __global__ void adaptive_avg_pool2d_bf16(const bf16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, bf16 *out) { adaptive_avg_pool2d_impl(x, planes, h, w, out_h, out_w, out); }

extern "C" __global__ void adaptive_avg_pool2d_backward_f32(const float *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, float *gx) { adaptive_avg_pool2d_backward_impl(g, planes, h, w, out_h, out_w, gx); }
extern "C" __global__ void adaptive_avg_pool2d_backward_f64(const double *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, double *gx) { adaptive_avg_pool2d_backward_impl(g, planes, h, w, out_h, out_w, gx); }
extern "C" __global__ void adaptive_avg_pool2d_backward_f16(const f16 *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, f16 *gx) { adaptive_avg_pool2d_backward_impl(g, planes, h, w, out_h, out_w, gx); }
extern "C" __global__ void adaptive_avg_pool2d_backward_bf16(const bf16 *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, bf16 *gx) { adaptive_avg_pool2d_backward_impl(g, planes, h, w, out_h, out_w, gx); }
