// Test kernels for adamant-ptx-sim: AdamW-like elementwise updates (not shipped).
#include <cuda_bf16.h>
#include <stdint.h>

struct AdamwArgs {
    float lr_wd;       // lr * weight_decay
    float beta1;
    float one_minus_beta1;
    float beta2;
    float one_minus_beta2;
    float step_size;   // lr / bias_correction1
    float bc2_sqrt;    // sqrt(bias_correction2)
    float eps;
    uint32_t pad;
};

__device__ __forceinline__ float adamw_elem(const AdamwArgs a, float p, float g, float* m, float* v) {
    p = __fsub_rn(p, __fmul_rn(a.lr_wd, p));
    float mm = __fadd_rn(__fmul_rn(a.beta1, *m), __fmul_rn(a.one_minus_beta1, g));
    float vv = __fadd_rn(__fmul_rn(a.beta2, *v), __fmul_rn(a.one_minus_beta2, __fmul_rn(g, g)));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vv), a.bc2_sqrt), a.eps);
    p = __fsub_rn(p, __fmul_rn(a.step_size, __fdiv_rn(mm, denom)));
    *m = mm;
    *v = vv;
    return p;
}

extern "C" __global__ void adamw_f32(const AdamwArgs a, float* __restrict__ p, const float* __restrict__ g,
                                     float* __restrict__ m, float* __restrict__ v, uint64_t n) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        float mm = m[i], vv = v[i];
        p[i] = adamw_elem(a, p[i], g[i], &mm, &vv);
        m[i] = mm;
        v[i] = vv;
    }
}

// bf16 parameters: widen exactly, update in f32, store with __float2bfloat16_rn.
extern "C" __global__ void adamw_bf16(const AdamwArgs a, __nv_bfloat16* __restrict__ p, const float* __restrict__ g,
                                      float* __restrict__ m, float* __restrict__ v, uint64_t n) {
    for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
        float mm = m[i], vv = v[i];
        float pf = __bfloat162float(p[i]);
        p[i] = __float2bfloat16_rn(adamw_elem(a, pf, g[i], &mm, &vv));
        m[i] = mm;
        v[i] = vv;
    }
}

// float4 main body plus scalar tail; `n` counts floats, buffers 16-byte aligned.
extern "C" __global__ void adamw_vec4(const AdamwArgs a, float* __restrict__ p, const float* __restrict__ g,
                                      float* __restrict__ m, float* __restrict__ v, uint64_t n) {
    uint64_t n4 = n / 4;
    uint64_t stride = (uint64_t)gridDim.x * blockDim.x;
    uint64_t tid = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (uint64_t i = tid; i < n4; i += stride) {
        float4 pp = reinterpret_cast<float4*>(p)[i];
        float4 gg = reinterpret_cast<const float4*>(g)[i];
        float4 mm = reinterpret_cast<float4*>(m)[i];
        float4 vv = reinterpret_cast<float4*>(v)[i];
        pp.x = adamw_elem(a, pp.x, gg.x, &mm.x, &vv.x);
        pp.y = adamw_elem(a, pp.y, gg.y, &mm.y, &vv.y);
        pp.z = adamw_elem(a, pp.z, gg.z, &mm.z, &vv.z);
        pp.w = adamw_elem(a, pp.w, gg.w, &mm.w, &vv.w);
        reinterpret_cast<float4*>(p)[i] = pp;
        reinterpret_cast<float4*>(m)[i] = mm;
        reinterpret_cast<float4*>(v)[i] = vv;
    }
    for (uint64_t i = n4 * 4 + tid; i < n; i += stride) {
        float mm = m[i], vv = v[i];
        p[i] = adamw_elem(a, p[i], g[i], &mm, &vv);
        m[i] = mm;
        v[i] = vv;
    }
}
