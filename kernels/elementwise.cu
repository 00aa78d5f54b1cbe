// Elementwise ops over strided, broadcast operands; the output is contiguous.
//
// One kernel per dtype and family; the op is a launch argument (a uniform branch, so
// it costs nothing next to the memory traffic) to keep the PTX small. The host reads
// the op codes from the enums below (build.rs generates `kernels::op_code`), so an
// enumerator is named PREFIX_OPNAME after the Rust op. Every switch on an op code lists
// its cases and traps on any other code: a code the kernel does not know fails the
// launch instead of computing some other op.
// f16/bf16 compute in f32, like the CPU backend, so results agree bit for bit where
// the math is IEEE-exact (add, sub, mul, div, comparisons).
#include "common.cuh"

enum UnaryCode {
    U_NEG = 0, U_EXP, U_LOG, U_SQRT, U_RELU, U_SIGMOID, U_TANH, U_ABS,
    U_ADD_SCALAR, U_MUL_SCALAR, U_DIV_SCALAR, U_POW_SCALAR,
    U_GELU, U_GELU_GRAD, U_GELU_TANH, U_GELU_TANH_GRAD, U_LEAKY_RELU, U_LEAKY_RELU_GRAD,
    U_SILU, U_SILU_GRAD, U_SOFTPLUS, U_SOFTPLUS_GRAD,
    U_SIN, U_COS,
    U_FLOOR, U_CEIL, U_ROUND, U_TRUNC, U_SIGN, U_ERF, U_LOG1P, U_EXPM1, U_RECIPROCAL, U_SQUARE,
    U_EXP2, U_LOG2,
    U_HARDSWISH, U_HARDSWISH_GRAD, U_HARDSIGMOID, U_HARDSIGMOID_GRAD, U_HARDTANH, U_HARDTANH_GRAD,
    U_ELU, U_ELU_GRAD, U_SELU, U_SELU_GRAD, U_CELU, U_CELU_GRAD, U_MISH, U_MISH_GRAD,
    U_LOG_SIGMOID, U_LOG_SIGMOID_GRAD, U_SOFTSIGN, U_SOFTSIGN_GRAD,
    U_SMOOTH_L1, U_SMOOTH_L1_GRAD, U_HUBER, U_HUBER_GRAD,
};
enum BinaryCode {
    B_ADD = 0, B_SUB, B_MUL, B_DIV, B_MAXIMUM, B_MINIMUM,
    B_ATAN2, B_BINARY_CROSS_ENTROPY, B_BINARY_CROSS_ENTROPY_GRAD,
};
enum CmpCode { C_EQ = 0, C_NE, C_LT, C_LE, C_GT, C_GE };

__device__ __forceinline__ float k_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double k_sqrt(double x) { return sqrt(x); }
__device__ __forceinline__ float k_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double k_abs(double x) { return fabs(x); }
// PyTorch's pow: sqrt for the exponent 0.5 and 1 / sqrt for -0.5, as it computes them
// (they differ from pow at -inf and -0), as the CPU does.
__device__ __forceinline__ float k_pow(float x, float e) {
    return e == 0.5f ? sqrtf(x) : e == -0.5f ? 1.0f / sqrtf(x) : powf(x, e);
}
__device__ __forceinline__ double k_pow(double x, double e) {
    return e == 0.5 ? sqrt(x) : e == -0.5 ? 1.0 / sqrt(x) : pow(x, e);
}
__device__ __forceinline__ float k_erf(float x) { return erff(x); }
__device__ __forceinline__ double k_erf(double x) { return erf(x); }
__device__ __forceinline__ float k_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double k_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float k_sin(float x) { return sinf(x); }
__device__ __forceinline__ double k_sin(double x) { return sin(x); }
__device__ __forceinline__ float k_cos(float x) { return cosf(x); }
__device__ __forceinline__ double k_cos(double x) { return cos(x); }
__device__ __forceinline__ float k_floor(float x) { return floorf(x); }
__device__ __forceinline__ double k_floor(double x) { return floor(x); }
__device__ __forceinline__ float k_ceil(float x) { return ceilf(x); }
__device__ __forceinline__ double k_ceil(double x) { return ceil(x); }
// rint rounds halves to even (the default rounding mode), as PyTorch's round.
__device__ __forceinline__ float k_rint(float x) { return rintf(x); }
__device__ __forceinline__ double k_rint(double x) { return rint(x); }
__device__ __forceinline__ float k_trunc(float x) { return truncf(x); }
__device__ __forceinline__ double k_trunc(double x) { return trunc(x); }
__device__ __forceinline__ float k_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double k_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float k_exp2(float x) { return exp2f(x); }
__device__ __forceinline__ double k_exp2(double x) { return exp2(x); }
__device__ __forceinline__ float k_log2(float x) { return log2f(x); }
__device__ __forceinline__ double k_log2(double x) { return log2(x); }
__device__ __forceinline__ float k_atan2(float y, float x) { return atan2f(y, x); }
__device__ __forceinline__ double k_atan2(double y, double x) { return atan2(y, x); }

// GELU and its derivatives, term by term as the CPU backend writes them (gelu_tanh
// itself is in common.cuh, shared with the GEMM epilogue).
#define KILN_FRAC_1_SQRT_2 0.7071067811865476
#define KILN_INV_SQRT_2PI 0.3989422804014327

template <typename C> __device__ __forceinline__ C gelu(C x) {
    return (C)0.5 * x * ((C)1 + k_erf(x * (C)KILN_FRAC_1_SQRT_2));
}
template <typename C> __device__ __forceinline__ C gelu_grad(C x) {
    C cdf = (C)0.5 * ((C)1 + k_erf(x * (C)KILN_FRAC_1_SQRT_2));
    C pdf = (C)KILN_INV_SQRT_2PI * k_exp(-((C)0.5 * x * x));
    return cdf + x * pdf;
}
template <typename C> __device__ __forceinline__ C gelu_tanh_grad(C x) {
    C k = (C)KILN_SQRT_2_OVER_PI, a = (C)KILN_GELU_CUBIC;
    C t = k_tanh(k * (x + a * x * x * x));
    C du = k * ((C)1 + (C)3 * a * x * x);
    return (C)0.5 * ((C)1 + t) + (C)0.5 * x * ((C)1 - t * t) * du;
}

// The activations, their derivatives and the pointwise losses: the same branches,
// comparisons (so NaN takes the same branch) and constants as the CPU backend's
// src/backend/cpu/elementwise/formulas.rs, which follows PyTorch's CPU kernels.

// min(max(v, 0), 6), NaN passing through.
template <typename C> __device__ __forceinline__ C clamp_0_6(C v) {
    return v < (C)0 ? (C)0 : ((C)6 < v ? (C)6 : v);
}
template <typename C> __device__ __forceinline__ C hardswish_grad(C x) {
    return x <= (C)-3 ? (C)0 : (x < (C)3 ? x / (C)3 + (C)0.5 : (C)1);
}
// PyTorch's backward holds 1/6 as the f32 constant 1.0f / 6.0f for every dtype.
template <typename C> __device__ __forceinline__ C hardsigmoid_grad(C x) {
    return (x > (C)-3 && x < (C)3) ? (C)(1.0f / 6.0f) : (C)0;
}
template <typename C> __device__ __forceinline__ C hardtanh(C x, C lo, C hi) {
    C low = x < lo ? lo : x;
    return hi < low ? hi : low;
}

// PyTorch's general ELU: x * pos where x > 0, else expm1(x * in) * neg, with
// neg = alpha * scale (rounded in C) and in = input_scale; elu is (alpha, 1, 1),
// selu (SELU_ALPHA, SELU_SCALE, 1), celu (alpha, 1, 1/alpha with 1/alpha in double).
#define KILN_SELU_ALPHA 1.6732632423543772
#define KILN_SELU_SCALE 1.0507009873554805
template <typename C> __device__ __forceinline__ C elu(C x, C neg, C in, C pos) {
    return x <= (C)0 ? k_expm1(x * in) * neg : x * pos;
}
template <typename C> __device__ __forceinline__ C elu_grad(C x, C neg, C in, C pos) {
    return x <= (C)0 ? in * neg * k_exp(x * in) : pos;
}
template <typename C> __device__ __forceinline__ C selu_neg() {
    return (C)KILN_SELU_ALPHA * (C)KILN_SELU_SCALE;
}

template <typename C> __device__ __forceinline__ C mish_grad(C x) {
    C sig = (C)1 / ((C)1 + k_exp(-x));
    C t = k_tanh(k_log1p(k_exp(x)));
    return t + x * sig * ((C)1 - t * t);
}
// min(x, 0) - log1p(e^-|x|), and its derivative sigma(-x) from z = e^-|x|.
template <typename C> __device__ __forceinline__ C log_sigmoid(C x) {
    return (x < (C)0 ? x : (C)0) - k_log1p(k_exp(-k_abs(x)));
}
template <typename C> __device__ __forceinline__ C log_sigmoid_grad(C x) {
    C z = k_exp(-k_abs(x));
    C q = z / ((C)1 + z);
    return x < (C)0 ? (C)1 - q : q;
}
// NaN at ±inf, as PyTorch's composition x / (1 + |x|) differentiates there (inf/inf).
template <typename C> __device__ __forceinline__ C softsign_grad(C x) {
    if (k_abs(x) == (C)INFINITY) return (C)NAN;
    C d = (C)1 + k_abs(x);
    return (C)1 / (d * d);
}
template <typename C> __device__ __forceinline__ C smooth_l1(C d, C beta) {
    C z = k_abs(d);
    return z < beta ? (C)0.5 * z * z / beta : z - (C)0.5 * beta;
}
template <typename C> __device__ __forceinline__ C smooth_l1_grad(C d, C beta) {
    return d <= -beta ? (C)-1 : (d >= beta ? (C)1 : d / beta);
}
template <typename C> __device__ __forceinline__ C huber(C d, C delta) {
    C z = k_abs(d);
    return z < delta ? (C)0.5 * z * z : delta * (z - (C)0.5 * delta);
}
template <typename C> __device__ __forceinline__ C huber_grad(C d, C delta) {
    return d <= -delta ? -delta : (d >= delta ? delta : d);
}
// (x > 0) - (x < 0): 0 for both zeros and for NaN, as PyTorch.
template <typename C> __device__ __forceinline__ C sign_of(C x) {
    return x > (C)0 ? (C)1 : (x < (C)0 ? (C)-1 : (C)0);
}

template <typename C> __device__ __forceinline__ C unary_float(uint32_t op, C x, C s, C s2) {
    switch (op) {
    case U_NEG: return -x;
    case U_EXP: return k_exp(x);
    case U_LOG: return k_log(x);
    case U_SQRT: return k_sqrt(x);
    case U_RELU: return x <= (C)0 ? (C)0 : x; // NaN passes through, as on the CPU
    case U_SIGMOID: return (C)1 / ((C)1 + k_exp(-x));
    case U_TANH: return k_tanh(x);
    case U_ABS: return k_abs(x);
    case U_ADD_SCALAR: return x + s;
    case U_MUL_SCALAR: return x * s;
    case U_DIV_SCALAR: return x / s;
    case U_POW_SCALAR: return k_pow(x, s);
    case U_GELU: return gelu(x);
    case U_GELU_GRAD: return gelu_grad(x);
    case U_GELU_TANH: return gelu_tanh(x);
    case U_GELU_TANH_GRAD: return gelu_tanh_grad(x);
    // `x > 0` is false for NaN, so NaN·s stays NaN, as on the CPU.
    case U_LEAKY_RELU: return x > (C)0 ? x : x * s;
    case U_LEAKY_RELU_GRAD: return x > (C)0 ? (C)1 : s;
    case U_SILU: return x / ((C)1 + k_exp(-x));
    case U_SILU_GRAD: {
        C sig = (C)1 / ((C)1 + k_exp(-x));
        return sig * ((C)1 + x * ((C)1 - sig));
    }
    // PyTorch's softplus at beta 1: linear above the threshold s, log1p(e^x) below.
    case U_SOFTPLUS: return x > s ? x : k_log1p(k_exp(x));
    case U_SOFTPLUS_GRAD: return x > s ? (C)1 : (C)1 / ((C)1 + k_exp(-x));
    case U_SIN: return k_sin(x);
    case U_COS: return k_cos(x);
    case U_FLOOR: return k_floor(x);
    case U_CEIL: return k_ceil(x);
    case U_ROUND: return k_rint(x);
    case U_TRUNC: return k_trunc(x);
    case U_SIGN: return sign_of(x);
    case U_ERF: return k_erf(x);
    case U_LOG1P: return k_log1p(x);
    case U_EXPM1: return k_expm1(x);
    case U_RECIPROCAL: return (C)1 / x;
    case U_SQUARE: return x * x;
    case U_EXP2: return k_exp2(x);
    case U_LOG2: return k_log2(x);
    case U_HARDSWISH: return x * clamp_0_6(x + (C)3) / (C)6;
    case U_HARDSWISH_GRAD: return hardswish_grad(x);
    case U_HARDSIGMOID: return clamp_0_6(x + (C)3) / (C)6;
    case U_HARDSIGMOID_GRAD: return hardsigmoid_grad(x);
    case U_HARDTANH: return hardtanh(x, s, s2);
    case U_HARDTANH_GRAD: return (x <= s || x >= s2) ? (C)0 : (C)1;
    case U_ELU: return elu(x, s, (C)1, (C)1);
    case U_ELU_GRAD: return elu_grad(x, s, (C)1, (C)1);
    case U_SELU: return elu(x, selu_neg<C>(), (C)1, (C)KILN_SELU_SCALE);
    case U_SELU_GRAD: return elu_grad(x, selu_neg<C>(), (C)1, (C)KILN_SELU_SCALE);
    case U_CELU: return elu(x, s, s2, (C)1);
    case U_CELU_GRAD: return elu_grad(x, s, s2, (C)1);
    case U_MISH: return x * k_tanh(k_log1p(k_exp(x)));
    case U_MISH_GRAD: return mish_grad(x);
    case U_LOG_SIGMOID: return log_sigmoid(x);
    case U_LOG_SIGMOID_GRAD: return log_sigmoid_grad(x);
    case U_SOFTSIGN: return x / ((C)1 + k_abs(x));
    case U_SOFTSIGN_GRAD: return softsign_grad(x);
    case U_SMOOTH_L1: return smooth_l1(x, s);
    case U_SMOOTH_L1_GRAD: return smooth_l1_grad(x, s);
    case U_HUBER: return huber(x, s);
    case U_HUBER_GRAD: return huber_grad(x, s);
    default: __trap(); return x;
    }
}

// Integer ops wrap like Rust's wrapping_*; the arithmetic is done unsigned because
// signed overflow is undefined in C++. `s` is the exact integer scalar; the cast to T
// wraps it modulo 2^bits (U8 + (-1) subtracts one, as in PyTorch).
__device__ __forceinline__ bool is_negative(int64_t x) { return x < 0; }
__device__ __forceinline__ bool is_negative(uint8_t) { return false; }

template <typename T> __device__ __forceinline__ T unary_int(uint32_t op, T x, int64_t s) {
    typedef unsigned long long U;
    switch (op) {
    case U_NEG: return (T)(0ull - (U)x);
    case U_RELU: return is_negative(x) ? (T)0 : x;
    case U_ABS: return is_negative(x) ? (T)(0ull - (U)x) : x;
    case U_ADD_SCALAR: return (T)((U)x + (U)s);
    case U_MUL_SCALAR: return (T)((U)x * (U)s);
    case U_FLOOR: case U_CEIL: case U_ROUND: case U_TRUNC: return x; // already whole
    case U_SIGN: return is_negative(x) ? (T)-1 : (x > (T)0 ? (T)1 : (T)0);
    case U_SQUARE: return (T)((U)x * (U)x);
    // Refused for integers on the host; reaching one here is a host bug.
    case U_EXP: case U_LOG: case U_SQRT: case U_SIGMOID: case U_TANH: case U_DIV_SCALAR:
    case U_POW_SCALAR: case U_GELU: case U_GELU_GRAD: case U_GELU_TANH: case U_GELU_TANH_GRAD:
    case U_LEAKY_RELU: case U_LEAKY_RELU_GRAD: case U_SILU: case U_SILU_GRAD: case U_SOFTPLUS:
    case U_SOFTPLUS_GRAD: case U_SIN: case U_COS: case U_ERF: case U_LOG1P: case U_EXPM1:
    case U_RECIPROCAL: case U_EXP2: case U_LOG2: case U_HARDSWISH: case U_HARDSWISH_GRAD:
    case U_HARDSIGMOID: case U_HARDSIGMOID_GRAD: case U_HARDTANH: case U_HARDTANH_GRAD: case U_ELU:
    case U_ELU_GRAD: case U_SELU: case U_SELU_GRAD: case U_CELU: case U_CELU_GRAD: case U_MISH:
    case U_MISH_GRAD: case U_LOG_SIGMOID: case U_LOG_SIGMOID_GRAD: case U_SOFTSIGN:
    case U_SOFTSIGN_GRAD: case U_SMOOTH_L1: case U_SMOOTH_L1_GRAD: case U_HUBER: case U_HUBER_GRAD:
    default: __trap(); return x;
    }
}

template <typename T>
__device__ __forceinline__ void unary_float_impl(uint64_t n, int rank, const Dims &dims,
                                                 const T *x, const Strides &xs, T *out,
                                                 uint32_t op, double s, double s2) {
    typedef typename ComputeOf<T>::type C;
    C sc = (C)s, sc2 = (C)s2;
    KILN_FOR_EACH(i, n) {
        out[i] = narrow<T>(unary_float<C>(op, widen(x[offset1(i, n, rank, dims, xs)]), sc, sc2));
    }
}

template <typename T>
__device__ __forceinline__ void unary_int_impl(uint64_t n, int rank, const Dims &dims,
                                               const T *x, const Strides &xs, T *out,
                                               uint32_t op, int64_t s) {
    KILN_FOR_EACH(i, n) { out[i] = unary_int<T>(op, x[offset1(i, n, rank, dims, xs)], s); }
}

extern "C" __global__ void unary_f32(uint64_t n, int rank, Dims dims, const float *x, Strides xs, float *out, uint32_t op, double s, double s2, int64_t si) { unary_float_impl(n, rank, dims, x, xs, out, op, s, s2); }
extern "C" __global__ void unary_f64(uint64_t n, int rank, Dims dims, const double *x, Strides xs, double *out, uint32_t op, double s, double s2, int64_t si) { unary_float_impl(n, rank, dims, x, xs, out, op, s, s2); }
extern "C" __global__ void unary_f16(uint64_t n, int rank, Dims dims, const f16 *x, Strides xs, f16 *out, uint32_t op, double s, double s2, int64_t si) { unary_float_impl(n, rank, dims, x, xs, out, op, s, s2); }
extern "C" __global__ void unary_bf16(uint64_t n, int rank, Dims dims, const bf16 *x, Strides xs, bf16 *out, uint32_t op, double s, double s2, int64_t si) { unary_float_impl(n, rank, dims, x, xs, out, op, s, s2); }
extern "C" __global__ void unary_i64(uint64_t n, int rank, Dims dims, const int64_t *x, Strides xs, int64_t *out, uint32_t op, double s, double s2, int64_t si) { unary_int_impl(n, rank, dims, x, xs, out, op, si); }
extern "C" __global__ void unary_u8(uint64_t n, int rank, Dims dims, const uint8_t *x, Strides xs, uint8_t *out, uint32_t op, double s, double s2, int64_t si) { unary_int_impl(n, rank, dims, x, xs, out, op, si); }

template <typename C> __device__ __forceinline__ C binary_float(uint32_t op, C a, C b) {
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_MAXIMUM: return (a != a || a > b) ? a : b; // NaN propagates from either side
    case B_MINIMUM: return (a != a || a < b) ? a : b;
    case B_ATAN2: return k_atan2(a, b);
    // PyTorch's form, NaN passing through the clamps as through std::max.
    case B_BINARY_CROSS_ENTROPY: {
        C lp = k_log(a), l1p = k_log1p(-a);
        lp = lp < (C)-100 ? (C)-100 : lp;
        l1p = l1p < (C)-100 ? (C)-100 : l1p;
        return (b - (C)1) * l1p - b * lp;
    }
    case B_BINARY_CROSS_ENTROPY_GRAD: {
        C v = ((C)1 - a) * a;
        // PyTorch's EPSILON: the float nearest 1e-12, for double too.
        return (a - b) / (v < (C)1e-12f ? (C)1e-12f : v);
    }
    default: __trap(); return a;
    }
}

template <typename T> __device__ __forceinline__ T binary_int(uint32_t op, T a, T b) {
    typedef unsigned long long U;
    switch (op) {
    case B_ADD: return (T)((U)a + (U)b);
    case B_SUB: return (T)((U)a - (U)b);
    case B_MUL: return (T)((U)a * (U)b);
    case B_MAXIMUM: return a > b ? a : b;
    case B_MINIMUM: return a < b ? a : b;
    // Refused for integers on the host (BinaryOp::check_dtype); reaching one is a host bug.
    case B_DIV: case B_ATAN2: case B_BINARY_CROSS_ENTROPY: case B_BINARY_CROSS_ENTROPY_GRAD:
    default: __trap(); return a;
    }
}

template <typename T> __device__ __forceinline__ T binary_apply(uint32_t op, T a, T b) {
    typedef typename ComputeOf<T>::type C;
    return narrow<T>(binary_float<C>(op, widen(a), widen(b)));
}
template <> __device__ __forceinline__ int64_t binary_apply(uint32_t op, int64_t a, int64_t b) {
    return binary_int(op, a, b);
}
template <> __device__ __forceinline__ uint8_t binary_apply(uint32_t op, uint8_t a, uint8_t b) {
    return binary_int(op, a, b);
}

template <typename T>
__device__ __forceinline__ void binary_impl(uint64_t n, int rank, const Dims &dims, const T *a,
                                            const Strides &as, const T *b, const Strides &bs,
                                            T *out, uint32_t op) {
    KILN_FOR_EACH(i, n) {
        int64_t oa, ob;
        offsets2(i, n, rank, dims, as, bs, oa, ob);
        out[i] = binary_apply<T>(op, a[oa], b[ob]);
    }
}

extern "C" __global__ void binary_f32(uint64_t n, int rank, Dims dims, const float *a, Strides as, const float *b, Strides bs, float *out, uint32_t op) { binary_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void binary_f64(uint64_t n, int rank, Dims dims, const double *a, Strides as, const double *b, Strides bs, double *out, uint32_t op) { binary_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void binary_f16(uint64_t n, int rank, Dims dims, const f16 *a, Strides as, const f16 *b, Strides bs, f16 *out, uint32_t op) { binary_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void binary_bf16(uint64_t n, int rank, Dims dims, const bf16 *a, Strides as, const bf16 *b, Strides bs, bf16 *out, uint32_t op) { binary_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void binary_i64(uint64_t n, int rank, Dims dims, const int64_t *a, Strides as, const int64_t *b, Strides bs, int64_t *out, uint32_t op) { binary_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void binary_u8(uint64_t n, int rank, Dims dims, const uint8_t *a, Strides as, const uint8_t *b, Strides bs, uint8_t *out, uint32_t op) { binary_impl(n, rank, dims, a, as, b, bs, out, op); }

template <typename C> __device__ __forceinline__ uint8_t compare_apply(uint32_t op, C a, C b) {
    switch (op) {
    case C_EQ: return a == b;
    case C_NE: return a != b;
    case C_LT: return a < b;
    case C_LE: return a <= b;
    case C_GT: return a > b;
    case C_GE: return a >= b;
    default: __trap(); return 0;
    }
}

template <typename T>
__device__ __forceinline__ void compare_impl(uint64_t n, int rank, const Dims &dims, const T *a,
                                             const Strides &as, const T *b, const Strides &bs,
                                             uint8_t *out, uint32_t op) {
    KILN_FOR_EACH(i, n) {
        int64_t oa, ob;
        offsets2(i, n, rank, dims, as, bs, oa, ob);
        out[i] = compare_apply(op, widen(a[oa]), widen(b[ob]));
    }
}

extern "C" __global__ void compare_f32(uint64_t n, int rank, Dims dims, const float *a, Strides as, const float *b, Strides bs, uint8_t *out, uint32_t op) { compare_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void compare_f64(uint64_t n, int rank, Dims dims, const double *a, Strides as, const double *b, Strides bs, uint8_t *out, uint32_t op) { compare_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void compare_f16(uint64_t n, int rank, Dims dims, const f16 *a, Strides as, const f16 *b, Strides bs, uint8_t *out, uint32_t op) { compare_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void compare_bf16(uint64_t n, int rank, Dims dims, const bf16 *a, Strides as, const bf16 *b, Strides bs, uint8_t *out, uint32_t op) { compare_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void compare_i64(uint64_t n, int rank, Dims dims, const int64_t *a, Strides as, const int64_t *b, Strides bs, uint8_t *out, uint32_t op) { compare_impl(n, rank, dims, a, as, b, bs, out, op); }
extern "C" __global__ void compare_u8(uint64_t n, int rank, Dims dims, const uint8_t *a, Strides as, const uint8_t *b, Strides bs, uint8_t *out, uint32_t op) { compare_impl(n, rank, dims, a, as, b, bs, out, op); }
