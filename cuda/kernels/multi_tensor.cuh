// Multi-tensor launches (as PyTorch's multi_tensor_apply): one launch walks a table of
// tensors. The table is cut into chunks of ADAMANT_CHUNK elements; chunk `c` of the launch
// (0 <= c < total_chunks) belongs to the last entry whose `chunk_start <= c` and covers its
// elements [(c - chunk_start) * ADAMANT_CHUNK, min(n, ... + ADAMANT_CHUNK)). Block `b` takes
// chunks b, b + gridDim.x, ... (grid-stride); in a chunk, thread `x` takes 8-element groups
// x, x + blockDim.x, ... with 128-bit accesses when every buffer of the entry is 16-byte aligned,
// then the scalar tail; otherwise single elements. All indices are 64-bit.
// A launch over one tensor passes table = 0 and the entry by value (`one`): no device table.
// Layout (bytes, little-endian, all u64): see adamant_cuda::args::TensorEntry.
#pragma once
#include <stdint.h>
#include "scalars.cuh"

#define ADAMANT_CHUNK 16384ull
#define ADAMANT_BLOCK 256

struct TensorEntry {
  uint64_t param;            //  0: device address of the parameters (P)
  uint64_t grad;             //  8: gradients (G), read only
  uint64_t state0;           // 16: exp_avg / momentum_buffer (S); 0 when unused
  uint64_t state1;           // 24: exp_avg_sq (S); 0 when unused
  uint64_t n;                // 32: elements
  uint64_t sr_index_offset;  // 40: global index of element 0 (stochastic rounding key)
  uint64_t clip_coef;        // 48: device address of an f32 clip coefficient, 0 = none
  uint64_t chunk_start;      // 56: first launch chunk of this tensor
};

// The entry owning launch chunk `c` (binary search for the last chunk_start <= c).
__device__ __forceinline__ TensorEntry entry_for(const TensorEntry* table, const TensorEntry& one,
                                                 uint32_t count, uint64_t c) {
  if (table == nullptr) return one;
  uint32_t lo = 0, hi = count;  // answer in [lo, hi)
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (__ldg(&table[mid].chunk_start) <= c) lo = mid; else hi = mid;
  }
  TensorEntry e;
  e.param = __ldg(&table[lo].param);
  e.grad = __ldg(&table[lo].grad);
  e.state0 = __ldg(&table[lo].state0);
  e.state1 = __ldg(&table[lo].state1);
  e.n = __ldg(&table[lo].n);
  e.sr_index_offset = __ldg(&table[lo].sr_index_offset);
  e.clip_coef = __ldg(&table[lo].clip_coef);
  e.chunk_start = __ldg(&table[lo].chunk_start);
  return e;
}

// Element range [begin, end) of chunk `c` of entry `e`.
__device__ __forceinline__ void chunk_range(const TensorEntry& e, uint64_t c, uint64_t& begin,
                                            uint64_t& end) {
  begin = (c - e.chunk_start) * ADAMANT_CHUNK;
  end = begin + ADAMANT_CHUNK;
  if (end > e.n) end = e.n;
}

// Walk the chunks of this block, calling `vec8(entry, clip, i)` for aligned 8-element groups
// and `one(entry, clip, i)` for single elements; `clip` is the entry's clip coefficient (1.0
// when it has none), read once per chunk.
template <class Vec8, class One>
__device__ __forceinline__ void for_each_element(const TensorEntry* table, const TensorEntry& one,
                                                 uint32_t count, uint64_t total_chunks,
                                                 Vec8 vec8, One one_elem) {
  for (uint64_t c = blockIdx.x; c < total_chunks; c += gridDim.x) {
    TensorEntry e = entry_for(table, one, count, c);
    uint64_t begin, end;
    chunk_range(e, c, begin, end);
    const float clip = scalar_or_one(e.clip_coef);
    bool aligned = ((e.param | e.grad | e.state0 | e.state1) & 15ull) == 0;
    uint64_t vend = begin;
    if (aligned) {
      vend = begin + ((end - begin) & ~7ull);
      for (uint64_t i = begin + 8ull * threadIdx.x; i < vend; i += 8ull * blockDim.x) vec8(e, clip, i);
    }
    for (uint64_t i = vend + threadIdx.x; i < end; i += blockDim.x) one_elem(e, clip, i);
  }
}
