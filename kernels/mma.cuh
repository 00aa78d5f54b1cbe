// Tensor-core building blocks for kernels: thin wrappers over single PTX instructions
// (sm_80+), so kernel code reads as the algorithm and the fragment layouts live in one
// place. On the GPU each is one `asm volatile`; compiled for the emulated device
// (KILN_HOST_EMU) each calls its exact emulation in kernels/emu/mma.h, which documents
// the fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 / m16n8k8").
//
//   mma_m16n8k16_{f16,bf16}(d, a, b, c)  D = A·B + C, 16x16 · 16x8, f32 accumulate
//   mma_m16n8k8_tf32(d, a, b, c)         D = A·B + C, 16x8 · 8x8 in tf32, f32 accumulate
//   ldmatrix_x{1,2,4}[_trans](r, row)    8x8 b16 matrices from shared memory; `row` is
//                                        this lane's row address (lanes 8i.. give matrix i)
//   cp_async_16 (.cg), cp_async_8 / 4 (.ca)  global -> shared copy of `src_bytes` bytes
//                                        (0..size), the rest zero-filled (below sm_80:
//                                        a plain copy, see KILN_CP_ASYNC_AT_ONCE)
//   cp_async_commit(), cp_async_wait<N>() groups of copies; wait until <= N are pending
//   f32_to_tf32(x)                       cvt.rna.tf32.f32: nearest, ties away from zero
// and, shared by matmul.cu and conv_tc.cu: tc_swizzle (the XOR-swizzled shared-memory
// tile layout), tc_mma (one mma by the input type) and tc_round (fragments to tf32).
#pragma once
#include "common.cuh" // f16 and bf16, for the tc_* helpers at the end

#if defined(KILN_HOST_EMU)
#define KILN_MMA_EMU(...) __VA_ARGS__
#define KILN_MMA_PTX(...)
#else
#define KILN_MMA_EMU(...)
#define KILN_MMA_PTX(...) __VA_ARGS__
// The shared-window address that ldmatrix and cp.async take.
__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}
#endif

__device__ __forceinline__ void mma_m16n8k16_f16(float (&d)[4], const uint32_t (&a)[4],
                                                 const uint32_t (&b)[2], const float (&c)[4]) {
    KILN_MMA_EMU(kiln_emu::mma_m16n8(d, a, b, c, kiln_emu::MmaInput::F16);)
    KILN_MMA_PTX(asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                              "{%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                              : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                              : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                                "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));)
}

__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const uint32_t (&a)[4],
                                                  const uint32_t (&b)[2], const float (&c)[4]) {
    KILN_MMA_EMU(kiln_emu::mma_m16n8(d, a, b, c, kiln_emu::MmaInput::BF16);)
    KILN_MMA_PTX(asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                              "{%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                              : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                              : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                                "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));)
}

// The operands must already be tf32 (f32_to_tf32): the tensor cores ignore the low 13
// bits, which would truncate instead of rounding.
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4],
                                                 const uint32_t (&b)[2], const float (&c)[4]) {
    KILN_MMA_EMU(kiln_emu::mma_m16n8(d, a, b, c, kiln_emu::MmaInput::TF32);)
    KILN_MMA_PTX(asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, "
                              "{%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"
                              : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                              : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]),
                                "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]));)
}

__device__ __forceinline__ uint32_t f32_to_tf32(float x) {
    KILN_MMA_EMU(return kiln_emu::f32_to_tf32(x);)
    KILN_MMA_PTX(uint32_t r; asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x)); return r;)
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *row) {
    KILN_MMA_EMU(kiln_emu::ldmatrix(4, false, r, row);)
    KILN_MMA_PTX(asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                              : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                              : "r"(smem_u32(row)));)
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *row) {
    KILN_MMA_EMU(kiln_emu::ldmatrix(4, true, r, row);)
    KILN_MMA_PTX(asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                              : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                              : "r"(smem_u32(row)));)
}

__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void *row) {
    KILN_MMA_EMU(kiln_emu::ldmatrix(2, false, r, row);)
    KILN_MMA_PTX(asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                              : "=r"(r[0]), "=r"(r[1])
                              : "r"(smem_u32(row)));)
}

__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void *row) {
    KILN_MMA_EMU(kiln_emu::ldmatrix(2, true, r, row);)
    KILN_MMA_PTX(asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                              : "=r"(r[0]), "=r"(r[1])
                              : "r"(smem_u32(row)));)
}

#if !defined(KILN_HOST_EMU) && __CUDA_ARCH__ < 800
// Volta and Turing (the compute_70 PTX) have no cp.async: there the copies are plain
// loads and stores, complete when they return (as on the emulated device), so grouping
// and waiting have nothing to do. Only the SIMT gemm_big_f32 runs them there.
#define KILN_CP_ASYNC_AT_ONCE
// What cp.async does: `src_bytes` (0..N) bytes of `src`, then zeros up to N; both
// addresses are N-aligned, as cp.async requires.
template <int N, typename W>
__device__ __forceinline__ void copy_zero_fill(void *dst, const void *src, uint32_t src_bytes) {
    static_assert(sizeof(W) == N, "one word per copy");
    if (src_bytes == N) {
        *static_cast<W *>(dst) = *static_cast<const W *>(src);
        return;
    }
    for (uint32_t i = 0; i < N; ++i)
        static_cast<char *>(dst)[i] = i < src_bytes ? static_cast<const char *>(src)[i] : 0;
}
#endif

// .cg (cache in L2 only): tiles are streamed into shared memory, not reused from L1.
__device__ __forceinline__ void cp_async_16(void *dst, const void *src, uint32_t src_bytes) {
#if defined(KILN_CP_ASYNC_AT_ONCE)
    copy_zero_fill<16, uint4>(dst, src, src_bytes);
#else
    KILN_MMA_EMU(kiln_emu::cp_async(dst, src, 16, src_bytes);)
    KILN_MMA_PTX(asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                              :
                              : "r"(smem_u32(dst)), "l"(src), "r"(src_bytes)
                              : "memory");)
#endif
}

// .ca: 8- and 4-byte copies exist only through L1.
__device__ __forceinline__ void cp_async_8(void *dst, const void *src, uint32_t src_bytes) {
#if defined(KILN_CP_ASYNC_AT_ONCE)
    copy_zero_fill<8, uint2>(dst, src, src_bytes);
#else
    KILN_MMA_EMU(kiln_emu::cp_async(dst, src, 8, src_bytes);)
    KILN_MMA_PTX(asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n"
                              :
                              : "r"(smem_u32(dst)), "l"(src), "r"(src_bytes)
                              : "memory");)
#endif
}

__device__ __forceinline__ void cp_async_4(void *dst, const void *src, uint32_t src_bytes) {
#if defined(KILN_CP_ASYNC_AT_ONCE)
    copy_zero_fill<4, uint32_t>(dst, src, src_bytes);
#else
    KILN_MMA_EMU(kiln_emu::cp_async(dst, src, 4, src_bytes);)
    KILN_MMA_PTX(asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n"
                              :
                              : "r"(smem_u32(dst)), "l"(src), "r"(src_bytes)
                              : "memory");)
#endif
}

// The emulated copies (and those of KILN_CP_ASYNC_AT_ONCE) complete at once, so grouping
// and waiting are no-ops there.
__device__ __forceinline__ void cp_async_commit() {
#if !defined(KILN_CP_ASYNC_AT_ONCE)
    KILN_MMA_PTX(asm volatile("cp.async.commit_group;\n" ::: "memory");)
#endif
}

template <int N> __device__ __forceinline__ void cp_async_wait() {
#if !defined(KILN_CP_ASYNC_AT_ONCE)
    KILN_MMA_PTX(asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");)
#endif
}

// ---- Shared by the tensor-core kernels (matmul.cu, conv_tc.cu) ----

// Offset, in elements, of chunk `chunk` of row `row` in a tile of `CPR` 16-byte chunks
// per row. Rows that share a 128-byte line span distinct chunk columns already; the
// XOR spreads the next rows over the other columns (8 rows -> 8 distinct columns).
template <int CPR, int EPC> __device__ __forceinline__ int tc_swizzle(int row, int chunk) {
    const int rows_per_line = CPR >= 8 ? 1 : 8 / CPR;
    const int span = CPR >= 8 ? 8 : CPR;
    return (row * CPR + (chunk ^ ((row / rows_per_line) % span))) * EPC;
}

// One mma of a warp tile, by the MMA input type: halves, 16 of k.
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], f16) { mma_m16n8k16_f16(d, a, b, d); }
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], bf16) { mma_m16n8k16_bf16(d, a, b, d); }
__device__ __forceinline__ void tc_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], float) { mma_m16n8k8_tf32(d, a, b, d); }

// A fragment: a 32-bit register of halves is used as is; f32 is rounded to tf32 first
// (rounding a value that is tf32 already keeps it, so tiles may hold either).
__device__ __forceinline__ void tc_round(uint32_t (&)[4], f16) {}
__device__ __forceinline__ void tc_round(uint32_t (&)[4], bf16) {}
__device__ __forceinline__ void tc_round(uint32_t (&a)[4], float) {
#pragma unroll
    for (int i = 0; i < 4; ++i) a[i] = f32_to_tf32(__uint_as_float(a[i]));
}

