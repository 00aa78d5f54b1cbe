// Pooling over contiguous (planes, d, h, w) volumes, exactly as the CPU reference
// (src/backend/cpu/pool.rs): max keeps the first largest value of its dilated window
// and lets every NaN win (the index is the last NaN's, as on the CPU), average divides
// by the window's size including padding (PyTorch's count_include_pad=True) or by the
// input elements it holds (False), adaptive windows are
// floor(i*in/out) .. ceil((i+1)*in/out). 1-d and 2-d poolings are 3-d ones with unit
// leading axes (and unit windows along them). Halves compute in f32, like the CPU.
//
// Forward kernels: one thread per OUTPUT element (grid-stride), which reads its window.
// Backward kernels gather instead of scatter: one thread per INPUT element iterates the
// few outputs whose window covers it, in row-major output order. Every sum thus has one
// writer and the CPU's order of additions, so gradients are deterministic (no float
// atomics) and bit-identical to the CPU's.
//
// Each operation is one template over its window rule (MaxRule, AvgRule: fixed strided
// windows; AdaptiveRule), instantiated per dtype at the end of the file.
#include "common.cuh"

// The geometry of one pooling (PoolParams in src/backend/pool.rs), axes (d, h, w):
// in, out: sizes; k, s, p, dil: kernel, stride, padding, dilation (fixed windows only);
// include_pad: count_include_pad (average only).
struct Pool {
    uint64_t planes, in[3], out[3], k[3], s[3], p[3], dil[3], include_pad;
};

// The kernels take the geometry as shape = (in, out), ks = (k, s), pd = (p, dil).
__device__ __forceinline__ Pool make_pool(uint64_t planes, const Dims &shape, const Dims &ks,
                                          const Dims &pd, uint64_t include_pad) {
    Pool g;
    g.planes = planes;
    for (int a = 0; a < 3; ++a) {
        g.in[a] = shape.d[a];
        g.out[a] = shape.d[3 + a];
        g.k[a] = ks.d[a];
        g.s[a] = ks.d[3 + a];
        g.p[a] = pd.d[a];
        g.dil[a] = pd.d[3 + a];
    }
    g.include_pad = include_pad;
    return g;
}

// The input range [lo, hi), read every `step`-th, of one window along one axis, and
// `count`, the window's factor of an average's divisor.
struct Span {
    uint64_t lo, hi, step, count;
};

// Max pooling's windows: the span clipped to the input, its start moved on past the
// padding by whole dilations (PyTorch's hstart/hend). Outputs covering input `y`: those
// whose span (start = o*s - p, (k-1)*dil + 1 wide) holds it.
struct MaxRule {
    static __device__ __forceinline__ Span span(const Pool &g, int a, uint64_t o) {
        int64_t d = (int64_t)g.dil[a];
        int64_t start = (int64_t)(o * g.s[a]) - (int64_t)g.p[a];
        int64_t end = min(start + (int64_t)((g.k[a] - 1) * g.dil[a] + 1), (int64_t)g.in[a]);
        if (start < 0) start += ((-start + d - 1) / d) * d;
        Span r;
        r.lo = (uint64_t)start;
        r.hi = max((uint64_t)max(end, (int64_t)0), r.lo);
        r.step = (uint64_t)d;
        r.count = 1;
        return r;
    }
    static __device__ __forceinline__ uint64_t width(const Pool &g, int a) {
        return (g.k[a] - 1) * g.dil[a] + 1;
    }
};

// Average pooling's windows: clipped to the input; the divisor counts padding but not
// the part beyond the padded input (ceil mode's overhang) with include_pad (PyTorch's
// pool_size), else the elements read.
struct AvgRule {
    static __device__ __forceinline__ Span span(const Pool &g, int a, uint64_t o) {
        int64_t start = (int64_t)(o * g.s[a]) - (int64_t)g.p[a];
        int64_t end = min(start + (int64_t)g.k[a], (int64_t)(g.in[a] + g.p[a]));
        Span r;
        r.lo = (uint64_t)max(start, (int64_t)0);
        r.hi = max((uint64_t)min(max(end, (int64_t)0), (int64_t)g.in[a]), r.lo);
        r.step = 1;
        r.count = g.include_pad ? (uint64_t)max(end - start, (int64_t)0) : r.hi - r.lo;
        return r;
    }
    static __device__ __forceinline__ uint64_t width(const Pool &g, int a) { return g.k[a]; }
};

// The outputs [lo, hi) of a fixed-window rule whose window (start = o*s - p, `width`
// wide) covers input `y`: (y + p - width) / s < o <= (y + p) / s.
template <typename R>
__device__ __forceinline__ void strided_covering(const Pool &g, int a, uint64_t y,
                                                 uint64_t &lo, uint64_t &hi) {
    uint64_t at = y + g.p[a], k = R::width(g, a);
    lo = at < k ? 0 : (at - k) / g.s[a] + 1;
    hi = min(at / g.s[a] + 1, g.out[a]);
}

// Adaptive windows: output i reads floor(i*in/out) .. ceil((i+1)*in/out). The outputs
// covering input y: floor(o*in/out) <= y holds for o < ceil((y+1)*out/in), and
// y < ceil((o+1)*in/out) for o >= floor(y*out/in).
struct AdaptiveRule {
    static __device__ __forceinline__ Span span(const Pool &g, int a, uint64_t o) {
        Span r;
        r.lo = o * g.in[a] / g.out[a];
        r.hi = ((o + 1) * g.in[a] + g.out[a] - 1) / g.out[a];
        r.step = 1;
        r.count = r.hi - r.lo;
        return r;
    }
    static __device__ __forceinline__ void covering(const Pool &g, int a, uint64_t y,
                                                    uint64_t &lo, uint64_t &hi) {
        lo = y * g.out[a] / g.in[a];
        hi = min(((y + 1) * g.out[a] + g.in[a] - 1) / g.in[a], g.out[a]);
    }
};

// The outputs covering input `y` along axis `a` under rule R.
template <typename R>
__device__ __forceinline__ void covering(const Pool &g, int a, uint64_t y, uint64_t &lo,
                                         uint64_t &hi) {
    strided_covering<R>(g, a, y, lo, hi);
}
template <>
__device__ __forceinline__ void covering<AdaptiveRule>(const Pool &g, int a, uint64_t y,
                                                       uint64_t &lo, uint64_t &hi) {
    AdaptiveRule::covering(g, a, y, lo, hi);
}

// Splits element i of contiguous (planes, size[0], size[1], size[2]) into its plane and
// coordinates, with 32-bit division when every index of the launch (< n) fits: several
// times cheaper on GPUs than 64-bit division. A unit depth (1-d and 2-d pooling) costs
// no division.
__device__ __forceinline__ void split_volume(uint64_t i, uint64_t n, const uint64_t *size,
                                             uint64_t &plane, uint64_t *c) {
    if (n <= 0xffffffffull) {
        uint32_t j = (uint32_t)i, q = j / (uint32_t)size[2], r = q / (uint32_t)size[1];
        c[2] = j - q * (uint32_t)size[2];
        c[1] = q - r * (uint32_t)size[1];
        uint32_t pl = size[0] == 1 ? r : r / (uint32_t)size[0];
        c[0] = r - pl * (uint32_t)size[0];
        plane = pl;
    } else {
        uint64_t q = i / size[2], r = q / size[1];
        c[2] = i - q * size[2];
        c[1] = q - r * size[1];
        plane = r / size[0];
        c[0] = r - plane * size[0];
    }
}

// One thread per output: the window's maximum and its index in the d*h*w volume.
template <typename T, typename R>
__device__ __forceinline__ void max_pool_impl(const T *x, const Pool &g, T *out, int64_t *idx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = g.planes * g.out[0] * g.out[1] * g.out[2];
    KILN_FOR_EACH(i, n) {
        uint64_t plane, o[3];
        split_volume(i, n, g.out, plane, o);
        Span sz = R::span(g, 0, o[0]), sy = R::span(g, 1, o[1]), sx = R::span(g, 2, o[2]);
        const T *src = x + plane * g.in[0] * g.in[1] * g.in[2];
        C best = -(C)INFINITY;
        uint64_t at = (sz.lo * g.in[1] + sy.lo) * g.in[2] + sx.lo;
        for (uint64_t z = sz.lo; z < sz.hi; z += sz.step) {
            for (uint64_t y = sy.lo; y < sy.hi; y += sy.step) {
                uint64_t row = (z * g.in[1] + y) * g.in[2];
                for (uint64_t xx = row + sx.lo; xx < row + sx.hi; xx += sx.step) {
                    C v = widen(src[xx]);
                    if (v > best || v != v) {
                        best = v;
                        at = xx;
                    }
                }
            }
        }
        out[i] = narrow<T>(best);
        idx[i] = (int64_t)at;
    }
}

// One thread per input element: the sum of the gradients of the covering outputs that
// took this element (saved index == its index in the volume). Outputs whose dilated
// window spans the element without reading it never saved its index.
template <typename T, typename R>
__device__ __forceinline__ void max_pool_backward_impl(const T *gy, const int64_t *idx,
                                                       const Pool &g, T *gx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = g.planes * g.in[0] * g.in[1] * g.in[2];
    KILN_FOR_EACH(i, n) {
        uint64_t plane, c[3], lo[3], hi[3];
        split_volume(i, n, g.in, plane, c);
        for (int a = 0; a < 3; ++a) covering<R>(g, a, c[a], lo[a], hi[a]);
        uint64_t base = plane * g.out[0] * g.out[1] * g.out[2];
        int64_t here = (int64_t)((c[0] * g.in[1] + c[1]) * g.in[2] + c[2]);
        C acc = 0;
        for (uint64_t oz = lo[0]; oz < hi[0]; ++oz)
            for (uint64_t oy = lo[1]; oy < hi[1]; ++oy)
                for (uint64_t ox = lo[2]; ox < hi[2]; ++ox) {
                    uint64_t j = base + (oz * g.out[1] + oy) * g.out[2] + ox;
                    if (idx[j] == here) acc += widen(gy[j]);
                }
        gx[i] = narrow<T>(acc);
    }
}

// One thread per output: the window's sum over its divisor (0 for a window that reads
// no input, as on the CPU).
template <typename T, typename R>
__device__ __forceinline__ void avg_pool_impl(const T *x, const Pool &g, T *out) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = g.planes * g.out[0] * g.out[1] * g.out[2];
    KILN_FOR_EACH(i, n) {
        uint64_t plane, o[3];
        split_volume(i, n, g.out, plane, o);
        Span sz = R::span(g, 0, o[0]), sy = R::span(g, 1, o[1]), sx = R::span(g, 2, o[2]);
        const T *src = x + plane * g.in[0] * g.in[1] * g.in[2];
        C sum = 0;
        for (uint64_t z = sz.lo; z < sz.hi; ++z)
            for (uint64_t y = sy.lo; y < sy.hi; ++y) {
                uint64_t row = (z * g.in[1] + y) * g.in[2];
                for (uint64_t xx = row + sx.lo; xx < row + sx.hi; ++xx) sum += widen(src[xx]);
            }
        bool reads = sz.lo < sz.hi && sy.lo < sy.hi && sx.lo < sx.hi;
        out[i] = narrow<T>(reads ? sum / (C)(sz.count * sy.count * sx.count) : (C)0);
    }
}

// One thread per input element: each covering output's gradient over its divisor.
template <typename T, typename R>
__device__ __forceinline__ void avg_pool_backward_impl(const T *gy, const Pool &g, T *gx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t n = g.planes * g.in[0] * g.in[1] * g.in[2];
    KILN_FOR_EACH(i, n) {
        uint64_t plane, c[3], lo[3], hi[3];
        split_volume(i, n, g.in, plane, c);
        for (int a = 0; a < 3; ++a) covering<R>(g, a, c[a], lo[a], hi[a]);
        const T *gs = gy + plane * g.out[0] * g.out[1] * g.out[2];
        C acc = 0;
        for (uint64_t oz = lo[0]; oz < hi[0]; ++oz) {
            uint64_t cz = R::span(g, 0, oz).count;
            for (uint64_t oy = lo[1]; oy < hi[1]; ++oy) {
                uint64_t czy = cz * R::span(g, 1, oy).count;
                for (uint64_t ox = lo[2]; ox < hi[2]; ++ox) {
                    uint64_t cnt = czy * R::span(g, 2, ox).count;
                    acc += widen(gs[(oz * g.out[1] + oy) * g.out[2] + ox]) / (C)cnt;
                }
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

// The kernels: fixed windows take (planes, shape, ks, pd, include_pad) as make_pool
// reads them; adaptive ones (planes, shape) alone (their rule reads no other field).
extern "C" __global__ void max_pool_f32(const float *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, float *out, int64_t *idx) { max_pool_impl<float, MaxRule>(x, make_pool(planes, shape, ks, pd, include_pad), out, idx); }
extern "C" __global__ void max_pool_f64(const double *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, double *out, int64_t *idx) { max_pool_impl<double, MaxRule>(x, make_pool(planes, shape, ks, pd, include_pad), out, idx); }
extern "C" __global__ void max_pool_f16(const f16 *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, f16 *out, int64_t *idx) { max_pool_impl<f16, MaxRule>(x, make_pool(planes, shape, ks, pd, include_pad), out, idx); }
extern "C" __global__ void max_pool_bf16(const bf16 *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, bf16 *out, int64_t *idx) { max_pool_impl<bf16, MaxRule>(x, make_pool(planes, shape, ks, pd, include_pad), out, idx); }

extern "C" __global__ void max_pool_backward_f32(const float *gy, const int64_t *idx, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, float *gx) { max_pool_backward_impl<float, MaxRule>(gy, idx, make_pool(planes, shape, ks, pd, include_pad), gx); }
extern "C" __global__ void max_pool_backward_f64(const double *gy, const int64_t *idx, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, double *gx) { max_pool_backward_impl<double, MaxRule>(gy, idx, make_pool(planes, shape, ks, pd, include_pad), gx); }
extern "C" __global__ void max_pool_backward_f16(const f16 *gy, const int64_t *idx, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, f16 *gx) { max_pool_backward_impl<f16, MaxRule>(gy, idx, make_pool(planes, shape, ks, pd, include_pad), gx); }
extern "C" __global__ void max_pool_backward_bf16(const bf16 *gy, const int64_t *idx, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, bf16 *gx) { max_pool_backward_impl<bf16, MaxRule>(gy, idx, make_pool(planes, shape, ks, pd, include_pad), gx); }

extern "C" __global__ void avg_pool_f32(const float *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, float *out) { avg_pool_impl<float, AvgRule>(x, make_pool(planes, shape, ks, pd, include_pad), out); }
extern "C" __global__ void avg_pool_f64(const double *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, double *out) { avg_pool_impl<double, AvgRule>(x, make_pool(planes, shape, ks, pd, include_pad), out); }
extern "C" __global__ void avg_pool_f16(const f16 *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, f16 *out) { avg_pool_impl<f16, AvgRule>(x, make_pool(planes, shape, ks, pd, include_pad), out); }
extern "C" __global__ void avg_pool_bf16(const bf16 *x, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, bf16 *out) { avg_pool_impl<bf16, AvgRule>(x, make_pool(planes, shape, ks, pd, include_pad), out); }

extern "C" __global__ void avg_pool_backward_f32(const float *gy, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, float *gx) { avg_pool_backward_impl<float, AvgRule>(gy, make_pool(planes, shape, ks, pd, include_pad), gx); }
extern "C" __global__ void avg_pool_backward_f64(const double *gy, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, double *gx) { avg_pool_backward_impl<double, AvgRule>(gy, make_pool(planes, shape, ks, pd, include_pad), gx); }
extern "C" __global__ void avg_pool_backward_f16(const f16 *gy, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, f16 *gx) { avg_pool_backward_impl<f16, AvgRule>(gy, make_pool(planes, shape, ks, pd, include_pad), gx); }
extern "C" __global__ void avg_pool_backward_bf16(const bf16 *gy, uint64_t planes, Dims shape, Dims ks, Dims pd, uint64_t include_pad, bf16 *gx) { avg_pool_backward_impl<bf16, AvgRule>(gy, make_pool(planes, shape, ks, pd, include_pad), gx); }

extern "C" __global__ void adaptive_max_pool_f32(const float *x, uint64_t planes, Dims shape, float *out, int64_t *idx) { max_pool_impl<float, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out, idx); }
extern "C" __global__ void adaptive_max_pool_f64(const double *x, uint64_t planes, Dims shape, double *out, int64_t *idx) { max_pool_impl<double, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out, idx); }
extern "C" __global__ void adaptive_max_pool_f16(const f16 *x, uint64_t planes, Dims shape, f16 *out, int64_t *idx) { max_pool_impl<f16, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out, idx); }
extern "C" __global__ void adaptive_max_pool_bf16(const bf16 *x, uint64_t planes, Dims shape, bf16 *out, int64_t *idx) { max_pool_impl<bf16, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out, idx); }

extern "C" __global__ void adaptive_max_pool_backward_f32(const float *gy, const int64_t *idx, uint64_t planes, Dims shape, float *gx) { max_pool_backward_impl<float, AdaptiveRule>(gy, idx, make_pool(planes, shape, shape, shape, 0), gx); }
extern "C" __global__ void adaptive_max_pool_backward_f64(const double *gy, const int64_t *idx, uint64_t planes, Dims shape, double *gx) { max_pool_backward_impl<double, AdaptiveRule>(gy, idx, make_pool(planes, shape, shape, shape, 0), gx); }
extern "C" __global__ void adaptive_max_pool_backward_f16(const f16 *gy, const int64_t *idx, uint64_t planes, Dims shape, f16 *gx) { max_pool_backward_impl<f16, AdaptiveRule>(gy, idx, make_pool(planes, shape, shape, shape, 0), gx); }
extern "C" __global__ void adaptive_max_pool_backward_bf16(const bf16 *gy, const int64_t *idx, uint64_t planes, Dims shape, bf16 *gx) { max_pool_backward_impl<bf16, AdaptiveRule>(gy, idx, make_pool(planes, shape, shape, shape, 0), gx); }

extern "C" __global__ void adaptive_avg_pool_f32(const float *x, uint64_t planes, Dims shape, float *out) { avg_pool_impl<float, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out); }
extern "C" __global__ void adaptive_avg_pool_f64(const double *x, uint64_t planes, Dims shape, double *out) { avg_pool_impl<double, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out); }
extern "C" __global__ void adaptive_avg_pool_f16(const f16 *x, uint64_t planes, Dims shape, f16 *out) { avg_pool_impl<f16, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out); }
extern "C" __global__ void adaptive_avg_pool_bf16(const bf16 *x, uint64_t planes, Dims shape, bf16 *out) { avg_pool_impl<bf16, AdaptiveRule>(x, make_pool(planes, shape, shape, shape, 0), out); }

extern "C" __global__ void adaptive_avg_pool_backward_f32(const float *gy, uint64_t planes, Dims shape, float *gx) { avg_pool_backward_impl<float, AdaptiveRule>(gy, make_pool(planes, shape, shape, shape, 0), gx); }
extern "C" __global__ void adaptive_avg_pool_backward_f64(const double *gy, uint64_t planes, Dims shape, double *gx) { avg_pool_backward_impl<double, AdaptiveRule>(gy, make_pool(planes, shape, shape, shape, 0), gx); }
extern "C" __global__ void adaptive_avg_pool_backward_f16(const f16 *gy, uint64_t planes, Dims shape, f16 *gx) { avg_pool_backward_impl<f16, AdaptiveRule>(gy, make_pool(planes, shape, shape, shape, 0), gx); }
extern "C" __global__ void adaptive_avg_pool_backward_bf16(const bf16 *gy, uint64_t planes, Dims shape, bf16 *gx) { avg_pool_backward_impl<bf16, AdaptiveRule>(gy, make_pool(planes, shape, shape, shape, 0), gx); }
