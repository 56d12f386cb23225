// Integer shifts with out-of-range counts, mul.hi/wide, min/max, division (test kernel).
#include <stdint.h>

extern "C" __global__ void intops(const uint32_t* __restrict__ a, const uint32_t* __restrict__ b,
                                  uint32_t* __restrict__ out, uint32_t n) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint32_t x = a[i], y = b[i];
    int32_t sx = (int32_t)x, sy = (int32_t)y;
    uint32_t* o = out + (uint64_t)i * 16;
    uint32_t r;
    asm("shl.b32 %0, %1, %2;" : "=r"(r) : "r"(x), "r"(y & 63)); o[0] = r;
    asm("shr.u32 %0, %1, %2;" : "=r"(r) : "r"(x), "r"(y & 63)); o[1] = r;
    asm("shr.s32 %0, %1, %2;" : "=r"(r) : "r"(x), "r"(y & 63)); o[2] = r;
    o[3] = __umulhi(x, y);
    o[4] = (uint32_t)__mulhi(sx, sy);
    uint64_t w = (uint64_t)x * (uint64_t)y;
    o[5] = (uint32_t)(w >> 32) ^ (uint32_t)w;
    o[6] = min(x, y);
    o[7] = (uint32_t)max(sx, sy);
    o[8] = y != 0 ? x / y : 0xdeadbeefu;
    o[9] = (sy != 0 && !(sx == INT32_MIN && sy == -1)) ? (uint32_t)(sx % sy) : 0u;
    o[10] = __popc(x) + (__clz(y) << 8);
    o[11] = (uint32_t)abs(sx);
    o[12] = __brev(x);
    o[13] = x * 2654435761u + y;
    int64_t s64 = (int64_t)sx;
    uint64_t sh;
    asm("shr.s64 %0, %1, %2;" : "=l"(sh) : "l"(s64 << 20), "r"(y & 127));
    o[14] = (uint32_t)sh ^ (uint32_t)(sh >> 32);
    o[15] = (x > y) ? x - y : y - x;
}
