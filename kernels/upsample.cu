// Resampling (F::interpolate) over contiguous (planes, d, h, w) tensors, as the CPU
// reference (src/backend/cpu/upsample.rs): per axis, output o reads one or two input
// indices ("taps") with PyTorch's weights (UpSample.h): nearest reads
// min(floor(o * scale), in - 1) computed in f32; linear reads floor(real) and the next
// index, real = scale * (o + 0.5) - 0.5 clamped at 0 (or scale * o with
// align_corners), in the compute type. An axis whose size does not change copies.
// 1-d and 2-d inputs come as 3-d ones with unit axes.
//
// Forward: one thread per OUTPUT element, summing its taps (the width's sum inside the
// height's inside the depth's, as on the CPU). Backward: one thread per INPUT element,
// which finds by binary search the outputs reading it along each axis (their first tap
// is monotone in o) and gathers their gradients in row-major output order: one writer
// per element, no atomics, deterministic.
#include "common.cuh"

// One axis: input and output size, and the scale factor as given (0 when the size was).
struct Axis {
    uint64_t in, out;
    double scale;
};

// The input indices and weights output `o` reads along an axis; n is 1 or 2.
template <typename C> struct Taps {
    uint64_t i0, i1;
    C w0, w1;
    int n;
};

// PyTorch's nearest_idx (the axis changes size): o / 2 when the output doubles the
// input, else floor(o * scale) in f32, scale = 1 / scale_factor or in / out.
__device__ __forceinline__ uint64_t nearest_source(uint64_t o, const Axis &a) {
    if (a.out == 2 * a.in) return o >> 1;
    float scale = a.scale > 0 ? (float)(1.0 / a.scale) : (float)a.in / (float)a.out;
    uint64_t s = (uint64_t)floorf((float)o * scale);
    return s < a.in - 1 ? s : a.in - 1;
}

// PyTorch's area_pixel_compute_scale / _source_index / guard_index_and_lambda for a
// linear axis that changes size: the real source index is computed in f64 and rounded
// to the compute type, as area_pixel_compute_source_index does.
template <typename C>
__device__ __forceinline__ Taps<C> linear_taps(uint64_t o, const Axis &a, bool align) {
    C ratio;
    if (align) {
        ratio = a.out > 1 ? (C)(double)(a.in - 1) / (C)(double)(a.out - 1) : (C)0;
    } else {
        ratio = a.scale > 0 ? (C)(1.0 / a.scale) : (C)(double)a.in / (C)(double)a.out;
    }
    C real;
    if (align) {
        real = ratio * (C)(double)o;
    } else {
        real = (C)((double)ratio * ((double)o + 0.5) - 0.5);
        if (real < (C)0) real = (C)0;
    }
    uint64_t i0 = (uint64_t)(double)real;
    if (i0 > a.in - 1) i0 = a.in - 1;
    C l1 = real - (C)(double)i0;
    l1 = l1 < (C)0 ? (C)0 : (l1 > (C)1 ? (C)1 : l1);
    Taps<C> t;
    t.i0 = i0;
    t.i1 = i0 + (i0 + 1 < a.in ? 1 : 0);
    t.w0 = (C)1 - l1;
    t.w1 = l1;
    t.n = 2;
    return t;
}

template <typename C, bool LINEAR>
__device__ __forceinline__ Taps<C> taps(uint64_t o, const Axis &a, bool align) {
    if (LINEAR && a.in != a.out) return linear_taps<C>(o, a, align);
    Taps<C> t;
    t.i0 = t.i1 = a.in == a.out ? o : nearest_source(o, a);
    t.w0 = (C)1;
    t.w1 = (C)0;
    t.n = 1;
    return t;
}

// The weight with which output `o` reads input index `i` along an axis (0 if it does not).
template <typename C, bool LINEAR>
__device__ __forceinline__ C weight_of(uint64_t o, uint64_t i, const Axis &a, bool align) {
    Taps<C> t = taps<C, LINEAR>(o, a, align);
    C w = t.i0 == i ? t.w0 : (C)0;
    if (t.n == 2 && t.i1 == i) w += t.w1;
    return w;
}

// The first output whose first tap is at least `i` (a.out when none): first taps are
// non-decreasing in o.
template <typename C, bool LINEAR>
__device__ __forceinline__ uint64_t first_reading(uint64_t i, const Axis &a, bool align) {
    uint64_t lo = 0, hi = a.out;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (taps<C, LINEAR>(mid, a, align).i0 < i) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// The outputs [lo, hi) that read input index i: first tap i, or (linear) i - 1.
template <typename C, bool LINEAR>
__device__ __forceinline__ void readers(uint64_t i, const Axis &a, bool align, uint64_t &lo,
                                        uint64_t &hi) {
    lo = first_reading<C, LINEAR>(LINEAR && i > 0 ? i - 1 : i, a, align);
    hi = first_reading<C, LINEAR>(i + 1, a, align);
}

// Splits element i of contiguous (planes, d, h, w) into its plane and coordinates.
__device__ __forceinline__ void split_volume(uint64_t i, uint64_t d, uint64_t h, uint64_t w,
                                             uint64_t &plane, uint64_t &z, uint64_t &y,
                                             uint64_t &x) {
    x = i % w;
    uint64_t r = i / w;
    y = r % h;
    r /= h;
    z = r % d;
    plane = r / d;
}

template <typename T, bool LINEAR>
__device__ __forceinline__ void upsample_impl(const T *x, uint64_t planes, const Axis *ax,
                                              bool align, T *out) {
    typedef typename ComputeOf<T>::type C;
    const Axis &ad = ax[0], &ah = ax[1], &aw = ax[2];
    uint64_t n = planes * ad.out * ah.out * aw.out;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, oz, oy, ox;
        split_volume(i, ad.out, ah.out, aw.out, plane, oz, oy, ox);
        Taps<C> tz = taps<C, LINEAR>(oz, ad, align), ty = taps<C, LINEAR>(oy, ah, align),
                tx = taps<C, LINEAR>(ox, aw, align);
        const T *src = x + plane * ad.in * ah.in * aw.in;
        C acc = 0;
        for (int a = 0; a < tz.n; ++a) {
            C plane_sum = 0;
            for (int b = 0; b < ty.n; ++b) {
                const T *row = src + ((a ? tz.i1 : tz.i0) * ah.in + (b ? ty.i1 : ty.i0)) * aw.in;
                C row_sum = 0;
                for (int c = 0; c < tx.n; ++c)
                    row_sum += (c ? tx.w1 : tx.w0) * widen(row[c ? tx.i1 : tx.i0]);
                plane_sum += (b ? ty.w1 : ty.w0) * row_sum;
            }
            acc += (a ? tz.w1 : tz.w0) * plane_sum;
        }
        out[i] = narrow<T>(acc);
    }
}

template <typename T, bool LINEAR>
__device__ __forceinline__ void upsample_backward_impl(const T *g, uint64_t planes,
                                                       const Axis *ax, bool align, T *gx) {
    typedef typename ComputeOf<T>::type C;
    const Axis &ad = ax[0], &ah = ax[1], &aw = ax[2];
    uint64_t n = planes * ad.in * ah.in * aw.in;
    KILN_FOR_EACH(i, n) {
        uint64_t plane, z, y, x;
        split_volume(i, ad.in, ah.in, aw.in, plane, z, y, x);
        uint64_t z0, z1, y0, y1, x0, x1;
        readers<C, LINEAR>(z, ad, align, z0, z1);
        readers<C, LINEAR>(y, ah, align, y0, y1);
        readers<C, LINEAR>(x, aw, align, x0, x1);
        const T *gs = g + plane * ad.out * ah.out * aw.out;
        C acc = 0;
        for (uint64_t oz = z0; oz < z1; ++oz) {
            C wz = weight_of<C, LINEAR>(oz, z, ad, align);
            for (uint64_t oy = y0; oy < y1; ++oy) {
                C wzy = wz * weight_of<C, LINEAR>(oy, y, ah, align);
                const T *row = gs + (oz * ah.out + oy) * aw.out;
                for (uint64_t ox = x0; ox < x1; ++ox)
                    acc += wzy * weight_of<C, LINEAR>(ox, x, aw, align) * widen(row[ox]);
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

// Kernel arguments: the tensor, planes, the input sizes (d, h, w), the output sizes
// (d, h, w), the scale factors as given (d, h, w; 0 for none), align_corners, the result.

extern "C" __global__ void upsample_nearest_f32(const float *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, float *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<float, false>(x, planes, ax, align != 0, out); }
extern "C" __global__ void upsample_nearest_f64(const double *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, double *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<double, false>(x, planes, ax, align != 0, out); }
extern "C" __global__ void upsample_nearest_f16(const f16 *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, f16 *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<f16, false>(x, planes, ax, align != 0, out); }
extern "C" __global__ void upsample_nearest_bf16(const bf16 *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, bf16 *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<bf16, false>(x, planes, ax, align != 0, out); }

extern "C" __global__ void upsample_nearest_backward_f32(const float *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, float *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<float, false>(g, planes, ax, align != 0, gx); }
extern "C" __global__ void upsample_nearest_backward_f64(const double *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, double *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<double, false>(g, planes, ax, align != 0, gx); }
extern "C" __global__ void upsample_nearest_backward_f16(const f16 *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, f16 *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<f16, false>(g, planes, ax, align != 0, gx); }
extern "C" __global__ void upsample_nearest_backward_bf16(const bf16 *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, bf16 *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<bf16, false>(g, planes, ax, align != 0, gx); }

extern "C" __global__ void upsample_linear_f32(const float *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, float *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<float, true>(x, planes, ax, align != 0, out); }
extern "C" __global__ void upsample_linear_f64(const double *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, double *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<double, true>(x, planes, ax, align != 0, out); }
extern "C" __global__ void upsample_linear_f16(const f16 *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, f16 *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<f16, true>(x, planes, ax, align != 0, out); }
extern "C" __global__ void upsample_linear_bf16(const bf16 *x, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, bf16 *out) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_impl<bf16, true>(x, planes, ax, align != 0, out); }

extern "C" __global__ void upsample_linear_backward_f32(const float *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, float *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<float, true>(g, planes, ax, align != 0, gx); }
extern "C" __global__ void upsample_linear_backward_f64(const double *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, double *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<double, true>(g, planes, ax, align != 0, gx); }
extern "C" __global__ void upsample_linear_backward_f16(const f16 *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, f16 *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<f16, true>(g, planes, ax, align != 0, gx); }
extern "C" __global__ void upsample_linear_backward_bf16(const bf16 *g, uint64_t planes, uint64_t in_d, uint64_t in_h, uint64_t in_w, uint64_t out_d, uint64_t out_h, uint64_t out_w, double scale_d, double scale_h, double scale_w, uint64_t align, bf16 *gx) { Axis ax[3] = {{in_d, out_d, scale_d}, {in_h, out_h, scale_h}, {in_w, out_w, scale_w}}; upsample_backward_impl<bf16, true>(g, planes, ax, align != 0, gx); }
