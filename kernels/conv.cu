// 2-D convolution (NCHW, contiguous): forward, input gradient, weight gradient, each an
// implicit GEMM per channel group, plus direct kernels for depthwise convolutions. The
// CPU reference is src/backend/cpu/conv.rs (im2col + GEMM); the math is the same, no
// im2col buffer is ever written: tiles of the unfolded operand are gathered straight
// into shared memory, with zeros where a tap reads padding or does not land.
//
// Geometry arrives as two `Dims` (see `conv_geom`), checked on the host so that every
// size, and every product used as a 32-bit tile index, fits an `int`; addresses are
// formed in 64 bits.
//
// The three GEMMs, per group g (cig = c_in/groups, cog = c_out/groups, P = out_h*out_w):
//   forward       y[n, co, p]        = sum_(ci,ky,kx) W[co, ci, ky, kx] · X[n, ci, iy, ix]
//                 M = cog, N = batch*P (positions across images), K = cig*kh*kw
//   input grad    gx[n, ci, iy, ix]  = sum_(co,ky,kx) W[co, ci, ky, kx] · G[n, co, oy, ox]
//                 M = cig, N = batch*h*w, K = cog*kh*kw, where oy = (iy + pad_top -
//                 ky*dil_h) / stride_h must divide exactly and be in range (same for x)
//   weight grad   gW[co, (ci,ky,kx)] = sum_(n,p) G[n, co, p] · X[n, ci, iy, ix]
//                 M = cog, N = cig*kh*kw, K = images of one batch chunk * P
// The weight gradient's reduction is split over chunks of the batch, each writing its
// own partial gradient (in the compute type); `conv2d_wgrad_sum_*` adds the chunks in
// order. No atomics anywhere, so every result is reproducible.
//
// f16/bf16 widen to f32 on load and accumulate in f32, like the CPU backend. Exact
// arithmetic: plain FMAs, no TF32.
#include "common.cuh"

#define CONV_BM 64
#define CONV_BN 64
#define CONV_BK 16
#define CONV_THREADS 256

// The convolution's sizes, unpacked from the two `Dims` the host passes:
// a = (n, c_in, h, w, c_out, kh, kw, groups),
// b = (stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w).
struct ConvGeom {
    int n, c_in, h, w, c_out, kh, kw, groups;
    int stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w;
    __device__ __forceinline__ int cig() const { return c_in / groups; }
    __device__ __forceinline__ int cog() const { return c_out / groups; }
    __device__ __forceinline__ int taps() const { return kh * kw; }
    __device__ __forceinline__ int plane() const { return h * w; }
    __device__ __forceinline__ int out_plane() const { return out_h * out_w; }
};

__device__ __forceinline__ ConvGeom conv_geom(const Dims &a, const Dims &b) {
    ConvGeom g;
    g.n = (int)a.d[0], g.c_in = (int)a.d[1], g.h = (int)a.d[2], g.w = (int)a.d[3];
    g.c_out = (int)a.d[4], g.kh = (int)a.d[5], g.kw = (int)a.d[6], g.groups = (int)a.d[7];
    g.stride_h = (int)b.d[0], g.stride_w = (int)b.d[1];
    g.pad_top = (int)b.d[2], g.pad_left = (int)b.d[3];
    g.dil_h = (int)b.d[4], g.dil_w = (int)b.d[5];
    g.out_h = (int)b.d[6], g.out_w = (int)b.d[7];
    return g;
}

// Output row (or column) fed by input row `t` (= iy + pad - ky*dil) through one tap, or
// -1 when the tap does not land on an output: t negative, not a multiple of the
// stride, or past the last output.
__device__ __forceinline__ int landing(int t, int stride, int out) {
    if (t < 0) return -1;
    if (stride == 1) return t < out ? t : -1; // the common case needs no division
    int o = t / stride;
    return (o * stride == t && o < out) ? o : -1;
}

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
// A problem `P` supplies its C type and: `krow(k)` (the K index's context, k < K),
// `a(m, krow)`, `col(n)` (the column's context, n < N), `b(krow, col)`, and
// `store(m, n, acc)`, each called in range only.
template <typename P>
__device__ __forceinline__ void implicit_gemm(const P &p, int m_len, int n_len, int k_len,
                                              int row0, int col0) {
    typedef typename P::C C;
    // +4 keeps rows 16-byte aligned and spreads the transposed stores over banks.
    __shared__ C as[CONV_BK][CONV_BM + 4];
    __shared__ C bs[CONV_BK][CONV_BN + 4];
    __shared__ typename P::KRow krows[2][CONV_BK];
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

// ---- Forward: A = W of the group (cog x K, contiguous), B = the unfolded input ----
template <typename T> struct ConvForward {
    typedef typename ComputeOf<T>::type C;
    // K index = (ci, ky, kx): the tap's offset in the group's input from the input
    // position of tap (0, 0), and its row and column offsets.
    struct KRow {
        int64_t off;
        int k, dy, dx;
    };
    // Column = (image, oy, ox): the input element that tap (0, 0) reads (an offset that
    // may lie in the padding), and its row and column.
    struct Col {
        int64_t base;
        int iy0, ix0;
    };
    const T *x, *w, *bias;
    T *y;
    ConvGeom g;
    int grp;

    __device__ __forceinline__ KRow krow(int k) const {
        int ci = k / g.taps(), tap = k - ci * g.taps();
        int ky = tap / g.kw, kx = tap - ky * g.kw;
        KRow r;
        r.k = k, r.dy = ky * g.dil_h, r.dx = kx * g.dil_w;
        r.off = (int64_t)ci * g.plane() + r.dy * g.w + r.dx;
        return r;
    }
    __device__ __forceinline__ C a(int m, const KRow &r) const {
        return widen(w[(int64_t)(grp * g.cog() + m) * (g.cig() * g.taps()) + r.k]);
    }
    __device__ __forceinline__ Col col(int n) const {
        int img = n / g.out_plane(), pos = n - img * g.out_plane();
        int oy = pos / g.out_w, ox = pos - oy * g.out_w;
        Col c;
        c.iy0 = oy * g.stride_h - g.pad_top;
        c.ix0 = ox * g.stride_w - g.pad_left;
        c.base = ((int64_t)img * g.c_in + grp * g.cig()) * g.plane() + (int64_t)c.iy0 * g.w + c.ix0;
        return c;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        int iy = c.iy0 + r.dy, ix = c.ix0 + r.dx;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return (C)0;
        return widen(x[c.base + r.off]);
    }
    __device__ __forceinline__ void store(int m, int n, C v) const {
        int img = n / g.out_plane(), pos = n - img * g.out_plane();
        int co = grp * g.cog() + m;
        if (bias) v += widen(bias[co]);
        y[((int64_t)img * g.c_out + co) * g.out_plane() + pos] = narrow<T>(v);
    }
};

// Grid: (ceil(batch*P / 64), ceil(cog / 64), groups, looped when above the limit).
template <typename T>
__device__ __forceinline__ void conv_forward_impl(const T *x, const T *w, const T *bias, T *y,
                                                  const Dims &ga, const Dims &gb) {
    ConvForward<T> p;
    p.x = x, p.w = w, p.bias = bias, p.y = y, p.g = conv_geom(ga, gb);
    const ConvGeom &g = p.g;
    for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
        p.grp = grp;
        implicit_gemm(p, g.cog(), g.n * g.out_plane(), g.cig() * g.taps(),
                      blockIdx.y * CONV_BM, blockIdx.x * CONV_BN);
    }
}

extern "C" __global__ void __launch_bounds__(256) conv2d_fwd_f32(const float *x, const float *w, const float *bias, float *y, Dims ga, Dims gb) { conv_forward_impl(x, w, bias, y, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_fwd_f64(const double *x, const double *w, const double *bias, double *y, Dims ga, Dims gb) { conv_forward_impl(x, w, bias, y, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_fwd_f16(const f16 *x, const f16 *w, const f16 *bias, f16 *y, Dims ga, Dims gb) { conv_forward_impl(x, w, bias, y, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_fwd_bf16(const bf16 *x, const bf16 *w, const bf16 *bias, bf16 *y, Dims ga, Dims gb) { conv_forward_impl(x, w, bias, y, ga, gb); }

// ---- Input gradient: A = W gathered as (ci) x (co, ky, kx), B = the output gradient
// gathered through the taps that land ----
template <typename T> struct ConvBackwardInput {
    typedef typename ComputeOf<T>::type C;
    // K index = (co, ky, kx): the weight's offset from W[group's first co, ci = 0],
    // the gradient channel's offset, and the tap's row and column offsets.
    struct KRow {
        int64_t w_off, g_off;
        int dy, dx;
    };
    // Column = (image, iy, ix): the gradient's first channel of the group in the image,
    // and iy + pad_top, ix + pad_left.
    struct Col {
        int64_t base;
        int ty0, tx0;
    };
    const T *gy, *w;
    T *gx;
    ConvGeom g;
    int grp;

    __device__ __forceinline__ KRow krow(int k) const {
        int co = k / g.taps(), tap = k - co * g.taps();
        int ky = tap / g.kw, kx = tap - ky * g.kw;
        KRow r;
        r.w_off = (int64_t)co * g.cig() * g.taps() + tap;
        r.g_off = (int64_t)co * g.out_plane();
        r.dy = ky * g.dil_h, r.dx = kx * g.dil_w;
        return r;
    }
    __device__ __forceinline__ C a(int m, const KRow &r) const {
        return widen(w[(int64_t)grp * g.cog() * g.cig() * g.taps() + (int64_t)m * g.taps() + r.w_off]);
    }
    __device__ __forceinline__ Col col(int n) const {
        int img = n / g.plane(), pos = n - img * g.plane();
        int iy = pos / g.w, ix = pos - iy * g.w;
        Col c;
        c.base = ((int64_t)img * g.c_out + grp * g.cog()) * g.out_plane();
        c.ty0 = iy + g.pad_top;
        c.tx0 = ix + g.pad_left;
        return c;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        int oy = landing(c.ty0 - r.dy, g.stride_h, g.out_h);
        int ox = landing(c.tx0 - r.dx, g.stride_w, g.out_w);
        if (oy < 0 || ox < 0) return (C)0;
        return widen(gy[c.base + r.g_off + oy * g.out_w + ox]);
    }
    __device__ __forceinline__ void store(int m, int n, C v) const {
        int img = n / g.plane(), pos = n - img * g.plane();
        gx[((int64_t)img * g.c_in + grp * g.cig() + m) * g.plane() + pos] = narrow<T>(v);
    }
};

// Grid: (ceil(batch*h*w / 64), ceil(cig / 64), groups, looped when above the limit).
template <typename T>
__device__ __forceinline__ void conv_backward_input_impl(const T *gy, const T *w, T *gx,
                                                         const Dims &ga, const Dims &gb) {
    ConvBackwardInput<T> p;
    p.gy = gy, p.w = w, p.gx = gx, p.g = conv_geom(ga, gb);
    const ConvGeom &g = p.g;
    for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
        p.grp = grp;
        implicit_gemm(p, g.cig(), g.n * g.plane(), g.cog() * g.taps(), blockIdx.y * CONV_BM,
                      blockIdx.x * CONV_BN);
    }
}

extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_input_f32(const float *gy, const float *w, float *gx, Dims ga, Dims gb) { conv_backward_input_impl(gy, w, gx, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_input_f64(const double *gy, const double *w, double *gx, Dims ga, Dims gb) { conv_backward_input_impl(gy, w, gx, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_input_f16(const f16 *gy, const f16 *w, f16 *gx, Dims ga, Dims gb) { conv_backward_input_impl(gy, w, gx, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_input_bf16(const bf16 *gy, const bf16 *w, bf16 *gx, Dims ga, Dims gb) { conv_backward_input_impl(gy, w, gx, ga, gb); }

// ---- Weight gradient of one batch chunk: A = the output gradient (cog x positions of
// the chunk's images), B = the unfolded input (positions x (ci, ky, kx)) ----
template <typename T> struct ConvBackwardWeight {
    typedef typename ComputeOf<T>::type C;
    // K index = (image of the chunk, oy, ox): the gradient's offset from channel 0 of
    // image 0, the input's offset from the image's start to the element that tap (0, 0)
    // of a pad-free input would read, and that element's row and column.
    struct KRow {
        int64_t g_off, x_off;
        int sy, sx;
    };
    // Column = (ci, ky, kx): the offset of the tap's element from `x_off` (it includes
    // the padding shift), and the shift's rows and columns.
    struct Col {
        int64_t off;
        int iy0, ix0;
    };
    const T *x, *gy;
    C *partial;
    ConvGeom g;
    int grp, img0;
    int64_t chunk_offset; // this chunk's partial gradient in `partial`

    __device__ __forceinline__ KRow krow(int k) const {
        int i = k / g.out_plane(), pos = k - i * g.out_plane();
        int oy = pos / g.out_w, ox = pos - oy * g.out_w;
        int64_t img = img0 + i;
        KRow r;
        r.sy = oy * g.stride_h, r.sx = ox * g.stride_w;
        r.g_off = img * g.c_out * g.out_plane() + pos;
        r.x_off = img * g.c_in * g.plane() + (int64_t)r.sy * g.w + r.sx;
        return r;
    }
    __device__ __forceinline__ C a(int m, const KRow &r) const {
        return widen(gy[(int64_t)(grp * g.cog() + m) * g.out_plane() + r.g_off]);
    }
    __device__ __forceinline__ Col col(int n) const {
        int ci = n / g.taps(), tap = n - ci * g.taps();
        int ky = tap / g.kw, kx = tap - ky * g.kw;
        Col c;
        c.iy0 = ky * g.dil_h - g.pad_top;
        c.ix0 = kx * g.dil_w - g.pad_left;
        c.off = (int64_t)(grp * g.cig() + ci) * g.plane() + (int64_t)c.iy0 * g.w + c.ix0;
        return c;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        int iy = c.iy0 + r.sy, ix = c.ix0 + r.sx;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return (C)0;
        return widen(x[r.x_off + c.off]);
    }
    __device__ __forceinline__ void store(int m, int n, C v) const {
        partial[chunk_offset + (int64_t)(grp * g.cog() + m) * (g.cig() * g.taps()) + n] = v;
    }
};

// Grid: (ceil(cig*kh*kw / 64), ceil(cog / 64), groups*chunks, looped when above the
// limit); chunk c holds images [c*per_chunk, min((c+1)*per_chunk, n)).
template <typename T>
__device__ __forceinline__ void conv_backward_weight_impl(const T *x, const T *gy,
                                                          typename ComputeOf<T>::type *partial,
                                                          const Dims &ga, const Dims &gb,
                                                          int per_chunk, int chunks) {
    ConvBackwardWeight<T> p;
    p.x = x, p.gy = gy, p.partial = partial, p.g = conv_geom(ga, gb);
    const ConvGeom &g = p.g;
    const int64_t weight_len = (int64_t)g.c_out * g.cig() * g.taps();
    for (int z = blockIdx.z; z < g.groups * chunks; z += gridDim.z) {
        int chunk = z / g.groups;
        p.grp = z - chunk * g.groups;
        p.img0 = chunk * per_chunk;
        p.chunk_offset = chunk * weight_len;
        int images = g.n - p.img0 < per_chunk ? g.n - p.img0 : per_chunk;
        implicit_gemm(p, g.cog(), g.cig() * g.taps(), images * g.out_plane(),
                      blockIdx.y * CONV_BM, blockIdx.x * CONV_BN);
    }
}

extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_weight_f32(const float *x, const float *gy, float *partial, Dims ga, Dims gb, int per_chunk, int chunks) { conv_backward_weight_impl(x, gy, partial, ga, gb, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_weight_f64(const double *x, const double *gy, double *partial, Dims ga, Dims gb, int per_chunk, int chunks) { conv_backward_weight_impl(x, gy, partial, ga, gb, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_weight_f16(const f16 *x, const f16 *gy, float *partial, Dims ga, Dims gb, int per_chunk, int chunks) { conv_backward_weight_impl(x, gy, partial, ga, gb, per_chunk, chunks); }
extern "C" __global__ void __launch_bounds__(256) conv2d_bwd_weight_bf16(const bf16 *x, const bf16 *gy, float *partial, Dims ga, Dims gb, int per_chunk, int chunks) { conv_backward_weight_impl(x, gy, partial, ga, gb, per_chunk, chunks); }

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

extern "C" __global__ void conv2d_wgrad_sum_f32(const float *partial, float *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }
extern "C" __global__ void conv2d_wgrad_sum_f64(const double *partial, double *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }
extern "C" __global__ void conv2d_wgrad_sum_f16(const float *partial, f16 *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }
extern "C" __global__ void conv2d_wgrad_sum_bf16(const float *partial, bf16 *gw, uint64_t len, int chunks) { wgrad_sum_impl(partial, gw, len, chunks); }

// ---- Depthwise (groups == c_in == c_out): each output reads one channel, so there is
// no GEMM to tile; direct kernels read X and G once per tap, from L1/L2. ----

// Forward: one thread per output (n, c, oy, ox), grid-stride; consecutive threads take
// consecutive ox, so the reads of a tap are coalesced.
template <typename T>
__device__ __forceinline__ void dw_forward_impl(const T *x, const T *w, const T *bias, T *y,
                                                const Dims &ga, const Dims &gb) {
    typedef typename ComputeOf<T>::type C;
    const ConvGeom g = conv_geom(ga, gb);
    const uint64_t total = (uint64_t)g.n * g.c_out * g.out_plane();
    KILN_FOR_EACH(i, total) {
        uint64_t plane = i / g.out_plane(); // image * channels + channel
        int pos = (int)(i - plane * g.out_plane());
        int ch = (int)(plane % g.c_out);
        int oy = pos / g.out_w, ox = pos - oy * g.out_w;
        const T *xp = x + plane * g.plane();
        const T *wp = w + (int64_t)ch * g.taps();
        C acc = bias ? widen(bias[ch]) : (C)0;
        for (int ky = 0; ky < g.kh; ++ky) {
            int iy = oy * g.stride_h - g.pad_top + ky * g.dil_h;
            if (iy < 0 || iy >= g.h) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                int ix = ox * g.stride_w - g.pad_left + kx * g.dil_w;
                if (ix < 0 || ix >= g.w) continue;
                acc = fma(widen(wp[ky * g.kw + kx]), widen(xp[iy * g.w + ix]), acc);
            }
        }
        y[i] = narrow<T>(acc);
    }
}

extern "C" __global__ void conv2d_dw_fwd_f32(const float *x, const float *w, const float *bias, float *y, Dims ga, Dims gb) { dw_forward_impl(x, w, bias, y, ga, gb); }
extern "C" __global__ void conv2d_dw_fwd_f64(const double *x, const double *w, const double *bias, double *y, Dims ga, Dims gb) { dw_forward_impl(x, w, bias, y, ga, gb); }
extern "C" __global__ void conv2d_dw_fwd_f16(const f16 *x, const f16 *w, const f16 *bias, f16 *y, Dims ga, Dims gb) { dw_forward_impl(x, w, bias, y, ga, gb); }
extern "C" __global__ void conv2d_dw_fwd_bf16(const bf16 *x, const bf16 *w, const bf16 *bias, bf16 *y, Dims ga, Dims gb) { dw_forward_impl(x, w, bias, y, ga, gb); }

// Input gradient: one thread per input element (n, c, iy, ix), grid-stride, gathering
// the outputs that read it (taps that land); no two threads write one element.
template <typename T>
__device__ __forceinline__ void dw_backward_input_impl(const T *gy, const T *w, T *gx,
                                                       const Dims &ga, const Dims &gb) {
    typedef typename ComputeOf<T>::type C;
    const ConvGeom g = conv_geom(ga, gb);
    const uint64_t total = (uint64_t)g.n * g.c_in * g.plane();
    KILN_FOR_EACH(i, total) {
        uint64_t plane = i / g.plane();
        int pos = (int)(i - plane * g.plane());
        int ch = (int)(plane % g.c_in);
        int iy = pos / g.w, ix = pos - iy * g.w;
        const T *gp = gy + plane * g.out_plane();
        const T *wp = w + (int64_t)ch * g.taps();
        C acc = (C)0;
        for (int ky = 0; ky < g.kh; ++ky) {
            int oy = landing(iy + g.pad_top - ky * g.dil_h, g.stride_h, g.out_h);
            if (oy < 0) continue;
            for (int kx = 0; kx < g.kw; ++kx) {
                int ox = landing(ix + g.pad_left - kx * g.dil_w, g.stride_w, g.out_w);
                if (ox < 0) continue;
                acc = fma(widen(gp[oy * g.out_w + ox]), widen(wp[ky * g.kw + kx]), acc);
            }
        }
        gx[i] = narrow<T>(acc);
    }
}

extern "C" __global__ void conv2d_dw_bwd_input_f32(const float *gy, const float *w, float *gx, Dims ga, Dims gb) { dw_backward_input_impl(gy, w, gx, ga, gb); }
extern "C" __global__ void conv2d_dw_bwd_input_f64(const double *gy, const double *w, double *gx, Dims ga, Dims gb) { dw_backward_input_impl(gy, w, gx, ga, gb); }
extern "C" __global__ void conv2d_dw_bwd_input_f16(const f16 *gy, const f16 *w, f16 *gx, Dims ga, Dims gb) { dw_backward_input_impl(gy, w, gx, ga, gb); }
extern "C" __global__ void conv2d_dw_bwd_input_bf16(const bf16 *gy, const bf16 *w, bf16 *gx, Dims ga, Dims gb) { dw_backward_input_impl(gy, w, gx, ga, gb); }

// Weight gradient: one block per weight (c, ky, kx), grid-stride over weights; its 256
// threads stride over the batch's output positions (n, oy, ox), consecutive threads on
// consecutive positions (coalesced), then a fixed-shape tree in shared memory adds the
// 256 partial sums: deterministic, no atomics.
template <typename T>
__device__ __forceinline__ void dw_backward_weight_impl(const T *x, const T *gy, T *gw,
                                                        const Dims &ga, const Dims &gb) {
    typedef typename ComputeOf<T>::type C;
    __shared__ C red[CONV_THREADS];
    const ConvGeom g = conv_geom(ga, gb);
    const int positions = g.n * g.out_plane();
    for (int wi = blockIdx.x; wi < g.c_out * g.taps(); wi += gridDim.x) {
        int ch = wi / g.taps(), tap = wi - ch * g.taps();
        int ky = tap / g.kw, kx = tap - ky * g.kw;
        C acc = (C)0;
        for (int j = threadIdx.x; j < positions; j += CONV_THREADS) {
            int img = j / g.out_plane(), pos = j - img * g.out_plane();
            int oy = pos / g.out_w, ox = pos - oy * g.out_w;
            int iy = oy * g.stride_h - g.pad_top + ky * g.dil_h;
            int ix = ox * g.stride_w - g.pad_left + kx * g.dil_w;
            if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
            int64_t plane = (int64_t)img * g.c_in + ch;
            acc = fma(widen(gy[plane * g.out_plane() + pos]),
                      widen(x[plane * g.plane() + iy * g.w + ix]), acc);
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

extern "C" __global__ void __launch_bounds__(256) conv2d_dw_bwd_weight_f32(const float *x, const float *gy, float *gw, Dims ga, Dims gb) { dw_backward_weight_impl(x, gy, gw, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_dw_bwd_weight_f64(const double *x, const double *gy, double *gw, Dims ga, Dims gb) { dw_backward_weight_impl(x, gy, gw, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_dw_bwd_weight_f16(const f16 *x, const f16 *gy, f16 *gw, Dims ga, Dims gb) { dw_backward_weight_impl(x, gy, gw, ga, gb); }
extern "C" __global__ void __launch_bounds__(256) conv2d_dw_bwd_weight_bf16(const bf16 *x, const bf16 *gy, bf16 *gw, Dims ga, Dims gb) { dw_backward_weight_impl(x, gy, gw, ga, gb); }
