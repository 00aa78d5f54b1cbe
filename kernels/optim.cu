// Fused optimizer steps: one pass reads each element of the parameter, its gradient
// and its state once and writes the parameter and the state back in place, instead of
// the ~14 elementwise launches (and temporaries) of the unfused update. The rules are
// torch.optim's single-tensor ones, term by term as src/backend/cpu/optim.rs (the
// reference) writes them; f16/bf16 compute in f32, the f64 scalars are converted to
// the compute type once per thread.
//
// Thread mapping: a grid-stride loop, one element per iteration. The update is pure
// streaming (no reuse, no reduction), so the only goal is coalesced access: thread i
// touches element i of every operand. The parameter and the gradient may be strided
// (merged dims, `offsets2`); the state buffers are contiguous in the parameter's
// row-major order. An absent optional state (momentum buffer, v_max) is a null
// pointer: a uniform branch.
#include "common.cuh"

__device__ __forceinline__ float k_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double k_sqrt(double x) { return sqrt(x); }

// SGD: g += wd*p; buf = first ? g : momentum*buf + (1-dampening)*g;
// g = nesterov ? g + momentum*buf : buf; p -= lr*g.
template <typename T>
__device__ __forceinline__ void sgd_impl(uint64_t n, int rank, const Dims &dims, T *p,
                                         const Strides &ps, const T *g, const Strides &gs,
                                         T *buf, double lr, double momentum, double dampening,
                                         double weight_decay, int nesterov, int first) {
    typedef typename ComputeOf<T>::type C;
    const C lr_c = (C)lr, mom = (C)momentum, grad_scale = (C)(1.0 - dampening);
    const C wd = (C)weight_decay;
    KILN_FOR_EACH(i, n) {
        int64_t op, og;
        offsets2(i, n, rank, dims, ps, gs, op, og);
        C pv = widen(p[op]);
        C gv = widen(g[og]);
        if (weight_decay != 0.0) gv = gv + wd * pv;
        if (buf != nullptr) {
            C b = first ? gv : mom * widen(buf[i]) + grad_scale * gv;
            buf[i] = narrow<T>(b);
            gv = nesterov ? gv + mom * b : b;
        }
        p[op] = narrow<T>(pv - lr_c * gv);
    }
}

// Adam / AdamW: decoupled ? p *= 1 - lr*wd : g += wd*p; m = b1*m + (1-b1)*g;
// v = b2*v + (1-b2)*g*g; v_max = max(v_max, v) (NaN wins, as torch.maximum);
// p -= m / (sqrt(v_max or v) / bias2_sqrt + eps) * step_size.
template <typename T>
__device__ __forceinline__ void adam_impl(uint64_t n, int rank, const Dims &dims, T *p,
                                          const Strides &ps, const T *g, const Strides &gs,
                                          T *m, T *v, T *vmax, double lr, double beta1,
                                          double beta2, double eps, double weight_decay,
                                          int decoupled, double step_size, double bias2_sqrt) {
    typedef typename ComputeOf<T>::type C;
    const C decay = (C)(1.0 - lr * weight_decay), wd = (C)weight_decay;
    const C b1 = (C)beta1, omb1 = (C)(1.0 - beta1), b2 = (C)beta2, omb2 = (C)(1.0 - beta2);
    const C eps_c = (C)eps, step = (C)step_size, bc2 = (C)bias2_sqrt;
    KILN_FOR_EACH(i, n) {
        int64_t op, og;
        offsets2(i, n, rank, dims, ps, gs, op, og);
        C pv = widen(p[op]);
        C gv = widen(g[og]);
        if (weight_decay != 0.0) {
            if (decoupled) pv = pv * decay;
            else gv = gv + wd * pv;
        }
        C mv = widen(m[i]) * b1 + gv * omb1;
        C vv = widen(v[i]) * b2 + gv * gv * omb2;
        C vd = vv;
        if (vmax != nullptr) {
            C prev = widen(vmax[i]);
            vd = (vv > prev || vv != vv) ? vv : prev;
            vmax[i] = narrow<T>(vd);
        }
        C denom = k_sqrt(vd) / bc2 + eps_c;
        p[op] = narrow<T>(pv - mv / denom * step);
        m[i] = narrow<T>(mv);
        v[i] = narrow<T>(vv);
    }
}

extern "C" __global__ void sgd_f32(uint64_t n, int rank, Dims dims, float *p, Strides ps, const float *g, Strides gs, float *buf, double lr, double momentum, double dampening, double weight_decay, int nesterov, int first) { sgd_impl(n, rank, dims, p, ps, g, gs, buf, lr, momentum, dampening, weight_decay, nesterov, first); }
extern "C" __global__ void sgd_f64(uint64_t n, int rank, Dims dims, double *p, Strides ps, const double *g, Strides gs, double *buf, double lr, double momentum, double dampening, double weight_decay, int nesterov, int first) { sgd_impl(n, rank, dims, p, ps, g, gs, buf, lr, momentum, dampening, weight_decay, nesterov, first); }
extern "C" __global__ void sgd_f16(uint64_t n, int rank, Dims dims, f16 *p, Strides ps, const f16 *g, Strides gs, f16 *buf, double lr, double momentum, double dampening, double weight_decay, int nesterov, int first) { sgd_impl(n, rank, dims, p, ps, g, gs, buf, lr, momentum, dampening, weight_decay, nesterov, first); }
extern "C" __global__ void sgd_bf16(uint64_t n, int rank, Dims dims, bf16 *p, Strides ps, const bf16 *g, Strides gs, bf16 *buf, double lr, double momentum, double dampening, double weight_decay, int nesterov, int first) { sgd_impl(n, rank, dims, p, ps, g, gs, buf, lr, momentum, dampening, weight_decay, nesterov, first); }

extern "C" __global__ void adam_f32(uint64_t n, int rank, Dims dims, float *p, Strides ps, const float *g, Strides gs, float *m, float *v, float *vmax, double lr, double beta1, double beta2, double eps, double weight_decay, int decoupled, double step_size, double bias2_sqrt) { adam_impl(n, rank, dims, p, ps, g, gs, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, bias2_sqrt); }
extern "C" __global__ void adam_f64(uint64_t n, int rank, Dims dims, double *p, Strides ps, const double *g, Strides gs, double *m, double *v, double *vmax, double lr, double beta1, double beta2, double eps, double weight_decay, int decoupled, double step_size, double bias2_sqrt) { adam_impl(n, rank, dims, p, ps, g, gs, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, bias2_sqrt); }
extern "C" __global__ void adam_f16(uint64_t n, int rank, Dims dims, f16 *p, Strides ps, const f16 *g, Strides gs, f16 *m, f16 *v, f16 *vmax, double lr, double beta1, double beta2, double eps, double weight_decay, int decoupled, double step_size, double bias2_sqrt) { adam_impl(n, rank, dims, p, ps, g, gs, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, bias2_sqrt); }
extern "C" __global__ void adam_bf16(uint64_t n, int rank, Dims dims, bf16 *p, Strides ps, const bf16 *g, Strides gs, bf16 *m, bf16 *v, bf16 *vmax, double lr, double beta1, double beta2, double eps, double weight_decay, int decoupled, double step_size, double bias2_sqrt) { adam_impl(n, rank, dims, p, ps, g, gs, m, v, vmax, lr, beta1, beta2, eps, weight_decay, decoupled, step_size, bias2_sqrt); }
