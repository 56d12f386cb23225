// f32 min/max specials, compares incl. unordered, conversions, f64 .rn ops (test kernel).
#include <stdint.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

extern "C" __global__ void floatops(const float* __restrict__ a, const float* __restrict__ b,
                                    uint32_t* __restrict__ out, uint32_t n) {
    uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = a[i], y = b[i];
    uint32_t* o = out + (uint64_t)i * 24;
    o[0] = __float_as_uint(fminf(x, y));
    o[1] = __float_as_uint(fmaxf(x, y));
    uint32_t c = 0;
    c |= (x < y) << 0;
    c |= (x <= y) << 1;
    c |= (x > y) << 2;
    c |= (x >= y) << 3;
    c |= (x == y) << 4;
    c |= (x != y) << 5;
    c |= !(x < y) << 6;
    c |= !(x >= y) << 7;
    c |= isnan(x) << 8;
    c |= (!isnan(x) && !isnan(y)) << 9;
    o[2] = c;
    o[3] = __float_as_uint(__fadd_rn(x, y));
    o[4] = __float_as_uint(__fsub_rn(x, y));
    o[5] = __float_as_uint(__fmul_rn(x, y));
    o[6] = __float_as_uint(__fdiv_rn(x, y));
    o[7] = __float_as_uint(__fsqrt_rn(x));
    o[8] = __float_as_uint(__fmaf_rn(x, y, x));
    o[9] = (uint32_t)__float2int_rz(x);
    o[10] = __float2uint_rn(x);
    o[11] = __float_as_uint(__int2float_rn((int)__float_as_uint(y)));
    o[12] = __float_as_uint(__uint2float_rn(__float_as_uint(y)));
    o[13] = (uint32_t)((__nv_bfloat16_raw)__float2bfloat16_rn(x)).x | ((uint32_t)__half_as_ushort(__float2half_rn(y)) << 16);
    o[14] = __float_as_uint(__half2float(__ushort_as_half((unsigned short)__float_as_uint(x))));
    double dx = (double)x, dy = (double)y;
    double s = __dadd_rn(__dmul_rn(dx, dy), __ddiv_rn(dx, dy));
    s = __dsub_rn(s, __dsqrt_rn(dx));
    s = __fma_rn(dx, dy, s);
    uint64_t sb = (uint64_t)__double_as_longlong(s);
    o[15] = (uint32_t)sb;
    o[16] = (uint32_t)(sb >> 32);
    o[17] = __float_as_uint(__double2float_rn(s));
    unsigned long long u = __double_as_longlong(dx) >> 12;
    o[18] = __float_as_uint((float)__ull2double_rn(u));
    o[19] = (uint32_t)__double2ull_rz(__dmul_rn(dx, 3.0));
    o[20] = __float_as_uint(__saturatef(x));
    o[21] = __float_as_uint(fabsf(x)) ^ __float_as_uint(-y);
    o[22] = __float_as_uint(rintf(x));
    o[23] = __float_as_uint(truncf(y));
}
