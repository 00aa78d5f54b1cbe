// Index ops: gather (and index_select, a gather with a broadcast index), scatter_add
// (their backward), index_put_rows (advanced indexing's index_put), where_cond (select
// by a U8 condition) and index_bounds (the device-side validation of an I64 index
// tensor).
//
// Layouts: `gather` and `scatter_add` walk the FULL shape (dims not merged, innermost
// first, see common.cuh) because the indexed dimension `dim` must stay apart; the host
// passes that dimension's strides as separate arguments and zeroes them in the
// `Strides` structs, so the unrolled loops never index an array with a run-time `dim`
// (which would put the strides in local memory).
//
// Thread mapping: one thread per OUTPUT element (grid-stride). scatter_add is
// "owner computes": the thread that owns out[c] walks the index along `dim` in order
// and adds every src element whose index names c[dim]. No atomics, so the sum order
// is fixed (base first, then increasing position along `dim`, the CPU backend's
// order) and results are deterministic, bit for bit on every run. The cost is
// out_numel × index_len(dim) reads of the index: V·D·N for an embedding gradient
// (V, D) of N ids, so that case (dim 0 of a 2-D output, a 1-D index broadcast along
// dim 1: the backward of index_select of rows) has its own kernel, scatter_add_rows:
// one block per output row finds the row's positions once for all its columns
// (V·N index reads, coalesced and L2-resident) and adds N·D src elements in all,
// in the same order and compute type, so its results equal the general kernel's
// bit for bit. index_put_rows is the same walk for advanced indexing's index_put (the
// tensor layer flattens it to rows): adding (accumulate) or replacing, every dtype.
//
// Indices are validated before these kernels run (index_bounds, one 16-byte readback);
// the kernels still never read outside `src`: an index outside [0, len) yields 0 in
// gather and matches no output in scatter_add.
#include "common.cuh"

// Coordinate k of element i (row-major, innermost dim first in `dims`) drives the
// offsets of the operands whose strides are given.
template <typename T>
__device__ __forceinline__ void gather_impl(uint64_t n, int rank, const Dims &dims,
                                            const T *src, const Strides &ss, int64_t src_step,
                                            int64_t src_len, const int64_t *idx,
                                            const Strides &is, T *out) {
    KILN_FOR_EACH(i, n) {
        uint64_t r = i;
        int64_t so = 0, io = 0;
#pragma unroll
        for (int k = 0; k < KILN_MAX_DIMS; ++k) {
            if (k < rank) {
                uint64_t size = dims.d[k];
                uint64_t q = r / size;
                int64_t c = (int64_t)(r - q * size);
                r = q;
                so += c * ss.s[k]; // the stride of `dim` is 0 here
                io += c * is.s[k];
            }
        }
        int64_t j = idx[io];
        out[i] = (j >= 0 && j < src_len) ? src[so + j * src_step] : from_f64<T>(0.0);
    }
}

extern "C" __global__ void gather_f32(uint64_t n, int rank, Dims dims, const float *src, Strides ss, int64_t src_step, int64_t src_len, const int64_t *idx, Strides is, float *out) { gather_impl(n, rank, dims, src, ss, src_step, src_len, idx, is, out); }
extern "C" __global__ void gather_f64(uint64_t n, int rank, Dims dims, const double *src, Strides ss, int64_t src_step, int64_t src_len, const int64_t *idx, Strides is, double *out) { gather_impl(n, rank, dims, src, ss, src_step, src_len, idx, is, out); }
extern "C" __global__ void gather_f16(uint64_t n, int rank, Dims dims, const f16 *src, Strides ss, int64_t src_step, int64_t src_len, const int64_t *idx, Strides is, f16 *out) { gather_impl(n, rank, dims, src, ss, src_step, src_len, idx, is, out); }
extern "C" __global__ void gather_bf16(uint64_t n, int rank, Dims dims, const bf16 *src, Strides ss, int64_t src_step, int64_t src_len, const int64_t *idx, Strides is, bf16 *out) { gather_impl(n, rank, dims, src, ss, src_step, src_len, idx, is, out); }
extern "C" __global__ void gather_i64(uint64_t n, int rank, Dims dims, const int64_t *src, Strides ss, int64_t src_step, int64_t src_len, const int64_t *idx, Strides is, int64_t *out) { gather_impl(n, rank, dims, src, ss, src_step, src_len, idx, is, out); }
extern "C" __global__ void gather_u8(uint64_t n, int rank, Dims dims, const uint8_t *src, Strides ss, int64_t src_step, int64_t src_len, const int64_t *idx, Strides is, uint8_t *out) { gather_impl(n, rank, dims, src, ss, src_step, src_len, idx, is, out); }

// out[c] = base[c] + Σ_t src[c with c[dim] = t] over t < idx_len where
// idx[c with c[dim] = t] == c[dim], for c inside the index's shape on the other dims.
// `dims` is the output's shape, `idims` the index's (its entry at `dim` unused).
template <typename T>
__device__ __forceinline__ void scatter_add_impl(uint64_t n, int rank, const Dims &dims, int dim,
                                                 const T *base, const Strides &bs,
                                                 const Dims &idims, const int64_t *idx,
                                                 const Strides &is, int64_t idx_step,
                                                 uint64_t idx_len, const T *src,
                                                 const Strides &ss, int64_t src_step, T *out) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(i, n) {
        uint64_t r = i;
        int64_t bo = 0, io = 0, so = 0, j = 0;
        bool inside = true;
#pragma unroll
        for (int k = 0; k < KILN_MAX_DIMS; ++k) {
            if (k < rank) {
                uint64_t size = dims.d[k];
                uint64_t q = r / size;
                uint64_t c = r - q * size;
                r = q;
                bo += (int64_t)c * bs.s[k];
                io += (int64_t)c * is.s[k]; // 0 at `dim`
                so += (int64_t)c * ss.s[k]; // 0 at `dim`
                if (k == dim) {
                    j = (int64_t)c;
                } else if (c >= idims.d[k]) {
                    inside = false;
                }
            }
        }
        C acc = widen(base[bo]);
        if (inside) {
            for (uint64_t t = 0; t < idx_len; ++t) {
                if (idx[io + (int64_t)t * idx_step] == j) {
                    acc += widen(src[so + (int64_t)t * src_step]);
                }
            }
        }
        out[i] = narrow<T>(acc);
    }
}

extern "C" __global__ void scatter_add_f32(uint64_t n, int rank, Dims dims, int dim, const float *base, Strides bs, Dims idims, const int64_t *idx, Strides is, int64_t idx_step, uint64_t idx_len, const float *src, Strides ss, int64_t src_step, float *out) { scatter_add_impl(n, rank, dims, dim, base, bs, idims, idx, is, idx_step, idx_len, src, ss, src_step, out); }
extern "C" __global__ void scatter_add_f64(uint64_t n, int rank, Dims dims, int dim, const double *base, Strides bs, Dims idims, const int64_t *idx, Strides is, int64_t idx_step, uint64_t idx_len, const double *src, Strides ss, int64_t src_step, double *out) { scatter_add_impl(n, rank, dims, dim, base, bs, idims, idx, is, idx_step, idx_len, src, ss, src_step, out); }
extern "C" __global__ void scatter_add_f16(uint64_t n, int rank, Dims dims, int dim, const f16 *base, Strides bs, Dims idims, const int64_t *idx, Strides is, int64_t idx_step, uint64_t idx_len, const f16 *src, Strides ss, int64_t src_step, f16 *out) { scatter_add_impl(n, rank, dims, dim, base, bs, idims, idx, is, idx_step, idx_len, src, ss, src_step, out); }
extern "C" __global__ void scatter_add_bf16(uint64_t n, int rank, Dims dims, int dim, const bf16 *base, Strides bs, Dims idims, const int64_t *idx, Strides is, int64_t idx_step, uint64_t idx_len, const bf16 *src, Strides ss, int64_t src_step, bf16 *out) { scatter_add_impl(n, rank, dims, dim, base, bs, idims, idx, is, idx_step, idx_len, src, ss, src_step, out); }

#define KILN_SCATTER_ROWS_THREADS 256
// Columns each thread of scatter_add_rows owns per pass (accumulators in registers):
// one pass over the index serves KILN_SCATTER_ROWS_THREADS × this many columns.
#define KILN_SCATTER_ROWS_COLS 4

// scatter_add_impl's sum for out (rows, cols) contiguous, dim 0, idx[t] (t < idx_len,
// stride idx_step) naming the row every src[t, :] is added to:
// out[r, d] = base[r, d] + Σ_{t: idx[t] == r, increasing} src[t, d]; without
// `accumulate` (index_put's replacement) each of those src rows replaces the last, so
// the last t naming a row wins, as PyTorch's CPU loop leaves it.
// One block per output row (grid-stride over rows), KILN_SCATTER_ROWS_THREADS
// threads. For each tile of columns the block scans the index in chunks of one id
// per thread, compacts the chunk's positions naming the row into `hits` in
// increasing order (a ballot and popcount prefix in each warp, the counts of the
// warps before it across warps), then every thread adds those src rows, in that
// order, to the columns it owns. Positions are compacted before they are used, so
// the adds, not the index compares, scale with D.
template <typename T>
__device__ __forceinline__ void scatter_add_rows_impl(uint64_t rows, uint64_t cols, const T *base,
                                                      int64_t b_row, int64_t b_col,
                                                      const int64_t *idx, int64_t idx_step,
                                                      uint64_t idx_len, const T *src,
                                                      int64_t s_row, int64_t s_col, T *out,
                                                      bool accumulate) {
    typedef typename ComputeOf<T>::type C;
    const unsigned warps = KILN_SCATTER_ROWS_THREADS / 32;
    KILN_SHARED(uint64_t, hits, [KILN_SCATTER_ROWS_THREADS]);
    KILN_SHARED(unsigned, warp_hits, [warps]);
    const unsigned lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const uint64_t tile = (uint64_t)KILN_SCATTER_ROWS_THREADS * KILN_SCATTER_ROWS_COLS;
    for (uint64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        for (uint64_t d0 = 0; d0 < cols; d0 += tile) {
            C acc[KILN_SCATTER_ROWS_COLS];
#pragma unroll
            for (int k = 0; k < KILN_SCATTER_ROWS_COLS; ++k) {
                uint64_t d = d0 + threadIdx.x + (uint64_t)k * KILN_SCATTER_ROWS_THREADS;
                acc[k] = d < cols ? widen(base[(int64_t)row * b_row + (int64_t)d * b_col])
                                  : C(0);
            }
            for (uint64_t t0 = 0; t0 < idx_len; t0 += KILN_SCATTER_ROWS_THREADS) {
                uint64_t t = t0 + threadIdx.x;
                bool hit = t < idx_len && idx[(int64_t)t * idx_step] == (int64_t)row;
                unsigned mask = __ballot_sync(0xffffffffu, hit);
                if (lane == 0) {
                    warp_hits[warp] = __popc(mask);
                }
                __syncthreads();
                unsigned at = __popc(mask & ((1u << lane) - 1u)), total = 0;
                for (unsigned w = 0; w < warps; ++w) {
                    at += w < warp ? warp_hits[w] : 0u;
                    total += warp_hits[w];
                }
                if (hit) {
                    hits[at] = t;
                }
                __syncthreads();
                for (unsigned h = 0; h < total; ++h) {
                    const T *s = src + (int64_t)hits[h] * s_row;
#pragma unroll
                    for (int k = 0; k < KILN_SCATTER_ROWS_COLS; ++k) {
                        uint64_t d = d0 + threadIdx.x + (uint64_t)k * KILN_SCATTER_ROWS_THREADS;
                        if (d < cols) {
                            C v = widen(s[(int64_t)d * s_col]);
                            acc[k] = accumulate ? (C)(acc[k] + v) : v;
                        }
                    }
                }
                // The next chunk overwrites `hits` and `warp_hits`.
                __syncthreads();
            }
#pragma unroll
            for (int k = 0; k < KILN_SCATTER_ROWS_COLS; ++k) {
                uint64_t d = d0 + threadIdx.x + (uint64_t)k * KILN_SCATTER_ROWS_THREADS;
                if (d < cols) {
                    out[row * cols + d] = narrow<T>(acc[k]);
                }
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) scatter_add_rows_f32(uint64_t rows, uint64_t cols, const float *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const float *src, int64_t s_row, int64_t s_col, float *out) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, true); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) scatter_add_rows_f64(uint64_t rows, uint64_t cols, const double *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const double *src, int64_t s_row, int64_t s_col, double *out) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, true); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) scatter_add_rows_f16(uint64_t rows, uint64_t cols, const f16 *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const f16 *src, int64_t s_row, int64_t s_col, f16 *out) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, true); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) scatter_add_rows_bf16(uint64_t rows, uint64_t cols, const bf16 *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const bf16 *src, int64_t s_row, int64_t s_col, bf16 *out) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, true); }

// index_put of rows (every dtype; integers wrap): the same walk, adding or replacing.
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) index_put_rows_f32(uint64_t rows, uint64_t cols, const float *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const float *src, int64_t s_row, int64_t s_col, float *out, uint32_t accumulate) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, accumulate != 0); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) index_put_rows_f64(uint64_t rows, uint64_t cols, const double *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const double *src, int64_t s_row, int64_t s_col, double *out, uint32_t accumulate) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, accumulate != 0); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) index_put_rows_f16(uint64_t rows, uint64_t cols, const f16 *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const f16 *src, int64_t s_row, int64_t s_col, f16 *out, uint32_t accumulate) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, accumulate != 0); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) index_put_rows_bf16(uint64_t rows, uint64_t cols, const bf16 *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const bf16 *src, int64_t s_row, int64_t s_col, bf16 *out, uint32_t accumulate) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, accumulate != 0); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) index_put_rows_i64(uint64_t rows, uint64_t cols, const int64_t *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const int64_t *src, int64_t s_row, int64_t s_col, int64_t *out, uint32_t accumulate) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, accumulate != 0); }
extern "C" __global__ void __launch_bounds__(KILN_SCATTER_ROWS_THREADS) index_put_rows_u8(uint64_t rows, uint64_t cols, const uint8_t *base, int64_t b_row, int64_t b_col, const int64_t *idx, int64_t idx_step, uint64_t idx_len, const uint8_t *src, int64_t s_row, int64_t s_col, uint8_t *out, uint32_t accumulate) { scatter_add_rows_impl(rows, cols, base, b_row, b_col, idx, idx_step, idx_len, src, s_row, s_col, out, accumulate != 0); }

// out[i] = cond[i] ? a[i] : b[i], all three broadcast to the output's (merged) shape.
template <typename T>
__device__ __forceinline__ void where_cond_impl(uint64_t n, int rank, const Dims &dims,
                                                const uint8_t *cond, const Strides &cs,
                                                const T *a, const Strides &as, const T *b,
                                                const Strides &bs, T *out) {
    KILN_FOR_EACH(i, n) {
        int64_t oc, oa, ob, unused;
        offsets2(i, n, rank, dims, cs, as, oc, oa);
        offsets2(i, n, rank, dims, bs, bs, ob, unused);
        out[i] = cond[oc] ? a[oa] : b[ob];
    }
}

extern "C" __global__ void where_cond_f32(uint64_t n, int rank, Dims dims, const uint8_t *cond, Strides cs, const float *a, Strides as, const float *b, Strides bs, float *out) { where_cond_impl(n, rank, dims, cond, cs, a, as, b, bs, out); }
extern "C" __global__ void where_cond_f64(uint64_t n, int rank, Dims dims, const uint8_t *cond, Strides cs, const double *a, Strides as, const double *b, Strides bs, double *out) { where_cond_impl(n, rank, dims, cond, cs, a, as, b, bs, out); }
extern "C" __global__ void where_cond_f16(uint64_t n, int rank, Dims dims, const uint8_t *cond, Strides cs, const f16 *a, Strides as, const f16 *b, Strides bs, f16 *out) { where_cond_impl(n, rank, dims, cond, cs, a, as, b, bs, out); }
extern "C" __global__ void where_cond_bf16(uint64_t n, int rank, Dims dims, const uint8_t *cond, Strides cs, const bf16 *a, Strides as, const bf16 *b, Strides bs, bf16 *out) { where_cond_impl(n, rank, dims, cond, cs, a, as, b, bs, out); }
extern "C" __global__ void where_cond_i64(uint64_t n, int rank, Dims dims, const uint8_t *cond, Strides cs, const int64_t *a, Strides as, const int64_t *b, Strides bs, int64_t *out) { where_cond_impl(n, rank, dims, cond, cs, a, as, b, bs, out); }
extern "C" __global__ void where_cond_u8(uint64_t n, int rank, Dims dims, const uint8_t *cond, Strides cs, const uint8_t *a, Strides as, const uint8_t *b, Strides bs, uint8_t *out) { where_cond_impl(n, rank, dims, cond, cs, a, as, b, bs, out); }

#define KILN_INDEX_BOUNDS_THREADS 256

// out[0] = min, out[1] = max of the n indices (strided). One block of 256 threads:
// each thread folds a strided share, then a shared-memory tree (barriers between
// levels) folds the block. The host reads the two values back and names the first
// bad one in its error; the index ops themselves never read out of bounds.
extern "C" __global__ void __launch_bounds__(256) index_bounds(uint64_t n, int rank, Dims dims, const int64_t *idx, Strides is, int64_t *out) {
    KILN_SHARED(int64_t, lo_s, [KILN_INDEX_BOUNDS_THREADS]);
    KILN_SHARED(int64_t, hi_s, [KILN_INDEX_BOUNDS_THREADS]);
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint64_t i = threadIdx.x; i < n; i += blockDim.x) {
        int64_t v = idx[offset1(i, n, rank, dims, is)];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    lo_s[threadIdx.x] = lo;
    hi_s[threadIdx.x] = hi;
    __syncthreads();
    for (unsigned s = KILN_INDEX_BOUNDS_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            int64_t l2 = lo_s[threadIdx.x + s], h2 = hi_s[threadIdx.x + s];
            lo_s[threadIdx.x] = l2 < lo_s[threadIdx.x] ? l2 : lo_s[threadIdx.x];
            hi_s[threadIdx.x] = h2 > hi_s[threadIdx.x] ? h2 : hi_s[threadIdx.x];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[0] = lo_s[0];
        out[1] = hi_s[0];
    }
}
