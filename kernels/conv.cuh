// Convolution (NC(D)HW, contiguous; 1-d and 2-d as 3-d with unit depth and height) as
// implicit GEMMs: the geometry and the three *problems* (forward, input gradient,
// weight gradient) shared by the exact SIMT kernels of conv.cu and the tensor-core
// kernels of conv_tc.cu, and the group (and batch-chunk) loops that run a problem
// through either GEMM. The CPU reference is src/backend/cpu/conv.rs (im2col + GEMM);
// the math is the same, no im2col buffer is ever written: tiles of the unfolded
// operand are gathered straight into shared memory, with zeros where a tap reads
// padding or does not land. The transposed convolution runs the same problems (its
// forward is the input gradient, with a bias; src/backend/conv.rs).
//
// Geometry arrives as three `Dims` (see `conv_geom`), checked on the host so that
// every size, and every product used as a 32-bit tile index, fits an `int`; addresses
// are formed in 64 bits.
//
// The three GEMMs, per group g (cig = c_in/groups, cog = c_out/groups, taps =
// kd*kh*kw, P = out_d*out_h*out_w; a position p or i is (z, y, x)):
//   forward       y[n, co, p]        = sum_(ci,tap) W[co, ci, tap] · X[n, ci, i]
//                 M = cog, N = batch*P (positions across images), K = cig*taps
//   input grad    gx[n, ci, i]       = sum_(co,tap) W[co, ci, tap] · G[n, co, o] (+ bias)
//                 M = cig, N = batch*d*h*w, K = cog*taps, where o = (i + pad -
//                 k*dil) / stride must divide exactly and be in range along each axis:
//                 split by stride phase, so that K holds only the taps that land
//   weight grad   gW[co, (ci,tap)]   = sum_(n,p) G[n, co, p] · X[n, ci, i]
//                 M = cog, N = cig*taps, K = images of one batch chunk * P
// The weight gradient's reduction is split over chunks of the batch, each writing its
// own partial gradient (in the compute type); `conv_wgrad_sum_*` adds the chunks in
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

// The convolution's sizes, unpacked from the three `Dims` the host passes:
// a = (n, c_in, h, w, c_out, kh, kw, groups),
// b = (stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w),
// c = (d, kd, stride_d, pad_front, dil_d, out_d): depth 1 for 1-d and 2-d.
struct ConvGeom {
    int n, c_in, h, w, c_out, kh, kw, groups;
    int stride_h, stride_w, pad_top, pad_left, dil_h, dil_w, out_h, out_w;
    int d, kd, stride_d, pad_front, dil_d, out_d;
    __device__ __forceinline__ int cig() const { return c_in / groups; }
    __device__ __forceinline__ int cog() const { return c_out / groups; }
    __device__ __forceinline__ int taps() const { return kd * kh * kw; }
    __device__ __forceinline__ int spatial() const { return d * h * w; }
    __device__ __forceinline__ int out_area() const { return out_h * out_w; }
    __device__ __forceinline__ int out_spatial() const { return out_d * out_h * out_w; }
    // Kernel tap `tap` (< taps) as (kz, ky, kx).
    __device__ __forceinline__ void tap_of(int tap, int &kz, int &ky, int &kx) const {
        kz = tap / (kh * kw);
        int t = tap - kz * kh * kw;
        ky = t / kw, kx = t - ky * kw;
    }
    // Output position `pos` (< out_spatial) as (oz, oy, ox).
    __device__ __forceinline__ void out_pos(int pos, int &oz, int &oy, int &ox) const {
        oz = pos / out_area();
        int t = pos - oz * out_area();
        oy = t / out_w, ox = t - oy * out_w;
    }
    // Whether input position (iz, iy, ix) lies inside the input (not padding).
    __device__ __forceinline__ bool inside(int iz, int iy, int ix) const {
        return (unsigned)iz < (unsigned)d && (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)w;
    }
    // The offset of (z, y, x) in a d x h x w volume; z and y may be negative (padding
    // positions, corrected by the caller's other offsets), so it is formed in 64 bits.
    __device__ __forceinline__ int64_t offset(int z, int y, int x) const {
        return ((int64_t)z * h + y) * w + x;
    }
};

__device__ __forceinline__ ConvGeom conv_geom(const Dims &a, const Dims &b, const Dims &c) {
    ConvGeom g;
    g.n = (int)a.d[0], g.c_in = (int)a.d[1], g.h = (int)a.d[2], g.w = (int)a.d[3];
    g.c_out = (int)a.d[4], g.kh = (int)a.d[5], g.kw = (int)a.d[6], g.groups = (int)a.d[7];
    g.stride_h = (int)b.d[0], g.stride_w = (int)b.d[1];
    g.pad_top = (int)b.d[2], g.pad_left = (int)b.d[3];
    g.dil_h = (int)b.d[4], g.dil_w = (int)b.d[5];
    g.out_h = (int)b.d[6], g.out_w = (int)b.d[7];
    g.d = (int)c.d[0], g.kd = (int)c.d[1], g.stride_d = (int)c.d[2];
    g.pad_front = (int)c.d[3], g.dil_d = (int)c.d[4], g.out_d = (int)c.d[5];
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
    // K index = (ci, kz, ky, kx): the tap's offset in the group's input from the input
    // position of tap (0, 0, 0), and its depth, row and column offsets.
    struct KRow {
        int64_t off;
        int k, dz, dy, dx;
    };
    // Column = (image, oz, oy, ox): the input element that tap (0, 0, 0) reads (an
    // offset that may lie in the padding), and its position.
    struct Col {
        int64_t base;
        int iz0, iy0, ix0;
    };
    const T *x, *w, *bias;
    T *y;
    ConvGeom g;
    int grp;

    // The tap's offsets, without `off`.
    __device__ __forceinline__ KRow tap_row(int k, int tap) const {
        int kz, ky, kx;
        g.tap_of(tap, kz, ky, kx);
        KRow r;
        r.k = k, r.dz = kz * g.dil_d, r.dy = ky * g.dil_h, r.dx = kx * g.dil_w;
        return r;
    }
    __device__ __forceinline__ KRow krow(int k) const {
        int ci = k / g.taps();
        KRow r = tap_row(k, k - ci * g.taps());
        r.off = (int64_t)ci * g.spatial() + g.offset(r.dz, r.dy, r.dx);
        return r;
    }
    static const bool A_ROWS = true; // W's rows
    static const bool B_CHUNKS = false;
    __device__ __forceinline__ const T *a_row(int m) const {
        return w + (int64_t)(grp * g.cog() + m) * (g.cig() * g.taps());
    }
    __device__ __forceinline__ C a(int m, const KRow &r) const { return widen(a_row(m)[r.k]); }
    // Column n's image and the input position of its tap (0, 0, 0), without `base`.
    __device__ __forceinline__ Col origin(int n, int &img) const {
        img = n / g.out_spatial();
        int oz, oy, ox;
        g.out_pos(n - img * g.out_spatial(), oz, oy, ox);
        Col c;
        c.iz0 = oz * g.stride_d - g.pad_front;
        c.iy0 = oy * g.stride_h - g.pad_top;
        c.ix0 = ox * g.stride_w - g.pad_left;
        return c;
    }
    __device__ __forceinline__ Col col(int n) const {
        int img;
        Col c = origin(n, img);
        c.base = ((int64_t)img * g.c_in + grp * g.cig()) * g.spatial() + g.offset(c.iz0, c.iy0, c.ix0);
        return c;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        if (!g.inside(c.iz0 + r.dz, c.iy0 + r.dy, c.ix0 + r.dx)) return (C)0;
        return widen(x[c.base + r.off]);
    }
    __device__ __forceinline__ void store(int m, int n, C v) const {
        int img = n / g.out_spatial(), pos = n - img * g.out_spatial();
        int co = grp * g.cog() + m;
        if (bias) v += widen(bias[co]);
        y[((int64_t)img * g.c_out + co) * g.out_spatial() + pos] = narrow<T>(v);
    }
};

// ---- Forward in channels-last: x as N(D)HWC, W as (co, kz, ky, kx, ci), K = (kz, ky,
// kx, ci) ----
// The host converts both (src/backend/cuda/ops/conv_gemm.rs) when cig is a multiple of
// a 16-byte chunk, so that every chunk of K is consecutive channels of one input pixel
// (or of the padding): B arrives by whole-chunk copies. A, the output and the bias are
// those of ConvForward (W's rows are K long either way; y stays NC(D)HW).
template <typename T> struct ConvForwardNhwc : ConvForward<T> {
    typedef ConvForward<T> Base;
    typedef typename Base::KRow KRow; // `off` from the pixel of tap (0, 0, 0), channels-last
    typedef typename Base::Col Col;   // `base` channels-last
    static const bool B_CHUNKS = true;

    __device__ __forceinline__ KRow krow(int k) const {
        const ConvGeom &g = this->g;
        int tap = k / g.cig();
        KRow r = this->tap_row(k, tap);
        r.off = g.offset(r.dz, r.dy, r.dx) * g.c_in + (k - tap * g.cig());
        return r;
    }
    __device__ __forceinline__ Col col(int n) const {
        const ConvGeom &g = this->g;
        int img;
        Col c = this->origin(n, img);
        c.base = ((int64_t)img * g.spatial() + g.offset(c.iz0, c.iy0, c.ix0)) * g.c_in + this->grp * g.cig();
        return c;
    }
    __device__ __forceinline__ const T *b_chunk(const KRow &r, const Col &c) const {
        if (!this->g.inside(c.iz0 + r.dz, c.iy0 + r.dy, c.ix0 + r.dx)) return nullptr;
        return this->x + c.base + r.off;
    }
    __device__ __forceinline__ const T *b_any() const { return this->x; }
};

// ---- Input gradient of one stride phase: A = W gathered as (ci) x (co, taps), B =
// the output gradient gathered through the taps ----
//
// Input row iy is fed through tap ky only when stride_h divides iy + pad_top -
// ky*dil_h, which depends on the phase py = (iy + pad_top) % stride_h alone: the taps
// with ky*dil_h % stride_h == py (every stride_h / gcd(stride_h, dil_h)-th ky from the
// first). So the input is split by phase along each axis, one GEMM per phase (pz, py,
// px) whose K holds only that phase's taps: no product of a tap that cannot land (3/4
// of them for a 3x3 stride-2 kernel). With stride 1 there is one phase, every tap.
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
    // The kernel row of the phase's tap `t`, and (tap * dil - phase) / stride, exact.
    __device__ __forceinline__ int tap(int t, int dil, int stride, int phase, int &r) const {
        int k = tap0 + t * step;
        r = (k * dil - phase) / stride;
        return k;
    }
};

template <typename T> struct ConvBackwardInput {
    typedef typename ComputeOf<T>::type C;
    // K index = (co, phase tap z, y, x): the weight's offset from W[group's first co,
    // ci = 0], the gradient channel's offset, and (kz*dil_d - pz) / stride_d (and the
    // same for y and x), exact.
    struct KRow {
        int64_t w_off, g_off;
        int rz, ry, rx;
    };
    // Column = (image, phase position z, y, x): the gradient's first channel of the
    // group in the image, and (iz + pad_front - pz) / stride_d (and the same for y and
    // x), exact, so that the tap's output position is oz = qz - rz, ...
    struct Col {
        int64_t base;
        int qz, qy, qx;
    };
    const T *gy, *w, *bias;
    T *gx;
    ConvGeom g;
    int grp, pz, py, px;
    ConvPhase ph_z, ph_y, ph_x;

    // Selects phase (pz, py, px); the GEMM is then cig x (n * positions) x
    // (cog * taps).
    __device__ __forceinline__ void set_phase(int phase_z, int phase_y, int phase_x) {
        pz = phase_z, py = phase_y, px = phase_x;
        ph_z.init(pz, g.d, g.stride_d, g.pad_front, g.kd, g.dil_d);
        ph_y.init(py, g.h, g.stride_h, g.pad_top, g.kh, g.dil_h);
        ph_x.init(px, g.w, g.stride_w, g.pad_left, g.kw, g.dil_w);
    }
    __device__ __forceinline__ int phase_taps() const { return ph_z.taps * ph_y.taps * ph_x.taps; }
    __device__ __forceinline__ int columns() const { return g.n * ph_z.count * ph_y.count * ph_x.count; }
    __device__ __forceinline__ int depth() const { return g.cog() * phase_taps(); }

    // The context of output channel `co` (of the group) and the phase's tap `t`, with
    // `g_off` left to the caller.
    __device__ __forceinline__ KRow tap_row(int co, int t) const {
        int tz = t / (ph_y.taps * ph_x.taps);
        int t2 = t - tz * ph_y.taps * ph_x.taps;
        int ty = t2 / ph_x.taps, tx = t2 - ty * ph_x.taps;
        KRow r;
        int kz = ph_z.tap(tz, g.dil_d, g.stride_d, pz, r.rz);
        int ky = ph_y.tap(ty, g.dil_h, g.stride_h, py, r.ry);
        int kx = ph_x.tap(tx, g.dil_w, g.stride_w, px, r.rx);
        r.w_off = (int64_t)co * g.cig() * g.taps() + (kz * g.kh + ky) * g.kw + kx;
        return r;
    }
    __device__ __forceinline__ KRow krow(int k) const {
        int co = k / phase_taps();
        KRow r = tap_row(co, k - co * phase_taps());
        r.g_off = (int64_t)co * g.out_spatial();
        return r;
    }
    static const bool A_ROWS = false; // W transposed, and only the phase's taps
    static const bool B_CHUNKS = false;
    __device__ __forceinline__ C a(int m, const KRow &r) const {
        return widen(w[(int64_t)grp * g.cog() * g.cig() * g.taps() + (int64_t)m * g.taps() + r.w_off]);
    }
    // Image and input position (iz, iy, ix) of column n.
    __device__ __forceinline__ void position(int n, int &img, int &iz, int &iy, int &ix) const {
        int area = ph_y.count * ph_x.count, plane = ph_z.count * area;
        img = n / plane;
        int pos = n - img * plane;
        int jz = pos / area;
        pos -= jz * area;
        int jy = pos / ph_x.count, jx = pos - jy * ph_x.count;
        iz = ph_z.first + jz * g.stride_d;
        iy = ph_y.first + jy * g.stride_h, ix = ph_x.first + jx * g.stride_w;
    }
    // Column n's phase position (q) and image, without `base`.
    __device__ __forceinline__ Col origin(int n, int &img) const {
        int iz, iy, ix;
        position(n, img, iz, iy, ix);
        Col c;
        c.qz = (iz + g.pad_front - pz) / g.stride_d;
        c.qy = (iy + g.pad_top - py) / g.stride_h;
        c.qx = (ix + g.pad_left - px) / g.stride_w;
        return c;
    }
    __device__ __forceinline__ Col col(int n) const {
        int img;
        Col c = origin(n, img);
        c.base = ((int64_t)img * g.c_out + grp * g.cog()) * g.out_spatial();
        return c;
    }
    // Whether the tap lands on an output (oz, oy, ox) = q - r, and its offset.
    __device__ __forceinline__ bool lands(const KRow &r, const Col &c, int &pos) const {
        int oz = c.qz - r.rz, oy = c.qy - r.ry, ox = c.qx - r.rx;
        if ((unsigned)oz >= (unsigned)g.out_d || (unsigned)oy >= (unsigned)g.out_h ||
            (unsigned)ox >= (unsigned)g.out_w)
            return false;
        pos = (oz * g.out_h + oy) * g.out_w + ox;
        return true;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        int pos;
        if (!lands(r, c, pos)) return (C)0;
        return widen(gy[c.base + r.g_off + pos]);
    }
    __device__ __forceinline__ void store(int m, int n, C v) const {
        int img, iz, iy, ix;
        position(n, img, iz, iy, ix);
        int ci = grp * g.cig() + m;
        if (bias) v += widen(bias[ci]);
        gx[((int64_t)img * g.c_in + ci) * g.spatial() + g.offset(iz, iy, ix)] = narrow<T>(v);
    }
};

// ---- Input gradient in channels-last: gy as N(D)HWC, K = (phase taps, co) ----
// The host converts gy (src/backend/cuda/ops/conv_gemm.rs) when cog is a multiple of a
// 16-byte chunk, so that every chunk of K is consecutive channels of one gradient
// pixel (or of a tap that falls off the output): B arrives by whole-chunk copies. A
// stays gathered from W as is (its row for ci strides over co and the phase's taps: no
// contiguous run to copy); the output gx stays NC(D)HW.
template <typename T> struct ConvBackwardInputNhwc : ConvBackwardInput<T> {
    typedef ConvBackwardInput<T> Base;
    typedef typename Base::KRow KRow; // `g_off`: the channel within the group's pixel
    typedef typename Base::Col Col;   // `base`: the group's first channel of the image
    static const bool B_CHUNKS = true;

    __device__ __forceinline__ KRow krow(int k) const {
        int t = k / this->g.cog(), co = k - t * this->g.cog();
        KRow r = this->tap_row(co, t);
        r.g_off = co;
        return r;
    }
    __device__ __forceinline__ Col col(int n) const {
        const ConvGeom &g = this->g;
        int img;
        Col c = this->origin(n, img);
        c.base = (int64_t)img * g.out_spatial() * g.c_out + this->grp * g.cog();
        return c;
    }
    __device__ __forceinline__ const T *b_chunk(const KRow &r, const Col &c) const {
        int pos;
        if (!this->lands(r, c, pos)) return nullptr;
        return this->gy + c.base + (int64_t)pos * this->g.c_out + r.g_off;
    }
    __device__ __forceinline__ const T *b_any() const { return this->gy; }
};

// ---- Weight gradient of one batch chunk: A = the output gradient (cog x positions of
// the chunk's images), B = the unfolded input (positions x (ci, taps)) ----
template <typename T> struct ConvBackwardWeight {
    typedef typename ComputeOf<T>::type C;
    // K index = (image of the chunk, oz, oy, ox): the gradient's offset from channel 0
    // of image 0, the input's offset from the image's start to the element that tap
    // (0, 0, 0) of a pad-free input would read, and that element's position.
    struct KRow {
        int64_t g_off, x_off;
        int sz, sy, sx;
    };
    // Column = (ci, kz, ky, kx): the offset of the tap's element from `x_off` (it
    // includes the padding shift), and the shift along each axis.
    struct Col {
        int64_t off;
        int iz0, iy0, ix0;
    };
    const T *x, *gy;
    C *partial;
    ConvGeom g;
    int grp, img0;
    int64_t chunk_offset; // this chunk's partial gradient in `partial`

    __device__ __forceinline__ KRow krow(int k) const {
        int i = k / g.out_spatial(), pos = k - i * g.out_spatial();
        int oz, oy, ox;
        g.out_pos(pos, oz, oy, ox);
        int64_t img = img0 + i;
        KRow r;
        r.sz = oz * g.stride_d, r.sy = oy * g.stride_h, r.sx = ox * g.stride_w;
        r.g_off = img * g.c_out * g.out_spatial() + pos;
        r.x_off = img * g.c_in * g.spatial() + g.offset(r.sz, r.sy, r.sx);
        return r;
    }
    static const bool A_ROWS = false; // G's rows break at every image
    static const bool B_CHUNKS = false;
    __device__ __forceinline__ C a(int m, const KRow &r) const {
        return widen(gy[(int64_t)(grp * g.cog() + m) * g.out_spatial() + r.g_off]);
    }
    __device__ __forceinline__ Col col(int n) const {
        int ci = n / g.taps(), kz, ky, kx;
        g.tap_of(n - ci * g.taps(), kz, ky, kx);
        Col c;
        c.iz0 = kz * g.dil_d - g.pad_front;
        c.iy0 = ky * g.dil_h - g.pad_top;
        c.ix0 = kx * g.dil_w - g.pad_left;
        c.off = (int64_t)(grp * g.cig() + ci) * g.spatial() + g.offset(c.iz0, c.iy0, c.ix0);
        return c;
    }
    __device__ __forceinline__ C b(const KRow &r, const Col &c) const {
        if (!g.inside(c.iz0 + r.sz, c.iy0 + r.sy, c.ix0 + r.sx)) return (C)0;
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
                                                 const Dims &gb, const Dims &gc) {
    Problem<T> p;
    p.x = x, p.w = w, p.bias = bias, p.y = y, p.g = conv_geom(ga, gb, gc);
    const ConvGeom &g = p.g;
    for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
        p.grp = grp;
        gemm(p, g.cog(), g.n * g.out_spatial(), g.cig() * g.taps());
    }
}

// Input gradient as `Problem` (ConvBackwardInput, or ConvBackwardInputNhwc with gy
// converted), plus `bias` per input channel when not null (the transposed
// convolution), one GEMM per group and stride phase. Grid: (column tiles of the
// largest phase, batch*ceil(d/stride_d)*ceil(h/stride_h)*ceil(w/stride_w), row tiles
// of cig, groups*stride_d*stride_h*stride_w, looped when above the limit); the tiles
// past a smaller phase's columns store nothing.
template <template <typename> class Problem = ConvBackwardInput, typename T, typename Gemm>
__device__ __forceinline__ void conv_backward_input_run(const Gemm &gemm, const T *gy,
                                                        const T *w, const T *bias, T *gx,
                                                        const Dims &ga, const Dims &gb,
                                                        const Dims &gc) {
    Problem<T> p;
    p.gy = gy, p.w = w, p.bias = bias, p.gx = gx, p.g = conv_geom(ga, gb, gc);
    const ConvGeom &g = p.g;
    const int area = g.stride_h * g.stride_w, phases = g.stride_d * area;
    for (int z = blockIdx.z; z < g.groups * phases; z += gridDim.z) {
        int phase = z / g.groups;
        p.grp = z - phase * g.groups;
        int pz = phase / area, rest = phase - pz * area;
        p.set_phase(pz, rest / g.stride_w, rest % g.stride_w);
        gemm(p, g.cig(), p.columns(), p.depth());
    }
}

// Weight gradient of every batch chunk. Grid: (column tiles of cig*taps, row tiles of
// cog, groups*chunks, looped when above the limit); chunk c holds images
// [c*per_chunk, min((c+1)*per_chunk, n)).
template <typename T, typename Gemm>
__device__ __forceinline__ void conv_backward_weight_run(const Gemm &gemm, const T *x,
                                                         const T *gy,
                                                         typename ComputeOf<T>::type *partial,
                                                         const Dims &ga, const Dims &gb,
                                                         const Dims &gc, int per_chunk,
                                                         int chunks) {
    ConvBackwardWeight<T> p;
    p.x = x, p.gy = gy, p.partial = partial, p.g = conv_geom(ga, gb, gc);
    const ConvGeom &g = p.g;
    const int64_t weight_len = (int64_t)g.c_out * g.cig() * g.taps();
    for (int z = blockIdx.z; z < g.groups * chunks; z += gridDim.z) {
        int chunk = z / g.groups;
        p.grp = z - chunk * g.groups;
        p.img0 = chunk * per_chunk;
        p.chunk_offset = chunk * weight_len;
        int images = g.n - p.img0 < per_chunk ? g.n - p.img0 : per_chunk;
        gemm(p, g.cog(), g.cig() * g.taps(), images * g.out_spatial());
    }
}
