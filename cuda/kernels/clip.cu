// Gradient clipping on the device, without a host round trip: per-tensor sums of squares of
// the unscaled gradients, their global combine in tensor order, and the clip coefficients
// (PyTorch-style global-norm clipping, or AdaGC per tensor / global) plus AdaGC's threshold
// state. The update kernels read each tensor's coefficient through TensorEntry::clip_coef
// (MiniSegment::clip_coef), so a clipped step is: scan -> adamant_clip_sumsq_<grad> ->
// adamant_clip_tensor_sums -> adamant_clip_coefs -> update -> adamant_clip_commit + step commit.
// Entry points (layouts: adamant_cuda::args::{ReduceEntry, ClipBuffers, ClipHyper}):
//   adamant_clip_sumsq_{f32,bf16,f16}(table, one, count, total_tiles, grad_scale)
//     per-tile partials of (g / grad_scale)^2 into each entry's `out` (256 threads a block);
//   adamant_clip_tensor_sums(table, one, count, sums)
//     entry k's partials combined in place, result to sums[k] (one 256-thread block an entry);
//   adamant_clip_coefs(buffers, hyper)     one 256-thread block;
//   adamant_clip_commit(buffers, found_inf, hyper)   one 256-thread block.
// mirrors adamant_core::clip (numeric contract v1).
#include "combine.cuh"
#include "reduce.cuh"
#include "scalars.cuh"
#include "store.cuh"

// Layout: adamant_cuda::args::ReduceEntry (32 bytes), as reduce.cu.
struct ClipEntry {
  uint64_t x;           //  0: gradients (G), read only
  uint64_t n;           //  8: elements
  uint64_t out;         // 16: ceil(n / 4096) f32 partials (combined in place afterwards)
  uint64_t tile_start;  // 24: first launch tile of this entry
};

// Device buffers of a clipped step (64 bytes, align 8). Layout: adamant_cuda::args::ClipBuffers.
struct ClipBuffers {
  uint64_t sums;        //  0: f32 per tensor, the tensor sums of squares (tensor order)
  uint64_t count;       //  8: tensors
  uint64_t scratch;     // 16: f32 x count, overwritten by the global combine
  uint64_t coefs;       // 24: f32 per tensor, the clip coefficients (written)
  uint64_t gamma;       // 32: AdaGC thresholds, f32 per tensor (global mode: 1); 0 otherwise
  uint64_t gamma_next;  // 40: the thresholds of this step, same length, committed later
  uint64_t clip_step;   // 48: u64 AdaGC steps committed; 0 for global-norm clipping
  uint64_t record;      // 56: 16 bytes written: global norm f32, global coef f32, finite u32
};

// Layout: adamant_cuda::args::ClipHyper (48 bytes, align 8).
struct ClipHyper {
  double lambda_rel;  //  0
  double beta;        //  8
  double eps;         // 16 (AdaGC; global-norm clipping uses 1e-6)
  double max_norm;    // 24
  uint64_t t_start;   // 32
  uint32_t mode;      // 40: 0 global norm, 1 AdaGC per tensor, 2 AdaGC global
  uint32_t reserved;  // 44
};

#define CLIP_GLOBAL_NORM 0u
#define CLIP_ADAGC_PER_TENSOR 1u
#define CLIP_ADAGC_GLOBAL 2u

__device__ __forceinline__ ClipEntry clip_entry_for(const ClipEntry* table, const ClipEntry& one,
                                                    uint32_t count, uint64_t c, uint32_t& k) {
  k = 0;
  if (table == nullptr) return one;
  uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (__ldg(&table[mid].tile_start) <= c) lo = mid; else hi = mid;
  }
  k = lo;
  ClipEntry e;
  e.x = __ldg(&table[lo].x);
  e.n = __ldg(&table[lo].n);
  e.out = __ldg(&table[lo].out);
  e.tile_start = __ldg(&table[lo].tile_start);
  return e;
}

// mirrors adamant_core::clip::tensor_sum_sq_partials: g = g / grad_scale (skipped at 1, which
// gives the same square), then g*g, summed by the canonical tile tree.
template <class G>
__device__ __forceinline__ void clip_sumsq_body(const ClipEntry* table, const ClipEntry& one,
                                                uint32_t count, uint64_t total_tiles,
                                                uint64_t grad_scale_addr) {
  __shared__ float sh[ADAMANT_LANES];
  const float grad_scale = scalar_or_one(grad_scale_addr);
  for (uint64_t c = blockIdx.x; c < total_tiles; c += gridDim.x) {
    uint32_t k;
    ClipEntry e = clip_entry_for(table, one, count, c, k);
    const uint64_t tile = c - e.tile_start;
    float acc = 0.0f;
    for (uint64_t i = 0; i < ADAMANT_TILE / ADAMANT_LANES; ++i) {
      uint64_t j = tile * ADAMANT_TILE + ADAMANT_LANES * i + threadIdx.x;
      if (j < e.n) {
        float g = grad_prep(G::widen(load1<G, true>(e.x, j)), grad_scale, 1.0f);
        // formula:begin
        acc = __fadd_rn(acc, __fmul_rn(g, g));
        // formula:end
      }
    }
    float r = lane_tree(acc, sh);
    if (threadIdx.x == 0) store1<F32>(e.out, tile, __float_as_uint(r));
  }
}

#define ADAMANT_CLIP_SUMSQ(gn, G)                                                           \
  extern "C" __global__ void __launch_bounds__(ADAMANT_LANES) adamant_clip_sumsq_##gn(      \
      const ClipEntry* table, ClipEntry one, uint32_t count, uint64_t total_tiles,          \
      uint64_t grad_scale) {                                                                \
    clip_sumsq_body<G>(table, one, count, total_tiles, grad_scale);                         \
  }
ADAMANT_CLIP_SUMSQ(f32, F32)
ADAMANT_CLIP_SUMSQ(bf16, BF16)
ADAMANT_CLIP_SUMSQ(f16, F16)

// mirrors adamant_core::clip::tensor_sum_sq (= combine of the tensor's tile partials).
extern "C" __global__ void __launch_bounds__(ADAMANT_LANES)
    adamant_clip_tensor_sums(const ClipEntry* table, ClipEntry one, uint32_t count,
                             uint64_t sums) {
  __shared__ float sh[ADAMANT_LANES];
  for (uint32_t k = blockIdx.x; k < count; k += gridDim.x) {
    ClipEntry e = one;
    if (table != nullptr) {
      e.x = __ldg(&table[k].x);
      e.n = __ldg(&table[k].n);
      e.out = __ldg(&table[k].out);
    }
    const uint64_t tiles = (e.n + ADAMANT_TILE - 1) / ADAMANT_TILE;
    float s = combine_in_place(e.out, tiles, sh);
    if (threadIdx.x == 0) store1<F32>(sums, k, __float_as_uint(s));
  }
}

// mirrors adamant_core::clip::adagc::AdaGcScalars
struct AdaGcScalars {
  float lambda_rel, beta, one_minus_beta, eps, max_norm;
};

// mirrors adamant_core::clip::adagc::AdaGcConfig::scalars: each constant rounded once.
__device__ __forceinline__ AdaGcScalars adagc_scalars(const ClipHyper& h) {
  AdaGcScalars k;
  // formula:begin
  k.lambda_rel = to_f32(h.lambda_rel);
  k.beta = to_f32(h.beta);
  k.one_minus_beta = to_f32(__dsub_rn(1.0, h.beta));
  k.eps = to_f32(h.eps);
  k.max_norm = to_f32(h.max_norm);
  // formula:end
  return k;
}

__device__ __forceinline__ bool is_finite_f32(float x) {
  return (__float_as_uint(x) & 0x7F800000u) != 0x7F800000u;
}

// mirrors adamant_core::clip::threshold_coef (numeric contract v1)
//   non-finite norm: 1; else d = norm + eps; c = max_norm / d; if c < 1 { c } else { 1 }
__device__ __forceinline__ float threshold_coef(float norm, float max_norm, float eps) {
  if (!is_finite_f32(norm)) return 1.0f;
  // formula:begin
  float d = __fadd_rn(norm, eps);
  float c = __fdiv_rn(max_norm, d);
  // formula:end
  return c < 1.0f ? c : 1.0f;
}

// mirrors adamant_core::clip::adagc::adagc_tensor (numeric contract v1)
// warm-up:  clipped = coef*norm; gamma = first or clipped < gamma ? clipped : gamma
// after:    g0 = first ? norm : gamma; threshold = lambda_rel*g0;
//           norm > threshold: coef = threshold/(norm + eps), clipped = threshold
//           else coef = 1, clipped = norm;  gamma = beta*g0 + one_minus_beta*clipped
__device__ __forceinline__ float adagc_tensor(float gamma, float norm, bool first, bool warmup,
                                              float global_coef, const AdaGcScalars& k,
                                              float& new_gamma) {
  if (warmup) {
    // formula:begin
    float clipped = __fmul_rn(global_coef, norm);
    // formula:end
    new_gamma = (first || clipped < gamma) ? clipped : gamma;
    return global_coef;
  }
  float g0 = first ? norm : gamma;
  float coef = 1.0f, clipped = norm;
  // formula:begin
  float threshold = __fmul_rn(k.lambda_rel, g0);
  if (norm > threshold) {
    coef = __fdiv_rn(threshold, __fadd_rn(norm, k.eps));
    clipped = threshold;
  }
  new_gamma = __fadd_rn(__fmul_rn(k.beta, g0), __fmul_rn(k.one_minus_beta, clipped));
  // formula:end
  return coef;
}

// mirrors adamant_core::clip::adagc::AdaGc::plan and
// adamant_core::clip::global_norm::GlobalNormClip::coefficient: global sum of squares =
// combine of the tensor sums in tensor order; norm = sqrt; a non-finite global norm gives
// coefficient 1 everywhere (and a record marked not finite, which is never committed).
extern "C" __global__ void __launch_bounds__(ADAMANT_LANES)
    adamant_clip_coefs(ClipBuffers b, ClipHyper h) {
  __shared__ float sh[ADAMANT_LANES];
  __shared__ float shared_norm, shared_coef;
  __shared__ uint32_t shared_finite;
  if (blockIdx.x != 0) return;
  for (uint64_t k = threadIdx.x; k < b.count; k += blockDim.x)
    store1<F32>(b.scratch, k, load1<F32, false>(b.sums, k));
  __syncthreads();
  const float total = combine_in_place(b.scratch, b.count, sh);
  const AdaGcScalars k = adagc_scalars(h);
  uint64_t step = 0;
  bool first = false, warmup = false;
  if (h.mode != CLIP_GLOBAL_NORM) {
    uint64_t done = __ldca(global_ptr<const unsigned long long>(b.clip_step));
    step = done == ~0ull ? done : done + 1ull;  // saturating, as core
    first = step == 1ull;
    warmup = step <= h.t_start;
  }
  if (threadIdx.x == 0) {
    const float norm = __fsqrt_rn(total);
    float coef;
    if (h.mode == CLIP_GLOBAL_NORM)
      coef = threshold_coef(norm, k.max_norm, 1e-6f);  // global_norm::CLIP_EPS
    else
      coef = warmup ? threshold_coef(norm, k.max_norm, k.eps) : 1.0f;
    shared_norm = norm;
    shared_coef = coef;
    shared_finite = is_finite_f32(norm) ? 1u : 0u;
    store1<F32>(b.record, 0, __float_as_uint(norm));
    store1<F32>(b.record, 1, __float_as_uint(coef));
    store1<F32>(b.record, 2, shared_finite);
    store1<F32>(b.record, 3, 0u);
  }
  __syncthreads();
  const float global_norm = shared_norm, global_coef = shared_coef;
  const bool finite = shared_finite != 0;
  if (h.mode == CLIP_GLOBAL_NORM) {
    for (uint64_t i = threadIdx.x; i < b.count; i += blockDim.x)
      store1<F32>(b.coefs, i, __float_as_uint(global_coef));
  } else if (h.mode == CLIP_ADAGC_GLOBAL) {
    float ng = 0.0f;
    float c = adagc_tensor(__uint_as_float(load1<F32, false>(b.gamma, 0)), global_norm, first,
                           warmup, global_coef, k, ng);
    if (!finite) c = 1.0f;
    for (uint64_t i = threadIdx.x; i < b.count; i += blockDim.x)
      store1<F32>(b.coefs, i, __float_as_uint(c));
    if (threadIdx.x == 0) store1<F32>(b.gamma_next, 0, __float_as_uint(ng));
  } else {
    for (uint64_t i = threadIdx.x; i < b.count; i += blockDim.x) {
      const float n = __fsqrt_rn(__uint_as_float(load1<F32, false>(b.sums, i)));
      float ng = 0.0f;
      float c = adagc_tensor(__uint_as_float(load1<F32, false>(b.gamma, i)), n, first, warmup,
                             global_coef, k, ng);
      store1<F32>(b.coefs, i, __float_as_uint(finite ? c : 1.0f));
      store1<F32>(b.gamma_next, i, __float_as_uint(ng));
    }
  }
}

// mirrors adamant_core::clip::adagc::AdaGc::commit: when the optimizer applied the step (no
// found_inf) and the plan was finite, gamma = gamma_next and the clip's step advances.
// Launch after the update kernels (one 256-thread block).
extern "C" __global__ void __launch_bounds__(ADAMANT_LANES)
    adamant_clip_commit(ClipBuffers b, uint64_t found_inf, ClipHyper h) {
  if (blockIdx.x != 0 || h.mode == CLIP_GLOBAL_NORM) return;
  if (flag_is_set(found_inf)) return;
  if (load1<F32, false>(b.record, 2) == 0u) return;
  const uint64_t len = h.mode == CLIP_ADAGC_GLOBAL ? 1ull : b.count;
  for (uint64_t i = threadIdx.x; i < len; i += blockDim.x)
    store1<F32>(b.gamma, i, load1<F32, false>(b.gamma_next, i));
  if (threadIdx.x == 0) {
    unsigned long long* s = global_ptr<unsigned long long>(b.clip_step);
    unsigned long long done = __ldca(s);
    __stwb(s, done == ~0ull ? done : done + 1ull);
  }
}
