// Multi-tensor launch (test kernel): a __grid_constant__ table of tensors indexed at run time
// (ld.param through a register address), one tensor per blockIdx.y, grid-stride over x.
#include <stdint.h>

struct Tensors {
    float* p[8];
    const float* g[8];
    uint64_t n[8];
};

extern "C" __global__ void multi_axpy(const __grid_constant__ Tensors t, uint32_t count, float alpha) {
    for (uint32_t k = blockIdx.y; k < count; k += gridDim.y) {
        float* p = t.p[k];
        const float* g = t.g[k];
        uint64_t n = t.n[k];
        for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (uint64_t)gridDim.x * blockDim.x) {
            p[i] = __fsub_rn(p[i], __fmul_rn(alpha, g[i]));
        }
    }
}
