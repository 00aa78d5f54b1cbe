// Batch normalisation, layer norm, RMS norm and group norm: the CUDA side of
// src/backend/cpu/norm.rs.
//
// The input is contiguous and seen as (n, c, s): channel ch's values are the n rows of
// s elements at (sample * c + ch) * s. Statistics are per channel over those n * s
// values, in the compute type C (f32 for f32/f16/bf16, f64 for f64), and saved in C.
//
// Thread mappings, and why:
//   * batch_norm_stats_* and batch_norm_backward_*: one block per channel (a grid-stride
//     loop over channels). The block's threads stride over the channel's n * s values
//     and `block_all` combines their partial sums in a fixed order, so every result is
//     deterministic without atomics or a second merge kernel; a block owns its channel's
//     sums, so the backward computes them and then, in the same launch, the elementwise
//     grad_x of that channel (2 passes over g and x). One block per channel leaves SMs
//     idle when c is below the SM count; the per-channel passes are then the bottleneck.
//   * batch_norm_apply_*: grid-stride over all n * c * s outputs (an elementwise op that
//     every SM shares whatever c is), the channel being (i / s) % c.
#include "common.cuh"

// Element k (0 <= k < n * s) of channel ch: sample k / s, position k % s.
__device__ __forceinline__ uint64_t channel_at(uint64_t k, uint64_t ch, uint64_t c, uint64_t s) {
    return ((k / s) * c + ch) * s + k % s;
}

// Per-channel mean and biased variance, two passes (mean, then squared deviations):
// the one-pass E[x^2] - E[x]^2 cancels catastrophically when |mean| >> std.
template <typename T>
__device__ __forceinline__ void batch_norm_stats(const T *x, uint64_t n, uint64_t c, uint64_t s,
                                                 typename ComputeOf<T>::type *mean,
                                                 typename ComputeOf<T>::type *var) {
    typedef typename ComputeOf<T>::type C;
    uint64_t count = n * s;
    for (uint64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        C sum = 0;
        for (uint64_t k = threadIdx.x; k < count; k += blockDim.x)
            sum += widen(x[channel_at(k, ch, c, s)]);
        C m = block_all(sum, false) / (C)count;
        C sq = 0;
        for (uint64_t k = threadIdx.x; k < count; k += blockDim.x) {
            C d = widen(x[channel_at(k, ch, c, s)]) - m;
            sq += d * d;
        }
        C v = block_all(sq, false) / (C)count;
        if (threadIdx.x == 0) {
            mean[ch] = m;
            var[ch] = v;
        }
    }
}

// y = (x - mean) / sqrt(var + eps) * weight + bias; weight/bias may be null (1 and 0)
// and are strided (C) vectors. The fused epilogue of F::batch_norm_act, in the same
// pass so the normalised values never round-trip through memory: a contiguous residual
// (null: none) is added, then ReLU when `relu` (x <= 0 gives 0; NaN passes, as relu).
template <typename T>
__device__ __forceinline__ void batch_norm_apply(const T *x, uint64_t total, uint64_t c,
                                                 uint64_t s, const typename ComputeOf<T>::type *mean,
                                                 const typename ComputeOf<T>::type *var, double eps,
                                                 const T *weight, int64_t wstride, const T *bias,
                                                 int64_t bstride, const T *residual, uint32_t relu,
                                                 T *y) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(i, total) {
        uint64_t ch = (i / s) % c;
        C inv_std = (C)1 / sqrt(var[ch] + (C)eps);
        C r = (widen(x[i]) - mean[ch]) * inv_std;
        if (weight) r *= widen(weight[(int64_t)ch * wstride]);
        if (bias) r += widen(bias[(int64_t)ch * bstride]);
        if (residual) r += widen(residual[i]);
        if (relu && r <= (C)0) r = (C)0;
        y[i] = narrow<T>(r);
    }
}

// Per channel: grad_bias = sum g, grad_weight = sum g * x_hat, then
// grad_x = weight * inv_std * (g - grad_bias / count - x_hat * grad_weight / count) when
// the statistics were the batch's (batch_stats), else weight * inv_std * g.
// After F::batch_norm_act's ReLU, `y` is its (contiguous) output and g is first masked
// where y <= 0 (relu's backward, in the same pass); `dres` (null: not wanted) receives
// that masked g, the residual's gradient.
template <typename T>
__device__ __forceinline__ void batch_norm_backward(const T *g, const T *x, uint64_t n, uint64_t c,
                                                    uint64_t s,
                                                    const typename ComputeOf<T>::type *mean,
                                                    const typename ComputeOf<T>::type *var,
                                                    double eps, const T *weight, int64_t wstride,
                                                    uint32_t batch_stats, const T *y, T *dx,
                                                    T *dweight, T *dbias, T *dres) {
    typedef typename ComputeOf<T>::type C;
    uint64_t count = n * s;
    for (uint64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        C m = mean[ch], inv_std = (C)1 / sqrt(var[ch] + (C)eps);
        C sum_g = 0, sum_gx = 0;
        for (uint64_t k = threadIdx.x; k < count; k += blockDim.x) {
            uint64_t i = channel_at(k, ch, c, s);
            C gi = (y && widen(y[i]) <= (C)0) ? (C)0 : widen(g[i]);
            sum_g += gi;
            sum_gx += gi * ((widen(x[i]) - m) * inv_std);
        }
        sum_g = block_all(sum_g, false);
        sum_gx = block_all(sum_gx, false);
        if (threadIdx.x == 0) {
            dbias[ch] = narrow<T>(sum_g);
            dweight[ch] = narrow<T>(sum_gx);
        }
        C scale = weight ? widen(weight[(int64_t)ch * wstride]) * inv_std : inv_std;
        C mean_g = sum_g / (C)count, mean_gx = sum_gx / (C)count;
        for (uint64_t k = threadIdx.x; k < count; k += blockDim.x) {
            uint64_t i = channel_at(k, ch, c, s);
            C gi = (y && widen(y[i]) <= (C)0) ? (C)0 : widen(g[i]);
            if (dres) dres[i] = narrow<T>(gi);
            C r = batch_stats ? (gi - mean_g - (widen(x[i]) - m) * inv_std * mean_gx) * scale
                              : gi * scale;
            dx[i] = narrow<T>(r);
        }
    }
}

extern "C" __global__ void batch_norm_stats_f32(const float *x, uint64_t n, uint64_t c, uint64_t s, float *mean, float *var) { batch_norm_stats(x, n, c, s, mean, var); }
extern "C" __global__ void batch_norm_stats_f64(const double *x, uint64_t n, uint64_t c, uint64_t s, double *mean, double *var) { batch_norm_stats(x, n, c, s, mean, var); }
extern "C" __global__ void batch_norm_stats_f16(const f16 *x, uint64_t n, uint64_t c, uint64_t s, float *mean, float *var) { batch_norm_stats(x, n, c, s, mean, var); }
extern "C" __global__ void batch_norm_stats_bf16(const bf16 *x, uint64_t n, uint64_t c, uint64_t s, float *mean, float *var) { batch_norm_stats(x, n, c, s, mean, var); }

extern "C" __global__ void batch_norm_apply_f32(const float *x, uint64_t total, uint64_t c, uint64_t s, const float *mean, const float *var, double eps, const float *weight, int64_t wstride, const float *bias, int64_t bstride, const float *residual, uint32_t relu, float *y) { batch_norm_apply(x, total, c, s, mean, var, eps, weight, wstride, bias, bstride, residual, relu, y); }
extern "C" __global__ void batch_norm_apply_f64(const double *x, uint64_t total, uint64_t c, uint64_t s, const double *mean, const double *var, double eps, const double *weight, int64_t wstride, const double *bias, int64_t bstride, const double *residual, uint32_t relu, double *y) { batch_norm_apply(x, total, c, s, mean, var, eps, weight, wstride, bias, bstride, residual, relu, y); }
extern "C" __global__ void batch_norm_apply_f16(const f16 *x, uint64_t total, uint64_t c, uint64_t s, const float *mean, const float *var, double eps, const f16 *weight, int64_t wstride, const f16 *bias, int64_t bstride, const f16 *residual, uint32_t relu, f16 *y) { batch_norm_apply(x, total, c, s, mean, var, eps, weight, wstride, bias, bstride, residual, relu, y); }
extern "C" __global__ void batch_norm_apply_bf16(const bf16 *x, uint64_t total, uint64_t c, uint64_t s, const float *mean, const float *var, double eps, const bf16 *weight, int64_t wstride, const bf16 *bias, int64_t bstride, const bf16 *residual, uint32_t relu, bf16 *y) { batch_norm_apply(x, total, c, s, mean, var, eps, weight, wstride, bias, bstride, residual, relu, y); }

extern "C" __global__ void batch_norm_backward_f32(const float *g, const float *x, uint64_t n, uint64_t c, uint64_t s, const float *mean, const float *var, double eps, const float *weight, int64_t wstride, uint32_t batch_stats, const float *y, float *dx, float *dweight, float *dbias, float *dres) { batch_norm_backward(g, x, n, c, s, mean, var, eps, weight, wstride, batch_stats, y, dx, dweight, dbias, dres); }
extern "C" __global__ void batch_norm_backward_f64(const double *g, const double *x, uint64_t n, uint64_t c, uint64_t s, const double *mean, const double *var, double eps, const double *weight, int64_t wstride, uint32_t batch_stats, const double *y, double *dx, double *dweight, double *dbias, double *dres) { batch_norm_backward(g, x, n, c, s, mean, var, eps, weight, wstride, batch_stats, y, dx, dweight, dbias, dres); }
extern "C" __global__ void batch_norm_backward_f16(const f16 *g, const f16 *x, uint64_t n, uint64_t c, uint64_t s, const float *mean, const float *var, double eps, const f16 *weight, int64_t wstride, uint32_t batch_stats, const f16 *y, f16 *dx, f16 *dweight, f16 *dbias, f16 *dres) { batch_norm_backward(g, x, n, c, s, mean, var, eps, weight, wstride, batch_stats, y, dx, dweight, dbias, dres); }
extern "C" __global__ void batch_norm_backward_bf16(const bf16 *g, const bf16 *x, uint64_t n, uint64_t c, uint64_t s, const float *mean, const float *var, double eps, const bf16 *weight, int64_t wstride, uint32_t batch_stats, const bf16 *y, bf16 *dx, bf16 *dweight, bf16 *dbias, bf16 *dres) { batch_norm_backward(g, x, n, c, s, mean, var, eps, weight, wstride, batch_stats, y, dx, dweight, dbias, dres); }

// ---- Layer norm and RMS norm (rms != 0): the input is contiguous (rows, d), the
// statistics are per row, in C, saved for the backward pass (mean only for layer norm).
//
// Thread mappings, and why:
//   * layer_norm_forward_*: one block per row (a grid-stride loop over rows), threads
//     striding over the row's d values: two passes for the statistics (mean, then the
//     squared deviations, combined by `block_all` in a fixed order) and one that writes
//     y; the row is re-read from L1/L2, not DRAM. A block rather than a warp per row,
//     because transformer rows are hundreds to thousands of values wide.
//   * layer_norm_backward_*: the same mapping for dx (two block sums per row: of w·g
//     and w·g·x_hat). The weight and bias gradients are column sums over rows: block b
//     owns rows b, b + gridDim.x, ... and keeps its column partial sums in row b of
//     `part_w`/`part_b` (gridDim.x × d, in C; thread t always owns the same columns,
//     so no barrier or atomic is needed), then layer_norm_param_grads_* sums the
//     gridDim.x partials of each column in index order. Both orders are fixed by the
//     launch geometry, which the host derives from the shape alone: deterministic,
//     and no float atomics.

// Mean and rstd of row `xr` (every thread of the block gets them).
template <typename T, typename C>
__device__ __forceinline__ void row_stats(const T *xr, uint64_t d, double eps, uint32_t rms,
                                          C &mean, C &rstd) {
    C m = 0;
    if (!rms) {
        C sum = 0;
        for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) sum += widen(xr[j]);
        m = block_all(sum, false) / (C)d;
    }
    C sq = 0;
    for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) {
        C v = widen(xr[j]) - m;
        sq += v * v;
    }
    C var = block_all(sq, false) / (C)d;
    mean = m;
    rstd = (C)1 / sqrt(var + (C)eps);
}

// y = (x - mean) * rstd * w + b per row (RMS: x * rstd * w); w and b contiguous (d)
// or null (1 and 0).
template <typename T>
__device__ __forceinline__ void layer_norm_forward(const T *x, uint64_t rows, uint64_t d,
                                                   double eps, uint32_t rms, const T *w,
                                                   const T *b, T *y,
                                                   typename ComputeOf<T>::type *mean,
                                                   typename ComputeOf<T>::type *rstd) {
    typedef typename ComputeOf<T>::type C;
    for (uint64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * d;
        C m, rs;
        row_stats(xr, d, eps, rms, m, rs);
        for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) {
            C h = (widen(xr[j]) - m) * rs;
            if (w) h *= widen(w[j]);
            if (b) h += widen(b[j]);
            y[r * d + j] = narrow<T>(h);
        }
        if (threadIdx.x == 0) {
            if (!rms) mean[r] = m;
            rstd[r] = rs;
        }
    }
}

// dx = rstd * (w g - mean(w g) - x_hat * mean(w g x_hat)) (RMS: without mean(w g));
// part_w[blockIdx.x * d + j] = sum over this block's rows of g * x_hat, part_b of g.
template <typename T>
__device__ __forceinline__ void layer_norm_backward(
    const T *g, const T *x, uint64_t rows, uint64_t d, uint32_t rms,
    const typename ComputeOf<T>::type *mean, const typename ComputeOf<T>::type *rstd,
    const T *w, T *dx, typename ComputeOf<T>::type *part_w,
    typename ComputeOf<T>::type *part_b) {
    typedef typename ComputeOf<T>::type C;
    C *pw = part_w + blockIdx.x * d, *pb = part_b + blockIdx.x * d;
    for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) pw[j] = pb[j] = 0;
    for (uint64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *gr = g + r * d, *xr = x + r * d;
        C m = rms ? (C)0 : mean[r], rs = rstd[r];
        C sum_wg = 0, sum_wgx = 0;
        for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) {
            C gj = widen(gr[j]), xh = (widen(xr[j]) - m) * rs;
            C wg = w ? gj * widen(w[j]) : gj;
            sum_wg += wg;
            sum_wgx += wg * xh;
            pw[j] += gj * xh;
            pb[j] += gj;
        }
        C mean_wg = rms ? (C)0 : block_all(sum_wg, false) / (C)d;
        C mean_wgx = block_all(sum_wgx, false) / (C)d;
        for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) {
            C gj = widen(gr[j]), xh = (widen(xr[j]) - m) * rs;
            C wg = w ? gj * widen(w[j]) : gj;
            dx[r * d + j] = narrow<T>(rs * (wg - mean_wg - xh * mean_wgx));
        }
    }
}

// dw[j] = sum over p < parts of part_w[p * d + j] (in index order), db likewise.
template <typename T>
__device__ __forceinline__ void layer_norm_param_grads(const typename ComputeOf<T>::type *part_w,
                                                       const typename ComputeOf<T>::type *part_b,
                                                       uint64_t parts, uint64_t d, T *dw, T *db) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(j, d) {
        C sw = 0, sb = 0;
        for (uint64_t p = 0; p < parts; ++p) {
            sw += part_w[p * d + j];
            sb += part_b[p * d + j];
        }
        dw[j] = narrow<T>(sw);
        db[j] = narrow<T>(sb);
    }
}

extern "C" __global__ void layer_norm_forward_f32(const float *x, uint64_t rows, uint64_t d, double eps, uint32_t rms, const float *w, const float *b, float *y, float *mean, float *rstd) { layer_norm_forward(x, rows, d, eps, rms, w, b, y, mean, rstd); }
extern "C" __global__ void layer_norm_forward_f64(const double *x, uint64_t rows, uint64_t d, double eps, uint32_t rms, const double *w, const double *b, double *y, double *mean, double *rstd) { layer_norm_forward(x, rows, d, eps, rms, w, b, y, mean, rstd); }
extern "C" __global__ void layer_norm_forward_f16(const f16 *x, uint64_t rows, uint64_t d, double eps, uint32_t rms, const f16 *w, const f16 *b, f16 *y, float *mean, float *rstd) { layer_norm_forward(x, rows, d, eps, rms, w, b, y, mean, rstd); }
extern "C" __global__ void layer_norm_forward_bf16(const bf16 *x, uint64_t rows, uint64_t d, double eps, uint32_t rms, const bf16 *w, const bf16 *b, bf16 *y, float *mean, float *rstd) { layer_norm_forward(x, rows, d, eps, rms, w, b, y, mean, rstd); }

extern "C" __global__ void layer_norm_backward_f32(const float *g, const float *x, uint64_t rows, uint64_t d, uint32_t rms, const float *mean, const float *rstd, const float *w, float *dx, float *part_w, float *part_b) { layer_norm_backward(g, x, rows, d, rms, mean, rstd, w, dx, part_w, part_b); }
extern "C" __global__ void layer_norm_backward_f64(const double *g, const double *x, uint64_t rows, uint64_t d, uint32_t rms, const double *mean, const double *rstd, const double *w, double *dx, double *part_w, double *part_b) { layer_norm_backward(g, x, rows, d, rms, mean, rstd, w, dx, part_w, part_b); }
extern "C" __global__ void layer_norm_backward_f16(const f16 *g, const f16 *x, uint64_t rows, uint64_t d, uint32_t rms, const float *mean, const float *rstd, const f16 *w, f16 *dx, float *part_w, float *part_b) { layer_norm_backward(g, x, rows, d, rms, mean, rstd, w, dx, part_w, part_b); }
extern "C" __global__ void layer_norm_backward_bf16(const bf16 *g, const bf16 *x, uint64_t rows, uint64_t d, uint32_t rms, const float *mean, const float *rstd, const bf16 *w, bf16 *dx, float *part_w, float *part_b) { layer_norm_backward(g, x, rows, d, rms, mean, rstd, w, dx, part_w, part_b); }

extern "C" __global__ void layer_norm_param_grads_f32(const float *part_w, const float *part_b, uint64_t parts, uint64_t d, float *dw, float *db) { layer_norm_param_grads(part_w, part_b, parts, d, dw, db); }
extern "C" __global__ void layer_norm_param_grads_f64(const double *part_w, const double *part_b, uint64_t parts, uint64_t d, double *dw, double *db) { layer_norm_param_grads(part_w, part_b, parts, d, dw, db); }
extern "C" __global__ void layer_norm_param_grads_f16(const float *part_w, const float *part_b, uint64_t parts, uint64_t d, f16 *dw, f16 *db) { layer_norm_param_grads(part_w, part_b, parts, d, dw, db); }
extern "C" __global__ void layer_norm_param_grads_bf16(const float *part_w, const float *part_b, uint64_t parts, uint64_t d, bf16 *dw, bf16 *db) { layer_norm_param_grads(part_w, part_b, parts, d, dw, db); }

// ---- Group norm: the input is contiguous (n, groups, cpg, s) with cpg = c / groups
// channels per group; a row is one (sample, group) of d = cpg * s values, normalised
// with its own statistics (in C, saved for the backward pass), then scaled and
// shifted per channel. Instance norm is group norm with cpg = 1.
//
// Thread mappings, and why:
//   * group_norm_forward_*: layer norm's, one block per row (grid-stride over rows):
//     row_stats, then one pass over the whole row that writes y (the channel of value
//     j is j / s; walking channel by channel would idle most threads when s is small).
//   * group_norm_backward_*: one block per row. For each of its cpg channels, two
//     block sums over the channel's s values (g and g * x_hat), written to
//     part_w/part_b[sample * c + channel] by thread 0; the row sums that dx needs are
//     the w-weighted sums of those, so a second pass writes dx. The weight and bias
//     gradients are layer_norm_param_grads_* over the n per-sample partials of each
//     channel (in sample order): deterministic, no atomics.
template <typename T>
__device__ __forceinline__ void group_norm_forward(const T *x, uint64_t rows, uint64_t groups,
                                                   uint64_t cpg, uint64_t s, double eps,
                                                   const T *w, const T *b, T *y,
                                                   typename ComputeOf<T>::type *mean,
                                                   typename ComputeOf<T>::type *rstd) {
    typedef typename ComputeOf<T>::type C;
    uint64_t d = cpg * s;
    for (uint64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * d;
        C m, rs;
        row_stats(xr, d, eps, 0, m, rs);
        uint64_t first = (r % groups) * cpg;
        for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) {
            uint64_t ch = first + j / s;
            C wk = w ? widen(w[ch]) : (C)1, bk = b ? widen(b[ch]) : (C)0;
            y[r * d + j] = narrow<T>((widen(xr[j]) - m) * rs * wk + bk);
        }
        if (threadIdx.x == 0) {
            mean[r] = m;
            rstd[r] = rs;
        }
    }
}

template <typename T>
__device__ __forceinline__ void group_norm_backward(
    const T *g, const T *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s,
    const typename ComputeOf<T>::type *mean, const typename ComputeOf<T>::type *rstd,
    const T *w, T *dx, typename ComputeOf<T>::type *part_w,
    typename ComputeOf<T>::type *part_b) {
    typedef typename ComputeOf<T>::type C;
    uint64_t d = cpg * s;
    for (uint64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *gr = g + r * d, *xr = x + r * d;
        C m = mean[r], rs = rstd[r];
        uint64_t first = (r % groups) * cpg;
        C sum_wg = 0, sum_wgx = 0;
        for (uint64_t k = 0; k < cpg; ++k) {
            C sg = 0, sgx = 0;
            for (uint64_t j = k * s + threadIdx.x; j < (k + 1) * s; j += blockDim.x) {
                C gj = widen(gr[j]);
                sg += gj;
                sgx += gj * ((widen(xr[j]) - m) * rs);
            }
            sg = block_all(sg, false);
            sgx = block_all(sgx, false);
            if (threadIdx.x == 0) {
                part_b[r * cpg + k] = sg;
                part_w[r * cpg + k] = sgx;
            }
            C wk = w ? widen(w[first + k]) : (C)1;
            sum_wg += wk * sg;
            sum_wgx += wk * sgx;
        }
        C mean_wg = sum_wg / (C)d, mean_wgx = sum_wgx / (C)d;
        for (uint64_t j = threadIdx.x; j < d; j += blockDim.x) {
            C wk = w ? widen(w[first + j / s]) : (C)1;
            C xh = (widen(xr[j]) - m) * rs;
            dx[r * d + j] = narrow<T>(rs * (wk * widen(gr[j]) - mean_wg - xh * mean_wgx));
        }
    }
}

extern "C" __global__ void group_norm_forward_f32(const float *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, double eps, const float *w, const float *b, float *y, float *mean, float *rstd) { group_norm_forward(x, rows, groups, cpg, s, eps, w, b, y, mean, rstd); }
extern "C" __global__ void group_norm_forward_f64(const double *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, double eps, const double *w, const double *b, double *y, double *mean, double *rstd) { group_norm_forward(x, rows, groups, cpg, s, eps, w, b, y, mean, rstd); }
extern "C" __global__ void group_norm_forward_f16(const f16 *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, double eps, const f16 *w, const f16 *b, f16 *y, float *mean, float *rstd) { group_norm_forward(x, rows, groups, cpg, s, eps, w, b, y, mean, rstd); }
extern "C" __global__ void group_norm_forward_bf16(const bf16 *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, double eps, const bf16 *w, const bf16 *b, bf16 *y, float *mean, float *rstd) { group_norm_forward(x, rows, groups, cpg, s, eps, w, b, y, mean, rstd); }

extern "C" __global__ void group_norm_backward_f32(const float *g, const float *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, const float *mean, const float *rstd, const float *w, float *dx, float *part_w, float *part_b) { group_norm_backward(g, x, rows, groups, cpg, s, mean, rstd, w, dx, part_w, part_b); }
extern "C" __global__ void group_norm_backward_f64(const double *g, const double *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, const double *mean, const double *rstd, const double *w, double *dx, double *part_w, double *part_b) { group_norm_backward(g, x, rows, groups, cpg, s, mean, rstd, w, dx, part_w, part_b); }
extern "C" __global__ void group_norm_backward_f16(const f16 *g, const f16 *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, const float *mean, const float *rstd, const f16 *w, f16 *dx, float *part_w, float *part_b) { group_norm_backward(g, x, rows, groups, cpg, s, mean, rstd, w, dx, part_w, part_b); }
extern "C" __global__ void group_norm_backward_bf16(const bf16 *g, const bf16 *x, uint64_t rows, uint64_t groups, uint64_t cpg, uint64_t s, const float *mean, const float *rstd, const bf16 *w, bf16 *dx, float *part_w, float *part_b) { group_norm_backward(g, x, rows, groups, cpg, s, mean, rstd, w, dx, part_w, part_b); }
