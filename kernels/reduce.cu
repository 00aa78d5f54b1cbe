// Reductions over one dimension: sum, max, min, argmax, argmin.
//
// The input is seen as `n_out` outputs (the kept dimensions, strided: `odims`/`ostr`)
// times `len` elements along the reduced dimension (step `rstride`). Work is split into
// `n_out * chunks` items, item (j, c) covering k in [c*chunk_len, (c+1)*chunk_len).
// Two ways to map items to threads (the host picks; src/backend/cuda/reduce.rs):
//   * block per item (`reduce_block_*`): the threads of a block stride over k, then a
//     warp-shuffle and shared-memory block reduction; for contiguous rows.
//   * thread per item (`reduce_thread_*`): each thread loops over k; neighbouring
//     threads read neighbouring outputs, so a strided reduced dim stays coalesced.
// With one chunk the kernels write the final result; with several they write partial
// (value, index) pairs that `reduce_partials_*` combines.
//
// Semantics follow the CPU backend: float sums accumulate in f32 (f64 for f64), integer
// sums in i64 (the result is I64); max/min propagate NaN; arg* give the first index of
// the extreme value, or of the first NaN. The host reads the op codes from ReduceCode
// (build.rs generates `kernels::op_code`); an enumerator is R_ and the Rust op's name.
#include "common.cuh"

enum ReduceCode { R_SUM = 0, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN };

// Traps unless `op` is a ReduceCode: the functions below test for sum and for the
// maxima and take any other code for a minimum, which would give plausible wrong results.
__device__ __forceinline__ void check_op(uint32_t op) {
    switch (op) {
    case R_SUM: case R_MAX: case R_MIN: case R_ARGMAX: case R_ARGMIN: return;
    default: __trap();
    }
}

// Accumulator type: f32 for f32/f16/bf16, f64 for f64, i64 for the integers.
template <typename T> struct AccOf { typedef typename ComputeOf<T>::type type; };
template <> struct AccOf<uint8_t> { typedef int64_t type; };

template <typename T> struct IsInt { static const bool value = false; };
template <> struct IsInt<int64_t> { static const bool value = true; };
template <> struct IsInt<uint8_t> { static const bool value = true; };

template <typename A> struct Partial {
    A v;
    int64_t i; // element index; -1 marks "no element yet" (the identity)
};

template <typename A> __device__ __forceinline__ bool is_nan(A v) { return v != v; }

template <typename A>
__device__ __forceinline__ Partial<A> combine(uint32_t op, Partial<A> a, Partial<A> b) {
    if (op == R_SUM) {
        Partial<A> r = {a.v + b.v, 0};
        return r;
    }
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an || bn) {
        if (an && bn) return a.i <= b.i ? a : b;
        return an ? a : b;
    }
    bool want_max = op == R_MAX || op == R_ARGMAX;
    if (a.v == b.v) return a.i <= b.i ? a : b;
    return ((a.v > b.v) == want_max) ? a : b;
}

// Integer sums wrap (like the CPU's wrapping_add) without signed-overflow UB.
template <>
__device__ __forceinline__ Partial<int64_t> combine(uint32_t op, Partial<int64_t> a,
                                                    Partial<int64_t> b) {
    if (op == R_SUM) {
        Partial<int64_t> r = {(int64_t)((unsigned long long)a.v + (unsigned long long)b.v), 0};
        return r;
    }
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    bool want_max = op == R_MAX || op == R_ARGMAX;
    if (a.v == b.v) return a.i <= b.i ? a : b;
    return ((a.v > b.v) == want_max) ? a : b;
}

template <typename A> __device__ __forceinline__ Partial<A> identity(uint32_t op) {
    Partial<A> r = {(A)0, op == R_SUM ? 0 : -1};
    return r;
}

template <typename A> __device__ __forceinline__ A acc_of(A v) { return v; }
__device__ __forceinline__ float acc_of(f16 v) { return __half2float(v); }
__device__ __forceinline__ float acc_of(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ int64_t acc_of(uint8_t v) { return v; }

// Writes the final result of output j: T for sum/max/min of floats and max/min of
// integers, I64 for arg* and integer sums.
template <typename T, typename A>
__device__ __forceinline__ void write_final(uint32_t op, Partial<A> p, void *out, uint64_t j) {
    if (op == R_ARGMAX || op == R_ARGMIN) {
        ((int64_t *)out)[j] = p.i;
    } else if (op == R_SUM && IsInt<T>::value) {
        ((int64_t *)out)[j] = (int64_t)p.v;
    } else {
        ((T *)out)[j] = Convert<typename ComputeOf<T>::type, T>::apply(
            (typename ComputeOf<T>::type)p.v);
    }
}

template <typename A>
__device__ __forceinline__ Partial<A> shfl_down(Partial<A> p, int delta) {
    Partial<A> r;
    r.v = __shfl_down_sync(0xffffffffu, p.v, delta);
    r.i = __shfl_down_sync(0xffffffffu, p.i, delta);
    return r;
}

// Reduces `p` over the block (blockDim.x a multiple of 32, at most 1024); thread 0 gets it.
template <typename A> __device__ __forceinline__ Partial<A> block_reduce(uint32_t op, Partial<A> p) {
    KILN_SHARED(A, sv, [32]);
    KILN_SHARED(int64_t, si, [32]);
#pragma unroll
    for (int d = 16; d > 0; d /= 2) p = combine(op, p, shfl_down(p, d));
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (blockDim.x == 32) return p;
    if (lane == 0) {
        sv[warp] = p.v;
        si[warp] = p.i;
    }
    __syncthreads();
    if (warp == 0) {
        int warps = blockDim.x / 32;
        p = identity<A>(op);
        if (lane < warps) {
            p.v = sv[lane];
            p.i = si[lane];
        }
#pragma unroll
        for (int d = 16; d > 0; d /= 2) p = combine(op, p, shfl_down(p, d));
    }
    return p;
}

struct ReduceArgs {
    uint64_t n_out;     // number of outputs
    uint64_t len;       // extent of the reduced dimension
    int64_t rstride;    // its step in the input
    uint64_t chunks;    // items per output
    uint64_t chunk_len; // elements per item (the last item may be shorter)
    int rank;           // rank of the kept dimensions (>= 1)
    uint32_t op;
};

template <typename T, typename A>
__device__ __forceinline__ void finish_item(const ReduceArgs &a, uint64_t j, uint64_t c,
                                            Partial<A> p, void *out, A *pv, int64_t *pi) {
    if (a.chunks == 1) {
        write_final<T, A>(a.op, p, out, j);
    } else {
        pv[j * a.chunks + c] = p.v;
        pi[j * a.chunks + c] = p.i;
    }
}

template <typename T>
__device__ __forceinline__ void reduce_block(const T *x, Dims odims, Strides ostr, ReduceArgs a,
                                             void *out, typename AccOf<T>::type *pv,
                                             int64_t *pi) {
    typedef typename AccOf<T>::type A;
    check_op(a.op);
    uint64_t items = a.n_out * a.chunks;
    for (uint64_t item = blockIdx.x; item < items; item += gridDim.x) {
        uint64_t j = item / a.chunks, c = item % a.chunks;
        const T *row = x + offset1(j, a.n_out, a.rank, odims, ostr);
        uint64_t start = c * a.chunk_len;
        uint64_t end = min(a.len, start + a.chunk_len);
        Partial<A> p = identity<A>(a.op);
        for (uint64_t k = start + threadIdx.x; k < end; k += blockDim.x) {
            Partial<A> e = {acc_of(row[(int64_t)k * a.rstride]), (int64_t)k};
            p = combine(a.op, p, e);
        }
        p = block_reduce(a.op, p);
        if (threadIdx.x == 0) finish_item<T, A>(a, j, c, p, out, pv, pi);
        __syncthreads(); // the shared scratch is reused by the next item
    }
}

template <typename T>
__device__ __forceinline__ void reduce_thread(const T *x, Dims odims, Strides ostr, ReduceArgs a,
                                              void *out, typename AccOf<T>::type *pv,
                                              int64_t *pi) {
    typedef typename AccOf<T>::type A;
    check_op(a.op);
    KILN_FOR_EACH(item, a.n_out * a.chunks) {
        uint64_t c = item / a.n_out, j = item % a.n_out;
        const T *row = x + offset1(j, a.n_out, a.rank, odims, ostr);
        uint64_t start = c * a.chunk_len;
        uint64_t end = min(a.len, start + a.chunk_len);
        Partial<A> p = identity<A>(a.op);
        for (uint64_t k = start; k < end; ++k) {
            Partial<A> e = {acc_of(row[(int64_t)k * a.rstride]), (int64_t)k};
            p = combine(a.op, p, e);
        }
        finish_item<T, A>(a, j, c, p, out, pv, pi);
    }
}

// Combines the (n_out, chunks) partials row by row into the final outputs.
template <typename T>
__device__ __forceinline__ void reduce_partials(uint64_t n_out, uint64_t chunks, uint32_t op,
                                                const typename AccOf<T>::type *pv,
                                                const int64_t *pi, void *out) {
    typedef typename AccOf<T>::type A;
    check_op(op);
    for (uint64_t j = blockIdx.x; j < n_out; j += gridDim.x) {
        Partial<A> p = identity<A>(op);
        for (uint64_t c = threadIdx.x; c < chunks; c += blockDim.x) {
            Partial<A> e = {pv[j * chunks + c], pi[j * chunks + c]};
            p = combine(op, p, e);
        }
        p = block_reduce(op, p);
        if (threadIdx.x == 0) write_final<T, A>(op, p, out, j);
        __syncthreads();
    }
}

extern "C" __global__ void reduce_block_f32(const float *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, float *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_block(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_block_f64(const double *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, double *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_block(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_block_f16(const f16 *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, float *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_block(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_block_bf16(const bf16 *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, float *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_block(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_block_i64(const int64_t *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, int64_t *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_block(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_block_u8(const uint8_t *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, int64_t *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_block(x, odims, ostr, a, out, pv, pi); }

extern "C" __global__ void reduce_thread_f32(const float *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, float *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_thread(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_thread_f64(const double *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, double *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_thread(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_thread_f16(const f16 *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, float *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_thread(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_thread_bf16(const bf16 *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, float *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_thread(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_thread_i64(const int64_t *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, int64_t *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_thread(x, odims, ostr, a, out, pv, pi); }
extern "C" __global__ void reduce_thread_u8(const uint8_t *x, int rank, Dims odims, Strides ostr, uint64_t n_out, uint64_t len, int64_t rstride, uint64_t chunks, uint64_t chunk_len, uint32_t op, void *out, int64_t *pv, int64_t *pi) { ReduceArgs a = {n_out, len, rstride, chunks, chunk_len, rank, op}; reduce_thread(x, odims, ostr, a, out, pv, pi); }

extern "C" __global__ void reduce_partials_f32(uint64_t n_out, uint64_t chunks, uint32_t op, const float *pv, const int64_t *pi, void *out) { reduce_partials<float>(n_out, chunks, op, pv, pi, out); }
extern "C" __global__ void reduce_partials_f64(uint64_t n_out, uint64_t chunks, uint32_t op, const double *pv, const int64_t *pi, void *out) { reduce_partials<double>(n_out, chunks, op, pv, pi, out); }
extern "C" __global__ void reduce_partials_f16(uint64_t n_out, uint64_t chunks, uint32_t op, const float *pv, const int64_t *pi, void *out) { reduce_partials<f16>(n_out, chunks, op, pv, pi, out); }
extern "C" __global__ void reduce_partials_bf16(uint64_t n_out, uint64_t chunks, uint32_t op, const float *pv, const int64_t *pi, void *out) { reduce_partials<bf16>(n_out, chunks, op, pv, pi, out); }
extern "C" __global__ void reduce_partials_i64(uint64_t n_out, uint64_t chunks, uint32_t op, const int64_t *pv, const int64_t *pi, void *out) { reduce_partials<int64_t>(n_out, chunks, op, pv, pi, out); }
extern "C" __global__ void reduce_partials_u8(uint64_t n_out, uint64_t chunks, uint32_t op, const int64_t *pv, const int64_t *pi, void *out) { reduce_partials<uint8_t>(n_out, chunks, op, pv, pi, out); }
