// Adam-mini: one second moment per block of parameters (rows, heads, a whole tensor), the full
// first moment. A step is three launches over a table of block segments (MiniSegment):
//   1. adamant_mini_sumsq_<grad>: per-tile partial sums of the prepared squares of every block
//      (one 256-thread block per 4096-element tile of a block; a block spans
//      ceil(block_len / 4096) tiles, the tile of a block never crosses into the next block);
//   2. adamant_mini_block_<state>: per block, the combine of its partials, the second moment
//      and the block's scale (block_update);
//   3. adamant_mini_<param>_<grad>_<state>: the element pass (adam_mini_elem).
// Per-element (bias) segments are not in this table: they run as AdamW through the adam
// kernels (adamant_cuda::args::MiniPlan builds both tables).
// Every entry takes (table, one, count, total_units, lr, step, grad_scale, found_inf, hyper);
// adamant_cuda::args::{MiniSegment, MiniHyper} document the layouts. A set found_inf makes
// every launch return before writing.
// mirrors adamant_core::rules::adam_mini (numeric contract v1).
#include "combine.cuh"
#include "multi_tensor.cuh"
#include "reduce.cuh"
#include "scalars.cuh"
#include "store.cuh"

// One segment of uniform blocks of one tensor (112 bytes, align 8).
// Layout: adamant_cuda::args::MiniSegment.
struct MiniSegment {
  uint64_t param;            //   0: address of the segment's first parameter (P)
  uint64_t grad;             //   8: its first gradient (G), read only
  uint64_t exp_avg;          //  16: its first exp_avg (S)
  uint64_t exp_avg_sq;       //  24: exp_avg_sq of its first block (S), one per block
  uint64_t scale;            //  32: f32 scratch, one block scale per block
  uint64_t partials;         //  40: f32 scratch, ceil(block_len / 4096) per block
  uint64_t n;                //  48: elements (a multiple of block_len)
  uint64_t block_len;        //  56: elements per block (> 0)
  uint64_t sr_index_offset;  //  64: global index of the segment's element 0
  uint64_t clip_coef;        //  72: address of the tensor's f32 clip coefficient, 0 = none
  uint64_t weight_decay;     //  80: 1 applies decoupled weight decay, 0 not
  uint64_t chunk_start;      //  88: first chunk of the element pass (16384 elements a chunk)
  uint64_t tile_start;       //  96: first tile of the statistics launch
  uint64_t block_start;      // 104: first block of the block-update launch
};

#define MINI_FIELDS 14
#define MINI_CHUNK_START 11
#define MINI_TILE_START 12
#define MINI_BLOCK_START 13

// Hyper-parameters by value (48 bytes, align 8). Layout: adamant_cuda::args::MiniHyper.
struct MiniHyper {
  double beta1;         //  0
  double beta2;         //  8
  double eps;           // 16
  double weight_decay;  // 24
  uint64_t sr_seed;     // 32
  uint32_t stochastic;  // 40: 1 rounds bf16 parameters stochastically
  uint32_t reserved;    // 44
};

// The segment owning launch unit `c` for the start field F (binary search for the last
// entry whose start <= c).
template <int F>
__device__ __forceinline__ MiniSegment segment_for(const MiniSegment* table, const MiniSegment& one,
                                                   uint32_t count, uint64_t c) {
  if (table == nullptr) return one;
  const uint64_t* words = reinterpret_cast<const uint64_t*>(table);
  uint32_t lo = 0, hi = count;
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (__ldg(&words[(uint64_t)mid * MINI_FIELDS + F]) <= c) lo = mid; else hi = mid;
  }
  uint64_t w[MINI_FIELDS];
#pragma unroll
  for (int k = 0; k < MINI_FIELDS; ++k) w[k] = __ldg(&words[(uint64_t)lo * MINI_FIELDS + k]);
  MiniSegment s;
  s.param = w[0]; s.grad = w[1]; s.exp_avg = w[2]; s.exp_avg_sq = w[3]; s.scale = w[4];
  s.partials = w[5]; s.n = w[6]; s.block_len = w[7]; s.sr_index_offset = w[8];
  s.clip_coef = w[9]; s.weight_decay = w[10]; s.chunk_start = w[11]; s.tile_start = w[12];
  s.block_start = w[13];
  return s;
}

__device__ __forceinline__ uint64_t tiles_per_block(const MiniSegment& s) {
  return (s.block_len + ADAMANT_TILE - 1) / ADAMANT_TILE;
}

// mirrors adamant_core::rules::adam_mini::AdamMiniScalars
struct MiniScalars {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, bias_correction1_recip,
      bias_correction2_sqrt, lr, eps;
};

// mirrors adamant_core::rules::adam_mini::AdamMiniConfig::scalars (numeric contract v1), with
// lr = the f32 learning rate widened to f64 and t = step + 1.
__device__ __forceinline__ MiniScalars mini_scalars(const MiniHyper& h, double lr, uint64_t t) {
  MiniScalars k;
  // formula:begin
  double bc1 = bias_correction(h.beta1, t);
  double bc2 = bias_correction(h.beta2, t);
  k.decay = to_f32(__dsub_rn(1.0, __dmul_rn(lr, h.weight_decay)));
  k.beta1 = to_f32(h.beta1);
  k.one_minus_beta1 = to_f32(__dsub_rn(1.0, h.beta1));
  k.beta2 = to_f32(h.beta2);
  k.one_minus_beta2 = to_f32(__dsub_rn(1.0, h.beta2));
  k.bias_correction1_recip = to_f32(__ddiv_rn(1.0, bc1));
  k.bias_correction2_sqrt = to_f32(sqrt_f64(bc2));
  k.lr = to_f32(lr);
  k.eps = to_f32(h.eps);
  // formula:end
  return k;
}

// The per-step scalars in shared memory, computed by thread 0 from the device lr and step.
__device__ __forceinline__ MiniScalars load_mini_scalars(uint64_t lr_addr, uint64_t step_addr,
                                                         const MiniHyper& h, uint64_t& t) {
  __shared__ MiniScalars shared_k;
  t = (uint64_t)__ldca(global_ptr<const unsigned long long>(step_addr)) + 1ull;
  if (threadIdx.x == 0) {
    double lr = (double)__ldca(global_ptr<const float>(lr_addr));
    shared_k = mini_scalars(h, lr, t);
  }
  __syncthreads();
  return shared_k;
}

// mirrors adamant_core::rules::adam_mini::grad_sq_partials (one tile of one block):
// the canonical lane sums of g*g with g = (g / grad_scale) * clip_coef.
template <class G>
__device__ __forceinline__ void mini_sumsq_body(const MiniSegment* table, const MiniSegment& one,
                                                uint32_t count, uint64_t total_tiles,
                                                uint64_t grad_scale_addr, uint64_t found_inf) {
  if (flag_is_set(found_inf)) return;
  __shared__ float sh[ADAMANT_LANES];
  const float grad_scale = scalar_or_one(grad_scale_addr);
  for (uint64_t c = blockIdx.x; c < total_tiles; c += gridDim.x) {
    MiniSegment s = segment_for<MINI_TILE_START>(table, one, count, c);
    const uint64_t local = c - s.tile_start;
    const uint64_t tpb = tiles_per_block(s);
    const uint64_t block = local / tpb;
    const uint64_t block_begin = block * s.block_len;
    const uint64_t begin = block_begin + (local - block * tpb) * ADAMANT_TILE;
    const uint64_t block_end = block_begin + s.block_len;
    const float clip = scalar_or_one(s.clip_coef);
    float acc = 0.0f;
    for (uint64_t i = 0; i < ADAMANT_TILE / ADAMANT_LANES; ++i) {
      uint64_t j = begin + ADAMANT_LANES * i + threadIdx.x;
      if (j < block_end) {
        float g = grad_prep(G::widen(load1<G, true>(s.grad, j)), grad_scale, clip);
        // formula:begin
        acc = __fadd_rn(acc, __fmul_rn(g, g));
        // formula:end
      }
    }
    float r = lane_tree(acc, sh);
    if (threadIdx.x == 0) store1<F32>(s.partials, local, __float_as_uint(r));
  }
}

// mirrors adamant_core::rules::adam_mini::block_second_moment (numeric contract v1)
//   1. mean = sum_sq / count_f32
//   2. exp_avg_sq = beta2*exp_avg_sq + one_minus_beta2*mean
__device__ __forceinline__ float block_second_moment(float v, float sum_sq, float count_f32,
                                                     const MiniScalars& k) {
  // formula:begin
  float mean = __fdiv_rn(sum_sq, count_f32);
  return __fadd_rn(__fmul_rn(k.beta2, v), __fmul_rn(k.one_minus_beta2, mean));
  // formula:end
}

// mirrors adamant_core::rules::adam_mini::block_scale (numeric contract v1)
//   3. h = sqrt(exp_avg_sq)/bias_correction2_sqrt + eps
//   4. block_scale = bias_correction1_recip / h
__device__ __forceinline__ float block_scale(float v, const MiniScalars& k) {
  // formula:begin
  float h = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), k.bias_correction2_sqrt), k.eps);
  return __fdiv_rn(k.bias_correction1_recip, h);
  // formula:end
}

// mirrors adamant_core::rules::adam_mini::block_update: the block's sum (combine of its tile
// partials), its exp_avg_sq narrowed to the state type, and the scale of the stored value.
// One 256-thread block per Adam-mini block (grid-stride).
template <class S>
__device__ __forceinline__ void mini_block_body(const MiniSegment* table, const MiniSegment& one,
                                                uint32_t count, uint64_t total_blocks,
                                                uint64_t lr_addr, uint64_t step_addr,
                                                uint64_t found_inf, const MiniHyper& h) {
  if (flag_is_set(found_inf)) return;
  __shared__ float sh[ADAMANT_LANES];
  uint64_t t;
  const MiniScalars k = load_mini_scalars(lr_addr, step_addr, h, t);
  for (uint64_t c = blockIdx.x; c < total_blocks; c += gridDim.x) {
    MiniSegment s = segment_for<MINI_BLOCK_START>(table, one, count, c);
    const uint64_t j = c - s.block_start;
    const uint64_t tpb = tiles_per_block(s);
    const float sum = combine_in_place(s.partials + 4ull * j * tpb, tpb, sh);
    if (threadIdx.x == 0) {
      // count as f32, round to nearest even (core: `count as f32`).
      const float count_f32 = __ull2float_rn((unsigned long long)s.block_len);
      float v = S::widen(load1<S, false>(s.exp_avg_sq, j));
      uint32_t stored = S::narrow(block_second_moment(v, sum, count_f32, k));
      store1<S>(s.exp_avg_sq, j, stored);
      store1<F32>(s.scale, j, __float_as_uint(block_scale(S::widen(stored), k)));
    }
  }
}

// mirrors adamant_core::rules::adam_mini::adam_mini_elem (numeric contract v1)
//   1. p = p * decay
//   2. exp_avg = beta1*exp_avg + one_minus_beta1*g
//   3. u = exp_avg * block_scale
//   4. u = u * lr
//   5. p = p - u
__device__ __forceinline__ void adam_mini_elem(float& p, float g, float& m, float scale,
                                               float decay, const MiniScalars& k) {
  // formula:begin
  float q = __fmul_rn(p, decay);
  m = __fadd_rn(__fmul_rn(k.beta1, m), __fmul_rn(k.one_minus_beta1, g));
  float u = __fmul_rn(m, scale);
  u = __fmul_rn(u, k.lr);
  p = __fsub_rn(q, u);
  // formula:end
}

template <class P, class G, class S>
__device__ __forceinline__ void mini_elem_body(const MiniSegment* table, const MiniSegment& one,
                                               uint32_t count, uint64_t total_chunks,
                                               uint64_t lr_addr, uint64_t step_addr,
                                               uint64_t grad_scale_addr, uint64_t found_inf,
                                               const MiniHyper& h) {
  if (flag_is_set(found_inf)) return;
  uint64_t t;
  const MiniScalars k = load_mini_scalars(lr_addr, step_addr, h, t);
  const float grad_scale = scalar_or_one(grad_scale_addr);
  const bool sr = h.stochastic != 0;
  for (uint64_t c = blockIdx.x; c < total_chunks; c += gridDim.x) {
    MiniSegment s = segment_for<MINI_CHUNK_START>(table, one, count, c);
    const uint64_t begin = (c - s.chunk_start) * ADAMANT_CHUNK;
    uint64_t end = begin + ADAMANT_CHUNK;
    if (end > s.n) end = s.n;
    const float clip = scalar_or_one(s.clip_coef);
    const float decay = s.weight_decay != 0 ? k.decay : 1.0f;
    const bool aligned = ((s.param | s.grad | s.exp_avg) & 15ull) == 0;
    uint64_t vend = begin;
    if (aligned) {
      vend = begin + ((end - begin) & ~7ull);
      for (uint64_t i = begin + 8ull * threadIdx.x; i < vend; i += 8ull * blockDim.x) {
        uint32_t pb[8], gb[8], mb[8];
        load8<G, true>(s.grad, i, gb);
        load8<P, false>(s.param, i, pb);
        load8<S, false>(s.exp_avg, i, mb);
        // One division per group; the block index then advances with a counter.
        uint64_t b = i / s.block_len;
        uint64_t r = i - b * s.block_len;
        float scale = __uint_as_float(load1<F32, false>(s.scale, b));
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          if (r == s.block_len) {
            r = 0;
            ++b;
            scale = __uint_as_float(load1<F32, false>(s.scale, b));
          }
          float g = grad_prep(G::widen(gb[e]), grad_scale, clip);
          float p = P::widen(pb[e]);
          float m = S::widen(mb[e]);
          adam_mini_elem(p, g, m, scale, decay, k);
          pb[e] = store_param<P>(p, sr, h.sr_seed, t, s.sr_index_offset + i + e);
          mb[e] = S::narrow(m);
          ++r;
        }
        store8<P>(s.param, i, pb);
        store8<S>(s.exp_avg, i, mb);
      }
    }
    for (uint64_t i = vend + threadIdx.x; i < end; i += blockDim.x) {
      float scale = __uint_as_float(load1<F32, false>(s.scale, i / s.block_len));
      float g = grad_prep(G::widen(load1<G, true>(s.grad, i)), grad_scale, clip);
      float p = P::widen(load1<P, false>(s.param, i));
      float m = S::widen(load1<S, false>(s.exp_avg, i));
      adam_mini_elem(p, g, m, scale, decay, k);
      store1<P>(s.param, i, store_param<P>(p, sr, h.sr_seed, t, s.sr_index_offset + i));
      store1<S>(s.exp_avg, i, S::narrow(m));
    }
  }
}

#define ADAMANT_MINI_PARAMS                                                                   \
  const MiniSegment *table, MiniSegment one, uint32_t count, uint64_t total, uint64_t lr,     \
      uint64_t step, uint64_t grad_scale, uint64_t found_inf, MiniHyper hyper

#define ADAMANT_MINI_ENTRY(pn, P, gn, G, sn, S)                                               \
  extern "C" __global__ void __launch_bounds__(ADAMANT_BLOCK, 1)                               \
      adamant_mini_##pn##_##gn##_##sn(ADAMANT_MINI_PARAMS) {                                  \
    mini_elem_body<P, G, S>(table, one, count, total, lr, step, grad_scale, found_inf, hyper); \
  }
#define ADAMANT_MINI_STATES(pn, P, gn, G) \
  ADAMANT_MINI_ENTRY(pn, P, gn, G, f32, F32) ADAMANT_MINI_ENTRY(pn, P, gn, G, bf16, BF16)
#define ADAMANT_MINI_GRADS(pn, P)                                          \
  ADAMANT_MINI_STATES(pn, P, f32, F32) ADAMANT_MINI_STATES(pn, P, bf16, BF16) \
  ADAMANT_MINI_STATES(pn, P, f16, F16)

ADAMANT_MINI_GRADS(f32, F32)
ADAMANT_MINI_GRADS(bf16, BF16)
ADAMANT_MINI_GRADS(f16, F16)

#define ADAMANT_MINI_SUMSQ(gn, G)                                                          \
  extern "C" __global__ void __launch_bounds__(ADAMANT_LANES)                              \
      adamant_mini_sumsq_##gn(ADAMANT_MINI_PARAMS) {                                       \
    mini_sumsq_body<G>(table, one, count, total, grad_scale, found_inf);                   \
  }
ADAMANT_MINI_SUMSQ(f32, F32)
ADAMANT_MINI_SUMSQ(bf16, BF16)
ADAMANT_MINI_SUMSQ(f16, F16)

#define ADAMANT_MINI_BLOCK(sn, S)                                                          \
  extern "C" __global__ void __launch_bounds__(ADAMANT_LANES)                              \
      adamant_mini_block_##sn(ADAMANT_MINI_PARAMS) {                                       \
    mini_block_body<S>(table, one, count, total, lr, step, found_inf, hyper);              \
  }
ADAMANT_MINI_BLOCK(f32, F32)
ADAMANT_MINI_BLOCK(bf16, BF16)
