// Canonical-tree sum of squares (test kernel): one 256-thread block per 4096-element tile.
#include <stdint.h>

extern "C" __global__ void sumsq_tiles(const float* __restrict__ x, uint64_t n, float* __restrict__ partials) {
    __shared__ float acc[256];
    uint32_t l = threadIdx.x;
    for (uint64_t tile = blockIdx.x; tile * 4096 < n; tile += gridDim.x) {
        uint64_t start = tile * 4096;
        float s = 0.0f;
        for (uint32_t i = 0; i < 16; i++) {
            uint64_t k = start + 256 * (uint64_t)i + l;
            if (k < n) s = __fadd_rn(s, __fmul_rn(x[k], x[k]));
        }
        acc[l] = s;
        __syncthreads();
        for (uint32_t st = 128; st >= 32; st >>= 1) {
            if (l < st) acc[l] = __fadd_rn(acc[l], acc[l + st]);
            __syncthreads();
        }
        if (l < 32) {
            float t = acc[l];
            for (int st = 16; st >= 1; st >>= 1) {
                float o = __shfl_down_sync(0xffffffffu, t, st);
                t = __fadd_rn(t, o);
            }
            if (l == 0) partials[tile] = t;
        }
        __syncthreads();
    }
}
