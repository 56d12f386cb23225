// Every shfl.sync mode with widths (segments) and clamps (test kernel).
#include <stdint.h>

extern "C" __global__ void shuffles(const uint32_t* __restrict__ in, uint32_t* __restrict__ out, int32_t delta) {
    uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
    uint32_t x = in[t];
    uint32_t* o = out + (uint64_t)t * 12;
    o[0] = __shfl_up_sync(0xffffffffu, x, 3);
    o[1] = __shfl_down_sync(0xffffffffu, x, 5);
    o[2] = __shfl_xor_sync(0xffffffffu, x, 6);
    o[3] = __shfl_sync(0xffffffffu, x, 37);
    o[4] = __shfl_up_sync(0xffffffffu, x, 2, 8);
    o[5] = __shfl_down_sync(0xffffffffu, x, 3, 16);
    o[6] = __shfl_xor_sync(0xffffffffu, x, 5, 4);
    o[7] = __shfl_sync(0xffffffffu, x, (int)(x & 31), 8);
    o[8] = __shfl_sync(0xffffffffu, x, delta, 16);
    o[9] = __shfl_down_sync(0xffffffffu, x, (unsigned)delta);
    o[10] = __shfl_up_sync(0xffffffffu, x, (unsigned)delta, 32);
    uint32_t b = __ballot_sync(0xffffffffu, (x & 1) != 0);
    o[11] = b;
}
