// The canonical reduction tree on the device (numeric contract item 6).
// mirrors adamant_core::reduce (numeric contract v1): one 256-thread block computes one tile of
// 4096 values. Lane l adds, in increasing i, the values at tile_start + 256*i + l (i in 0..16)
// that are < n, starting from +0.0; then for s in 128, 64, 32 (shared memory) and
// 16, 8, 4, 2, 1 (shfl.down within warp 0): acc[l] = acc[l] + acc[l + s] for l < s.
#pragma once
#include <stdint.h>
#include "store.cuh"

#define ADAMANT_TILE 4096ull
#define ADAMANT_LANES 256

// mirrors adamant_core::reduce::lane_tree: `acc` is this lane's accumulator; returns the tile
// result in thread 0 (other threads get an unspecified value). Uses `sh[256]`; every thread of
// the block must call it.
__device__ __forceinline__ float lane_tree(float acc, float* sh) {
  const unsigned l = threadIdx.x;
  sh[l] = acc;
  __syncthreads();
  // formula:begin
  if (l < 128) sh[l] = __fadd_rn(sh[l], sh[l + 128]);
  __syncthreads();
  if (l < 64) sh[l] = __fadd_rn(sh[l], sh[l + 64]);
  __syncthreads();
  if (l < 32) sh[l] = __fadd_rn(sh[l], sh[l + 32]);
  __syncthreads();
  float v = sh[l];
  if (l < 32) {
    // Lane l < s receives lane l + s: the contract's acc[l] + acc[l + s].
    v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, 16));
    v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, 8));
    v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, 4));
    v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, 2));
    v = __fadd_rn(v, __shfl_down_sync(0xFFFFFFFFu, v, 1));
  }
  // formula:end
  // The caller reads `sh` again for the next tile only after this barrier.
  __syncthreads();
  return v;
}

// Order-free max of non-negative bit patterns (|x| as bits; NaNs order above +inf), same tree
// shape; the caller maps a result above 0x7F800000 to the canonical NaN.
__device__ __forceinline__ uint32_t lane_max(uint32_t acc, uint32_t* sh) {
  const unsigned l = threadIdx.x;
  sh[l] = acc;
  __syncthreads();
  if (l < 128) sh[l] = max(sh[l], sh[l + 128]);
  __syncthreads();
  if (l < 64) sh[l] = max(sh[l], sh[l + 64]);
  __syncthreads();
  if (l < 32) sh[l] = max(sh[l], sh[l + 32]);
  __syncthreads();
  uint32_t v = sh[l];
  if (l < 32) {
    v = max(v, __shfl_down_sync(0xFFFFFFFFu, v, 16));
    v = max(v, __shfl_down_sync(0xFFFFFFFFu, v, 8));
    v = max(v, __shfl_down_sync(0xFFFFFFFFu, v, 4));
    v = max(v, __shfl_down_sync(0xFFFFFFFFu, v, 2));
    v = max(v, __shfl_down_sync(0xFFFFFFFFu, v, 1));
  }
  __syncthreads();
  return v;
}
