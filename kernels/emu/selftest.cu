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
    __shared__ float tile[256];
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
