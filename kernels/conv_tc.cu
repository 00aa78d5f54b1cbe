// Convolution (1-, 2- and 3-d) on tensor cores: the implicit GEMMs of conv.cuh (forward, input
// gradient, weight gradient per batch chunk) with mma.sync and f32 accumulation —
// m16n8k16 for f16/bf16, m16n8k8 for f32 as TF32 (inputs rounded to nearest with
// `f32_to_tf32`, as cuDNN does with `allow_tf32`). The host launches these for halves
// and for f32 when `kiln::cuda::conv_allow_tf32()` holds, on compute capability >= 8.0;
// the exact SIMT kernels of conv.cu serve the rest.
//
// A block of 8 warps computes a tile of BM x 128 of C (BM = 128, or 64 when the GEMM
// has no more rows: layers with <= 64 output channels; the host chooses, `tile_m`).
// The warps are 2 x 4, each a (BM/2) x 32 tile of (BM/32) x 4 mma tiles of 16 x 8.
// K advances by one 64-byte slice per step (32 halves or 16 floats), so every type
// shares the shared-memory layout: per stage, A as BM rows and B as 128 rows (one per
// column of C) of 64 bytes, K contiguous — B transposed to the layout of A, so both
// operands' fragments come from plain ldmatrix.x4 (for tf32 an 8x8 b16 matrix is 8x4
// f32, exactly the A and the B fragment of m16n8k8).
//
// The operands are gathered: each element comes through the problem's `a(m, krow)` /
// `b(krow, col)`, zeros for padding, taps that do not land, and rows, columns or K
// past the edge (so the mma loop needs no masking, and a slice that straddles the end
// of K reads zeros). Thread t owns row t % ROWS of each tile and a
// run of consecutive K within it: consecutive threads take consecutive columns of B
// (the large, gathered operand: consecutive output / input positions, coalesced), and
// each thread's column context (`col(n)`, with its divisions) is made once per tile.
// The slice's K contexts (`krow(k)`) are made by the first BK threads into a shared
// table one slice ahead. Register-staged double buffering: the gather of slice k+1
// into registers (already converted to the MMA input type and packed in 32-bit words)
// is issued before the mma of slice k, and stored as 16-byte chunks after it, so the
// global loads' latency hides behind the tensor-core work; one barrier per slice.
// The forward's A (the weights: rows contiguous along K) is copied by cp.async
// instead, straight into the next stage, when K is a multiple of 16 bytes.
//
// Channels-last forward (`conv_tc_fwd_nhwc_*`, ConvForwardNhwc): when the channels
// of a group are a multiple of a 16-byte chunk, the host converts x to N(D)HWC and W
// to (co, kz, ky, kx, ci), so that with K ordered (kz, ky, kx, ci) each chunk of B is consecutive
// channels of one input pixel: B too is copied by cp.async (`P::B_CHUNKS`), whole
// chunks, zero-filled (src_bytes 0) for padding taps, the end of K and columns past
// N. Both operands then go global -> shared with no register staging, the copies of
// slice k+1 in flight during the mma of slice k. The output stays NC(D)HW.
//
// Channels-last input gradient (`conv_tc_bwd_input_nhwc_*`, ConvBackwardInputNhwc):
// when the output channels of a group are a multiple of a chunk, the host converts gy
// to N(D)HWC; with each phase's K ordered (phase taps, co), each chunk of B
// is consecutive channels of one gy pixel, copied by cp.async (zero-filled for taps
// off the output). A (W read transposed, only the phase's taps) stays gathered; gx is
// stored NC(D)HW.
//
// Shared memory is XOR-swizzled per 16-byte chunk (chunk c of row r sits in column
// c ^ (r/2 % 4) of its 128-byte line): the 8 rows of each ldmatrix and the 8 chunk
// stores of each quarter warp hit 8 distinct bank groups, without padding.
#include "conv.cuh"
#include "mma.cuh"

#define CTC_BN 128           // columns of a block tile
#define CTC_SLICE_BYTES 64   // bytes of K per slice and per tile row
#define CTC_THREADS 256
#define CTC_CPR (CTC_SLICE_BYTES / 16) // 16-byte chunks per tile row (tc_swizzle)

// The raw bits of a half (the emulator's halves are plain structs).
#if defined(KILN_HOST_EMU)
__device__ __forceinline__ uint32_t ctc_raw(f16 h) { return h.__x; }
__device__ __forceinline__ uint32_t ctc_raw(bf16 h) { return h.__x; }
#else
__device__ __forceinline__ uint32_t ctc_raw(f16 h) { return __half_as_ushort(h); }
// Through the raw struct: CUDA 12.0's __bfloat16_as_ushort exists only for sm_80+, and
// the compute_70 PTX compiles this file too.
__device__ __forceinline__ uint32_t ctc_raw(bf16 h) { return static_cast<__nv_bfloat16_raw>(h).x; }
#endif

// The MMA input type `T`: how many values a 32-bit register holds, and the bits of a
// gathered value (the problems widen to f32; narrowing a widened half back is exact).
template <typename T> struct CtcIn;
template <> struct CtcIn<f16> {
    static const int PER_WORD = 2;
    __device__ __forceinline__ static uint32_t bits(float v) { return ctc_raw(narrow<f16>(v)); }
};
template <> struct CtcIn<bf16> {
    static const int PER_WORD = 2;
    __device__ __forceinline__ static uint32_t bits(float v) { return ctc_raw(narrow<bf16>(v)); }
};
template <> struct CtcIn<float> {
    static const int PER_WORD = 1;
    __device__ __forceinline__ static uint32_t bits(float v) { return f32_to_tf32(v); }
};

// One operand tile of ROWS rows: thread t gathers row t % ROWS, K [k0, k0 + RUN) of the
// slice, into WORDS registers, and stores them as RUN / EPC chunks.
template <typename T, int ROWS> struct CtcOperand {
    static const int EPC = 16 / sizeof(T);
    static const int BK = CTC_SLICE_BYTES / sizeof(T);
    static const int RUN = BK * ROWS / CTC_THREADS;
    static const int WORDS = RUN / CtcIn<T>::PER_WORD;
    static_assert(RUN % EPC == 0, "every thread stores whole chunks");
    uint32_t word[WORDS];
    int row, k0;

    __device__ __forceinline__ CtcOperand() : row(threadIdx.x % ROWS), k0(threadIdx.x / ROWS * RUN) {}

    // Element (row, k0 + i) of the slice is `value(k0 + i)`.
    template <typename F> __device__ __forceinline__ void gather(F value) {
        const int PW = CtcIn<T>::PER_WORD;
#pragma unroll
        for (int w = 0; w < WORDS; ++w) {
            uint32_t bits = 0;
#pragma unroll
            for (int e = 0; e < PW; ++e) bits |= CtcIn<T>::bits(value(k0 + w * PW + e)) << (16 * e);
            word[w] = bits;
        }
    }

    // The same elements copied by cp.async straight into `tile`: the chunk at slice
    // index kk from `src(kk)` (16-byte aligned), or zeros where that is null; `any` is a
    // valid, aligned address for the zero fills.
    template <typename F> __device__ __forceinline__ void copy(T *tile, const T *any, F src) const {
#pragma unroll
        for (int c = 0; c < RUN / EPC; ++c) {
            const T *from = src(k0 + c * EPC);
            cp_async_16(tile + tc_swizzle<CTC_CPR, EPC>(row, k0 / EPC + c), from ? from : any,
                        from ? 16 : 0);
        }
    }

    __device__ __forceinline__ void store(T *tile) const {
#pragma unroll
        for (int c = 0; c < RUN / EPC; ++c) {
            uint4 v;
            v.x = word[4 * c], v.y = word[4 * c + 1], v.z = word[4 * c + 2], v.w = word[4 * c + 3];
            *reinterpret_cast<uint4 *>(tile + tc_swizzle<CTC_CPR, EPC>(row, k0 / EPC + c)) = v;
        }
    }
};

// C = A·B of problem `p` (see conv.cuh) for the BM x 128 tile at (row0, col0), in the
// MMA input type `T`. Dynamic shared memory: 2 stages of (BM + 128) rows x 64 bytes.
template <typename P, typename T, int BM>
__device__ __forceinline__ void implicit_gemm_tc(const P &p, int m_len, int n_len, int k_len,
                                                 int row0, int col0) {
#if __CUDA_ARCH__ >= 800
    const int EPC = 16 / sizeof(T), BK = CTC_SLICE_BYTES / sizeof(T), MMA_K = 32 / sizeof(T);
    const int MI = BM / 32; // mma tiles of 16 rows per warp
    KILN_DYNAMIC_SHARED(uint4, smem);
    T *as = reinterpret_cast<T *>(smem); // [2][BM * BK]
    T *bs = as + 2 * BM * BK;            // [2][CTC_BN * BK]
    KILN_SHARED(typename P::KRow, krows, [2][BK]);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int wm = warp / 4 * (BM / 2), wn = warp % 4 * 32; // the warp's tile in the block's

    CtcOperand<T, BM> a;
    CtcOperand<T, CTC_BN> b;
    const int am = row0 + a.row, bn = col0 + b.row;
    const bool a_ok = am < m_len, b_ok = bn < n_len;
    const typename P::Col ctx = p.col(b_ok ? bn : 0);
    // A's rows are copied by cp.async when the problem has them (the forward's weights),
    // K is a multiple of a chunk and the rows start 16-byte aligned; else gathered.
    const T *a_src = nullptr, *a_any = nullptr;
    bool a_copy = false;
    if constexpr (P::A_ROWS) {
        a_any = p.a_row(row0);
        a_src = a_ok ? p.a_row(am) : a_any;
        a_copy = k_len % EPC == 0 && (uintptr_t)a_any % 16 == 0;
    }
    // B's chunks are copied by cp.async when the problem supplies them (the channels-last
    // problems: K and every chunk's source 16-byte aligned, by the host's choice); else
    // gathered.
    const T *b_any = nullptr;
    if constexpr (P::B_CHUNKS) b_any = p.b_any();
    // Slice `k0`'s operands: each into stage `buf` (cp.async) or the registers, K
    // contexts from krows[buf]. A chunk at or past the end of K (at a chunk boundary
    // when copied) is zeros.
    auto gather = [&](int k0, int buf) {
        if (a_copy) {
            a.copy(as + buf * BM * BK, a_any, [&](int kk) -> const T * {
                return a_ok && k0 + kk < k_len ? a_src + k0 + kk : nullptr;
            });
        } else {
            a.gather([&](int kk) {
                return a_ok && k0 + kk < k_len ? p.a(am, krows[buf][kk]) : 0.0f;
            });
        }
        if constexpr (P::B_CHUNKS) {
            b.copy(bs + buf * CTC_BN * BK, b_any, [&](int kk) -> const T * {
                return b_ok && k0 + kk < k_len ? p.b_chunk(krows[buf][kk], ctx) : nullptr;
            });
        } else {
            b.gather([&](int kk) {
                return b_ok && k0 + kk < k_len ? p.b(krows[buf][kk], ctx) : 0.0f;
            });
        }
        cp_async_commit(); // an empty group when nothing was copied
    };

    float acc[MI][4][4];
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) acc[i][j][r] = 0.0f;

    // The barrier also keeps this tile's first stores from overtaking another warp's
    // last mma of the previous tile (the group loop).
    if ((int)threadIdx.x < BK && (int)threadIdx.x < k_len) krows[0][threadIdx.x] = p.krow(threadIdx.x);
    __syncthreads();
    gather(0, 0);
    for (int k0 = 0, buf = 0; k0 < k_len; k0 += BK, buf ^= 1) {
        if (!a_copy) a.store(as + buf * BM * BK);
        if constexpr (!P::B_CHUNKS) b.store(bs + buf * CTC_BN * BK);
        // The next slice's table, into the buffer whose last reader (the gather of this
        // slice) is behind this thread already and behind every thread after the barrier.
        const int k_next = k0 + BK;
        if ((int)threadIdx.x < BK && k_next + (int)threadIdx.x < k_len) {
            krows[buf ^ 1][threadIdx.x] = p.krow(k_next + threadIdx.x);
        }
        cp_async_wait<0>(); // this thread's copies into the stage landed (if any)
        __syncthreads();    // the stage is complete; the other stage's readers are done
        if (k_next < k_len) gather(k_next, buf ^ 1);

        const T *ast = as + buf * BM * BK, *bst = bs + buf * CTC_BN * BK;
#pragma unroll
        for (int ks = 0; ks < BK / MMA_K; ++ks) {
            // A: lane l gives row l % 16, chunk l / 16 of the step's two chunks —
            // matrices (rows 0-7 | 8-15) x (first | second chunk) = a0..a3. B: lane l
            // gives column row 8 (l / 16) + l % 8, chunk (l / 8) % 2 — matrices
            // (n 0-7 | 8-15) x (first | second chunk) = b0, b1 of two n8 tiles.
            uint32_t af[MI][4], bf[4][2];
#pragma unroll
            for (int i = 0; i < MI; ++i) {
                ldmatrix_x4(af[i], ast + tc_swizzle<CTC_CPR, EPC>(wm + 16 * i + lane % 16, 2 * ks + lane / 16));
                tc_round(af[i], T());
            }
#pragma unroll
            for (int j = 0; j < 2; ++j) {
                uint32_t r[4];
                ldmatrix_x4(r, bst + tc_swizzle<CTC_CPR, EPC>(wn + 16 * j + 8 * (lane / 16) + lane % 8,
                                                      2 * ks + (lane / 8) % 2));
                bf[2 * j][0] = r[0], bf[2 * j][1] = r[1];
                bf[2 * j + 1][0] = r[2], bf[2 * j + 1][1] = r[3];
            }
#pragma unroll
            for (int i = 0; i < MI; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) tc_mma(acc[i][j], af[i], bf[j], T());
        }
    }

    // Element r of acc[i][j]: row g + 8 (r / 2), column 2t + r % 2 of the 16x8 tile.
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int r = 0; r < 4; ++r) {
                int gm = row0 + wm + 16 * i + g + 8 * (r / 2);
                int gn = col0 + wn + 8 * j + 2 * t + r % 2;
                if (gm < m_len && gn < n_len) p.store(gm, gn, acc[i][j][r]);
            }
#else
    // Without mma.sync (compute capability < 8.0) the host launches conv.cu's SIMT
    // kernels instead; nothing to do here.
#endif
}

// The tensor-core GEMM as conv.cuh's `Gemm`: BM x 128 tiles, BM = `tile_m` (64 or 128)
// chosen per launch by the host (src/backend/cuda/ops/conv_gemm.rs), which also sizes the
// dynamic shared memory to match.
template <typename T> struct TcGemm {
    int tile_m;
    template <typename P>
    __device__ __forceinline__ void operator()(const P &p, int m_len, int n_len, int k_len) const {
        if (tile_m == 64) {
            implicit_gemm_tc<P, T, 64>(p, m_len, n_len, k_len, blockIdx.y * 64, blockIdx.x * CTC_BN);
        } else {
            implicit_gemm_tc<P, T, 128>(p, m_len, n_len, k_len, blockIdx.y * 128, blockIdx.x * CTC_BN);
        }
    }
};

// Grids as in conv.cuh's drivers, with tiles of tile_m x 128.
extern "C" __global__ void __launch_bounds__(256) conv_tc_fwd_tf32(const float *x, const float *w, const float *bias, float *y, Dims ga, Dims gb, Dims gc, int tile_m) { conv_forward_run(TcGemm<float>{tile_m}, x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_fwd_f16(const f16 *x, const f16 *w, const f16 *bias, f16 *y, Dims ga, Dims gb, Dims gc, int tile_m) { conv_forward_run(TcGemm<f16>{tile_m}, x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_fwd_bf16(const bf16 *x, const bf16 *w, const bf16 *bias, bf16 *y, Dims ga, Dims gb, Dims gc, int tile_m) { conv_forward_run(TcGemm<bf16>{tile_m}, x, w, bias, y, ga, gb, gc); }

// Channels-last forward (ConvForwardNhwc): x as N(D)HWC, w as (co, kd, kh, kw,
// ci/groups); bias and y as above.
extern "C" __global__ void __launch_bounds__(256) conv_tc_fwd_nhwc_tf32(const float *x, const float *w, const float *bias, float *y, Dims ga, Dims gb, Dims gc, int tile_m) { conv_forward_run<ConvForwardNhwc>(TcGemm<float>{tile_m}, x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_fwd_nhwc_f16(const f16 *x, const f16 *w, const f16 *bias, f16 *y, Dims ga, Dims gb, Dims gc, int tile_m) { conv_forward_run<ConvForwardNhwc>(TcGemm<f16>{tile_m}, x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_fwd_nhwc_bf16(const bf16 *x, const bf16 *w, const bf16 *bias, bf16 *y, Dims ga, Dims gb, Dims gc, int tile_m) { conv_forward_run<ConvForwardNhwc>(TcGemm<bf16>{tile_m}, x, w, bias, y, ga, gb, gc); }

extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_input_tf32(const float *gy, const float *w, const float *bias, float *gx, Dims ga, Dims gb, Dims gc, int tile_m) { conv_backward_input_run(TcGemm<float>{tile_m}, gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_input_f16(const f16 *gy, const f16 *w, const f16 *bias, f16 *gx, Dims ga, Dims gb, Dims gc, int tile_m) { conv_backward_input_run(TcGemm<f16>{tile_m}, gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_input_bf16(const bf16 *gy, const bf16 *w, const bf16 *bias, bf16 *gx, Dims ga, Dims gb, Dims gc, int tile_m) { conv_backward_input_run(TcGemm<bf16>{tile_m}, gy, w, bias, gx, ga, gb, gc); }

// Channels-last input gradient (ConvBackwardInputNhwc): gy as N(D)HWC; w, bias and gx
// as above.
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_input_nhwc_tf32(const float *gy, const float *w, const float *bias, float *gx, Dims ga, Dims gb, Dims gc, int tile_m) { conv_backward_input_run<ConvBackwardInputNhwc>(TcGemm<float>{tile_m}, gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_input_nhwc_f16(const f16 *gy, const f16 *w, const f16 *bias, f16 *gx, Dims ga, Dims gb, Dims gc, int tile_m) { conv_backward_input_run<ConvBackwardInputNhwc>(TcGemm<f16>{tile_m}, gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_input_nhwc_bf16(const bf16 *gy, const bf16 *w, const bf16 *bias, bf16 *gx, Dims ga, Dims gb, Dims gc, int tile_m) { conv_backward_input_run<ConvBackwardInputNhwc>(TcGemm<bf16>{tile_m}, gy, w, bias, gx, ga, gb, gc); }

extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_weight_tf32(const float *x, const float *gy, float *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks, int tile_m) { conv_backward_weight_run(TcGemm<float>{tile_m}, x, gy, partial, ga, gb, gc, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_weight_f16(const f16 *x, const f16 *gy, float *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks, int tile_m) { conv_backward_weight_run(TcGemm<f16>{tile_m}, x, gy, partial, ga, gb, gc, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv_tc_bwd_weight_bf16(const bf16 *x, const bf16 *gy, float *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks, int tile_m) { conv_backward_weight_run(TcGemm<bf16>{tile_m}, x, gy, partial, ga, gb, gc, per_chunk, chunks); }
