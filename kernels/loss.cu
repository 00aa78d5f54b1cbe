// Class-index losses, the CUDA side of src/backend/cpu/loss.rs: cross entropy fused
// with log-softmax (label smoothing, class weights and ignore_index included) and nll
// over log-probabilities.
//
// The input is contiguous and seen as (outer, classes, inner); row j (one target) is
// element (j / inner, k, j % inner) for class k, read with step `inner` in place (so
// PyTorch's (N, C, d1, ..) layout needs no transposing copy). Results are in the
// compute type C (f32 for f32/f16/bf16, f64 for f64).
//
// Thread mappings, and why:
//   * cross_entropy_forward_*: one warp per row (8 rows per 256-thread block, a
//     grid-stride loop over rows). The lanes stride over the row's classes keeping an
//     online (max, sum of exp(x - max)) pair, so the row is read once, then combine
//     their pairs by shuffles in a fixed order: deterministic, no shared memory, no
//     block barrier. A warp rather than a block, because rows are short (tens to
//     thousands of classes) and many. With inner > 1 the lanes' reads are `inner`
//     apart (uncoalesced); segmentation-sized C is small, so this stays cheap.
//   * cross_entropy_backward_*: grid-stride over every input element (an elementwise
//     op: the row's logsumexp and target are a cached read each), one pass.
#include "common.cuh"

// Merges the online-softmax pair (m2, s2) into (m, s), where s = sum of exp(x - m)
// over the values seen. While the max is -inf every value seen is -inf and s stays 0
// (shift by 0, as the CPU does); a NaN max makes the sum NaN.
template <typename C> __device__ __forceinline__ void lse_merge(C &m, C &s, C m2, C s2) {
    C mm = nan_max(m, m2);
    if (mm == -(C)INFINITY)
        s = 0;
    else if (mm == m) // the common case once the row's max is found: one exp
        s += s2 * k_exp(m2 - mm);
    else
        s = s * k_exp(m - mm) + s2 * k_exp(m2 - mm);
    m = mm;
}

// Per row j with target t, weight w_t = weight[t] (1 without weights) and
// lse = log sum_k exp(x[k]): row_loss = on * w_t * (lse - x[t]) + off * (sum_k w[k] * (lse
// - x[k])) (from_logits; on = 1 - eps, off = eps / C) or -w_t * x[t] (nll), row_weight = w_t,
// and lse (from_logits only); a row whose target is ignore_index gets loss and weight 0.
// A target neither ignored nor in [0, classes) gives a NaN loss and lowers *bad_row
// (initialised to UINT64_MAX by the host) to its row, so the host reports the first bad
// row whatever the launch order: atomicMin of integers is order-independent.
template <typename T>
__device__ __forceinline__ void cross_entropy_forward(
    const T *x, const int64_t *target, const T *weight, uint64_t rows, uint64_t classes,
    uint64_t inner, int64_t ignore_index, double on_target, double off_target,
    uint32_t from_logits, typename ComputeOf<T>::type *row_loss,
    typename ComputeOf<T>::type *lse, typename ComputeOf<T>::type *row_weight,
    unsigned long long *bad_row) {
    typedef typename ComputeOf<T>::type C;
    const uint64_t warps = blockDim.x / 32, lane = threadIdx.x % 32;
    // `j` is the same for the 32 lanes of a warp, so every lane takes part in the
    // shuffles below.
    for (uint64_t j = blockIdx.x * warps + threadIdx.x / 32; j < rows; j += gridDim.x * warps) {
        const T *row = x + (j / inner) * classes * inner + j % inner;
        int64_t t = target[j];
        bool ignored = t == ignore_index;
        bool ok = ignored || (t >= 0 && (uint64_t)t < classes);
        C m = -(C)INFINITY, s = 0, sum_w = 0, sum_wx = 0;
        if (from_logits) {
            for (uint64_t k = lane; k < classes; k += 32) {
                C v = widen(row[k * inner]);
                lse_merge(m, s, v, (C)1);
                if (off_target > 0) {
                    C wk = weight ? widen(weight[k]) : (C)1;
                    sum_w += wk;
                    sum_wx += wk * v;
                }
            }
#pragma unroll
            for (int d = 16; d > 0; d /= 2) {
                C m2 = __shfl_xor_sync(0xffffffffu, m, d);
                C s2 = __shfl_xor_sync(0xffffffffu, s, d);
                sum_w += __shfl_xor_sync(0xffffffffu, sum_w, d);
                sum_wx += __shfl_xor_sync(0xffffffffu, sum_wx, d);
                lse_merge(m, s, m2, s2);
            }
        }
        if (lane == 0) {
            bool in_range = ok && !ignored;
            C x_t = in_range ? widen(row[(uint64_t)t * inner]) : (C)NAN;
            C w_t = !in_range ? (C)0 : weight ? widen(weight[t]) : (C)1;
            C loss;
            if (from_logits) {
                C l = (m == -(C)INFINITY ? (C)0 : m) + k_log(s);
                loss = (C)on_target * w_t * (l - x_t);
                if (off_target > 0) loss += (C)off_target * (sum_w * l - sum_wx);
                lse[j] = l;
            } else {
                loss = -w_t * x_t;
            }
            row_loss[j] = ignored ? (C)0 : loss;
            row_weight[j] = w_t;
            if (!ok) atomicMin(bad_row, (unsigned long long)j);
        }
    }
}

// grad[i] = s * (p * (on * w_t + off * total) - on * w_t * [k == t] - off * w[k])
// (from_logits, p = softmax) or -s * w_t * [k == t] (nll), s = grad_loss[j] (per_row) or
// grad_loss[0], total = *weight_total (or C without weights); 0 where t is ignore_index.
template <typename T>
__device__ __forceinline__ void cross_entropy_backward(
    const T *x, const int64_t *target, const T *weight, const T *weight_total,
    const typename ComputeOf<T>::type *lse, const typename ComputeOf<T>::type *grad_loss,
    uint32_t per_row, uint64_t total, uint64_t classes, uint64_t inner, int64_t ignore_index,
    double on_target, double off_target, uint32_t from_logits, T *grad) {
    typedef typename ComputeOf<T>::type C;
    C w_total = weight_total ? widen(*weight_total) : (C)classes;
    KILN_FOR_EACH(i, total) {
        uint64_t k = (i / inner) % classes, j = i / (classes * inner) * inner + i % inner;
        int64_t t = target[j];
        C r = 0;
        if (t != ignore_index) {
            C s = grad_loss[per_row ? j : 0];
            C w_t = weight ? widen(weight[t]) : (C)1;
            C hit = t == (int64_t)k ? w_t : (C)0;
            if (from_logits) {
                C w_k = weight ? widen(weight[k]) : (C)1;
                C prob = k_exp(widen(x[i]) - lse[j]);
                r = (prob * ((C)on_target * w_t + (C)off_target * w_total) -
                     (C)on_target * hit - (C)off_target * w_k) * s;
            } else {
                r = -hit * s;
            }
        }
        grad[i] = narrow<T>(r);
    }
}

extern "C" __global__ void cross_entropy_forward_f32(const float *x, const int64_t *target, const float *weight, uint64_t rows, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, float *row_loss, float *lse, float *row_weight, unsigned long long *bad_row) { cross_entropy_forward(x, target, weight, rows, classes, inner, ignore_index, on_target, off_target, from_logits, row_loss, lse, row_weight, bad_row); }
extern "C" __global__ void cross_entropy_forward_f64(const double *x, const int64_t *target, const double *weight, uint64_t rows, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, double *row_loss, double *lse, double *row_weight, unsigned long long *bad_row) { cross_entropy_forward(x, target, weight, rows, classes, inner, ignore_index, on_target, off_target, from_logits, row_loss, lse, row_weight, bad_row); }
extern "C" __global__ void cross_entropy_forward_f16(const f16 *x, const int64_t *target, const f16 *weight, uint64_t rows, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, float *row_loss, float *lse, float *row_weight, unsigned long long *bad_row) { cross_entropy_forward(x, target, weight, rows, classes, inner, ignore_index, on_target, off_target, from_logits, row_loss, lse, row_weight, bad_row); }
extern "C" __global__ void cross_entropy_forward_bf16(const bf16 *x, const int64_t *target, const bf16 *weight, uint64_t rows, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, float *row_loss, float *lse, float *row_weight, unsigned long long *bad_row) { cross_entropy_forward(x, target, weight, rows, classes, inner, ignore_index, on_target, off_target, from_logits, row_loss, lse, row_weight, bad_row); }

extern "C" __global__ void cross_entropy_backward_f32(const float *x, const int64_t *target, const float *weight, const float *weight_total, const float *lse, const float *grad_loss, uint32_t per_row, uint64_t total, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, float *grad) { cross_entropy_backward(x, target, weight, weight_total, lse, grad_loss, per_row, total, classes, inner, ignore_index, on_target, off_target, from_logits, grad); }
extern "C" __global__ void cross_entropy_backward_f64(const double *x, const int64_t *target, const double *weight, const double *weight_total, const double *lse, const double *grad_loss, uint32_t per_row, uint64_t total, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, double *grad) { cross_entropy_backward(x, target, weight, weight_total, lse, grad_loss, per_row, total, classes, inner, ignore_index, on_target, off_target, from_logits, grad); }
extern "C" __global__ void cross_entropy_backward_f16(const f16 *x, const int64_t *target, const f16 *weight, const f16 *weight_total, const float *lse, const float *grad_loss, uint32_t per_row, uint64_t total, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, f16 *grad) { cross_entropy_backward(x, target, weight, weight_total, lse, grad_loss, per_row, total, classes, inner, ignore_index, on_target, off_target, from_logits, grad); }
extern "C" __global__ void cross_entropy_backward_bf16(const bf16 *x, const int64_t *target, const bf16 *weight, const bf16 *weight_total, const float *lse, const float *grad_loss, uint32_t per_row, uint64_t total, uint64_t classes, uint64_t inner, int64_t ignore_index, double on_target, double off_target, uint32_t from_logits, bf16 *grad) { cross_entropy_backward(x, target, weight, weight_total, lse, grad_loss, per_row, total, classes, inner, ignore_index, on_target, off_target, from_logits, grad); }
