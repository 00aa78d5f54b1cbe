// Image transforms on (N, C, H, W) batches, for data::transforms: random crop with zero
// padding and random horizontal flip as one gather with per-sample offsets
// (src/backend/cpu/image.rs is the reference):
//   out[b, ch, i, j] = P[b, ch, top_b + i, left_b + j'],  j' = flip_b ? out_w-1-j : j,
// P the input with `pad` zeros on every side, (top_b, left_b, flip_b) row b of the
// (N, 3) int64 `params`. No arithmetic on values, so every dtype is exact.
//
// Thread mapping: grid-stride, one output element per iteration, in output order, so
// stores are coalesced and neighbouring threads read neighbouring input columns (in
// reverse for a flipped sample: still one contiguous row segment per warp).
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void crop_flip_impl(uint64_t total, const T *x, const int64_t *params,
                                               T *out, uint64_t c, uint64_t h, uint64_t w,
                                               uint64_t out_h, uint64_t out_w, uint64_t pad) {
    KILN_FOR_EACH(i, total) {
        uint64_t j = i % out_w, t = i / out_w;
        uint64_t row = t % out_h, plane = t / out_h;
        uint64_t b = plane / c;
        int64_t top = params[3 * b], left = params[3 * b + 1];
        int64_t jj = params[3 * b + 2] != 0 ? (int64_t)(out_w - 1 - j) : (int64_t)j;
        int64_t y = top + (int64_t)row - (int64_t)pad;
        int64_t xx = left + jj - (int64_t)pad;
        T v = from_f64<T>(0.0);
        if (y >= 0 && y < (int64_t)h && xx >= 0 && xx < (int64_t)w) v = x[(plane * h + (uint64_t)y) * w + (uint64_t)xx];
        out[i] = v;
    }
}

extern "C" __global__ void crop_flip_f32(uint64_t total, const float *x, const int64_t *params, float *out, uint64_t c, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t pad) { crop_flip_impl(total, x, params, out, c, h, w, out_h, out_w, pad); }
extern "C" __global__ void crop_flip_f64(uint64_t total, const double *x, const int64_t *params, double *out, uint64_t c, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t pad) { crop_flip_impl(total, x, params, out, c, h, w, out_h, out_w, pad); }
extern "C" __global__ void crop_flip_f16(uint64_t total, const f16 *x, const int64_t *params, f16 *out, uint64_t c, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t pad) { crop_flip_impl(total, x, params, out, c, h, w, out_h, out_w, pad); }
extern "C" __global__ void crop_flip_bf16(uint64_t total, const bf16 *x, const int64_t *params, bf16 *out, uint64_t c, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t pad) { crop_flip_impl(total, x, params, out, c, h, w, out_h, out_w, pad); }
extern "C" __global__ void crop_flip_i64(uint64_t total, const int64_t *x, const int64_t *params, int64_t *out, uint64_t c, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t pad) { crop_flip_impl(total, x, params, out, c, h, w, out_h, out_w, pad); }
extern "C" __global__ void crop_flip_u8(uint64_t total, const uint8_t *x, const int64_t *params, uint8_t *out, uint64_t c, uint64_t h, uint64_t w, uint64_t out_h, uint64_t out_w, uint64_t pad) { crop_flip_impl(total, x, params, out, c, h, w, out_h, out_w, pad); }
