// __half and __nv_bfloat16 for host-compiled kernels: the GPU's bit layouts (IEEE
// binary16; the upper half of a binary32) and its conversions, rounding to nearest even
// as the `_rn` intrinsics do. NaN converts to the canonical NaN, as on the GPU.
#pragma once

#include <stdint.h>
#include <math.h>
#include <string.h>

struct __half {
    uint16_t __x;
};

struct __nv_bfloat16 {
    uint16_t __x;
};

inline uint32_t kiln_emu_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

inline float kiln_emu_bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

inline float __half2float(__half h) {
    uint32_t sign = (uint32_t)(h.__x & 0x8000u) << 16;
    uint32_t exp = (h.__x >> 10) & 0x1fu, man = h.__x & 0x3ffu;
    if (exp == 0x1f) return kiln_emu_bits_float(sign | 0x7f800000u | (man << 13));
    if (exp == 0) { // zero or subnormal: man * 2^-24, exact in f32
        float v = (float)man * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return kiln_emu_bits_float(sign | ((exp + 112) << 23) | (man << 13));
}

inline __half __float2half_rn(float f) {
    uint32_t u = kiln_emu_float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) { h.__x = 0x7fff; return h; }            // NaN
    if (a >= 0x477ff000u) { h.__x = sign | 0x7c00; return h; }    // rounds to infinity
    if (a < 0x38800000u) {                                        // half subnormal or zero
        // Scale so that one half-subnormal step is one unit, then round to nearest
        // even in f32 arithmetic (exact: the scaled value has few significant bits).
        float scaled = kiln_emu_bits_float(a) * 16777216.0f;
        float r = scaled + 12582912.0f - 12582912.0f; // 1.5 * 2^23: rounds to integer
        h.__x = sign | (uint16_t)r;
        return h;
    }
    uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u); // nearest even at bit 13
    h.__x = sign | (uint16_t)((rounded >> 13) - (112u << 10));
    return h;
}

inline float __bfloat162float(__nv_bfloat16 b) {
    return kiln_emu_bits_float((uint32_t)b.__x << 16);
}

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u = kiln_emu_float_bits(f);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        b.__x = 0x7fff;
        return b;
    }
    b.__x = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    return b;
}

// Rounds once, directly from f64: f64 -> f32 rounding to odd (truncate, then set the
// last bit when inexact) keeps enough bits that the f32 -> bf16 rounding to nearest even
// gives the correctly rounded result.
inline __nv_bfloat16 __double2bfloat16(double d) {
    if (d != d) return __float2bfloat16_rn((float)d);
    float f = (float)d;
    if ((f > 0 && (double)f > d) || (f < 0 && (double)f < d)) f = nextafterf(f, 0.0f);
    uint32_t u = kiln_emu_float_bits(f);
    if ((double)f != d) u |= 1u;
    return __float2bfloat16_rn(kiln_emu_bits_float(u));
}

inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
