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
// f16/bf16 use tensor cores (`gemm_tc_*`, mma.sync with f32 accumulation, described
// before them), and so does f32 when the caller allows TF32 (`gemm_tc_tf32`).
#include "common.cuh"
#include "mma.cuh"

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

// ---- Tensor cores: mma.sync GEMM (f16/bf16: m16n8k16; f32 as tf32: m16n8k8).
//
// A block of 8 warps computes a 128x128 tile of C, each warp 64x32 (2 x 4 warps) as
// 4 x 4 mma tiles of 16x8 with f32 accumulators (64 registers). k advances by one
// 64-byte slice per step (32 halves or 16 floats), so both element types share the
// shared-memory layout: per stage, A as 128 rows of 64 bytes (k-contiguous) and B as
// TC_BK rows of 128 elements (n-contiguous), 16 KiB, three stages = 48 KiB (dynamic
// shared memory: the most a launch gets without opting in). Tiles
// arrive by cp.async 16 bytes at a time in a three-stage pipeline (two slices in flight
// while the third is multiplied). Operands whose contiguous dimension is not the tile's
// (transposed views), or is misaligned, and the chunks that straddle the edge of K or N,
// are loaded element by element into the same layout; chunks wholly outside the matrix
// are zero-filled (by cp.async with src-size 0 on the fast path), so the mma loop needs
// no masking at the edges.
//
// Shared memory is XOR-swizzled per 16-byte chunk so that the 8 row addresses of each
// ldmatrix (8 rows, same logical chunk) and the cp.async stores hit 8 distinct
// 16-byte bank groups without padding (padding would not fit three stages in 48 KiB).
// Fragments: A by ldmatrix.x4 (for tf32 the 8x8 b16 matrices are 8x4 f32, which is
// exactly the m16n8k8 A layout); B by ldmatrix.x4.trans for halves (two n8 tiles at once)
// and by two 32-bit loads per tile for tf32 (ldmatrix cannot transpose 32-bit elements).
#define TC_BM 128
#define TC_BN 128
#define TC_STAGES 3
#define TC_SLICE_BYTES 64 // bytes of k per step and per A row
#define TC_SHARED_BYTES (TC_STAGES * (TC_BM + TC_BN) * TC_SLICE_BYTES) // 48 KiB, dynamic

template <typename T> struct TcTile {
    static const int EPC = 16 / sizeof(T);             // elements per 16-byte chunk
    static const int BK = TC_SLICE_BYTES / sizeof(T);  // k per pipeline stage
    static const int A_ELEMS = TC_BM * BK, B_ELEMS = BK * TC_BN;
};

// Offset, in elements, of chunk `chunk` of row `row` in a tile of `CPR` 16-byte chunks
// per row. Rows that share a 128-byte line span distinct chunk columns already; the
// XOR spreads the next rows over the other columns (8 rows -> 8 distinct columns).
template <int CPR, int EPC> __device__ __forceinline__ int tc_swizzle(int row, int chunk) {
    const int rows_per_line = CPR >= 8 ? 1 : 8 / CPR;
    const int span = CPR >= 8 ? 8 : CPR;
    return (row * CPR + (chunk ^ ((row / rows_per_line) % span))) * EPC;
}

// Loads rows x (CPR chunks) of a tile whose element (r, c) is src[r * rs + c * cs],
// rows >= `rows` and columns >= `cols` being zero. `vec`: cs == 1 and every row start is
// 16-byte aligned, so whole chunks may be copied.
template <typename T, int ROWS, int CPR>
__device__ __forceinline__ void tc_load_tile(T *tile, const T *src, int64_t rs, int64_t cs,
                                             uint32_t rows, uint32_t cols, bool vec) {
    const int EPC = TcTile<T>::EPC;
    static_assert(ROWS * CPR % 256 == 0, "every thread loads the same number of chunks");
#pragma unroll
    for (int it = 0; it < ROWS * CPR / 256; ++it) {
        const int e = threadIdx.x + 256 * it;
        const int r = e / CPR, c = e % CPR;
        const uint32_t col = c * EPC;
        T *dst = tile + tc_swizzle<CPR, EPC>(r, c);
        const T *from = src + r * rs + col * cs;
        const bool inside = (uint32_t)r < rows && col < cols;
        if (vec && (!inside || col + EPC <= cols)) {
            // The whole chunk, or zeros (src-size 0 reads nothing; `src`, the tile's
            // first element, is in bounds and aligned as cp.async requires).
            cp_async_16(dst, inside ? from : src, inside ? 16 : 0);
        } else {
#pragma unroll
            for (int i = 0; i < EPC; ++i)
                dst[i] = inside && col + i < cols ? from[i * cs] : narrow<T>(0.0f);
        }
    }
}

// One k step's mma for the warp tile: halves, 16 of k.
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], f16) { mma_m16n8k16_f16(d, a, b, d); }
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], bf16) { mma_m16n8k16_bf16(d, a, b, d); }
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], float) { mma_m16n8k8_tf32(d, a, b, d); }

// B fragments of the warp's four n8 tiles for the k step at row `k0` of the stage.
template <typename T>
__device__ __forceinline__ void tc_load_b(uint32_t (&bf)[4][2], const T *bs, int k0, int n0, int lane) {
    const int CPR = TC_BN / TcTile<T>::EPC;
    // Lane l gives row k0 + l % 16 of matrices (k 0-7 | 8-15) x (n 0-7 | 8-15): regs
    // 0,1 are the B fragment of the first n8 tile, 2,3 of the second.
#pragma unroll
    for (int j = 0; j < 2; ++j) {
        uint32_t r[4];
        const int chunk = (n0 + 16 * j) / TcTile<T>::EPC + lane / 16;
        ldmatrix_x4_trans(r, bs + tc_swizzle<CPR, TcTile<T>::EPC>(k0 + lane % 16, chunk));
        bf[2 * j][0] = r[0], bf[2 * j][1] = r[1];
        bf[2 * j + 1][0] = r[2], bf[2 * j + 1][1] = r[3];
    }
}

template <>
__device__ __forceinline__ void tc_load_b<float>(uint32_t (&bf)[4][2], const float *bs, int k0, int n0, int lane) {
    const int CPR = TC_BN / 4, g = lane / 4, t = lane % 4;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        const int n = n0 + 8 * j + g;
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int k = k0 + t + 4 * i;
            bf[j][i] = f32_to_tf32(bs[tc_swizzle<CPR, 4>(k, n / 4) + n % 4]);
        }
    }
}

// A 32-bit register of halves is used as is; f32 is rounded to tf32 first.
__device__ __forceinline__ void tc_round(uint32_t (&)[4], f16) {}
__device__ __forceinline__ void tc_round(uint32_t (&)[4], bf16) {}
__device__ __forceinline__ void tc_round(uint32_t (&a)[4], float) {
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = f32_to_tf32(__uint_as_float(a[i]));
}

template <typename T>
__device__ __forceinline__ void gemm_tc_impl(const T *a, const T *b, T *c, uint32_t m, uint32_t n,
                                             uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m,
                                             int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) {
#if __CUDA_ARCH__ >= 800
    typedef TcTile<T> Tile;
    // k per mma: two 16-byte chunks (16 halves, 8 tf32).
    const int EPC = Tile::EPC, BK = Tile::BK, MMA_K = 32 / sizeof(T);
    const int A_CPR = TC_SLICE_BYTES / 16, B_CPR = TC_BN / EPC;
    // Dynamic (TC_SHARED_BYTES from the host), one declaration for every T: in the
    // emulator it is poisoned before each block and bounds-checked, which the statics of
    // a template function (outside its shared-memory section) would not be.
    KILN_DYNAMIC_SHARED(uint4, smem);
    T(*as)[Tile::A_ELEMS] = reinterpret_cast<T(*)[Tile::A_ELEMS]>(smem);
    T(*bs)[Tile::B_ELEMS] = reinterpret_cast<T(*)[Tile::B_ELEMS]>(as + TC_STAGES);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / 4 * 64, wn = warp % 4 * 32; // the warp's tile in the block's
    const uint32_t row0 = blockIdx.y * TC_BM, col0 = blockIdx.x * TC_BN;
    const uint32_t ktiles = (k + BK - 1) / BK;
    // Whole 16-byte chunks need the contiguous dimension's stride 1 and every row (and
    // batch) start 16-byte aligned.
    const bool a_vec = a_k == 1 && a_m % EPC == 0 && a_b % EPC == 0 && (uintptr_t)a % 16 == 0;
    const bool b_vec = b_n == 1 && b_k % EPC == 0 && b_b % EPC == 0 && (uintptr_t)b % 16 == 0;

    for (uint32_t z = blockIdx.z; z < batch; z += gridDim.z) {
        const T *ab = a + (int64_t)z * a_b + (int64_t)row0 * a_m;
        const T *bb = b + (int64_t)z * b_b + (int64_t)col0 * b_n;
        auto load_stage = [&](int stage, uint32_t kt) {
            const uint32_t k0 = kt * BK;
            tc_load_tile<T, TC_BM, A_CPR>(as[stage], ab + (int64_t)k0 * a_k, a_m, a_k, m - row0,
                                          k - k0, a_vec);
            tc_load_tile<T, BK, B_CPR>(bs[stage], bb + (int64_t)k0 * b_k, b_k, b_n, k - k0,
                                       n - col0, b_vec);
        };
        float acc[4][4][4];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

#pragma unroll
        for (int s = 0; s < TC_STAGES - 1; ++s) {
            if ((uint32_t)s < ktiles) load_stage(s, s);
            cp_async_commit(); // empty groups keep the wait counts below uniform
        }
        for (uint32_t kt = 0; kt < ktiles; ++kt) {
            cp_async_wait<TC_STAGES - 2>(); // this thread's copies of slice kt landed
            __syncthreads(); // everyone's did, and slice kt - 1's stage is free again
            const uint32_t next = kt + TC_STAGES - 1;
            if (next < ktiles) load_stage(next % TC_STAGES, next);
            cp_async_commit();

            const T *ast = as[kt % TC_STAGES], *bst = bs[kt % TC_STAGES];
#pragma unroll
            for (int ks = 0; ks < BK / MMA_K; ++ks) {
                // Lane l gives row l % 16, chunk l / 16 of the k step's two chunks:
                // matrices (rows 0-7 | 8-15) x (first | second chunk) = a0..a3.
                uint32_t af[4][4], bf[4][2];
#pragma unroll
                for (int i = 0; i < 4; ++i) {
                    ldmatrix_x4(af[i], ast + tc_swizzle<A_CPR, EPC>(wm + 16 * i + lane % 16,
                                                                   2 * ks + lane / 16));
                    tc_round(af[i], T());
                }
                tc_load_b<T>(bf, bst, ks * MMA_K, wn, lane);
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) tc_mma(acc[i][j], af[i], bf[j], T());
            }
        }
        cp_async_wait<0>();
        __syncthreads(); // the last stage is read before the next batch's prologue

        // Element r of acc[i][j]: row g + 8 (r / 2), column 2t + r % 2 of the 16x8 tile.
        T *cb = c + (uint64_t)z * m * n;
        const int g = lane / 4, t = lane % 4;
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    uint32_t gm = row0 + wm + 16 * i + g + 8 * (r / 2);
                    uint32_t gn = col0 + wn + 8 * j + 2 * t + r % 2;
                    if (gm < m && gn < n) cb[(uint64_t)gm * n + gn] = narrow<T>(acc[i][j][r]);
                }
    }
#else
    // Without mma.sync (compute capability < 8.0) the host launches the tiled `gemm_*`
    // kernels instead; nothing to do here.
#endif
}

extern "C" __global__ void __launch_bounds__(256) gemm_tc_f16(const f16 *a, const f16 *b, f16 *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_tc_bf16(const bf16 *a, const bf16 *b, bf16 *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_tc_tf32(const float *a, const float *b, float *c, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }

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
