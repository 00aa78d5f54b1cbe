// Random numbers on the device, from the Philox4x32-10 stream of common.cuh.
#include "common.cuh"

// out[i] = word i of the stream (seed, offset): the same words as
// `rng::PhiloxStream { seed, offset }.words(n)` on the CPU. Each thread computes one
// Philox block and writes its four words.
extern "C" __global__ void philox_words(uint64_t n, uint64_t seed, uint64_t offset, uint32_t *out) {
    uint64_t blocks = (n + 3) / 4;
    KILN_FOR_EACH(b, blocks) {
        uint4 w = philox_block(seed, offset, b);
        uint32_t words[4] = {w.x, w.y, w.z, w.w};
        for (int j = 0; j < 4 && 4 * b + j < n; ++j) {
            out[4 * b + j] = words[j];
        }
    }
}
