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
//
// Large f32 products use `gemm_big_f32`: 128x128 tiles, each thread an 8x8 block of C
// (rows 8ty.., columns 8tx..) read from shared memory as float4s, k in slices of 8.
//
// f16/bf16 use tensor cores (`gemm_tc_*`, WMMA 16x16x16 with f32 accumulation): a block
// of 8 warps computes a 128x128 tile, each warp 64x32 as 4x2 fragments, stepping k by
// 32; operands are staged through shared memory as row-major half tiles (so any
// strides work) and results through a per-warp f32 tile (so edges are masked).
#include "common.cuh"
#ifndef KILN_HOST_EMU
#include <mma.h>
#endif

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
            tile_fma_4x4(as, bs, acc, tx, ty);
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

#define TC_BM 128
#define TC_BN 128
#define TC_BK 32
#define TC_PAD 8 // keeps WMMA's leading dimensions multiples of 8 and spreads banks

template <typename T>
__device__ __forceinline__ void gemm_tc_impl(const T *a, const T *b, T *c, uint32_t m, uint32_t n,
                                             uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m,
                                             int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) {
#if __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    __shared__ __align__(32) T as[TC_BM][TC_BK + TC_PAD];
    __shared__ __align__(32) T bs[TC_BK][TC_BN + TC_PAD];
    __shared__ __align__(32) float stage[8][16 * 16];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / 4, wn = warp % 4; // 2 x 4 warps: 64 rows x 32 columns each
    const uint32_t row0 = blockIdx.y * TC_BM, col0 = blockIdx.x * TC_BN;
    const bool a_rows_contiguous = a_m == 1 && a_k != 1;
    const bool b_rows_contiguous = b_n == 1;
    const T zero = narrow<T>(0.0f);

    for (uint32_t bt = blockIdx.z; bt < batch; bt += gridDim.z) {
        const T *ab = a + (int64_t)bt * a_b;
        const T *bb = b + (int64_t)bt * b_b;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[4][2];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

        for (uint32_t k0 = 0; k0 < k; k0 += TC_BK) {
#pragma unroll 4
            for (int e = threadIdx.x; e < TC_BM * TC_BK; e += 256) {
                int mm = a_rows_contiguous ? e % TC_BM : e / TC_BK;
                int kk = a_rows_contiguous ? e / TC_BM : e % TC_BK;
                uint32_t gm = row0 + mm, gk = k0 + kk;
                as[mm][kk] = (gm < m && gk < k) ? ab[gm * a_m + gk * a_k] : zero;
            }
#pragma unroll 4
            for (int e = threadIdx.x; e < TC_BK * TC_BN; e += 256) {
                int nn = b_rows_contiguous ? e % TC_BN : e / TC_BK;
                int kk = b_rows_contiguous ? e / TC_BN : e % TC_BK;
                uint32_t gn = col0 + nn, gk = k0 + kk;
                bs[kk][nn] = (gn < n && gk < k) ? bb[gk * b_k + gn * b_n] : zero;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < TC_BK; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa[4];
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb[2];
#pragma unroll
                for (int i = 0; i < 4; ++i)
                    wmma::load_matrix_sync(fa[i], &as[wm * 64 + 16 * i][kk], TC_BK + TC_PAD);
#pragma unroll
                for (int j = 0; j < 2; ++j)
                    wmma::load_matrix_sync(fb[j], &bs[kk][wn * 32 + 16 * j], TC_BN + TC_PAD);
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
            }
            __syncthreads();
        }

        T *cb = c + (uint64_t)bt * m * n;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                wmma::store_matrix_sync(stage[warp], acc[i][j], 16, wmma::mem_row_major);
                __syncwarp();
                uint32_t r0 = row0 + wm * 64 + 16 * i, c0 = col0 + wn * 32 + 16 * j;
                for (int e = lane; e < 256; e += 32) {
                    uint32_t gm = r0 + e / 16, gn = c0 + e % 16;
                    if (gm < m && gn < n) cb[(uint64_t)gm * n + gn] = narrow<T>(stage[warp][e]);
                }
                __syncwarp();
            }
        }
    }
#else
    // Without tensor cores for this type (compute capability < 8.0): the tiled kernel
    // takes over when the host launches `gemm_*` instead; nothing to do here.
#endif
}

extern "C" __global__ void __launch_bounds__(256) gemm_tc_f16(const f16 *a, const f16 *b, f16 *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_tc_bf16(const bf16 *a, const bf16 *b, bf16 *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }

#define BIG_BM 128
#define BIG_BN 128
#define BIG_BK 8
#define BIG_PAD 4 // rows stay 16-byte aligned; transposed tile stores hit distinct banks

__device__ __forceinline__ void gemm_big_f32_impl(const float *a, const float *b, float *c,
                                                  uint32_t m, uint32_t n, uint32_t k,
                                                  uint32_t batch, int64_t a_b, int64_t a_m,
                                                  int64_t a_k, int64_t b_b, int64_t b_k,
                                                  int64_t b_n) {
    __shared__ __align__(16) float as[BIG_BK][BIG_BM + BIG_PAD]; // as[k][m]
    __shared__ __align__(16) float bs[BIG_BK][BIG_BN + BIG_PAD]; // bs[k][n]
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const uint32_t row0 = blockIdx.y * BIG_BM, col0 = blockIdx.x * BIG_BN;
    const bool a_rows_contiguous = a_m == 1 && a_k != 1;
    const bool b_rows_contiguous = b_n == 1;

    for (uint32_t bt = blockIdx.z; bt < batch; bt += gridDim.z) {
        const float *ab = a + (int64_t)bt * a_b;
        const float *bb = b + (int64_t)bt * b_b;
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

        for (uint32_t k0 = 0; k0 < k; k0 += BIG_BK) {
#pragma unroll
            for (int r = 0; r < (BIG_BM * BIG_BK) / 256; ++r) {
                int e = threadIdx.x + 256 * r;
                int mm = a_rows_contiguous ? e % BIG_BM : e / BIG_BK;
                int kk = a_rows_contiguous ? e / BIG_BM : e % BIG_BK;
                uint32_t gm = row0 + mm, gk = k0 + kk;
                as[kk][mm] = (gm < m && gk < k) ? ab[gm * a_m + gk * a_k] : 0.0f;
            }
#pragma unroll
            for (int r = 0; r < (BIG_BN * BIG_BK) / 256; ++r) {
                int e = threadIdx.x + 256 * r;
                int nn = b_rows_contiguous ? e % BIG_BN : e / BIG_BK;
                int kk = b_rows_contiguous ? e / BIG_BN : e % BIG_BK;
                uint32_t gn = col0 + nn, gk = k0 + kk;
                bs[kk][nn] = (gn < n && gk < k) ? bb[gk * b_k + gn * b_n] : 0.0f;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < BIG_BK; ++kk) {
                float4 a0 = *reinterpret_cast<const float4 *>(&as[kk][ty * 8]);
                float4 a1 = *reinterpret_cast<const float4 *>(&as[kk][ty * 8 + 4]);
                float4 b0 = *reinterpret_cast<const float4 *>(&bs[kk][tx * 8]);
                float4 b1 = *reinterpret_cast<const float4 *>(&bs[kk][tx * 8 + 4]);
                float af[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                float bf[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
            }
            __syncthreads();
        }

        float *cb = c + (uint64_t)bt * m * n;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            uint32_t gm = row0 + ty * 8 + i;
            if (gm >= m) break;
#pragma unroll
            for (int j = 0; j < 8; ++j) {
                uint32_t gn = col0 + tx * 8 + j;
                if (gn < n) cb[(uint64_t)gm * n + gn] = acc[i][j];
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) gemm_big_f32(const float *a, const float *b, float *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_big_f32_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
