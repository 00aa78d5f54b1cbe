// kiln's own GEMM: C[b] = A[b] · B[b] for a batch of (m×k)·(k×n) products.
//
// A and B are strided (any row/column/batch step, so transposed views and broadcast
// batches need no copy); C is contiguous (batch, m, n). Classic shared-memory tiling:
// a block of 256 threads computes a 64×64 tile of C, each thread a 4×4 sub-tile
// (rows ty+16i, columns tx+16j: conflict-free shared-memory reads), stepping through k
// in slices of 16. Tile loads are mapped so that neighbouring threads read neighbouring
// addresses whichever stride of the operand is 1. f16/bf16 are widened to f32 on load
// and accumulate in f32, like the CPU backend. Grid: (ceil(n/64), ceil(m/64),
// min(batch, 65535)); blocks loop over the batch when it is larger. Every kernel
// applies `gemm_epilogue` (bias, activation) on the way out; the 128x128 ones can also split
// k over grid z (split-K, partials summed by `gemm_splitk_reduce_*`).
//
// Large f32 products use `gemm_big_f32` (described before it): 128x128 tiles, warp
// tiling, 16-byte global loads and a cp.async double buffer.
//
// f16/bf16 use tensor cores (`gemm_tc_*`, mma.sync with f32 accumulation, described
// before them), and so does f32 when the caller allows TF32 (`gemm_tc_tf32`).
#include "common.cuh"
#include "mma.cuh"

// The epilogue every kernel applies on the way out (`linear`'s fused `act(x · w + b)`):
// `bias` (n elements, or null) added to every row in the compute type, then the
// activation `act` (the same formulas as the relu and gelu_tanh ops: ReLU lets NaN
// pass), then the narrowing to T.
enum ActCode { ACT_NONE = 0, ACT_RELU, ACT_GELU_TANH };

template <typename T, typename C>
__device__ __forceinline__ T gemm_epilogue(C x, const T *bias, uint32_t col, uint32_t act) {
    if (bias) x += widen(bias[col]);
    switch (act) {
    case ACT_NONE: break;
    case ACT_RELU: x = x <= (C)0 ? (C)0 : x; break;
    case ACT_GELU_TANH: x = gelu_tanh(x); break;
    default: __trap();
    }
    return narrow<T>(x);
}

#define GEMM_BM 64
#define GEMM_BN 64
#define GEMM_BK 16
#define GEMM_THREADS 256

template <typename T>
__device__ __forceinline__ void gemm_impl(const T *a, const T *b, T *c, const T *bias, uint32_t act,
                                          uint32_t m, uint32_t n, uint32_t k, uint32_t batch,
                                          int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b,
                                          int64_t b_k, int64_t b_n) {
    typedef typename ComputeOf<T>::type C;
    // +4 keeps rows 16-byte aligned and spreads the transposed tile stores over banks.
    KILN_SHARED(C, as, [GEMM_BK][GEMM_BM + 4]);
    KILN_SHARED(C, bs, [GEMM_BK][GEMM_BN + 4]);
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
                if (gm < m && gn < n) cb[(uint64_t)gm * n + gn] = gemm_epilogue(acc[i][j], bias, gn, act);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(256) gemm_f32(const float *a, const float *b, float *c, const float *bias, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, bias, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_f64(const double *a, const double *b, double *c, const double *bias, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, bias, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_f16(const f16 *a, const f16 *b, f16 *c, const f16 *bias, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, bias, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_bf16(const bf16 *a, const bf16 *b, bf16 *c, const bf16 *bias, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_impl(a, b, c, bias, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }

// ---- Tensor cores: mma.sync GEMM (f16/bf16: m16n8k16; f32 as tf32: m16n8k8).
//
// A block of 8 warps computes a 128x128 tile of C, each warp 64x32 (2 x 4 warps) as
// 4 x 4 mma tiles of 16x8 with f32 accumulators (64 registers). k advances by one
// 64-byte slice per step (32 halves or 16 floats), so both element types share the
// shared-memory layout: per stage, A as 128 rows of 64 bytes (k-contiguous) and B as
// TC_BK rows of 128 elements (n-contiguous), 16 KiB, three stages = 48 KiB (dynamic
// shared memory: the most a launch gets without opting in). Tiles
// arrive by cp.async 16 bytes at a time in a three-stage pipeline (two slices in flight
// while the third is multiplied). Halves whose contiguous dimension is not the tile's
// (transposed views: A m-contiguous, B k-contiguous as in `x · Wᵀ`) are staged in the
// other operand's layout (A as BK rows of 128 m, B as 128 rows of 64 bytes of k), so
// they arrive by whole chunks too, and are read by the opposite ldmatrix (.trans for
// A, plain for B). TF32 keeps the element-by-element path for them: ldmatrix cannot
// transpose 32-bit elements, and such f32 products run on gemm_big_f32 unless TF32 is
// allowed. Misaligned operands and the chunks that straddle the edge of K, M or N are
// loaded element by element; chunks wholly outside the matrix are zero-filled (by
// cp.async with src-size 0 on the fast path), so the mma loop needs no masking.
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

// B fragments of the warp's four n8 tiles for the k step at row `k0` of the stage.
// `trans` (halves only): the stage holds B as [n][k], read by plain ldmatrix.
template <typename T>
__device__ __forceinline__ void tc_load_b(uint32_t (&bf)[4][2], const T *bs, int k0, int n0, int lane,
                                          bool trans) {
    const int CPR = TC_BN / TcTile<T>::EPC;
    if (trans) {
        // [n][k]: lane l gives matrix q = l / 8 (n 0-7 | 8-15 by q / 2, k 0-7 | 8-15 by
        // q % 2), row n0 + 8 (q / 2) + l % 8: regs 0,1 (2,3) are the B fragment of the
        // first (second) n8 tile.
        const int T_CPR = TC_SLICE_BYTES / 16, q = lane / 8;
#pragma unroll
        for (int j = 0; j < 2; ++j) {
            uint32_t r[4];
            ldmatrix_x4(r, bs + tc_swizzle<T_CPR, TcTile<T>::EPC>(n0 + 16 * j + 8 * (q / 2) + lane % 8,
                                                                 k0 / TcTile<T>::EPC + q % 2));
            bf[2 * j][0] = r[0], bf[2 * j][1] = r[1];
            bf[2 * j + 1][0] = r[2], bf[2 * j + 1][1] = r[3];
        }
        return;
    }
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
__device__ __forceinline__ void tc_load_b<float>(uint32_t (&bf)[4][2], const float *bs, int k0, int n0, int lane,
                                                 bool) {
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

// A fragments of the warp's four m16 tiles for the k step at k0 of the stage. `trans`
// (halves only): the stage holds A as [k][m] (see gemm_tc_impl), and ldmatrix .trans
// hands every lane the same fragment elements as the plain one does from [m][k].
template <typename T>
__device__ __forceinline__ void tc_load_a(uint32_t (&af)[4][4], const T *as, int k0, int m0,
                                          int lane, bool trans) {
    const int EPC = TcTile<T>::EPC, A_CPR = TC_SLICE_BYTES / 16, T_CPR = TC_BM / EPC;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        if (trans) {
            // Lane l gives matrix q = l / 8 (a0..a3: m 0-7 | 8-15 by q % 2, k 0-7 | 8-15
            // by q / 2), row k0 + 8 (q / 2) + l % 8 of [k][m].
            const int q = lane / 8;
            ldmatrix_x4_trans(af[i], as + tc_swizzle<T_CPR, EPC>(k0 + 8 * (q / 2) + lane % 8,
                                                                 (m0 + 16 * i + 8 * (q % 2)) / EPC));
        } else {
            // Lane l gives row l % 16, chunk l / 16 of the k step's two chunks:
            // matrices (rows 0-7 | 8-15) x (first | second chunk) = a0..a3.
            ldmatrix_x4(af[i], as + tc_swizzle<A_CPR, EPC>(m0 + 16 * i + lane % 16,
                                                           k0 / EPC + lane / 16));
        }
        tc_round(af[i], T());
    }
}

// Split-K and the epilogue as in gemm_big_f32 (see BigEpilogue): f32 partials in `part`.
template <typename T>
__device__ __forceinline__ void gemm_tc_impl(const T *a, const T *b, T *c, float *part,
                                             const T *bias, uint32_t splits, uint32_t act,
                                             uint32_t m, uint32_t n, uint32_t k, uint32_t batch,
                                             int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b,
                                             int64_t b_k, int64_t b_n) {
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
    // Split s takes k slices [s * per, (s + 1) * per).
    const uint32_t per = ((k + BK - 1) / BK + splits - 1) / splits;
    // Whole 16-byte chunks need the contiguous dimension's stride 1 and every row (and
    // batch) start 16-byte aligned.
    // Halves whose contiguous dimension is not the tile's (A m-contiguous, B
    // k-contiguous: transposed views) are staged transposed, A as [k][m] and B as [n][k]
    // (each in the other operand's layout), so that they too arrive by whole chunks.
    const bool a_t = sizeof(T) == 2 && a_m == 1 && a_k != 1;
    const bool b_t = sizeof(T) == 2 && b_k == 1 && b_n != 1;
    const int64_t a_rs = a_t ? a_k : a_m, a_cs = a_t ? a_m : a_k;
    const int64_t b_rs = b_t ? b_n : b_k, b_cs = b_t ? b_k : b_n;
    const bool a_vec = a_cs == 1 && a_rs % EPC == 0 && a_b % EPC == 0 && (uintptr_t)a % 16 == 0;
    const bool b_vec = b_cs == 1 && b_rs % EPC == 0 && b_b % EPC == 0 && (uintptr_t)b % 16 == 0;

    for (uint32_t z = blockIdx.z; z < batch * splits; z += gridDim.z) {
        const uint32_t bt = z % batch, split = z / batch;
        const uint32_t k_begin = min(k, split * per * BK), k_end = min(k, k_begin + per * BK);
        const uint32_t ktiles = (k_end - k_begin + BK - 1) / BK;
        const T *ab = a + (int64_t)bt * a_b + (int64_t)row0 * a_m;
        const T *bb = b + (int64_t)bt * b_b + (int64_t)col0 * b_n;
        auto load_stage = [&](int stage, uint32_t kt) {
            const uint32_t k0 = k_begin + kt * BK;
            const T *at = ab + (int64_t)k0 * a_k, *bt = bb + (int64_t)k0 * b_k;
            if (a_t)
                tc_load_tile<T, BK, B_CPR>(as[stage], at, a_rs, a_cs, k_end - k0, m - row0, a_vec);
            else
                tc_load_tile<T, TC_BM, A_CPR>(as[stage], at, a_rs, a_cs, m - row0, k_end - k0, a_vec);
            if (b_t)
                tc_load_tile<T, TC_BN, A_CPR>(bs[stage], bt, b_rs, b_cs, n - col0, k_end - k0, b_vec);
            else
                tc_load_tile<T, BK, B_CPR>(bs[stage], bt, b_rs, b_cs, k_end - k0, n - col0, b_vec);
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
                uint32_t af[4][4], bf[4][2];
                tc_load_a<T>(af, ast, ks * MMA_K, wm, lane, a_t);
                tc_load_b<T>(bf, bst, ks * MMA_K, wn, lane, b_t);
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) tc_mma(acc[i][j], af[i], bf[j], T());
            }
        }
        cp_async_wait<0>();
        __syncthreads(); // the last stage is read before the next batch's prologue

        // Element r of acc[i][j]: row g + 8 (r / 2), column 2t + r % 2 of the 16x8 tile.
        // Split s's partial, or the result.
        const uint64_t out0 = ((uint64_t)split * batch + bt) * m * n;
        const int g = lane / 4, t = lane % 4;
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j)
#pragma unroll
                for (int r = 0; r < 4; ++r) {
                    uint32_t gm = row0 + wm + 16 * i + g + 8 * (r / 2);
                    uint32_t gn = col0 + wn + 8 * j + 2 * t + r % 2;
                    if (gm >= m || gn >= n) continue;
                    if (splits > 1) part[out0 + (uint64_t)gm * n + gn] = acc[i][j][r];
                    else c[out0 + (uint64_t)gm * n + gn] = gemm_epilogue(acc[i][j][r], bias, gn, act);
                }
    }
#else
    // Without mma.sync (compute capability < 8.0) the host launches the tiled `gemm_*`
    // kernels instead; nothing to do here.
#endif
}

extern "C" __global__ void __launch_bounds__(256) gemm_tc_f16(const f16 *a, const f16 *b, f16 *c, float *part, const f16 *bias, uint32_t splits, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, part, bias, splits, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_tc_bf16(const bf16 *a, const bf16 *b, bf16 *c, float *part, const bf16 *bias, uint32_t splits, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, part, bias, splits, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }
extern "C" __global__ void __launch_bounds__(256) gemm_tc_tf32(const float *a, const float *b, float *c, float *part, const float *bias, uint32_t splits, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_tc_impl(a, b, c, part, bias, splits, act, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }

// ---- Large f32 products (SIMT, exact f32 FMA): `gemm_big_f32`.
//
// A block of 8 warps computes a 128x128 tile of C; warp w a 64x32 warp tile (2 x 4
// warps), lane l an 8x8 sub-tile split as 2 x 2 blocks of 4x4 (rows wm + 32i + 4(l/4)..,
// columns wn + 16j + 4(l%4)..), so that each k step reads A as two float4s per lane
// from 8 consecutive float4s (128 bytes: one conflict-free access, broadcast over the
// 4 lanes that share them) and B as two float4s from 4. Shared memory holds both
// operands k-major (as[k][m], bs[k][n]) in two stages of BIG_BK = 8 (double buffer):
// while the block multiplies one stage, the next slice is in flight into the other.
//
// Each thread fetches 4 elements of each operand's 128 x 8 slice per step, along the
// operand's unit-stride dimension when it has one:
//  - along m (A) / n (B), the tile's own contiguous dimension (A transposed, B
//    row-major): 16 bytes by cp.async straight into the stage when the operand is
//    16-byte aligned (zero-filled past the edges by cp.async's src-size);
//  - along k (A row-major, B transposed as in `x · Wᵀ`): one float4 global load into
//    registers, stored transposed (4 scalar stores, conflict-free thanks to the
//    +4 padding) after the current stage's FMAs, so the load's latency hides behind them;
//  - otherwise (strided or misaligned views) 4 scalar loads, staged the same way.
// Edges are zero-filled, so the FMA loop needs no masking. k may be split (split-K,
// see `BigEpilogue`): blocks of grid z beyond the batch take later k ranges.
#define BIG_BM 128
#define BIG_BN 128
#define BIG_BK 8
#define BIG_LD (BIG_BM + 4) // floats per k row of a stage: 16-byte aligned, see above
#define BIG_STAGE (BIG_BK * BIG_LD)
#define BIG_SHARED_BYTES (2 * 2 * BIG_STAGE * 4) // 2 operands x 2 stages, dynamic

// This thread's place in an operand's slice: its 4 elements start at row i (along m or
// n) and k offset kk, and run along m/n (`along_mn`) or along k. Recomputed from
// threadIdx where needed rather than kept in registers.
struct BigPos {
    int i, kk;
};
__device__ __forceinline__ BigPos big_pos(bool along_mn) {
    const int t = threadIdx.x;
    return along_mn ? BigPos{t % 32 * 4, t / 32} : BigPos{t / 2, t % 2 * 4};
}

// One operand's slice fetch for this thread: its 4 elements of the slice at k0 start at
// p + k0 * s_k, `stride` apart.
struct BigOperand {
    const float *p;
    int64_t s_k, stride;
    uint32_t mn_end; // rows along m/n left in the operand from the tile's first
    bool along_mn;   // the 4 elements run along m/n (else along k)
    bool vec;        // ... and are one aligned 16-byte access
};

// The operand whose element (i, kk) is src[i * s_mn + kk * s_k] (i along m or n; rows
// i >= mn_end are zero); s_b: its batch stride.
__device__ __forceinline__ BigOperand big_operand(const float *src, int64_t s_b, int64_t s_mn,
                                                  int64_t s_k, uint32_t mn_end) {
    BigOperand o;
    o.along_mn = s_mn == 1 || s_k != 1;
    o.stride = o.along_mn ? s_mn : s_k;
    const int64_t other = o.along_mn ? s_k : s_mn;
    o.vec = o.stride == 1 && other % 4 == 0 && s_b % 4 == 0 && (uintptr_t)src % 16 == 0;
    const BigPos at = big_pos(o.along_mn);
    o.p = src + at.i * s_mn + at.kk * s_k;
    o.s_k = s_k, o.mn_end = mn_end;
    return o;
}

// Fetches the operand's slice at k0 (k < k_end valid): by cp.async into `stage`, or into
// `v` for `big_store`. `base`, in bounds and aligned as cp.async requires, stands in
// as the source of chunks that read nothing.
__device__ __forceinline__ void big_fetch(const BigOperand &o, const float *base, float *stage,
                                          float (&v)[4], uint32_t k0, uint32_t k_end) {
    const BigPos at = big_pos(o.along_mn);
    const uint32_t gk = k0 + at.kk;
    const bool inside = (uint32_t)at.i < o.mn_end && gk < k_end;
    const uint32_t avail = !inside ? 0u : min(4u, o.along_mn ? o.mn_end - at.i : k_end - gk);
    const float *from = o.p + (int64_t)k0 * o.s_k;
    if (o.along_mn && o.vec) {
        cp_async_16(stage + at.kk * BIG_LD + at.i, avail ? from : base, avail * 4);
        return;
    }
    if (o.vec && avail == 4) {
        const float4 x = *reinterpret_cast<const float4 *>(from);
        v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w;
        return;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = (uint32_t)e < avail ? from[e * o.stride] : 0.0f;
}

// Stores what `big_fetch` staged in registers.
__device__ __forceinline__ void big_store(const BigOperand &o, float *stage, const float (&v)[4]) {
    const BigPos at = big_pos(o.along_mn);
    float *dst = stage + at.kk * BIG_LD + at.i;
    if (o.along_mn) {
        if (!o.vec) *reinterpret_cast<float4 *>(dst) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
#pragma unroll
        for (int e = 0; e < 4; ++e) dst[e * BIG_LD] = v[e];
    }
}

// The 8 k steps of one stage on this thread's 8x8 sub-tile.
__device__ __forceinline__ void big_fma(float (&acc)[8][8], const float *as, const float *bs,
                                        int am, int bn) {
#pragma unroll
    for (int kk = 0; kk < BIG_BK; ++kk) {
        const float *ar = as + kk * BIG_LD + am, *br = bs + kk * BIG_LD + bn;
        const float4 a0 = *reinterpret_cast<const float4 *>(ar);
        const float4 a1 = *reinterpret_cast<const float4 *>(ar + 32);
        const float4 b0 = *reinterpret_cast<const float4 *>(br);
        const float4 b1 = *reinterpret_cast<const float4 *>(br + 16);
        const float af[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bf[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(af[i], bf[j], acc[i][j]);
    }
}

// What happens to the product on its way out: `gemm_epilogue` (bias, activation — for
// f32 the bias and ReLU are bit-identical to the separate ops). With split-K
// (`splits` > 1) the GEMM instead writes split s's partial product to
// part[s][batch][m][n] (a workspace) and `gemm_splitk_reduce_*` sums the partials in
// split order — deterministic, no atomics — and applies the epilogue.
struct BigEpilogue {
    float *part;
    const float *bias;
    uint32_t splits;
    uint32_t act; // ActCode
};

// Writes columns col.. col + 3 of a row of C (n columns, 16-byte aligned when n % 4 == 0),
// through the epilogue: one 16-byte store when they are all inside and aligned.
__device__ __forceinline__ void big_store_row4(float *row, uint32_t col, uint32_t n,
                                               float (&x)[4], const float *bias, uint32_t act) {
#pragma unroll
    for (int e = 0; e < 4; ++e)
        if (col + e < n) x[e] = gemm_epilogue(x[e], bias, col + e, act);
    if (col + 4 <= n && n % 4 == 0) {
        *reinterpret_cast<float4 *>(row + col) = make_float4(x[0], x[1], x[2], x[3]);
        return;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
        if (col + e < n) row[col + e] = x[e];
}

__device__ __forceinline__ void gemm_big_f32_impl(const float *a, const float *b, float *c,
                                                  BigEpilogue ep, uint32_t m, uint32_t n,
                                                  uint32_t k, uint32_t batch, int64_t a_b,
                                                  int64_t a_m, int64_t a_k, int64_t b_b,
                                                  int64_t b_k, int64_t b_n) {
    // Dynamic (BIG_SHARED_BYTES from the host): the emulator poisons and bounds-checks it.
    // (uint4 like gemm_tc_impl's: one declaration of `smem` per module.)
    KILN_DYNAMIC_SHARED(uint4, smem);
    float *const sf = reinterpret_cast<float *>(smem);
    // Stage s of A at sf + s * BIG_STAGE, of B at sf + (2 + s) * BIG_STAGE.
    auto as = [&](int s) { return sf + s * BIG_STAGE; };
    auto bs = [&](int s) { return sf + (2 + s) * BIG_STAGE; };
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int am = warp / 4 * 64 + lane / 4 * 4, bn = warp % 4 * 32 + lane % 4 * 4;
    const uint32_t row0 = blockIdx.y * BIG_BM, col0 = blockIdx.x * BIG_BN;
    // Split s takes k slices [s * per, (s + 1) * per).
    const uint32_t per = ((k + BIG_BK - 1) / BIG_BK + ep.splits - 1) / ep.splits;

    for (uint32_t z = blockIdx.z; z < batch * ep.splits; z += gridDim.z) {
        const uint32_t bt = z % batch, split = z / batch;
        const uint32_t k_begin = min(k, split * per * BIG_BK);
        const uint32_t k_end = min(k, k_begin + per * BIG_BK);
        const uint32_t ktiles = (k_end - k_begin + BIG_BK - 1) / BIG_BK;
        const BigOperand oa = big_operand(a + (int64_t)bt * a_b + (int64_t)row0 * a_m, a_b, a_m,
                                          a_k, m - row0);
        const BigOperand ob = big_operand(b + (int64_t)bt * b_b + (int64_t)col0 * b_n, b_b, b_n,
                                          b_k, n - col0);
        float acc[8][8];
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.0f;

        float va[4], vb[4];
        if (ktiles > 0) {
            big_fetch(oa, a, as(0), va, k_begin, k_end);
            big_fetch(ob, b, bs(0), vb, k_begin, k_end);
            big_store(oa, as(0), va);
            big_store(ob, bs(0), vb);
            cp_async_commit();
            cp_async_wait<0>();
            __syncthreads();
        }
        for (uint32_t kt = 0; kt < ktiles; ++kt) {
            const int cur = kt % 2, nxt = cur ^ 1;
            const bool more = kt + 1 < ktiles;
            // The other stage was last read before the previous step's barrier.
            if (more) {
                const uint32_t k0 = k_begin + (kt + 1) * BIG_BK;
                big_fetch(oa, a, as(nxt), va, k0, k_end);
                big_fetch(ob, b, bs(nxt), vb, k0, k_end);
                cp_async_commit();
            }
            big_fma(acc, as(cur), bs(cur), am, bn);
            if (more) {
                big_store(oa, as(nxt), va);
                big_store(ob, bs(nxt), vb);
                cp_async_wait<0>();
            }
            __syncthreads(); // the next stage is complete; this one is free again
        }

        // Split s's partial (no epilogue), or the result.
        const bool direct = ep.splits == 1;
        float *cb = direct ? c + (uint64_t)bt * m * n : ep.part + ((uint64_t)split * batch + bt) * m * n;
#pragma unroll
        for (int i = 0; i < 8; ++i) {
            const uint32_t gm = row0 + am + i / 4 * 32 + i % 4;
            if (gm >= m) continue;
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                float x[4] = {acc[i][4 * j], acc[i][4 * j + 1], acc[i][4 * j + 2],
                              acc[i][4 * j + 3]};
                big_store_row4(cb + (uint64_t)gm * n, col0 + bn + 16 * j, n, x,
                               direct ? ep.bias : nullptr, direct ? ep.act : (uint32_t)ACT_NONE);
            }
        }
    }
}

// ptxas: 175 (sm_80) / 163 (sm_90) registers, no spills, so one block (8 warps) per
// multiprocessor; __launch_bounds__(256, 2) (128 registers) spills on both.
extern "C" __global__ void __launch_bounds__(256) gemm_big_f32(const float *a, const float *b, float *c, float *part, const float *bias, uint32_t splits, uint32_t act, uint32_t m, uint32_t n, uint32_t k, uint32_t batch, int64_t a_b, int64_t a_m, int64_t a_k, int64_t b_b, int64_t b_k, int64_t b_n) { gemm_big_f32_impl(a, b, c, BigEpilogue{part, bias, splits, act}, m, n, k, batch, a_b, a_m, a_k, b_b, b_k, b_n); }

// out[i] = epilogue(sum over s of part[s][i]) for the `total` = batch·m·n elements of a
// split-K product (f32 partials of any kernel), the splits summed in order 0, 1, …
// (the same bits every run).
template <typename T>
__device__ __forceinline__ void gemm_splitk_reduce(const float *part, T *out, const T *bias,
                                                   uint64_t total, uint32_t n, uint32_t splits,
                                                   uint32_t act) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (uint64_t)gridDim.x * blockDim.x) {
        float x = part[i];
        for (uint32_t s = 1; s < splits; ++s) x += part[s * total + i];
        out[i] = gemm_epilogue(x, bias, (uint32_t)(i % n), act);
    }
}

extern "C" __global__ void gemm_splitk_reduce_f32(const float *part, float *out, const float *bias, uint64_t total, uint32_t n, uint32_t splits, uint32_t act) { gemm_splitk_reduce(part, out, bias, total, n, splits, act); }
extern "C" __global__ void gemm_splitk_reduce_f16(const float *part, f16 *out, const f16 *bias, uint64_t total, uint32_t n, uint32_t splits, uint32_t act) { gemm_splitk_reduce(part, out, bias, total, n, splits, act); }
extern "C" __global__ void gemm_splitk_reduce_bf16(const float *part, bf16 *out, const bf16 *bias, uint64_t total, uint32_t n, uint32_t splits, uint32_t act) { gemm_splitk_reduce(part, out, bias, total, n, splits, act); }
