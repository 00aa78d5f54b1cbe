// Mixed precision: the fused "non-finite check and unscale" of GradScaler (PyTorch's
// _amp_foreach_non_finite_check_and_unscale_), the reference being
// src/backend/cpu/amp.rs.
//
// out[i] = g[i] * inv_scale, computed in the compute type (f32 for f32/bf16, f64 for
// f64) with inv_scale rounded to f32 first, as PyTorch keeps it in a float tensor.
// When g[i] is inf or NaN (checked on the input, as PyTorch does), *found_inf = 1.
// Every thread that finds one writes the same value, so the race is benign and no
// atomic is needed; found_inf is one f32 shared by all the gradients of a device, so
// the host reads a single value per device after all launches.
//
// Thread mapping: a grid-stride loop, one element per iteration; g and out are
// contiguous, so thread i touches element i (coalesced).
#include "common.cuh"

template <typename T>
__device__ __forceinline__ void unscale_impl(uint64_t n, const T *g, T *out, float *found_inf,
                                             double inv_scale) {
    typedef typename ComputeOf<T>::type C;
    const C inv = (C)(float)inv_scale;
    KILN_FOR_EACH(i, n) {
        C v = widen(g[i]);
        // v - v is 0 for every finite v and NaN for inf and NaN.
        if (!(v - v == (C)0)) *found_inf = 1.0f;
        out[i] = narrow<T>(v * inv);
    }
}

extern "C" __global__ void amp_unscale_f32(uint64_t n, const float *g, float *out, float *found_inf, double inv_scale) { unscale_impl(n, g, out, found_inf, inv_scale); }
extern "C" __global__ void amp_unscale_f64(uint64_t n, const double *g, double *out, float *found_inf, double inv_scale) { unscale_impl(n, g, out, found_inf, inv_scale); }
extern "C" __global__ void amp_unscale_bf16(uint64_t n, const bf16 *g, bf16 *out, float *found_inf, double inv_scale) { unscale_impl(n, g, out, found_inf, inv_scale); }
