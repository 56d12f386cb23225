// Combining per-tile partials inside one 256-thread block, in place, level by level.
// mirrors adamant_core::reduce::combine: no partials give +0.0, one gives itself, several are
// reduced by the tile procedure, recursively (each level's tile results in tile order).
#pragma once
#include <stdint.h>
#include "reduce.cuh"
#include "store.cuh"

// Reduce the `m` f32 values at `x` (global memory, overwritten) to one. Every thread of the
// block must call it; returns the result to every thread. Tile t of a level writes its result
// to x[t] only after every lane has read tile t (lane_tree's barriers), and later tiles read
// x[j] with j >= 4096 * (t + 1) > t, so the in-place update never reads a value it wrote.
__device__ __forceinline__ float combine_in_place(uint64_t x, uint64_t m, float* sh) {
  __shared__ float result;
  if (m == 0) return 0.0f;
  while (m > 1) {
    const uint64_t tiles = (m + ADAMANT_TILE - 1) / ADAMANT_TILE;
    for (uint64_t t = 0; t < tiles; ++t) {
      float acc = 0.0f;
      for (uint64_t i = 0; i < ADAMANT_TILE / ADAMANT_LANES; ++i) {
        uint64_t j = t * ADAMANT_TILE + ADAMANT_LANES * i + threadIdx.x;
        if (j < m) {
          // formula:begin
          acc = __fadd_rn(acc, __uint_as_float(load1<F32, false>(x, j)));
          // formula:end
        }
      }
      float r = lane_tree(acc, sh);
      if (threadIdx.x == 0) store1<F32>(x, t, __float_as_uint(r));
    }
    __syncthreads();
    m = tiles;
  }
  if (threadIdx.x == 0) result = __uint_as_float(load1<F32, false>(x, 0));
  __syncthreads();
  float r = result;
  __syncthreads();
  return r;
}
