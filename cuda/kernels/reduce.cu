// Reductions: per-tile partials of sum, sum of squares and max-abs, over one buffer or a table
// of buffers in one launch. A combine level is adamant_reduce_sum_f32 (or maxabs_f32) over the
// partials: repeated until one value remains, it gives adamant_core::reduce::combine.
// Entry points: adamant_reduce_{sum,sumsq,maxabs}_{f32,bf16,f16}.
// Parameters (adamant_cuda::args::ReduceArgs): (table, one, count, total_tiles).
// Launch with exactly 256 threads per block; block b takes tiles b, b + gridDim.x, ...; launch
// tile c belongs to the last entry whose tile_start <= c and is that entry's tile
// c - tile_start; its result goes to out[c - tile_start].
#include "reduce.cuh"
#include "store.cuh"

// Layout: adamant_cuda::args::ReduceEntry (32 bytes).
struct ReduceEntry {
  uint64_t x;           //  0: device address of the input values (T), read only
  uint64_t n;           //  8: number of values
  uint64_t out;         // 16: device address of ceil(n / 4096) f32 results
  uint64_t tile_start;  // 24: first launch tile of this entry
};

__device__ __forceinline__ ReduceEntry reduce_entry_for(const ReduceEntry* table,
                                                        const ReduceEntry& one, uint32_t count,
                                                        uint64_t c) {
  if (table == nullptr) return one;
  uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (__ldg(&table[mid].tile_start) <= c) lo = mid; else hi = mid;
  }
  ReduceEntry e;
  e.x = __ldg(&table[lo].x);
  e.n = __ldg(&table[lo].n);
  e.out = __ldg(&table[lo].out);
  e.tile_start = __ldg(&table[lo].tile_start);
  return e;
}

// mirrors adamant_core::reduce::sum (SQ = false) and sum_sq (SQ = true): f(v) = v or v*v.
template <class T, bool SQ>
__device__ __forceinline__ void sum_body(const ReduceEntry* table, const ReduceEntry& one,
                                         uint32_t count, uint64_t total_tiles) {
  __shared__ float sh[ADAMANT_LANES];
  for (uint64_t c = blockIdx.x; c < total_tiles; c += gridDim.x) {
    ReduceEntry e = reduce_entry_for(table, one, count, c);
    const uint64_t tile = c - e.tile_start;
    const uint64_t base = tile * ADAMANT_TILE;
    float acc = 0.0f;
    for (uint64_t i = 0; i < ADAMANT_TILE / ADAMANT_LANES; ++i) {
      uint64_t j = base + ADAMANT_LANES * i + threadIdx.x;
      if (j < e.n) {
        float v = T::widen(load1<T, true>(e.x, j));
        // formula:begin
        acc = __fadd_rn(acc, SQ ? __fmul_rn(v, v) : v);
        // formula:end
      }
    }
    float r = lane_tree(acc, sh);
    if (threadIdx.x == 0) store1<F32>(e.out, tile, __float_as_uint(r));
  }
}

// mirrors adamant_core::reduce::max_abs: max of |x| bits; any NaN gives the canonical NaN.
template <class T>
__device__ __forceinline__ void maxabs_body(const ReduceEntry* table, const ReduceEntry& one,
                                            uint32_t count, uint64_t total_tiles) {
  __shared__ uint32_t sh[ADAMANT_LANES];
  for (uint64_t c = blockIdx.x; c < total_tiles; c += gridDim.x) {
    ReduceEntry e = reduce_entry_for(table, one, count, c);
    const uint64_t tile = c - e.tile_start;
    const uint64_t base = tile * ADAMANT_TILE;
    uint32_t acc = 0u;
    for (uint64_t i = 0; i < ADAMANT_TILE / ADAMANT_LANES; ++i) {
      uint64_t j = base + ADAMANT_LANES * i + threadIdx.x;
      if (j < e.n) acc = max(acc, __float_as_uint(T::widen(load1<T, true>(e.x, j))) & 0x7FFFFFFFu);
    }
    uint32_t r = lane_max(acc, sh);
    if (threadIdx.x == 0) store1<F32>(e.out, tile, r > 0x7F800000u ? ADAMANT_CANONICAL_NAN_F32 : r);
  }
}

#define ADAMANT_REDUCE_ENTRIES(tn, T)                                                           \
  extern "C" __global__ void __launch_bounds__(ADAMANT_LANES) adamant_reduce_sum_##tn(          \
      const ReduceEntry* table, ReduceEntry one, uint32_t count, uint64_t total_tiles) {        \
    sum_body<T, false>(table, one, count, total_tiles);                                         \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(ADAMANT_LANES) adamant_reduce_sumsq_##tn(        \
      const ReduceEntry* table, ReduceEntry one, uint32_t count, uint64_t total_tiles) {        \
    sum_body<T, true>(table, one, count, total_tiles);                                          \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(ADAMANT_LANES) adamant_reduce_maxabs_##tn(       \
      const ReduceEntry* table, ReduceEntry one, uint32_t count, uint64_t total_tiles) {        \
    maxabs_body<T>(table, one, count, total_tiles);                                             \
  }

ADAMANT_REDUCE_ENTRIES(f32, F32)
ADAMANT_REDUCE_ENTRIES(bf16, BF16)
ADAMANT_REDUCE_ENTRIES(f16, F16)
