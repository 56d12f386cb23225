// Step bookkeeping that stays on the device: the non-finite gradient scan (numeric contract
// item 7) and the step counter's commit.
// Entry points:
//   adamant_nonfinite_{f32,bf16,f16}(table, one, count, total_chunks, found_inf)
//     scans the `grad` buffers of an update table (adamant_cuda::args::TensorEntry); when any
//     element is NaN or +-inf, stores f32 1.0 (0x3F800000) to *found_inf. Every writer stores
//     the same word, so no atomics are needed; the caller zeroes the flag beforehand.
//   adamant_step_commit(step, found_inf): one thread; step += 1 unless *found_inf is set
//     (found_inf = 0: always). Launch after every update kernel of the step.
#include "multi_tensor.cuh"
#include "scalars.cuh"
#include "store.cuh"

// mirrors adamant_core::step::all_finite (the scan of skip_reason), over the stored bits.
template <class G>
__device__ __forceinline__ void nonfinite_body(const TensorEntry* table, const TensorEntry& one,
                                               uint32_t count, uint64_t total_chunks,
                                               uint64_t found_inf) {
  bool bad = false;
  for (uint64_t c = blockIdx.x; c < total_chunks; c += gridDim.x) {
    TensorEntry e = entry_for(table, one, count, c);
    uint64_t begin, end;
    chunk_range(e, c, begin, end);
    uint64_t vend = begin;
    if ((e.grad & 15ull) == 0) {
      vend = begin + ((end - begin) & ~7ull);
      for (uint64_t i = begin + 8ull * threadIdx.x; i < vend; i += 8ull * blockDim.x) {
        uint32_t gb[8];
        load8<G, true>(e.grad, i, gb);
#pragma unroll
        for (int j = 0; j < 8; ++j) bad |= !G::is_finite_bits(gb[j]);
      }
    }
    for (uint64_t i = vend + threadIdx.x; i < end; i += blockDim.x)
      bad |= !G::is_finite_bits(load1<G, true>(e.grad, i));
  }
  if (bad) __stwb(global_ptr<unsigned int>(found_inf), 0x3F800000u);
}

#define ADAMANT_NONFINITE_ENTRY(gn, G)                                                        \
  extern "C" __global__ void __launch_bounds__(ADAMANT_BLOCK) adamant_nonfinite_##gn(        \
      const TensorEntry* table, TensorEntry one, uint32_t count, uint64_t total_chunks,       \
      uint64_t found_inf) {                                                                   \
    nonfinite_body<G>(table, one, count, total_chunks, found_inf);                            \
  }

ADAMANT_NONFINITE_ENTRY(f32, F32)
ADAMANT_NONFINITE_ENTRY(bf16, BF16)
ADAMANT_NONFINITE_ENTRY(f16, F16)

// mirrors adamant_core::rules::adam::Adam::commit (and Sgd/Lion): the counter advances only
// when the step was applied.
extern "C" __global__ void __launch_bounds__(32) adamant_step_commit(uint64_t step,
                                                                   uint64_t found_inf) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  if (flag_is_set(found_inf)) return;
  unsigned long long* s = global_ptr<unsigned long long>(step);
  __stwb(s, __ldca(s) + 1ull);
}
