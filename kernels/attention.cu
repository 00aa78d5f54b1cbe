// Fused scaled-dot-product attention, FlashAttention-style: the CUDA side of
// src/backend/cpu/attention.rs.
//
// Problem (src/backend/attention.rs): q (N, H, L, E), k (N, H, S, E), v (N, H, S, EV),
// each strided (`Strides` s[0..4] = steps of n, h, row, column); an optional mask
// broadcast to (N, H, L, S) — boolean (u8, 0 = may not attend) or additive (T) — and
// `causal` (query i sees key j only when j <= i, aligned top-left as PyTorch). `dims`
// holds (N, H, L, S, E, EV). Scores are s = q.k * scale (+ mask), computed in C (f32
// for f32/f16/bf16, f64 for f64) and never stored beyond one tile.
//
// Kernels, and why they are mapped the way they are:
//   * attention_fwd_*: one block per (batch·head, tile of BQ queries). The block walks
//     the key tiles (BK keys, staged in shared memory with K padded by one column so
//     that the score loop, where consecutive threads take consecutive keys, is free of
//     bank conflicts), computes the BQ×BK scores, and keeps the online softmax: per
//     row the running max m and sum l, the accumulator rescaled by exp(m_old - m_new).
//     A query row is owned by TPR consecutive threads (within one warp: the row's max
//     and sum are shuffle reductions), each holding NC columns of its output. It
//     writes O = acc / l and the row's logsumexp m + log l (-inf for a row that may
//     attend nowhere, whose output is 0, as PyTorch's math and flash backends give).
//   * attention_bwd_delta_*: D = rowsum(dO ∘ O), one thread per row.
//   * attention_bwd_dkdv_*: one block per (batch·head, tile of BK keys), walking the
//     query tiles that can see it; recomputes P = exp(s - lse) and dS = P ∘ (dO·vᵀ - D),
//     and accumulates dV += Pᵀ dO and dK += dSᵀ Q in registers (TPK threads per key,
//     NC columns each). Each dK/dV row has one owner, so no atomics: deterministic.
//   * attention_bwd_dq_*: one block per (batch·head, tile of BQ queries), walking the
//     key tiles: dQ += dS K, again one owner per output.
// Head dims (E, EV) up to ATTN_MAX_D; the host refuses larger ones. Tile sizes are per
// compute type so that every kernel's static shared memory stays under 48 KiB.
#include "common.cuh"

#define ATTN_MAX_D 128
#define ATTN_FWD_THREADS 128
#define ATTN_BWD_THREADS 256
// Without a minimum, ptxas for sm_90 picks 48 registers for attention_bwd_dq_f64 and
// spills; four blocks per SM (64 registers) is what sm_80 picks, spill-free everywhere.
#define ATTN_DQ_MIN_BLOCKS 4

template <typename C> struct AttnCfg;
template <> struct AttnCfg<float> {
    enum { FWD_BQ = 16, FWD_BK = 32, KV_BK = 32, KV_BQ = 8, Q_BQ = 16, Q_BK = 16 };
};
template <> struct AttnCfg<double> {
    enum { FWD_BQ = 8, FWD_BK = 16, KV_BK = 16, KV_BQ = 4, Q_BQ = 8, Q_BK = 8 };
};

// Storage offset of element (n, h, r, c) of a 4-D strided operand.
__device__ __forceinline__ int64_t at4(const Strides &st, uint64_t n, uint64_t h, uint64_t r,
                                       uint64_t c) {
    return (int64_t)n * st.s[0] + (int64_t)h * st.s[1] + (int64_t)r * st.s[2] +
           (int64_t)c * st.s[3];
}

// Rows [r0, r0 + R) of the (rows, cols) matrix (n, h) of `src` into `dst`, widened;
// rows past the end are zeros. Consecutive threads load consecutive columns.
template <int R, int LD, typename T, typename C>
__device__ __forceinline__ void load_tile(C (&dst)[R][LD], const T *src, const Strides &st,
                                          uint64_t n, uint64_t h, uint64_t r0, uint64_t rows,
                                          uint64_t cols) {
    for (uint32_t idx = threadIdx.x; idx < R * cols; idx += blockDim.x) {
        uint32_t r = idx / cols, c = idx % cols;
        dst[r][c] = r0 + r < rows ? (C)widen(src[at4(st, n, h, r0 + r, c)]) : (C)0;
    }
}

// Rows [r0, r0 + R) of a contiguous (rows, cols) matrix into `dst`, widened.
template <int R, int LD, typename T, typename C>
__device__ __forceinline__ void load_rows(C (&dst)[R][LD], const T *src, uint64_t r0,
                                          uint64_t rows, uint64_t cols) {
    for (uint32_t idx = threadIdx.x; idx < R * cols; idx += blockDim.x) {
        uint32_t r = idx / cols, c = idx % cols;
        dst[r][c] = r0 + r < rows ? (C)widen(src[(r0 + r) * cols + c]) : (C)0;
    }
}

// What every kernel needs to score query i against key j.
template <typename T> struct AttnProblem {
    const uint8_t *bmask;
    const T *amask;
    Strides ms;
    uint64_t n, h, L, S;
    double scale;
    uint32_t causal;
};

// The masked, scaled score of query i and key j from their dot product: -inf where
// (i, j) is outside the problem, or the causal or boolean mask forbids it.
template <typename T, typename C>
__device__ __forceinline__ C masked_score(const AttnProblem<T> &p, C dot, uint64_t i, uint64_t j) {
    if (i >= p.L || j >= p.S || (p.causal && j > i)) return -(C)INFINITY;
    if (p.bmask && !p.bmask[at4(p.ms, p.n, p.h, i, j)]) return -(C)INFINITY;
    C s = dot * (C)p.scale;
    if (p.amask) s += widen(p.amask[at4(p.ms, p.n, p.h, i, j)]);
    return s;
}

// The dot product of row a and row b over their first `len` columns.
template <int LDA, int LDB, typename C>
__device__ __forceinline__ C row_dot(const C (&a)[LDA], const C (&b)[LDB], uint64_t len) {
    C acc = 0;
    for (uint64_t e = 0; e < len; ++e) acc = fma(a[e], b[e], acc);
    return acc;
}

// Scores of the BQ queries from i0 (qt) against the BK keys from j0 (kt) into st.
template <int BQ, int BK, int LDQ, int LDK, typename T, typename C>
__device__ __forceinline__ void score_tile(C (&st)[BQ][BK], const C (&qt)[BQ][LDQ],
                                           const C (&kt)[BK][LDK], const AttnProblem<T> &p,
                                           uint64_t i0, uint64_t j0, uint64_t E) {
    for (uint32_t idx = threadIdx.x; idx < BQ * BK; idx += blockDim.x) {
        uint32_t r = idx / BK, c = idx % BK;
        st[r][c] = masked_score(p, row_dot(qt[r], kt[c], E), i0 + r, j0 + c);
    }
}

// Backward: for the BQ queries from i0 and the BK keys from j0, P = exp(s - lse) into
// pt (when non-null) and dS = P ∘ (dO·vᵀ - D) into dst. lse = -inf marks a row that
// attends nowhere: its P is 0.
template <int BQ, int BK, int LD, typename T, typename C>
__device__ __forceinline__ void p_and_ds(C (*pt)[BK], C (&dst)[BQ][BK], const C (&qt)[BQ][LD],
                                         const C (&dot)[BQ][LD], const C (&kt)[BK][LD],
                                         const C (&vt)[BK][LD], const C (&lse)[BQ],
                                         const C (&delta)[BQ], const AttnProblem<T> &p,
                                         uint64_t i0, uint64_t j0, uint64_t E, uint64_t EV) {
    for (uint32_t idx = threadIdx.x; idx < BQ * BK; idx += blockDim.x) {
        uint32_t r = idx / BK, c = idx % BK;
        C s = masked_score(p, row_dot(qt[r], kt[c], E), i0 + r, j0 + c);
        C pr = lse[r] == -(C)INFINITY ? (C)0 : k_exp(s - lse[r]);
        if (pt) pt[r][c] = pr;
        dst[r][c] = pr * (row_dot(dot[r], vt[c], EV) - delta[r]);
    }
}

// Max (is_max) or sum of v over the `group` consecutive lanes that share a row; every
// lane of the warp calls it.
template <int GROUP, typename C> __device__ __forceinline__ C group_all(C v, bool is_max) {
#pragma unroll
    for (int d = GROUP / 2; d > 0; d /= 2) {
        C o = __shfl_xor_sync(0xffffffffu, v, d);
        v = is_max ? (o > v ? o : v) : v + o;
    }
    return v;
}

template <typename T>
__device__ __forceinline__ void attention_fwd(const T *q, Strides qs, const T *k, Strides ks,
                                              const T *v, Strides vs, const uint8_t *bmask,
                                              const T *amask, Strides ms, Dims dims,
                                              double scale, uint32_t causal, T *out,
                                              typename ComputeOf<T>::type *lse) {
    typedef typename ComputeOf<T>::type C;
    const int BQ = AttnCfg<C>::FWD_BQ, BK = AttnCfg<C>::FWD_BK;
    const int TPR = ATTN_FWD_THREADS / BQ; // threads per query row
    const int NC = ATTN_MAX_D / TPR;       // output columns per thread
    KILN_SHARED(C, qt, [BQ][ATTN_MAX_D]);
    KILN_SHARED(C, kt, [BK][ATTN_MAX_D + 1]);
    KILN_SHARED(C, vt, [BK][ATTN_MAX_D]);
    KILN_SHARED(C, st, [BQ][BK]);
    const uint64_t H = dims.d[1], L = dims.d[2], S = dims.d[3], E = dims.d[4], EV = dims.d[5];
    const uint64_t q_tiles = (L + BQ - 1) / BQ, tasks = dims.d[0] * H * q_tiles;
    const int row = threadIdx.x / TPR, sub = threadIdx.x % TPR;
    for (uint64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
        const uint64_t bh = task / q_tiles, i0 = (task % q_tiles) * BQ;
        const AttnProblem<T> p = {bmask, amask, ms, bh / H, bh % H, L, S, scale, causal};
        __syncthreads(); // the previous task is done with the tiles
        load_tile(qt, q, qs, p.n, p.h, i0, L, E);
        C m = -(C)INFINITY, l = 0, acc[NC];
#pragma unroll
        for (int t = 0; t < NC; ++t) acc[t] = 0;
        // Under causality no query of this tile sees a key past its last query.
        const uint64_t s_end = causal && i0 + BQ < S ? i0 + BQ : S;
        for (uint64_t j0 = 0; j0 < s_end; j0 += BK) {
            __syncthreads();
            load_tile(kt, k, ks, p.n, p.h, j0, S, E);
            load_tile(vt, v, vs, p.n, p.h, j0, S, EV);
            __syncthreads();
            score_tile(st, qt, kt, p, i0, j0, E);
            __syncthreads();
            // Online softmax of this thread's row: each of its TPR threads reads and
            // rewrites (as P) the columns sub, sub + TPR, ...
            C tile_max = -(C)INFINITY;
            for (int c = sub; c < BK; c += TPR) tile_max = st[row][c] > tile_max ? st[row][c] : tile_max;
            tile_max = group_all<TPR>(tile_max, true);
            const C m_new = tile_max > m ? tile_max : m;
            const C shift = m_new == -(C)INFINITY ? (C)0 : m_new;
            const C alpha = k_exp(m - shift);
            C psum = 0;
            for (int c = sub; c < BK; c += TPR) {
                C pr = k_exp(st[row][c] - shift);
                st[row][c] = pr;
                psum += pr;
            }
            l = l * alpha + group_all<TPR>(psum, false);
            m = m_new;
            __syncwarp(); // the row's P, written by its TPR lanes of this warp
#pragma unroll
            for (int t = 0; t < NC; ++t) {
                const int col = sub + t * TPR;
                if (col < (int)EV) {
                    C a = acc[t] * alpha;
                    for (int c = 0; c < BK; ++c) a = fma(st[row][c], vt[c][col], a);
                    acc[t] = a;
                }
            }
        }
        const uint64_t i = i0 + row;
        if (i < L) {
            const C inv = l > (C)0 ? (C)1 / l : (C)0;
#pragma unroll
            for (int t = 0; t < NC; ++t) {
                const int col = sub + t * TPR;
                if (col < (int)EV) out[(bh * L + i) * EV + col] = narrow<T>(acc[t] * inv);
            }
            if (sub == 0) lse[bh * L + i] = l > (C)0 ? m + k_log(l) : -(C)INFINITY;
        }
    }
}

// D = rowsum(dO ∘ O) for the `rows` contiguous rows of `ev` values.
template <typename T>
__device__ __forceinline__ void attention_bwd_delta(const T *out, const T *dout, uint64_t rows,
                                                    uint64_t ev,
                                                    typename ComputeOf<T>::type *delta) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(r, rows) {
        C acc = 0;
        for (uint64_t c = 0; c < ev; ++c) acc = fma(widen(dout[r * ev + c]), widen(out[r * ev + c]), acc);
        delta[r] = acc;
    }
}

// The query side of a backward tile, rows [i0, i0 + BQ) of batch·head `bh`: Q, dO
// and each row's logsumexp and D (rows past L: zeros, and lse -inf so P is 0).
template <int BQ, int LD, typename T, typename C>
__device__ __forceinline__ void load_query_side(C (&qt)[BQ][LD], C (&dot)[BQ][LD], C (&lse_t)[BQ],
                                                C (&delta_t)[BQ], const T *q, const Strides &qs,
                                                const T *dout, const C *lse, const C *delta,
                                                const AttnProblem<T> &p, uint64_t bh, uint64_t i0,
                                                uint64_t E, uint64_t EV) {
    const uint64_t L = p.L;
    load_tile(qt, q, qs, p.n, p.h, i0, L, E);
    load_rows(dot, dout + bh * L * EV, i0, L, EV);
    for (uint32_t r = threadIdx.x; r < BQ; r += blockDim.x) {
        lse_t[r] = i0 + r < L ? lse[bh * L + i0 + r] : -(C)INFINITY;
        delta_t[r] = i0 + r < L ? delta[bh * L + i0 + r] : (C)0;
    }
}

template <typename T>
__device__ __forceinline__ void attention_bwd_dkdv(
    const T *q, Strides qs, const T *k, Strides ks, const T *v, Strides vs,
    const uint8_t *bmask, const T *amask, Strides ms, Dims dims, double scale, uint32_t causal,
    const T *dout, const typename ComputeOf<T>::type *lse,
    const typename ComputeOf<T>::type *delta, T *dk, T *dv) {
    typedef typename ComputeOf<T>::type C;
    const int BQ = AttnCfg<C>::KV_BQ, BK = AttnCfg<C>::KV_BK;
    const int TPK = ATTN_BWD_THREADS / BK; // threads per key row
    const int NC = ATTN_MAX_D / TPK;       // dK and dV columns per thread
    KILN_SHARED(C, kt, [BK][ATTN_MAX_D + 1]);
    KILN_SHARED(C, vt, [BK][ATTN_MAX_D + 1]);
    KILN_SHARED(C, qt, [BQ][ATTN_MAX_D + 1]);
    KILN_SHARED(C, dot, [BQ][ATTN_MAX_D + 1]);
    KILN_SHARED(C, pt, [BQ][BK]);
    KILN_SHARED(C, dst, [BQ][BK]);
    KILN_SHARED(C, lse_t, [BQ]);
    KILN_SHARED(C, delta_t, [BQ]);
    const uint64_t H = dims.d[1], L = dims.d[2], S = dims.d[3], E = dims.d[4], EV = dims.d[5];
    const uint64_t k_tiles = (S + BK - 1) / BK, tasks = dims.d[0] * H * k_tiles;
    const int key = threadIdx.x / TPK, sub = threadIdx.x % TPK;
    for (uint64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
        const uint64_t bh = task / k_tiles, j0 = (task % k_tiles) * BK;
        const AttnProblem<T> p = {bmask, amask, ms, bh / H, bh % H, L, S, scale, causal};
        __syncthreads();
        load_tile(kt, k, ks, p.n, p.h, j0, S, E);
        load_tile(vt, v, vs, p.n, p.h, j0, S, EV);
        C dk_acc[NC], dv_acc[NC];
#pragma unroll
        for (int t = 0; t < NC; ++t) dk_acc[t] = dv_acc[t] = 0;
        // Under causality only the queries from j0 on see these keys.
        for (uint64_t i0 = causal ? j0 / BQ * BQ : 0; i0 < L; i0 += BQ) {
            __syncthreads();
            load_query_side(qt, dot, lse_t, delta_t, q, qs, dout, lse, delta, p, bh, i0, E, EV);
            __syncthreads();
            p_and_ds(pt, dst, qt, dot, kt, vt, lse_t, delta_t, p, i0, j0, E, EV);
            __syncthreads();
#pragma unroll
            for (int t = 0; t < NC; ++t) {
                const int col = sub + t * TPK;
                C a = dv_acc[t], b = dk_acc[t];
                for (int r = 0; r < BQ; ++r) {
                    if (col < (int)EV) a = fma(pt[r][key], dot[r][col], a);
                    if (col < (int)E) b = fma(dst[r][key], qt[r][col], b);
                }
                dv_acc[t] = a;
                dk_acc[t] = b;
            }
        }
        const uint64_t j = j0 + key;
        if (j < S) {
#pragma unroll
            for (int t = 0; t < NC; ++t) {
                const int col = sub + t * TPK;
                if (col < (int)EV) dv[(bh * S + j) * EV + col] = narrow<T>(dv_acc[t]);
                if (col < (int)E) dk[(bh * S + j) * E + col] = narrow<T>(dk_acc[t] * (C)scale);
            }
        }
    }
}

template <typename T>
__device__ __forceinline__ void attention_bwd_dq(
    const T *q, Strides qs, const T *k, Strides ks, const T *v, Strides vs,
    const uint8_t *bmask, const T *amask, Strides ms, Dims dims, double scale, uint32_t causal,
    const T *dout, const typename ComputeOf<T>::type *lse,
    const typename ComputeOf<T>::type *delta, T *dq) {
    typedef typename ComputeOf<T>::type C;
    const int BQ = AttnCfg<C>::Q_BQ, BK = AttnCfg<C>::Q_BK;
    const int TPR = ATTN_BWD_THREADS / BQ; // threads per query row
    const int NC = ATTN_MAX_D / TPR;       // dQ columns per thread
    KILN_SHARED(C, qt, [BQ][ATTN_MAX_D + 1]);
    KILN_SHARED(C, dot, [BQ][ATTN_MAX_D + 1]);
    KILN_SHARED(C, kt, [BK][ATTN_MAX_D + 1]);
    KILN_SHARED(C, vt, [BK][ATTN_MAX_D + 1]);
    KILN_SHARED(C, dst, [BQ][BK]);
    KILN_SHARED(C, lse_t, [BQ]);
    KILN_SHARED(C, delta_t, [BQ]);
    const uint64_t H = dims.d[1], L = dims.d[2], S = dims.d[3], E = dims.d[4], EV = dims.d[5];
    const uint64_t q_tiles = (L + BQ - 1) / BQ, tasks = dims.d[0] * H * q_tiles;
    const int row = threadIdx.x / TPR, sub = threadIdx.x % TPR;
    for (uint64_t task = blockIdx.x; task < tasks; task += gridDim.x) {
        const uint64_t bh = task / q_tiles, i0 = (task % q_tiles) * BQ;
        const AttnProblem<T> p = {bmask, amask, ms, bh / H, bh % H, L, S, scale, causal};
        __syncthreads();
        load_query_side(qt, dot, lse_t, delta_t, q, qs, dout, lse, delta, p, bh, i0, E, EV);
        C acc[NC];
#pragma unroll
        for (int t = 0; t < NC; ++t) acc[t] = 0;
        const uint64_t s_end = causal && i0 + BQ < S ? i0 + BQ : S;
        for (uint64_t j0 = 0; j0 < s_end; j0 += BK) {
            __syncthreads();
            load_tile(kt, k, ks, p.n, p.h, j0, S, E);
            load_tile(vt, v, vs, p.n, p.h, j0, S, EV);
            __syncthreads();
            p_and_ds(static_cast<C (*)[BK]>(nullptr), dst, qt, dot, kt, vt, lse_t, delta_t, p, i0, j0, E, EV);
            __syncthreads();
#pragma unroll
            for (int t = 0; t < NC; ++t) {
                const int col = sub + t * TPR;
                if (col < (int)E) {
                    C a = acc[t];
                    for (int c = 0; c < BK; ++c) a = fma(dst[row][c], kt[c][col], a);
                    acc[t] = a;
                }
            }
        }
        const uint64_t i = i0 + row;
        if (i < L) {
#pragma unroll
            for (int t = 0; t < NC; ++t) {
                const int col = sub + t * TPR;
                if (col < (int)E) dq[(bh * L + i) * E + col] = narrow<T>(acc[t] * (C)scale);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(ATTN_FWD_THREADS) attention_fwd_f32(const float *q, Strides qs, const float *k, Strides ks, const float *v, Strides vs, const uint8_t *bmask, const float *amask, Strides ms, Dims dims, double scale, uint32_t causal, float *out, float *lse) { attention_fwd(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, out, lse); }
extern "C" __global__ void __launch_bounds__(ATTN_FWD_THREADS) attention_fwd_f64(const double *q, Strides qs, const double *k, Strides ks, const double *v, Strides vs, const uint8_t *bmask, const double *amask, Strides ms, Dims dims, double scale, uint32_t causal, double *out, double *lse) { attention_fwd(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, out, lse); }
extern "C" __global__ void __launch_bounds__(ATTN_FWD_THREADS) attention_fwd_f16(const f16 *q, Strides qs, const f16 *k, Strides ks, const f16 *v, Strides vs, const uint8_t *bmask, const f16 *amask, Strides ms, Dims dims, double scale, uint32_t causal, f16 *out, float *lse) { attention_fwd(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, out, lse); }
extern "C" __global__ void __launch_bounds__(ATTN_FWD_THREADS) attention_fwd_bf16(const bf16 *q, Strides qs, const bf16 *k, Strides ks, const bf16 *v, Strides vs, const uint8_t *bmask, const bf16 *amask, Strides ms, Dims dims, double scale, uint32_t causal, bf16 *out, float *lse) { attention_fwd(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, out, lse); }

extern "C" __global__ void attention_bwd_delta_f32(const float *out, const float *dout, uint64_t rows, uint64_t ev, float *delta) { attention_bwd_delta(out, dout, rows, ev, delta); }
extern "C" __global__ void attention_bwd_delta_f64(const double *out, const double *dout, uint64_t rows, uint64_t ev, double *delta) { attention_bwd_delta(out, dout, rows, ev, delta); }
extern "C" __global__ void attention_bwd_delta_f16(const f16 *out, const f16 *dout, uint64_t rows, uint64_t ev, float *delta) { attention_bwd_delta(out, dout, rows, ev, delta); }
extern "C" __global__ void attention_bwd_delta_bf16(const bf16 *out, const bf16 *dout, uint64_t rows, uint64_t ev, float *delta) { attention_bwd_delta(out, dout, rows, ev, delta); }

extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS) attention_bwd_dkdv_f32(const float *q, Strides qs, const float *k, Strides ks, const float *v, Strides vs, const uint8_t *bmask, const float *amask, Strides ms, Dims dims, double scale, uint32_t causal, const float *dout, const float *lse, const float *delta, float *dk, float *dv) { attention_bwd_dkdv(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dk, dv); }
extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS) attention_bwd_dkdv_f64(const double *q, Strides qs, const double *k, Strides ks, const double *v, Strides vs, const uint8_t *bmask, const double *amask, Strides ms, Dims dims, double scale, uint32_t causal, const double *dout, const double *lse, const double *delta, double *dk, double *dv) { attention_bwd_dkdv(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dk, dv); }
extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS) attention_bwd_dkdv_f16(const f16 *q, Strides qs, const f16 *k, Strides ks, const f16 *v, Strides vs, const uint8_t *bmask, const f16 *amask, Strides ms, Dims dims, double scale, uint32_t causal, const f16 *dout, const float *lse, const float *delta, f16 *dk, f16 *dv) { attention_bwd_dkdv(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dk, dv); }
extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS) attention_bwd_dkdv_bf16(const bf16 *q, Strides qs, const bf16 *k, Strides ks, const bf16 *v, Strides vs, const uint8_t *bmask, const bf16 *amask, Strides ms, Dims dims, double scale, uint32_t causal, const bf16 *dout, const float *lse, const float *delta, bf16 *dk, bf16 *dv) { attention_bwd_dkdv(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dk, dv); }

extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS, ATTN_DQ_MIN_BLOCKS) attention_bwd_dq_f32(const float *q, Strides qs, const float *k, Strides ks, const float *v, Strides vs, const uint8_t *bmask, const float *amask, Strides ms, Dims dims, double scale, uint32_t causal, const float *dout, const float *lse, const float *delta, float *dq) { attention_bwd_dq(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dq); }
extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS, ATTN_DQ_MIN_BLOCKS) attention_bwd_dq_f64(const double *q, Strides qs, const double *k, Strides ks, const double *v, Strides vs, const uint8_t *bmask, const double *amask, Strides ms, Dims dims, double scale, uint32_t causal, const double *dout, const double *lse, const double *delta, double *dq) { attention_bwd_dq(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dq); }
extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS, ATTN_DQ_MIN_BLOCKS) attention_bwd_dq_f16(const f16 *q, Strides qs, const f16 *k, Strides ks, const f16 *v, Strides vs, const uint8_t *bmask, const f16 *amask, Strides ms, Dims dims, double scale, uint32_t causal, const f16 *dout, const float *lse, const float *delta, f16 *dq) { attention_bwd_dq(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dq); }
extern "C" __global__ void __launch_bounds__(ATTN_BWD_THREADS, ATTN_DQ_MIN_BLOCKS) attention_bwd_dq_bf16(const bf16 *q, Strides qs, const bf16 *k, Strides ks, const bf16 *v, Strides vs, const uint8_t *bmask, const bf16 *amask, Strides ms, Dims dims, double scale, uint32_t causal, const bf16 *dout, const float *lse, const float *delta, bf16 *dq) { attention_bwd_dq(q, qs, k, ks, v, vs, bmask, amask, ms, dims, scale, causal, dout, lse, delta, dq); }
