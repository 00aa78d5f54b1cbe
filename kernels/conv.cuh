// 2-D convolution (NCHW, contiguous) as implicit GEMMs: the geometry and the three
// *problems* (forward, input gradient, weight gradient) shared by the exact SIMT kernels
// of conv.cu and the tensor-core kernels of conv_tc.cu, and the group (and batch-chunk)
// loops that run a problem through either GEMM. The CPU reference is
// src/backend/cpu/conv.rs (im2col + GEMM); the math is the same, no im2col buffer is
// ever written: tiles of the unfolded operand are gathered straight into shared
// memory, with zeros where a tap reads padding or does not land.
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
//                 ky*dil_h) / stride_h must divide exactly and be in range (same for x):
//                 split by stride phase, so that K holds only the taps that land
//   weight grad   gW[co, (ci,ky,kx)] = sum_(n,p) G[n, co, p] · X[n, ci, iy, ix]
//                 M = cog, N = cig*kh*kw, K = images of one batch chunk * P
// The weight gradient's reduction is split over chunks of the batch, each writing its
// own partial gradient (in the compute type); `conv2d_wgrad_sum_*` adds the chunks in
// order. No atomics anywhere, so every result is reproducible.
//
// A problem `P` supplies its compute type `C` and: `krow(k)` (the K index's context,
// k < K), `a(m, krow)`, `col(n)` (the column's context, n < N), `b(krow, col)`, and
// `store(m, n, acc)`, each called in range only; and `A_ROWS`: whether A's row m is
// the K contiguous elements at `a_row(m)` (then defined), which a GEMM may copy
// instead of gathering; and `B_CHUNKS`: whether B comes as 16-byte chunks of K
// instead of `b`, `b_chunk(krow, col)` the address of the chunk starting at the
// (chunk-aligned) K index of `krow`, or null for zeros, and `b_any()` a valid,
// aligned address for the zero fills (ConvForwardNhwc, ConvBackwardInputNhwc: the
// tensor-core GEMM only). A GEMM (`Gemm`) is a functor
// `gemm(p, m_len, n_len, k_len)` that computes the tile of block (blockIdx.x,
// blockIdx.y) of the product: columns along x, rows along y.
#pragma once
#include "common.cuh"

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
    static const bool A_ROWS = true; // W's rows
    static const bool B_CHUNKS = false;
    __device__ __forceinline__ const T *a_row(int m) const {
        return w + (int64_t)(grp * g.cog() + m) * (g.cig() * g.taps());
    }
    __device__ __forceinline__ C a(int m, const KRow &r) const { return widen(a_row(m)[r.k]); }
    // Column n's image and the input position of its tap (0, 0), without `base`.
    __device__ __forceinline__ Col origin(int n, int &img) const {
        img = n / g.out_plane();
        int pos = n - img * g.out_plane();
        int oy = pos / g.out_w, ox = pos - oy * g.out_w;
        Col c;
        c.iy0 = oy * g.stride_h - g.pad_top;
        c.ix0 = ox * g.stride_w - g.pad_left;
        return c;
    }
    __device__ __forceinline__ Col col(int n) const {
        int img;
        Col c = origin(n, img);
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

// ---- Forward in channels-last: x as NHWC, W as (co, ky, kx, ci), K = (ky, kx, ci) ----
// The host converts both (src/backend/cuda/conv.rs) when cig is a multiple of a
// 16-byte chunk, so that every chunk of K is consecutive channels of one input pixel
// (or of the padding): B arrives by whole-chunk copies. A, the output and the bias are
// those of ConvForward (W's rows are K long either way; y stays NCHW).
template <typename T> struct ConvForwardNhwc : ConvForward<T> {
    typedef ConvForward<T> Base;
    typedef typename Base::KRow KRow; // `off` from the pixel of tap (0, 0), in NHWC
    typedef typename Base::Col Col;   // `base` in NHWC
    static const bool B_CHUNKS = true;

    __device__ __forceinline__ KRow krow(int k) const {
        const ConvGeom &g = this->g;
        int tap = k / g.cig(), ci = k - tap * g.cig();
        int ky = tap / g.kw, kx = tap - ky * g.kw;
        KRow r;
        r.k = k, r.dy = ky * g.dil_h, r.dx = kx * g.dil_w;
        r.off = ((int64_t)r.dy * g.w + r.dx) * g.c_in + ci;
        return r;
    }
    __device__ __forceinline__ Col col(int n) const {
        const ConvGeom &g = this->g;
        int img;
        Col c = this->origin(n, img);
        c.base = (((int64_t)img * g.h + c.iy0) * g.w + c.ix0) * g.c_in + this->grp * g.cig();
        return c;
    }
    __device__ __forceinline__ const T *b_chunk(const KRow &r, const Col &c) const {
        const ConvGeom &g = this->g;
        int iy = c.iy0 + r.dy, ix = c.ix0 + r.dx;
        if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) return nullptr;
        return this->x + c.base + r.off;
    }
    __device__ __forceinline__ const T *b_any() const { return this->x; }
};

// ---- Input gradient of one stride phase: A = W gathered as (ci) x (co, ky, kx), B =
// the output gradient gathered through the taps ----
//
// Input row iy is fed through tap ky only when stride_h divides iy + pad_top -
// ky*dil_h, which depends on the phase py = (iy + pad_top) % stride_h alone: the taps
// with ky*dil_h % stride_h == py (every stride_h / gcd(stride_h, dil_h)-th ky from the
// first). So the input rows are split by phase (likewise the columns), one GEMM per
// phase whose K holds only that phase's taps: no product of a tap that cannot land
// (3/4 of them for a 3x3 stride-2 kernel). With stride 1 there is one phase, every tap.
struct ConvPhase {
    int first;  // the first input row (column) of the phase
    int count;  // its rows: first, first + stride, ...
    int tap0;   // its first tap (ky), or any when taps == 0
    int step;   // between its taps
    int taps;   // its taps: tap0, tap0 + step, ... (< kh); none for some dilations
    __device__ __forceinline__ void init(int phase, int size, int stride, int pad, int k,
                                         int dil) {
        first = ((phase - pad) % stride + stride) % stride;
        count = first < size ? (size - first + stride - 1) / stride : 0;
        int a = stride, b = dil % stride; // gcd(stride, dil)
        while (b) {
            int t = a % b;
            a = b, b = t;
        }
        step = stride / a;
        tap0 = 0;
        while (tap0 < k && (tap0 * dil) % stride != phase) ++tap0;
        taps = tap0 < k ? (k - tap0 + step - 1) / step : 0;
    }
};

template <typename T> struct ConvBackwardInput {
    typedef typename ComputeOf<T>::type C;
    // K index = (co, phase tap y, phase tap x): the weight's offset from W[group's
    // first co, ci = 0], the gradient channel's offset, and (ky*dil_h - py) / stride_h
    // (and the same for x), exact.
    struct KRow {
        int64_t w_off, g_off;
        int ry, rx;
    };
    // Column = (image, phase row, phase column): the gradient's first channel of the
    // group in the image, and (iy + pad_top - py) / stride_h (and the same for x),
    // exact, so that the tap's output row is oy = qy - ry.
    struct Col {
        int64_t base;
        int qy, qx;
    };
    const T *gy, *w;
    T *gx;
    ConvGeom g;
    int grp, py, px;
    ConvPhase ph_y, ph_x;

    // Selects phase (py, px); the GEMM is then cig x (n * rows * columns) x
    // (cog * taps).
    __device__ __forceinline__ void set_phase(int phase_y, int phase_x) {
        py = phase_y, px = phase_x;
        ph_y.init(py, g.h, g.stride_h, g.pad_top, g.kh, g.dil_h);
        ph_x.init(px, g.w, g.stride_w, g.pad_left, g.kw, g.dil_w);
    }
    __device__ __forceinline__ int columns() const { return g.n * ph_y.count * ph_x.count; }
    __device__ __forceinline__ int depth() const { return g.cog() * ph_y.taps * ph_x.taps; }

    __device__ __forceinline__ KRow krow(int k) const {
        int taps = ph_y.taps * ph_x.taps;
        int co = k / taps, t = k - co * taps;
        int ty = t / ph_x.taps, tx = t - ty * ph_x.taps;
        int ky = ph_y.tap0 + ty * ph_y.step, kx = ph_x.tap0 + tx * ph_x.step;
        KRow r;
        r.w_off = (int64_t)co * g.cig() * g.taps() + ky * g.kw + kx;
        r.g_off = (int64_t)co * g.out_plane();
        r.ry = (ky * g.dil_h - py) / g.stride_h;
        r.rx = (kx * g.dil_w - px) / g.stride_w;
        return r;
    }
    static const bool A_ROWS = false; // W transposed, and only the phase's taps
    static const bool B_CHUNKS = false;
    __device__ __forceinline__ C a(int m, const KRow &r) const {
        return widen(w[(int64_t)grp * g.cog() * g.cig() * g.taps() + (int64_t)m * g.taps() + r.w_off]);
    }
    // Image and input position (iy, ix) of column n.
    __device__ __forceinline__ void position(int n, int &img, int &iy, int &ix) const {
        int plane = ph_y.count * ph_x.count;
        img = n / plane;
        int pos = n - img * plane;
        int jy = pos / ph_x.count, jx = pos - jy * ph_x.count;
        iy = ph_y.first + jy * g.stride_h, ix = ph_x.first + jx * g.stride_w;
    }
    __device__ __forceinline__ Col col(int n) const {
        int img, iy, ix;
        position(n, img, iy, ix);
        Col c;
        c.base = ((int64_t)img * g.c_out + grp * g.cog()) * g.out_plane();
        c.qy = (iy + g.pad_top - py) / g.stride_h;
        c.qx = (ix + g.pad_left - px) / g.stride_w;
        return c;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        int oy = c.qy - r.ry, ox = c.qx - r.rx;
        if (oy < 0 || oy >= g.out_h || ox < 0 || ox >= g.out_w) return (C)0;
        return widen(gy[c.base + r.g_off + oy * g.out_w + ox]);
    }
    __device__ __forceinline__ void store(int m, int n, C v) const {
        int img, iy, ix;
        position(n, img, iy, ix);
        gx[((int64_t)img * g.c_in + grp * g.cig() + m) * g.plane() + iy * g.w + ix] = narrow<T>(v);
    }
};

// ---- Input gradient in channels-last: gy as NHWC, K = (phase tap y, phase tap x, co) ----
// The host converts gy (src/backend/cuda/conv.rs) when cog is a multiple of a 16-byte
// chunk, so that every chunk of K is consecutive channels of one gradient pixel (or of
// a tap that falls off the output): B arrives by whole-chunk copies. A stays gathered
// from W as is (its row for ci strides over co and the phase's taps: no contiguous
// run to copy); the output gx stays NCHW.
template <typename T> struct ConvBackwardInputNhwc : ConvBackwardInput<T> {
    typedef ConvBackwardInput<T> Base;
    typedef typename Base::KRow KRow; // `g_off`: the channel within the group's pixel
    typedef typename Base::Col Col;   // `base`: the group's first channel of the image
    static const bool B_CHUNKS = true;

    __device__ __forceinline__ KRow krow(int k) const {
        const ConvGeom &g = this->g;
        int t = k / g.cog(), co = k - t * g.cog();
        int ty = t / this->ph_x.taps, tx = t - ty * this->ph_x.taps;
        int ky = this->ph_y.tap0 + ty * this->ph_y.step, kx = this->ph_x.tap0 + tx * this->ph_x.step;
        KRow r;
        r.w_off = (int64_t)co * g.cig() * g.taps() + ky * g.kw + kx;
        r.g_off = co;
        r.ry = (ky * g.dil_h - this->py) / g.stride_h;
        r.rx = (kx * g.dil_w - this->px) / g.stride_w;
        return r;
    }
    __device__ __forceinline__ Col col(int n) const {
        const ConvGeom &g = this->g;
        Col c = Base::col(n);
        int img = n / (this->ph_y.count * this->ph_x.count);
        c.base = (int64_t)img * g.out_plane() * g.c_out + this->grp * g.cog();
        return c;
    }
    __device__ __forceinline__ const T *b_chunk(const KRow &r, const Col &c) const {
        const ConvGeom &g = this->g;
        int oy = c.qy - r.ry, ox = c.qx - r.rx;
        if (oy < 0 || oy >= g.out_h || ox < 0 || ox >= g.out_w) return nullptr;
        return this->gy + c.base + ((int64_t)oy * g.out_w + ox) * g.c_out + r.g_off;
    }
    __device__ __forceinline__ const T *b_any() const { return this->gy; }
};

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
    static const bool A_ROWS = false; // G's rows break at every image
    static const bool B_CHUNKS = false;
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

// Forward, as `Problem` (ConvForward, or ConvForwardNhwc with x and w converted).
// Grid: (column tiles of batch*P, row tiles of cog, groups, looped when above the
// limit).
template <template <typename> class Problem = ConvForward, typename T, typename Gemm>
__device__ __forceinline__ void conv_forward_run(const Gemm &gemm, const T *x, const T *w,
                                                 const T *bias, T *y, const Dims &ga,
                                                 const Dims &gb) {
    Problem<T> p;
    p.x = x, p.w = w, p.bias = bias, p.y = y, p.g = conv_geom(ga, gb);
    const ConvGeom &g = p.g;
    for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
        p.grp = grp;
        gemm(p, g.cog(), g.n * g.out_plane(), g.cig() * g.taps());
    }
}

// Input gradient as `Problem` (ConvBackwardInput, or ConvBackwardInputNhwc with gy
// converted), one GEMM per group and stride phase. Grid: (column tiles of the
// largest phase, batch*ceil(h/stride_h)*ceil(w/stride_w), row tiles of cig,
// groups*stride_h*stride_w, looped when above the limit); the tiles past a smaller
// phase's columns store nothing.
template <template <typename> class Problem = ConvBackwardInput, typename T, typename Gemm>
__device__ __forceinline__ void conv_backward_input_run(const Gemm &gemm, const T *gy,
                                                        const T *w, T *gx, const Dims &ga,
                                                        const Dims &gb) {
    Problem<T> p;
    p.gy = gy, p.w = w, p.gx = gx, p.g = conv_geom(ga, gb);
    const ConvGeom &g = p.g;
    const int phases = g.stride_h * g.stride_w;
    for (int z = blockIdx.z; z < g.groups * phases; z += gridDim.z) {
        int phase = z / g.groups;
        p.grp = z - phase * g.groups;
        p.set_phase(phase / g.stride_w, phase % g.stride_w);
        gemm(p, g.cig(), p.columns(), p.depth());
    }
}

// Weight gradient of every batch chunk. Grid: (column tiles of cig*kh*kw, row tiles of
// cog, groups*chunks, looped when above the limit); chunk c holds images
// [c*per_chunk, min((c+1)*per_chunk, n)).
template <typename T, typename Gemm>
__device__ __forceinline__ void conv_backward_weight_run(const Gemm &gemm, const T *x,
                                                         const T *gy,
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
        gemm(p, g.cog(), g.cig() * g.taps(), images * g.out_plane());
    }
}
