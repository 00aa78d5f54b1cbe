// Convolution (NC(D)HW, contiguous), exact kernels: the implicit GEMMs of conv.cuh on
// CUDA cores, and direct kernels for depthwise convolutions. The SIMT GEMMs serve f64,
// f32 when TF32 is not allowed, and every dtype on GPUs below compute capability 8.0;
// conv_tc.cu has the tensor-core ones.
//
// f16/bf16 widen to f32 on load and accumulate in f32, like the CPU backend. Exact
// arithmetic: plain FMAs, no TF32.
#include "conv.cuh"

#define CONV_BM 64
#define CONV_BN 64
#define CONV_BK 16
#define CONV_THREADS 256

// ---- The tiled implicit GEMM shared by the three problems ----
//
// A block of 256 threads computes a 64x64 tile of C = A·B (rows row0.., columns
// col0..), each thread a 4x4 micro-tile in registers (rows ty+16i, columns tx+16j:
// conflict-free shared-memory reads), stepping through K in slices of 16. A is loaded
// with K fastest (every problem's A is contiguous, or nearly, along K) and B with the
// columns fastest (the gathered images are contiguous along output / input columns),
// so neighbouring threads read neighbouring addresses. No load divides: each thread
// loads B for one fixed column, whose decomposition (image, row, column) is done once
// per tile, and the decomposition of the slice's 16 K indices (channel and tap, or
// image and position) is done by 16 threads into a shared table, one slice ahead
// (double-buffered, so it needs no barrier of its own).
//
// `P` is one of the problems of conv.cuh.
template <typename P>
__device__ __forceinline__ void implicit_gemm(const P &p, int m_len, int n_len, int k_len,
                                              int row0, int col0) {
    typedef typename P::C C;
    // +4 keeps rows 16-byte aligned and spreads the transposed stores over banks.
    KILN_SHARED(C, as, [CONV_BK][CONV_BM + 4]);
    KILN_SHARED(C, bs, [CONV_BK][CONV_BN + 4]);
    KILN_SHARED(typename P::KRow, krows, [2][CONV_BK]);
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    // This thread's B column (fixed: CONV_THREADS is a multiple of CONV_BN).
    const int b_n = threadIdx.x % CONV_BN;
    const bool b_col_ok = col0 + b_n < n_len;
    const typename P::Col ctx = p.col(b_col_ok ? col0 + b_n : 0);

    C acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = (C)0;

    if ((int)threadIdx.x < CONV_BK && (int)threadIdx.x < k_len) {
        krows[0][threadIdx.x] = p.krow(threadIdx.x);
    }
    __syncthreads();
    for (int k0 = 0, buf = 0; k0 < k_len; k0 += CONV_BK, buf ^= 1) {
#pragma unroll
        for (int r = 0; r < (CONV_BM * CONV_BK) / CONV_THREADS; ++r) {
            int e = threadIdx.x + CONV_THREADS * r;
            int mm = e / CONV_BK, kk = e % CONV_BK;
            int gm = row0 + mm;
            as[kk][mm] = (gm < m_len && k0 + kk < k_len) ? p.a(gm, krows[buf][kk]) : (C)0;
        }
#pragma unroll
        for (int r = 0; r < (CONV_BN * CONV_BK) / CONV_THREADS; ++r) {
            int kk = (threadIdx.x + CONV_THREADS * r) / CONV_BN;
            bs[kk][b_n] = (b_col_ok && k0 + kk < k_len) ? p.b(krows[buf][kk], ctx) : (C)0;
        }
        __syncthreads();
        // The next slice's table, into the buffer that no thread reads in this slice.
        int k_next = k0 + CONV_BK + (int)threadIdx.x;
        if ((int)threadIdx.x < CONV_BK && k_next < k_len) {
            krows[buf ^ 1][threadIdx.x] = p.krow(k_next);
        }
        tile_fma_4x4(as, bs, acc, tx, ty);
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
        int gm = row0 + ty + 16 * i;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            int gn = col0 + tx + 16 * j;
            if (gm < m_len && gn < n_len) p.store(gm, gn, acc[i][j]);
        }
    }
}

// The SIMT GEMM as conv.cuh's `Gemm`: 64x64 tiles.
struct SimtGemm {
    template <typename P>
    __device__ __forceinline__ void operator()(const P &p, int m_len, int n_len, int k_len) const {
        implicit_gemm(p, m_len, n_len, k_len, blockIdx.y * CONV_BM, blockIdx.x * CONV_BN);
    }
};

// 64x64 tiles: grids as in conv.cuh's drivers.
// The forward's f32/f16/bf16 GEMMs ask for 2 blocks per SM (up to 128 registers):
// left to itself, ptxas for sm_80 fits the 3-d forward in 64 registers (4 blocks) and
// spills 24 bytes; with 3 blocks (80 registers) sm_80/90 hold it, but sm_70 spills 28
// bytes and sm_120 16 (the compute_80 PTX cannot tell sm_120 from sm_80). f64 needs
// its 120.
extern "C" __global__ void __launch_bounds__(256, 2) conv_fwd_f32(const float *x, const float *w, const float *bias, float *y, Dims ga, Dims gb, Dims gc) { conv_forward_run(SimtGemm(), x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_fwd_f64(const double *x, const double *w, const double *bias, double *y, Dims ga, Dims gb, Dims gc) { conv_forward_run(SimtGemm(), x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256, 2) conv_fwd_f16(const f16 *x, const f16 *w, const f16 *bias, f16 *y, Dims ga, Dims gb, Dims gc) { conv_forward_run(SimtGemm(), x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256, 2) conv_fwd_bf16(const bf16 *x, const bf16 *w, const bf16 *bias, bf16 *y, Dims ga, Dims gb, Dims gc) { conv_forward_run(SimtGemm(), x, w, bias, y, ga, gb, gc); }

extern "C" __global__ void __launch_bounds__(256) conv_bwd_input_f32(const float *gy, const float *w, const float *bias, float *gx, Dims ga, Dims gb, Dims gc) { conv_backward_input_run(SimtGemm(), gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_bwd_input_f64(const double *gy, const double *w, const double *bias, double *gx, Dims ga, Dims gb, Dims gc) { conv_backward_input_run(SimtGemm(), gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_bwd_input_f16(const f16 *gy, const f16 *w, const f16 *bias, f16 *gx, Dims ga, Dims gb, Dims gc) { conv_backward_input_run(SimtGemm(), gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_bwd_input_bf16(const bf16 *gy, const bf16 *w, const bf16 *bias, bf16 *gx, Dims ga, Dims gb, Dims gc) { conv_backward_input_run(SimtGemm(), gy, w, bias, gx, ga, gb, gc); }

extern "C" __global__ void __launch_bounds__(256) conv_bwd_weight_f32(const float *x, const float *gy, float *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks) { conv_backward_weight_run(SimtGemm(), x, gy, partial, ga, gb, gc, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv_bwd_weight_f64(const double *x, const double *gy, double *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks) { conv_backward_weight_run(SimtGemm(), x, gy, partial, ga, gb, gc, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv_bwd_weight_f16(const f16 *x, const f16 *gy, float *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks) { conv_backward_weight_run(SimtGemm(), x, gy, partial, ga, gb, gc, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv_bwd_weight_bf16(const bf16 *x, const bf16 *gy, float *partial, Dims ga, Dims gb, Dims gc, int per_chunk, int chunks) { conv_backward_weight_run(SimtGemm(), x, gy, partial, ga, gb, gc, per_chunk, chunks); }

// The weight gradient: the chunks' partial gradients added in chunk order (fixed, so
// the result does not depend on scheduling). One thread per weight, grid-stride:
// consecutive threads read consecutive partials, coalesced.
template <typename T>
__device__ __forceinline__ void wgrad_sum_impl(const typename ComputeOf<T>::type *partial, T *gw,
                                               uint64_t len, int chunks) {
    KILN_FOR_EACH(i, len) {
        typename ComputeOf<T>::type s = partial[i];
        for (int c = 1; c < chunks; ++c) s += partial[(uint64_t)c * len + i];
        gw[i] = narrow<T>(s);
    }
}

extern "C" __global__ void conv_wgrad_sum_f32(const float *partial, float *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }
extern "C" __global__ void conv_wgrad_sum_f64(const double *partial, double *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }
extern "C" __global__ void conv_wgrad_sum_f16(const float *partial, f16 *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }
extern "C" __global__ void conv_wgrad_sum_bf16(const float *partial, bf16 *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }

// ---- Depthwise (groups == c_in == c_out): each output reads one channel, so there is
// no GEMM to tile; direct kernels read X and G once per tap, from L1/L2. ----

// Forward: one thread per output (n, c, oz, oy, ox), grid-stride; consecutive threads
// take consecutive ox, so the reads of a tap are coalesced.
template <typename T>
__device__ __forceinline__ void dw_forward_impl(const T *x, const T *w, const T *bias, T *y,
                                                const Dims &ga, const Dims &gb, const Dims &gc) {
    typedef typename ComputeOf<T>::type C;
    const ConvGeom g = conv_geom(ga, gb, gc);
    const uint64_t total = (uint64_t)g.n * g.c_out * g.out_spatial();
    KILN_FOR_EACH(i, total) {
        uint64_t plane = i / g.out_spatial(); // image * channels + channel
        int oz, oy, ox;
        g.out_pos((int)(i - plane * g.out_spatial()), oz, oy, ox);
        int ch = (int)(plane % g.c_out);
        const T *xp = x + plane * g.spatial();
        const T *wp = w + (int64_t)ch * g.taps();
        C acc = bias ? widen(bias[ch]) : (C)0;
        for (int kz = 0; kz < g.kd; ++kz) {
            int iz = oz * g.stride_d - g.pad_front + kz * g.dil_d;
            if (iz < 0 || iz >= g.d) continue;
            for (int ky = 0; ky < g.kh; ++ky) {
                int iy = oy * g.stride_h - g.pad_top + ky * g.dil_h;
                if (iy < 0 || iy >= g.h) continue;
                for (int kx = 0; kx < g.kw; ++kx) {
                    int ix = ox * g.stride_w - g.pad_left + kx * g.dil_w;
                    if (ix < 0 || ix >= g.w) continue;
                    acc = fma(widen(wp[(kz * g.kh + ky) * g.kw + kx]),
                              widen(xp[g.offset(iz, iy, ix)]), acc);
                }
            }
        }
        y[i] = narrow<T>(acc);
    }
}

extern "C" __global__ void conv_dw_fwd_f32(const float *x, const float *w, const float *bias, float *y, Dims ga, Dims gb, Dims gc) { dw_forward_impl(x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void conv_dw_fwd_f64(const double *x, const double *w, const double *bias, double *y, Dims ga, Dims gb, Dims gc) { dw_forward_impl(x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void conv_dw_fwd_f16(const f16 *x, const f16 *w, const f16 *bias, f16 *y, Dims ga, Dims gb, Dims gc) { dw_forward_impl(x, w, bias, y, ga, gb, gc); }
extern "C" __global__ void conv_dw_fwd_bf16(const bf16 *x, const bf16 *w, const bf16 *bias, bf16 *y, Dims ga, Dims gb, Dims gc) { dw_forward_impl(x, w, bias, y, ga, gb, gc); }

// Input gradient: one thread per input element (n, c, iz, iy, ix), grid-stride,
// gathering the outputs that read it (taps that land), plus the channel's bias when
// given (the transposed convolution); no two threads write one element.
template <typename T>
__device__ __forceinline__ void dw_backward_input_impl(const T *gy, const T *w, const T *bias,
                                                       T *gx, const Dims &ga, const Dims &gb,
                                                       const Dims &gc) {
    typedef typename ComputeOf<T>::type C;
    const ConvGeom g = conv_geom(ga, gb, gc);
    const uint64_t total = (uint64_t)g.n * g.c_in * g.spatial();
    KILN_FOR_EACH(i, total) {
        uint64_t plane = i / g.spatial();
        int pos = (int)(i - plane * g.spatial());
        int ch = (int)(plane % g.c_in);
        int iz = pos / (g.h * g.w);
        pos -= iz * g.h * g.w;
        int iy = pos / g.w, ix = pos - iy * g.w;
        const T *gp = gy + plane * g.out_spatial();
        const T *wp = w + (int64_t)ch * g.taps();
        C acc = bias ? widen(bias[ch]) : (C)0;
        for (int kz = 0; kz < g.kd; ++kz) {
            int oz = landing(iz + g.pad_front - kz * g.dil_d, g.stride_d, g.out_d);
            if (oz < 0) continue;
            for (int ky = 0; ky < g.kh; ++ky) {
                int oy = landing(iy + g.pad_top - ky * g.dil_h, g.stride_h, g.out_h);
                if (oy < 0) continue;
                for (int kx = 0; kx < g.kw; ++kx) {
                    int ox = landing(ix + g.pad_left - kx * g.dil_w, g.stride_w, g.out_w);
                    if (ox < 0) continue;
                    acc = fma(widen(gp[(oz * g.out_h + oy) * g.out_w + ox]),
                              widen(wp[(kz * g.kh + ky) * g.kw + kx]), acc);
                }
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

extern "C" __global__ void conv_dw_bwd_input_f32(const float *gy, const float *w, const float *bias, float *gx, Dims ga, Dims gb, Dims gc) { dw_backward_input_impl(gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void conv_dw_bwd_input_f64(const double *gy, const double *w, const double *bias, double *gx, Dims ga, Dims gb, Dims gc) { dw_backward_input_impl(gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void conv_dw_bwd_input_f16(const f16 *gy, const f16 *w, const f16 *bias, f16 *gx, Dims ga, Dims gb, Dims gc) { dw_backward_input_impl(gy, w, bias, gx, ga, gb, gc); }
extern "C" __global__ void conv_dw_bwd_input_bf16(const bf16 *gy, const bf16 *w, const bf16 *bias, bf16 *gx, Dims ga, Dims gb, Dims gc) { dw_backward_input_impl(gy, w, bias, gx, ga, gb, gc); }

// Weight gradient: one block per weight (c, kz, ky, kx), grid-stride over weights; its
// 256 threads stride over the batch's output positions (n, oz, oy, ox), consecutive
// threads on consecutive positions (coalesced), then a fixed-shape tree in shared
// memory adds the 256 partial sums: deterministic, no atomics.
template <typename T>
__device__ __forceinline__ void dw_backward_weight_impl(const T *x, const T *gy, T *gw,
                                                        const Dims &ga, const Dims &gb,
                                                        const Dims &gc) {
    typedef typename ComputeOf<T>::type C;
    KILN_SHARED(C, red, [CONV_THREADS]);
    const ConvGeom g = conv_geom(ga, gb, gc);
    const int positions = g.n * g.out_spatial();
    for (int wi = blockIdx.x; wi < g.c_out * g.taps(); wi += gridDim.x) {
        int ch = wi / g.taps(), kz, ky, kx;
        g.tap_of(wi - ch * g.taps(), kz, ky, kx);
        C acc = (C)0;
        for (int j = threadIdx.x; j < positions; j += CONV_THREADS) {
            int img = j / g.out_spatial(), pos = j - img * g.out_spatial();
            int oz, oy, ox;
            g.out_pos(pos, oz, oy, ox);
            int iz = oz * g.stride_d - g.pad_front + kz * g.dil_d;
            int iy = oy * g.stride_h - g.pad_top + ky * g.dil_h;
            int ix = ox * g.stride_w - g.pad_left + kx * g.dil_w;
            if (!g.inside(iz, iy, ix)) continue;
            int64_t plane = (int64_t)img * g.c_in + ch;
            acc = fma(widen(gy[plane * g.out_spatial() + pos]),
                      widen(x[plane * g.spatial() + g.offset(iz, iy, ix)]), acc);
        }
        red[threadIdx.x] = acc;
        __syncthreads();
        for (int span = CONV_THREADS / 2; span > 0; span /= 2) {
            if ((int)threadIdx.x < span) red[threadIdx.x] += red[threadIdx.x + span];
            __syncthreads();
        }
        if (threadIdx.x == 0) gw[wi] = narrow<T>(red[0]);
        __syncthreads(); // red[0] is read before the next weight overwrites it
    }
}

extern "C" __global__ void __launch_bounds__(256) conv_dw_bwd_weight_f32(const float *x, const float *gy, float *gw, Dims ga, Dims gb, Dims gc) { dw_backward_weight_impl(x, gy, gw, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_dw_bwd_weight_f64(const double *x, const double *gy, double *gw, Dims ga, Dims gb, Dims gc) { dw_backward_weight_impl(x, gy, gw, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_dw_bwd_weight_f16(const f16 *x, const f16 *gy, f16 *gw, Dims ga, Dims gb, Dims gc) { dw_backward_weight_impl(x, gy, gw, ga, gb, gc); }
extern "C" __global__ void __launch_bounds__(256) conv_dw_bwd_weight_bf16(const bf16 *x, const bf16 *gy, bf16 *gw, Dims ga, Dims gb, Dims gc) { dw_backward_weight_impl(x, gy, gw, ga, gb, gc); }
