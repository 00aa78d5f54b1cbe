// kiln's own GEMM: C[b] = A[b] · B[b] for a batch of (m×k)·(k×n) products.
//
// A and B are strided (any row/column/batch step, so transposed views and broadcast
// batches need no copy); C is contiguous (batch, m, n). Classic shared-memory tiling:
// a block of 256 threads computes a 64×64 tile of C, each thread a 4×4 sub-tile
// (rows ty+16i, columns tx+16j: conflict-free shared-memory reads), stepping through k
// in slices of 16. Tile loads are mapped so that neighbouring threads read neighbouring
// addresses whichever stride of the operand is 1. f16/bf16 are widened to f32 on load
// and accumulate in f32, like the CPU backend. Grid: (ceil(n/64), ceil(m/64),
// min(batch, 65535)); blocks loop over the batch when it is larger.
#include "common.cuh"

#define GEMM_BM 64
#define GEMM_BN 64
#define GEMM_BK 16
#define GEMM_THREADS 256

template <typename T>
__device__ __forceinline__ void gemm_impl(const T *a, const T *b, T *c, uint32_t m, uint32_t n,
                                          uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m,
                                          int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) {
    typedef typename ComputeOf<T>::type C;
    // +4 keeps rows 16-byte aligned and spreads the transposed tile stores over banks.
    __shared__ C as[GEMM_BK][GEMM_BM + 4];
    __shared__ C bs[GEMM_BK][GEMM_BN + 4];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const uint32_t row0 = blockIdx.y * GEMM_BM, col0 = blockIdx.x * GEMM_BN;
    const bool a_rows_contiguous = a_m == 1 && a_k != 1; // A is a transposed view
    const bool b_rows_contiguous = b_n == 1;             // B is row-major

    for (uint32_t bt = blockIdx.z; bt < batch; bt += gridDim.z) {
        const T *ab = a + (int64_t)bt * a_b;
        const T *bb = b + (int64_t)bt * b_b;
        C acc[4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] = (C)0;

        for (uint32_t k0 = 0; k0 < k; k0 += GEMM_BK) {
#pragma unroll
            for (int r = 0; r < (GEMM_BM * GEMM_BK) / GEMM_THREADS; ++r) {
                int e = threadIdx.x + GEMM_THREADS * r;
                int mm = a_rows_contiguous ? e % GEMM_BM : e / GEMM_BK;
                int kk = a_rows_contiguous ? e / GEMM_BM : e % GEMM_BK;
                uint32_t gm = row0 + mm, gk = k0 + kk;
                as[kk][mm] = (gm < m && gk < k) ? widen(ab[gm * a_m + gk * a_k]) : (C)0;
            }
#pragma unroll
            for (int r = 0; r < (GEMM_BN * GEMM_BK) / GEMM_THREADS; ++r) {
                int e = threadIdx.x + GEMM_THREADS * r;
                int nn = b_rows_contiguous ? e % GEMM_BN : e / GEMM_BK;
                int kk = b_rows_contiguous ? e / GEMM_BN : e % GEMM_BK;
                uint32_t gn = col0 + nn, gk = k0 + kk;
                bs[kk][nn] = (gn < n && gk < k) ? widen(bb[gk * b_k + gn * b_n]) : (C)0;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < GEMM_BK; ++kk) {
                C af[4], bf[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) af[i] = as[kk][ty + 16 * i];
#pragma unroll
                for (int j = 0; j < 4; ++j) bf[j] = bs[kk][tx + 16 * j];
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] = fma(af[i], bf[j], acc[i][j]);
            }
            __syncthreads();
        }

        T *cb = c + (uint64_t)bt * m * n;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            uint32_t gm = row0 + ty + 16 * i;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                uint32_t gn = col0 + tx + 16 * j;
                if (gm < m && gn < n) cb[(uint64_t)gm * n + gn] = narrow<T>(acc[i][j]);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) gemm_f32(const float *a, const float *b, float *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_f64(const double *a, const double *b, double *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_f16(const f16 *a, const f16 *b, f16 *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_bf16(const bf16 *a, const bf16 *b, bf16 *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
