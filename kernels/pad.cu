// Padding of the last two dimensions of contiguous (planes, h, w) tensors, exactly as
// the CPU reference (src/backend/cpu/pad.rs) with the index rules of
// src/backend/pad.rs (`source`, `receivers`), mirrored here.
//
// Forward: one thread per OUTPUT element (grid-stride) copies the input element its
// position maps to, or writes the constant.
// Backward gathers instead of scatter: one thread per INPUT element sums the gradients
// of the (at most 3 ranges per dimension of) output positions that copied it, in the
// CPU's order. Every sum has one writer, so the gradient is deterministic (no float
// atomics) and bit-identical to the CPU's.
#include "common.cuh"

enum PadCode { P_CONSTANT = 0, P_REFLECT, P_REPLICATE, P_CIRCULAR };

// The geometry of one padding (Pad2dParams in src/backend/pad.rs).
struct Pad2d {
    uint64_t planes, h, w, top, bottom, left, right;
};

// The input index output `o` copies along a dimension, or -1 for the constant fill.
__device__ __forceinline__ int64_t pad_source(uint64_t o, uint64_t size, uint64_t before,
                                              uint32_t mode) {
    int64_t y = (int64_t)o - (int64_t)before, n = (int64_t)size;
    if (y >= 0 && y < n) return y;
    switch (mode) {
    case P_CONSTANT: return -1;
    case P_REFLECT: return y < 0 ? -y : 2 * (n - 1) - y;
    case P_REPLICATE: return y < 0 ? 0 : n - 1;
    case P_CIRCULAR: return y < 0 ? y + n : y - n;
    default: __trap();
    }
    return -1;
}

// The output ranges [lo[k], hi[k]) that copy input index `i` (k = 0: the position
// itself, 1: copies before it, 2: copies after it).
__device__ __forceinline__ void pad_receivers(uint64_t i, uint64_t size, uint64_t before,
                                              uint64_t after, uint32_t mode, uint64_t lo[3],
                                              uint64_t hi[3]) {
    uint64_t end = before + size;
    lo[0] = before + i;
    hi[0] = before + i + 1;
    lo[1] = hi[1] = lo[2] = hi[2] = 0;
    switch (mode) {
    case P_CONSTANT: break;
    case P_REFLECT: {
        if (i >= 1 && i <= before) { lo[1] = before - i; hi[1] = lo[1] + 1; }
        uint64_t mirrored = 2 * (size - 1) - i;
        if (i + 1 < size && mirrored - size < after) { lo[2] = before + mirrored; hi[2] = lo[2] + 1; }
        break;
    }
    case P_REPLICATE:
        if (i == 0) { lo[1] = 0; hi[1] = before; }
        if (i + 1 == size) { lo[2] = end; hi[2] = end + after; }
        break;
    case P_CIRCULAR:
        if (i + before >= size) { lo[1] = i + before - size; hi[1] = lo[1] + 1; }
        if (i < after) { lo[2] = end + i; hi[2] = lo[2] + 1; }
        break;
    default: __trap();
    }
}

template <typename T>
__device__ __forceinline__ void pad2d_impl(const T *x, const Pad2d &p, uint32_t mode,
                                           double value, T *out) {
    typedef typename ComputeOf<T>::type C;
    uint64_t oh = p.top + p.h + p.bottom, ow = p.left + p.w + p.right;
    uint64_t n = p.planes * oh * ow;
    T fill = narrow<T>((C)value);
    KILN_FOR_EACH(i, n) {
        uint64_t plane = i / (oh * ow), r = i - plane * oh * ow, oy = r / ow, ox = r - oy * ow;
        int64_t iy = pad_source(oy, p.h, p.top, mode), ix = pad_source(ox, p.w, p.left, mode);
        out[i] = (iy < 0 || ix < 0) ? fill : x[(plane * p.h + (uint64_t)iy) * p.w + (uint64_t)ix];
    }
}

template <typename T>
__device__ __forceinline__ void pad2d_backward_impl(const T *g, const Pad2d &p, uint32_t mode,
                                                    T *gx) {
    typedef typename ComputeOf<T>::type C;
    uint64_t oh = p.top + p.h + p.bottom, ow = p.left + p.w + p.right;
    uint64_t n = p.planes * p.h * p.w;
    KILN_FOR_EACH(i, n) {
        uint64_t plane = i / (p.h * p.w), r = i - plane * p.h * p.w, iy = r / p.w, ix = r - iy * p.w;
        uint64_t ylo[3], yhi[3], xlo[3], xhi[3];
        pad_receivers(iy, p.h, p.top, p.bottom, mode, ylo, yhi);
        pad_receivers(ix, p.w, p.left, p.right, mode, xlo, xhi);
        const T *src = g + plane * oh * ow;
        C acc = 0;
        for (int a = 0; a < 3; ++a)
            for (uint64_t oy = ylo[a]; oy < yhi[a]; ++oy)
                for (int b = 0; b < 3; ++b)
                    for (uint64_t ox = xlo[b]; ox < xhi[b]; ++ox) acc += widen(src[oy * ow + ox]);
        gx[i] = narrow<T>(acc);
    }
}

extern "C" __global__ void pad2d_f32(const float *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, double value, float *out) { pad2d_impl(x, Pad2d{planes, h, w, top, bottom, left, right}, mode, value, out); }
extern "C" __global__ void pad2d_f64(const double *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, double value, double *out) { pad2d_impl(x, Pad2d{planes, h, w, top, bottom, left, right}, mode, value, out); }
extern "C" __global__ void pad2d_f16(const f16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, double value, f16 *out) { pad2d_impl(x, Pad2d{planes, h, w, top, bottom, left, right}, mode, value, out); }
extern "C" __global__ void pad2d_bf16(const bf16 *x, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, double value, bf16 *out) { pad2d_impl(x, Pad2d{planes, h, w, top, bottom, left, right}, mode, value, out); }

extern "C" __global__ void pad2d_backward_f32(const float *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, float *gx) { pad2d_backward_impl(g, Pad2d{planes, h, w, top, bottom, left, right}, mode, gx); }
extern "C" __global__ void pad2d_backward_f64(const double *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, double *gx) { pad2d_backward_impl(g, Pad2d{planes, h, w, top, bottom, left, right}, mode, gx); }
extern "C" __global__ void pad2d_backward_f16(const f16 *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, f16 *gx) { pad2d_backward_impl(g, Pad2d{planes, h, w, top, bottom, left, right}, mode, gx); }
extern "C" __global__ void pad2d_backward_bf16(const bf16 *g, uint64_t planes, uint64_t h, uint64_t w, uint64_t top, uint64_t bottom, uint64_t left, uint64_t right, uint32_t mode, bf16 *gx) { pad2d_backward_impl(g, Pad2d{planes, h, w, top, bottom, left, right}, mode, gx); }
