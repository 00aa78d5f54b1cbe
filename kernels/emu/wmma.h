// nvcuda::wmma for host-compiled kernels: fragments distributed over the 32 lanes of a
// warp, as on the GPU. A fragment of an R x C tile holds R*C/32 elements per lane; lane
// L holds elements L, L + 32, L + 64, ... of the tile in row-major order. (CUDA leaves
// the mapping unspecified; kernels may only rely on the API, which this mapping keeps.)
// `mma_sync` gathers the A and B fragments of all lanes through the scheduler, so a
// lane that skips it deadlocks the warp, which the emulator reports, as on the GPU
// where that is undefined behaviour.
#pragma once

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

// Rows and columns of the tile a fragment holds.
template <typename Use, int M, int N, int K> struct Shape;
template <int M, int N, int K> struct Shape<matrix_a, M, N, K> {
    static const int rows = M, cols = K;
};
template <int M, int N, int K> struct Shape<matrix_b, M, N, K> {
    static const int rows = K, cols = N;
};
template <int M, int N, int K> struct Shape<accumulator, M, N, K> {
    static const int rows = M, cols = N;
};

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
struct fragment {
    typedef Shape<Use, M, N, K> shape;
    static const int num_elements = shape::rows * shape::cols / 32;
    T x[num_elements];
};

inline float to_float(float v) { return v; }
inline float to_float(__half v) { return __half2float(v); }
inline float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> inline T from_float(float v);
template <> inline float from_float<float>(float v) { return v; }
template <> inline __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// Element i of this lane's part: its row and column in the tile.
template <int Cols> inline void position(int i, int &row, int &col) {
    int e = (int)kiln_emu::g_thread->lane + 32 * i;
    row = e / Cols;
    col = e % Cols;
}

inline bool is_row_major(row_major) { return true; }
inline bool is_row_major(col_major) { return false; }
inline bool is_row_major(layout_t l) { return l == mem_row_major; }

template <typename F, typename T, typename L>
inline void load_elements(F &f, const T *p, unsigned ldm, L layout) {
    for (int i = 0; i < F::num_elements; ++i) {
        int r, c;
        position<F::shape::cols>(i, r, c);
        f.x[i] = is_row_major(layout) ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
    }
}

template <typename Use, int M, int N, int K, typename T, typename Layout, typename P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const P *p, unsigned ldm) {
    load_elements(f, p, ldm, Layout());
}

template <int M, int N, int K, typename T, typename P>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const P *p, unsigned ldm,
                             layout_t layout) {
    load_elements(f, p, ldm, layout);
}

template <int M, int N, int K, typename T, typename P>
inline void store_matrix_sync(P *p, const fragment<accumulator, M, N, K, T> &f, unsigned ldm,
                              layout_t layout) {
    for (int i = 0; i < f.num_elements; ++i) {
        int r, c;
        position<N>(i, r, c);
        P &dst = layout == mem_row_major ? p[(size_t)r * ldm + c] : p[(size_t)c * ldm + r];
        dst = f.x[i];
    }
}

template <typename F, typename V> inline void fill_fragment(F &f, V v) {
    for (int i = 0; i < F::num_elements; ++i) f.x[i] = v;
}

// D = A * B + C with f32 products and accumulation, each lane computing its elements of
// D from every lane's A and B elements.
template <int M, int N, int K, typename T, typename LA, typename LB, typename Acc>
inline void mma_sync(fragment<accumulator, M, N, K, Acc> &d,
                     const fragment<matrix_a, M, N, K, T, LA> &a,
                     const fragment<matrix_b, M, N, K, T, LB> &b,
                     const fragment<accumulator, M, N, K, Acc> &c) {
    struct Parts {
        T a[M * K / 32];
        T b[K * N / 32];
    };
    static_assert(sizeof(Parts) <= kiln_emu::kMaxExchange, "fragments fit one exchange");
    Parts mine, all[32];
    memcpy(mine.a, a.x, sizeof mine.a);
    memcpy(mine.b, b.x, sizeof mine.b);
    if (kiln_emu::warp_all_gather(0xffffffffu, &mine, (int)sizeof mine, all) != 0xffffffffu)
        kiln_emu::fail("wmma::mma_sync needs all 32 lanes of the warp");
    for (int i = 0; i < d.num_elements; ++i) {
        int r, col;
        position<N>(i, r, col);
        float sum = to_float(c.x[i]);
        for (int k = 0; k < K; ++k) {
            int ea = r * K + k, eb = k * N + col;
            sum = fmaf(to_float(all[ea % 32].a[ea / 32]), to_float(all[eb % 32].b[eb / 32]), sum);
        }
        d.x[i] = from_float<Acc>(sum);
    }
}

} // namespace wmma
} // namespace nvcuda
