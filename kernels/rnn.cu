// The fused pointwise step of the recurrent layers (nn::RNN, LSTM, GRU): the gate
// nonlinearities and the state update of one time step, in one kernel, forward and
// backward. The reference is src/backend/cpu/rnn.rs (same formulas, same order).
//
// Operands, all contiguous and row-major: the input projection `gi` and the hidden
// projection `gh`, (N, G·H) with their biases added (G = 4 for the LSTM, gates i f g o;
// 3 for the GRU, gates r z n; 1 for the RNN), and the state `s` (N, H): the LSTM's
// cell state, the GRU's hidden state, unused by the RNN.
//   LSTM: i, f, g, o = σ, σ, tanh, σ of gi + gh;  c' = f·c + i·g;  h = o·tanh(c')
//         out (N, 2H) = [h | c'], saved (N, 5H) = [i | f | g | o | tanh c']
//   GRU:  r, z = σ(gi + gh);  n = tanh(gi_n + r·gh_n);  h' = n + z·(h - n)
//         out (N, H), saved (N, 4H) = [r | z | n | gh_n]
//   RNN:  h = tanh or relu of gi + gh;  out (N, H), saved (N, H) = h
// The backward reads the saved gates (it re-derives nothing), the previous state and the
// output's gradient `dout` (out's shape) and writes the gradient of gi (N, G·H), of gh
// (the GRU's only: for the others it equals gi's, and the host reuses it) and of s
// (N, H; not for the RNN).
//
// Thread mapping: a grid-stride loop over the N·H (row, unit) pairs; each thread reads
// the G gates of its unit and writes its outputs, so every value is read once.
// f16/bf16 compute in f32, f64 in f64, like the CPU backend.
#include "common.cuh"

enum RnnCellCode { R_LSTM = 0, R_GRU, R_RNN_TANH, R_RNN_RELU };

template <typename C> __device__ __forceinline__ C sigmoid(C x) { return (C)1 / ((C)1 + k_exp(-x)); }

template <typename T>
__device__ __forceinline__ void cell_fwd(uint64_t rows, uint64_t hidden, uint32_t code, const T *gi,
                                         const T *gh, const T *s, T *out, T *saved) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(k, rows * hidden) {
        const uint64_t n = k / hidden, j = k % hidden;
        switch (code) {
        case R_LSTM: {
            const uint64_t b = n * 4 * hidden + j;
            const C i = sigmoid(widen(gi[b]) + widen(gh[b]));
            const C f = sigmoid(widen(gi[b + hidden]) + widen(gh[b + hidden]));
            const C g = k_tanh(widen(gi[b + 2 * hidden]) + widen(gh[b + 2 * hidden]));
            const C o = sigmoid(widen(gi[b + 3 * hidden]) + widen(gh[b + 3 * hidden]));
            const C c = f * widen(s[k]) + i * g;
            const C tc = k_tanh(c);
            out[n * 2 * hidden + j] = narrow<T>(o * tc);
            out[n * 2 * hidden + hidden + j] = narrow<T>(c);
            T *sv = saved + n * 5 * hidden + j;
            sv[0] = narrow<T>(i);
            sv[hidden] = narrow<T>(f);
            sv[2 * hidden] = narrow<T>(g);
            sv[3 * hidden] = narrow<T>(o);
            sv[4 * hidden] = narrow<T>(tc);
            break;
        }
        case R_GRU: {
            const uint64_t b = n * 3 * hidden + j;
            const C r = sigmoid(widen(gi[b]) + widen(gh[b]));
            const C z = sigmoid(widen(gi[b + hidden]) + widen(gh[b + hidden]));
            const T hn = gh[b + 2 * hidden];
            const C nn = k_tanh(widen(gi[b + 2 * hidden]) + r * widen(hn));
            out[k] = narrow<T>(nn + z * (widen(s[k]) - nn));
            T *sv = saved + n * 4 * hidden + j;
            sv[0] = narrow<T>(r);
            sv[hidden] = narrow<T>(z);
            sv[2 * hidden] = narrow<T>(nn);
            sv[3 * hidden] = hn;
            break;
        }
        case R_RNN_TANH: out[k] = saved[k] = narrow<T>(k_tanh(widen(gi[k]) + widen(gh[k]))); break;
        case R_RNN_RELU: {
            const C x = widen(gi[k]) + widen(gh[k]);
            out[k] = saved[k] = narrow<T>(x > (C)0 ? x : (C)0);
            break;
        }
        default: __trap();
        }
    }
}

template <typename T>
__device__ __forceinline__ void cell_bwd(uint64_t rows, uint64_t hidden, uint32_t code, const T *saved,
                                         const T *s, const T *dout, T *dgi, T *dgh, T *ds) {
    typedef typename ComputeOf<T>::type C;
    KILN_FOR_EACH(k, rows * hidden) {
        const uint64_t n = k / hidden, j = k % hidden;
        switch (code) {
        case R_LSTM: {
            const T *sv = saved + n * 5 * hidden + j;
            const C i = widen(sv[0]), f = widen(sv[hidden]), g = widen(sv[2 * hidden]);
            const C o = widen(sv[3 * hidden]), tc = widen(sv[4 * hidden]);
            const C c0 = widen(s[k]);
            const C dh = widen(dout[n * 2 * hidden + j]);
            const C dc = widen(dout[n * 2 * hidden + hidden + j]) + dh * o * ((C)1 - tc * tc);
            const uint64_t b = n * 4 * hidden + j;
            dgi[b] = narrow<T>(dc * g * i * ((C)1 - i));
            dgi[b + hidden] = narrow<T>(dc * c0 * f * ((C)1 - f));
            dgi[b + 2 * hidden] = narrow<T>(dc * i * ((C)1 - g * g));
            dgi[b + 3 * hidden] = narrow<T>(dh * tc * o * ((C)1 - o));
            ds[k] = narrow<T>(dc * f);
            break;
        }
        case R_GRU: {
            const T *sv = saved + n * 4 * hidden + j;
            const C r = widen(sv[0]), z = widen(sv[hidden]), nn = widen(sv[2 * hidden]);
            const C hn = widen(sv[3 * hidden]);
            const C h = widen(s[k]), dh = widen(dout[k]);
            const C dpn = dh * ((C)1 - z) * ((C)1 - nn * nn);
            const C dpr = dpn * hn * r * ((C)1 - r);
            const C dpz = dh * (h - nn) * z * ((C)1 - z);
            const uint64_t b = n * 3 * hidden + j;
            dgi[b] = narrow<T>(dpr);
            dgi[b + hidden] = narrow<T>(dpz);
            dgi[b + 2 * hidden] = narrow<T>(dpn);
            dgh[b] = narrow<T>(dpr);
            dgh[b + hidden] = narrow<T>(dpz);
            dgh[b + 2 * hidden] = narrow<T>(dpn * r);
            ds[k] = narrow<T>(dh * z);
            break;
        }
        case R_RNN_TANH: {
            const C y = widen(saved[k]);
            dgi[k] = narrow<T>(widen(dout[k]) * ((C)1 - y * y));
            break;
        }
        case R_RNN_RELU: dgi[k] = widen(saved[k]) > (C)0 ? dout[k] : narrow<T>((C)0); break;
        default: __trap();
        }
    }
}

extern "C" __global__ void rnn_cell_fwd_f32(uint64_t rows, uint64_t hidden, uint32_t code, const float *gi, const float *gh, const float *s, float *out, float *saved) { cell_fwd(rows, hidden, code, gi, gh, s, out, saved); }
extern "C" __global__ void rnn_cell_fwd_f64(uint64_t rows, uint64_t hidden, uint32_t code, const double *gi, const double *gh, const double *s, double *out, double *saved) { cell_fwd(rows, hidden, code, gi, gh, s, out, saved); }
extern "C" __global__ void rnn_cell_fwd_f16(uint64_t rows, uint64_t hidden, uint32_t code, const f16 *gi, const f16 *gh, const f16 *s, f16 *out, f16 *saved) { cell_fwd(rows, hidden, code, gi, gh, s, out, saved); }
extern "C" __global__ void rnn_cell_fwd_bf16(uint64_t rows, uint64_t hidden, uint32_t code, const bf16 *gi, const bf16 *gh, const bf16 *s, bf16 *out, bf16 *saved) { cell_fwd(rows, hidden, code, gi, gh, s, out, saved); }

extern "C" __global__ void rnn_cell_bwd_f32(uint64_t rows, uint64_t hidden, uint32_t code, const float *saved, const float *s, const float *dout, float *dgi, float *dgh, float *ds) { cell_bwd(rows, hidden, code, saved, s, dout, dgi, dgh, ds); }
extern "C" __global__ void rnn_cell_bwd_f64(uint64_t rows, uint64_t hidden, uint32_t code, const double *saved, const double *s, const double *dout, double *dgi, double *dgh, double *ds) { cell_bwd(rows, hidden, code, saved, s, dout, dgi, dgh, ds); }
extern "C" __global__ void rnn_cell_bwd_f16(uint64_t rows, uint64_t hidden, uint32_t code, const f16 *saved, const f16 *s, const f16 *dout, f16 *dgi, f16 *dgh, f16 *ds) { cell_bwd(rows, hidden, code, saved, s, dout, dgi, dgh, ds); }
extern "C" __global__ void rnn_cell_bwd_bf16(uint64_t rows, uint64_t hidden, uint32_t code, const bf16 *saved, const bf16 *s, const bf16 *dout, bf16 *dgi, bf16 *dgh, bf16 *ds) { cell_bwd(rows, hidden, code, saved, s, dout, dgi, dgh, ds); }
