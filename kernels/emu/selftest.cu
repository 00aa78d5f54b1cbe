// Kernels that test the emulated device itself (compiled for the host only; never for
// the GPU). Two carry planted bugs that the emulator must catch; the others exercise
// intrinsics that kiln's kernels do not use yet. See src/backend/cuda/emulator/tests.rs.
#include <stdint.h>

// out[i] = x[i + 1] for i < n: an off-by-one that reads x[n], one element past the end.
extern "C" __global__ void selftest_read_past_end(const float *x, float *out, uint64_t n) {
    uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = x[i + 1];
}

// Rotates each block of x through shared memory: out[t] = x[(t + shift) % blockDim.x]
// within the block. With `synced` 0 the __syncthreads() between the writes and the
// reads is missing, so a thread may read a slot before its owner has written it.
extern "C" __global__ void selftest_rotate(const float *x, float *out, uint32_t shift, uint32_t synced) {
    KILN_SHARED(float, tile, [256]);
    unsigned int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    tile[t] = x[base + t];
    if (synced) __syncthreads();
    out[base + t] = tile[(t + shift) % blockDim.x];
}

// selftest_rotate with the tile declared in a template device function (`tiled` 0) or
// an inline one (`tiled` 1): shared memory the emulator must poison and check as it
// does a kernel's own.
template <typename T> __device__ T *template_tile() {
    KILN_SHARED(T, tile, [256]);
    return tile;
}
inline __device__ float *inline_tile() {
    KILN_SHARED(float, tile, [256]);
    return tile;
}
extern "C" __global__ void selftest_rotate_nested(const float *x, float *out, uint32_t shift, uint32_t synced, uint32_t tiled) {
    float *tile = tiled == 0 ? template_tile<float>() : inline_tile();
    unsigned int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    tile[t] = x[base + t];
    if (synced) __syncthreads();
    out[base + t] = tile[(t + shift) % blockDim.x];
}

// Reverses each block of x through dynamic shared memory (`shared_bytes` of the
// launch); `overrun` 1 reads one element past its end.
extern "C" __global__ void selftest_reverse_dynamic(const float *x, float *out, uint32_t overrun) {
    KILN_DYNAMIC_SHARED(float, tile);
    unsigned int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    tile[t] = x[base + t];
    __syncthreads();
    out[base + t] = tile[blockDim.x - 1 - t + overrun];
}

// __syncthreads() after half of the block has returned: a barrier in divergent code.
extern "C" __global__ void selftest_divergent_barrier(float *out) {
    if (threadIdx.x < blockDim.x / 2) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// Per thread t (lane l), eight results out[8 t .. 8 t + 8): shuffles by index, up, down
// and xor (width 8), a ballot of odd x, any/all of x > 0, and an atomic counter.
extern "C" __global__ void selftest_warp(const int *x, int *out, int *counter) {
    unsigned int t = threadIdx.x;
    int v = x[t];
    int *o = out + 8 * t;
    o[0] = __shfl_sync(0xffffffffu, v, 3);
    o[1] = __shfl_up_sync(0xffffffffu, v, 2, 8);
    o[2] = __shfl_down_sync(0xffffffffu, v, 5);
    o[3] = __shfl_xor_sync(0xffffffffu, v, 6, 8);
    o[4] = (int)__ballot_sync(0xffffffffu, v & 1);
    o[5] = __any_sync(0xffffffffu, v > 0);
    o[6] = __all_sync(0xffffffffu, v > 0);
    o[7] = atomicAdd(counter, 1);
}

// x[i] rounded to binary16 (h) and bfloat16 (b), as bits, and both widened back.
extern "C" __global__ void selftest_convert(const float *x, uint16_t *h, uint16_t *b, float *back, uint64_t n) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (uint64_t)blockDim.x * gridDim.x) {
        __half hv = __float2half_rn(x[i]);
        __nv_bfloat16 bv = __float2bfloat16_rn(x[i]);
        h[i] = __half_as_ushort(hv);
        b[i] = __bfloat16_as_ushort(bv);
        back[2 * i] = __half2float(hv);
        back[2 * i + 1] = __bfloat162float(bv);
    }
}

// ---- The tensor-core instructions of kernels/mma.cuh, one warp each.
#include "../mma.cuh"

// d = a b + c for one tile, the fragments given per lane: a[4 l + i], b[2 l + i],
// c[4 l + i] -> d[4 l + i]. kind: 0 m16n8k16 f16, 1 m16n8k16 bf16, 2 m16n8k8 tf32.
extern "C" __global__ void selftest_mma(const uint32_t *a, const uint32_t *b, const float *c, float *d, uint32_t kind) {
    unsigned int l = threadIdx.x;
    uint32_t ra[4] = {a[4 * l], a[4 * l + 1], a[4 * l + 2], a[4 * l + 3]};
    uint32_t rb[2] = {b[2 * l], b[2 * l + 1]};
    float acc[4] = {c[4 * l], c[4 * l + 1], c[4 * l + 2], c[4 * l + 3]};
    if (kind == 0) mma_m16n8k16_f16(acc, ra, rb, acc);
    else if (kind == 1) mma_m16n8k16_bf16(acc, ra, rb, acc);
    else mma_m16n8k8_tf32(acc, ra, rb, acc);
    for (int i = 0; i < 4; ++i) d[4 * l + i] = acc[i];
}

// ldmatrix from a shared copy of `src` (32 rows of 8 halves): lane l gives the address of
// row rows[l]. variant: 0 x4, 1 x4.trans, 2 x2, 3 x2.trans; out[4 l + i] = register i.
// Variant 4 is a planted bug: x4 straight from global memory, which ldmatrix cannot read.
extern "C" __global__ void selftest_ldmatrix(const uint16_t *src, const uint32_t *rows, uint32_t *out, uint32_t variant) {
    KILN_SHARED(uint16_t, tile, [32 * 8]);
    unsigned int l = threadIdx.x;
    for (int i = 0; i < 8; ++i) tile[8 * l + i] = src[8 * l + i];
    __syncwarp();
    const uint16_t *row = (variant == 4 ? src : tile) + 8 * rows[l];
    uint32_t r[4] = {0, 0, 0, 0};
    if (variant == 0 || variant == 4) ldmatrix_x4(r, row);
    else if (variant == 1) ldmatrix_x4_trans(r, row);
    else if (variant == 2) ldmatrix_x2(*reinterpret_cast<uint32_t(*)[2]>(r), row);
    else ldmatrix_x2_trans(*reinterpret_cast<uint32_t(*)[2]>(r), row);
    for (int i = 0; i < 4; ++i) out[4 * l + i] = r[i];
}

// Lane l copies src_bytes[l] bytes of src[16 l ..] into a 16-byte slot of shared memory
// by cp.async of size[l] (16, 8 or 4), zero-filling the rest, then the slots go to out.
extern "C" __global__ void selftest_cp_async(const uint8_t *src, const uint32_t *size, const uint32_t *src_bytes, uint8_t *out) {
    KILN_SHARED(uint8_t, slots, [32 * 16]);
    unsigned int l = threadIdx.x;
    for (int i = 0; i < 16; ++i) slots[16 * l + i] = 0xAB;
    if (size[l] == 16) cp_async_16(slots + 16 * l, src + 16 * l, src_bytes[l]);
    else if (size[l] == 8) cp_async_8(slots + 16 * l, src + 16 * l, src_bytes[l]);
    else cp_async_4(slots + 16 * l, src + 16 * l, src_bytes[l]);
    cp_async_commit();
    cp_async_wait<0>();
    for (int i = 0; i < 16; ++i) out[16 * l + i] = slots[16 * l + i];
}

// out[i] = the bits of x[i] rounded to tf32 (cvt.rna.tf32.f32).
extern "C" __global__ void selftest_tf32(const float *x, uint32_t *out, uint32_t n) {
    unsigned int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = f32_to_tf32(x[i]);
}
