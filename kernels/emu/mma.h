// The warp-level tensor-core instructions of kernels/mma.cuh, emulated exactly for
// host-compiled kernels: `mma.sync` (m16n8k16 f16/bf16, m16n8k8 tf32; f32 accumulate)
// and `ldmatrix` are warp collectives in which every lane publishes its registers (or its
// row address) through the scheduler and receives the pieces the PTX ISA assigns it;
// `cp.async` is a synchronous copy, and `cvt.rna.tf32.f32` is done bit by bit.
//
// The fragment layouts are those of the PTX ISA ("Matrix Fragments for mma.m16n8k16",
// "... mma.m16n8k8", "Warp-level matrix load instruction: ldmatrix"), with
// g = lane / 4 (groupID) and t = lane % 4 (threadID_in_group):
//
//   m16n8k16 .f16/.bf16  A: reg i = rows g + 8 (i % 2), columns 2t + 8 (i / 2) + {0, 1}
//                        B: reg i = rows 2t + 8 i + {0, 1}, column g
//                        C/D: element i = row g + 8 (i / 2), column 2t + i % 2
//   m16n8k8 .tf32        A: reg i = row g + 8 (i % 2), column t + 4 (i / 2)
//                        B: reg i = row t + 4 i, column g;   C/D as above
//
// (a register of 16-bit elements holds the lower column/row in its low half). A lane
// that skips a collective deadlocks its warp, which the scheduler reports, as on the GPU
// where that is undefined behaviour. Addresses that the GPU would reject (misaligned, or
// outside shared memory where the instruction reads or writes it) fail the launch.
#pragma once

namespace kiln_emu {

enum class MmaInput { F16, BF16, TF32 };

// One element of an mma operand register, as f32. TF32 inputs use only the upper 19
// bits of their register (sign, exponent, 10-bit mantissa), as the tensor cores do.
inline float mma_element(uint32_t reg, int half, MmaInput in) {
    switch (in) {
    case MmaInput::F16: {
        __half h;
        h.__x = (unsigned short)(reg >> (16 * half));
        return __half2float(h);
    }
    case MmaInput::BF16:
        return kiln_emu_bits_float((reg >> (16 * half)) << 16);
    case MmaInput::TF32:
        return kiln_emu_bits_float(reg & 0xffffe000u);
    }
    fail("unknown mma input type");
}

// D = A B + C for one m16n8k16 (f16/bf16) or m16n8k8 (tf32) tile. Each product of two
// inputs is exact in f32 (at most 11 + 11 significant bits); they are added to C in k
// order, in f32.
inline void mma_m16n8(float *d, const uint32_t *a, const uint32_t *b, const float *c,
                      MmaInput in) {
    struct Parts {
        uint32_t a[4], b[2];
    };
    Parts mine, all[32];
    memcpy(mine.a, a, sizeof mine.a);
    memcpy(mine.b, b, sizeof mine.b);
    if (warp_all_gather(0xffffffffu, &mine, (int)sizeof mine, all) != 0xffffffffu)
        fail("mma.sync needs all 32 lanes of the warp");
    const bool tf32 = in == MmaInput::TF32;
    const int K = tf32 ? 8 : 16;
    const int l = (int)g_thread->lane, g = l / 4, t = l % 4;
    float out[4];
    for (int i = 0; i < 4; ++i) {
        int row = g + 8 * (i / 2), col = 2 * t + i % 2;
        float sum = c[i];
        for (int k = 0; k < K; ++k) {
            float av, bv;
            if (tf32) {
                av = mma_element(all[(row % 8) * 4 + k % 4].a[row / 8 + 2 * (k / 4)], 0, in);
                bv = mma_element(all[col * 4 + k % 4].b[k / 4], 0, in);
            } else {
                int lane_k = (k % 8) / 2, half = k % 2;
                av = mma_element(all[(row % 8) * 4 + lane_k].a[row / 8 + 2 * (k / 8)], half, in);
                bv = mma_element(all[col * 4 + lane_k].b[k / 8], half, in);
            }
            sum = fmaf(av, bv, sum);
        }
        out[i] = sum;
    }
    memcpy(d, out, sizeof out); // after reading c: d and c may be the same registers
}

// ldmatrix.sync.aligned.m8n8.x{1,2,4}[.trans].shared.b16: lanes 8i .. 8i + 7 give the
// row addresses of matrix i (16 bytes per row, 16-byte aligned). Lane l receives from
// each matrix i, in r[i], the 32-bit word l % 4 of row l / 4; with .trans, the elements
// (2 (l % 4), l / 4) and (2 (l % 4) + 1, l / 4) of the matrix, i.e. of its transpose.
inline void ldmatrix(int matrices, bool trans, uint32_t *r, const void *row) {
    const char *rows[32];
    const char *mine = (const char *)row;
    if (warp_all_gather(0xffffffffu, &mine, (int)sizeof mine, rows) != 0xffffffffu)
        fail("ldmatrix needs all 32 lanes of the warp");
    for (int i = 0; i < 8 * matrices; ++i) {
        if ((uintptr_t)rows[i] % 16) fail("ldmatrix: a row address is not 16-byte aligned");
        if (!is_shared(rows[i], 16)) fail("ldmatrix: a row address is not in shared memory");
    }
    const int l = (int)g_thread->lane;
    for (int i = 0; i < matrices; ++i) {
        const char *const *m = rows + 8 * i;
        if (!trans) {
            memcpy(&r[i], m[l / 4] + 4 * (l % 4), 4);
        } else {
            uint16_t lo, hi;
            memcpy(&lo, m[2 * (l % 4)] + 2 * (l / 4), 2);
            memcpy(&hi, m[2 * (l % 4) + 1] + 2 * (l / 4), 2);
            r[i] = (uint32_t)lo | (uint32_t)hi << 16;
        }
    }
}

// cp.async: `src_bytes` bytes from global memory, the rest of `bytes` zero-filled (the
// source is not read at all when `src_bytes` is 0), done at once. Both addresses must be
// aligned to `bytes`, as the PTX ISA requires (even when nothing is read).
inline void cp_async(void *dst, const void *src, int bytes, uint32_t src_bytes) {
    if ((uintptr_t)dst % bytes || (uintptr_t)src % bytes)
        fail("cp.async: an address is not aligned to the copy size");
    if (src_bytes > (uint32_t)bytes) fail("cp.async: src-size exceeds cp-size");
    if (!is_shared(dst, bytes)) fail("cp.async: the destination is not in shared memory");
    memcpy(dst, src, src_bytes);
    memset((char *)dst + src_bytes, 0, bytes - src_bytes);
}

// cvt.rna.tf32.f32: round to a 10-bit mantissa, to nearest with ties away from zero
// (adding half an ulp to the magnitude bits carries into the exponent when it should);
// infinities and NaNs pass through.
inline uint32_t f32_to_tf32(float x) {
    uint32_t u = kiln_emu_float_bits(x);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;
    return (u + 0x1000u) & 0xffffe000u;
}

} // namespace kiln_emu
