// Symmetric 4/8-bit group quantizers, LoCo and two-way error feedback on the device.
// mirrors adamant_core::quant (quantize, dequantize, dequantize_reduce), adamant_core::feedback
// (ef_compress_chunk, ef_worker_compress, ef_server_compress, ef_decompress) and
// adamant_core::loco (compress, reduce_hop, decompress_reduce), numeric contract v1.
//
// Entry points (one by-value QuantArgs each, layout adamant_cuda::args::QuantArgs):
//   adamant_quant_check_{f32,bf16,f16,packed}(a)    pre-scan of a compress launch
//   adamant_quant_compress_{f32,bf16,f16,packed}(a) quantize with optional error feedback
//   adamant_quant_decompress_check(a)                pre-scan of a decompress launch
//   adamant_quant_decompress(a)                      rank-order fold of peers' codes [/ divisor]
// `f32/bf16/f16`: the source is a gradient buffer of that dtype; `packed`: the source is the
// rank-order fold of `peers` packed chunks (LoCo's second hop, the EF server).
//
// "Nothing is written on error": core returns a typed error before writing. On the device the
// check kernel of a call stores f32 1.0 into the 32-bit word at `status` (every writer the same
// word, no atomics) when core would refuse the call (a non-finite value to quantize, a scale that
// is not finite and positive, an overflowing fold); the main kernel then returns without writing.
// A status that is already set (the step's found_inf) skips the call too.
//
// Launch: 256 threads per block (exactly), block b takes launch groups b, b + gridDim.x, ...;
// launch group G is group G % groups of chunk G / groups. One group is handled by one block:
// thread t takes the element pairs (2p, 2p+1) of the group for p = t, t + 256, ..., so every
// 4-bit code byte is written whole by one thread. The group's max-abs is order-free (a max of
// |x| bit patterns), reduced with the tree of reduce.cuh.
#include "reduce.cuh"
#include "scalars.cuh"
#include "store.cuh"

#define ADAMANT_QUANT_BLOCK 256
#define ADAMANT_STATUS_SET 0x3F800000u

// Layout: adamant_cuda::args::QuantArgs (104 bytes, align 8).
struct QuantArgs {
  uint64_t src;               //  0: gradient (G) of shard 0, or chunk 0's first peer chunk (packed)
  uint64_t err;               //  8: error buffer (f32 values or 8-bit packed chunks), 0 = none
  uint64_t out;               // 16: packed chunks (compress) or f32 values (decompress)
  uint64_t status;            // 24: 32-bit status word (required)
  uint64_t len;               // 32: elements per chunk (shard)
  uint64_t peer_stride;       // 40: bytes between consecutive peers' chunks (packed source)
  uint64_t src_chunk_stride;  // 48: bytes between chunk c and c + 1's first peer chunk
  uint32_t chunks;            // 56: chunks of the launch
  uint32_t nodes;             // 60: chunk c holds shard (c % nodes) * (chunks / nodes) + c / nodes
  uint32_t peers;             // 64: peers folded (packed source), 0 otherwise
  uint32_t group_len;         // 68: elements per group (> 0)
  uint32_t bits;              // 72: output code width, 4 or 8
  uint32_t src_bits;          // 76: peers' code width, 4 or 8
  uint32_t err_storage;       // 80: 0 none, 1 f32, 2 8-bit packed
  uint32_t reset;             // 84: 1 = read every error as zero
  uint32_t rule;              // 88: 0 plain EF (e = x - x_hat), 1 LoCo (loco_error_elem)
  float err_beta;             // 92
  float one_minus_err_beta;   // 96
  float divisor;              // 100: the fold is divided by it; 0 = no division
};

// Geometry of one packed chunk. mirrors adamant_core::quant::{code_bytes, scales_offset,
// packed_len, QuantLayout::group_code_offset}.
struct Packing {
  uint64_t group_len;
  uint64_t group_code_bytes;  // ceil(group_len / 2) (4-bit) or group_len (8-bit)
  uint64_t code_bytes;
  uint64_t scales_offset;     // code bytes rounded up to a multiple of 4
  uint64_t groups;
  uint64_t chunk_bytes;       // packed_len
  uint32_t bits;
};

__device__ __forceinline__ uint64_t codes_for(uint64_t n, uint32_t bits) {
  return bits == 8u ? n : (n + 1ull) / 2ull;
}

__device__ __forceinline__ Packing packing(uint64_t len, uint32_t group_len, uint32_t bits) {
  Packing p;
  p.group_len = group_len;
  p.bits = bits;
  p.group_code_bytes = codes_for(group_len, bits);
  const uint64_t full = len / group_len;
  p.code_bytes = full * p.group_code_bytes + codes_for(len - full * group_len, bits);
  p.scales_offset = (p.code_bytes + 3ull) & ~3ull;
  p.groups = (len + group_len - 1ull) / group_len;
  p.chunk_bytes = p.scales_offset + 4ull * p.groups;
  return p;
}

// The stored inv_scale of group g (little-endian f32). NC: the chunk is not written by the
// launch.
template <bool NC>
__device__ __forceinline__ float scale_at(uint64_t chunk, const Packing& p, uint64_t g) {
  const float* s = global_ptr<const float>(chunk + p.scales_offset + 4ull * g);
  return NC ? __ldg(s) : __ldca(s);
}

// mirrors adamant_core::quant::code_at / unpack_nibbles: element j of group g, sign-extended
// (4-bit: element 2k in the high nibble, 2k+1 in the low nibble).
template <bool NC>
__device__ __forceinline__ int32_t code_at(uint64_t chunk, const Packing& p, uint64_t g,
                                           uint64_t j) {
  const uint64_t at = chunk + g * p.group_code_bytes + (p.bits == 8u ? j : j >> 1);
  const unsigned char* b = global_ptr<const unsigned char>(at);
  const uint32_t v = NC ? (uint32_t)__ldg(b) : (uint32_t)__ldca(b);
  if (p.bits == 8u) return (int32_t)(int8_t)(uint8_t)v;
  const uint32_t nib = (j & 1ull) ? (v & 0xFu) : (v >> 4);
  return ((int32_t)(nib << 28)) >> 28;
}

// mirrors adamant_core::quant::dequantize_elem: f32(q) * inv_scale (the conversion is exact).
__device__ __forceinline__ float dequantize_elem(int32_t q, float inv_scale) {
  // formula:begin
  return __fmul_rn((float)q, inv_scale);
  // formula:end
}

// mirrors adamant_core::quant::group_scale: (scale, inv_scale) from the group's max |x| bits;
// (1, 1) for an all-zero group; scale = min(H / absmax, f32::MAX), inv_scale = 1 / scale.
__device__ __forceinline__ void group_scale(uint32_t absmax_bits, uint32_t bits, float& scale,
                                            float& inv) {
  if (absmax_bits == 0u) {
    scale = 1.0f;
    inv = 1.0f;
    return;
  }
  const float h = bits == 8u ? 128.0f : 8.0f;
  // formula:begin
  scale = __fdiv_rn(h, __uint_as_float(absmax_bits));
  if (scale > 3.40282347e38f) scale = 3.40282347e38f;
  inv = __fdiv_rn(1.0f, scale);
  // formula:end
}

// mirrors adamant_core::quant::quantize_elem with round_half_even: clamp(rne(x*scale), -H, H-1).
// rne: for |y| < 2^23, t = |y| + 2^23 rounds |y| to an integer n (nearest even) and is exactly
// 2^23 + n, so n = bits(t) - bits(2^23) (core's `t - 2^23`, which is exact); the sign of y is
// put back on n. |y| >= 2^23 (and infinity) is already beyond the clamp. NaN gives 0 (core's
// `NaN as i8`; unreachable: inputs are checked finite).
__device__ __forceinline__ int32_t quantize_elem(float x, float scale, uint32_t bits) {
  // formula:begin
  const float y = __fmul_rn(x, scale);
  // formula:end
  const uint32_t yb = __float_as_uint(y);
  const uint32_t ab = yb & 0x7FFFFFFFu;
  if (ab > 0x7F800000u) return 0;
  int32_t n = 1 << 24;
  if (ab < 0x4B000000u) {
    // formula:begin
    const float t = __fadd_rn(__uint_as_float(ab), 8388608.0f);
    // formula:end
    n = (int32_t)(__float_as_uint(t) - 0x4B000000u);
  }
  const int32_t q = (yb >> 31) ? -n : n;
  const int32_t hi = bits == 8u ? 127 : 7;
  const int32_t lo = -hi - 1;
  return q < lo ? lo : (q > hi ? hi : q);
}

// mirrors adamant_core::feedback::ef_error_elem (rule 0) and loco_error_elem (rule 1):
// 1. d = x - x_hat ; 2. a = err_beta*e_old ; 3. b = one_minus_err_beta*d ; 4. e_new = a + b.
__device__ __forceinline__ float error_elem(const QuantArgs& a, float x, float x_hat,
                                            float e_old) {
  // formula:begin
  const float d = __fsub_rn(x, x_hat);
  if (a.rule == 0u) return d;
  return __fadd_rn(__fmul_rn(a.err_beta, e_old), __fmul_rn(a.one_minus_err_beta, d));
  // formula:end
}

// Sources of the values to quantize. `at(a, src_chunk, sp, g, j, i)` is element i = g*G + j of
// the chunk.
template <class G>
struct GradSource {
  __device__ static __forceinline__ float at(const QuantArgs&, uint64_t src, const Packing&,
                                             uint64_t, uint64_t, uint64_t i) {
    return G::widen(load1<G, true>(src, i));
  }
};

// mirrors adamant_core::quant::fold_peers (and loco::reduce_hop's fold, feedback's server
// fold): s = +0.0; for r in rank order: s = s + deQ_r[i]; then s / divisor when divisor != 0.
struct PackedSource {
  __device__ static __forceinline__ float at(const QuantArgs& a, uint64_t src, const Packing& sp,
                                             uint64_t g, uint64_t j, uint64_t) {
    float s = 0.0f;
    for (uint32_t r = 0; r < a.peers; ++r) {
      const uint64_t chunk = src + (uint64_t)r * a.peer_stride;
      const float v = dequantize_elem(code_at<true>(chunk, sp, g, j), scale_at<true>(chunk, sp, g));
      // formula:begin
      s = __fadd_rn(s, v);
      // formula:end
    }
    // formula:begin
    if (a.divisor != 0.0f) s = __fdiv_rn(s, a.divisor);
    // formula:end
    return s;
  }
};

// Where chunk c of a launch reads and writes.
struct ChunkAddrs {
  uint64_t src, err, out;
};

// mirrors adamant_core::loco::LocoLayout::shard_of_chunk: chunk c = j*nodes + n holds shard
// n*local + j (local = chunks / nodes); nodes = 1 is the identity.
__device__ __forceinline__ uint64_t shard_of_chunk(const QuantArgs& a, uint64_t c) {
  const uint64_t nodes = a.nodes;
  return (c % nodes) * (a.chunks / nodes) + c / nodes;
}

// The old error of element i (group g, j = i - start): 0 at a reset, the f32 value, or the
// 8-bit code times the group's old scale (read once per group, before anything is written).
__device__ __forceinline__ float e_old_at(const QuantArgs& a, uint64_t err, const Packing& ep,
                                          uint64_t g, uint64_t j, uint64_t i, float inv8_old) {
  if (a.reset != 0u || a.err_storage == 0u) return 0.0f;
  if (a.err_storage == 1u) return __ldca(global_ptr<const float>(err) + i);
  return dequantize_elem(code_at<false>(err, ep, g, j), inv8_old);
}

// x = base (no error buffer) or base + e_old (feedback.rs step 2).
template <class Src>
__device__ __forceinline__ float x_at(const QuantArgs& a, const ChunkAddrs& ca, const Packing& sp,
                                      const Packing& ep, uint64_t g, uint64_t j, uint64_t i,
                                      float inv8_old, float& e_old) {
  const float base = Src::at(a, ca.src, sp, g, j, i);
  e_old = e_old_at(a, ca.err, ep, g, j, i, inv8_old);
  if (a.err_storage == 0u) return base;
  // formula:begin
  return __fadd_rn(base, e_old);
  // formula:end
}

// Block-wide max of bit patterns, returned to every thread.
__device__ __forceinline__ uint32_t block_max_bits(uint32_t acc, uint32_t* sh, uint32_t* bcast) {
  const uint32_t v = lane_max(acc, sh);
  if (threadIdx.x == 0) *bcast = v;
  __syncthreads();
  const uint32_t r = *bcast;
  __syncthreads();
  return r;
}

__device__ __forceinline__ void set_status(uint64_t status) {
  __stwb(global_ptr<unsigned int>(status), ADAMANT_STATUS_SET);
}

__device__ __forceinline__ void store_byte(uint64_t addr, uint32_t v) {
  __stwb(global_ptr<unsigned char>(addr), (unsigned char)v);
}

__device__ __forceinline__ ChunkAddrs compress_addrs(const QuantArgs& a, const Packing& op,
                                                     const Packing& ep, uint64_t c,
                                                     uint64_t src_elem_bytes) {
  ChunkAddrs ca;
  const uint64_t k = shard_of_chunk(a, c);
  ca.src = src_elem_bytes == 0 ? a.src + c * a.src_chunk_stride : a.src + k * a.len * src_elem_bytes;
  ca.err = a.err_storage == 1u ? a.err + 4ull * k * a.len
         : a.err_storage == 2u ? a.err + k * ep.chunk_bytes
                               : 0ull;
  ca.out = a.out + c * op.chunk_bytes;
  return ca;
}

// Pre-scan of a compress launch: mirrors the checks core makes before writing (quant::quantize,
// loco::compress / reduce_hop, feedback::ef_worker_compress / ef_server_compress): the peers'
// scales (quant::check_scales), the old 8-bit error scales unless the step resets
// (feedback::check_err), and every x finite (quant::first_non_finite, feedback::first_bad).
template <class Src>
__device__ __forceinline__ void check_body(const QuantArgs& a, uint64_t src_elem_bytes) {
  if (flag_is_set(a.status)) return;
  const Packing op = packing(a.len, a.group_len, a.bits);
  const Packing sp = packing(a.len, a.group_len, a.src_bits);
  const Packing ep = packing(a.len, a.group_len, 8u);
  const uint64_t total = (uint64_t)a.chunks * op.groups;
  bool bad = false;
  for (uint64_t G = blockIdx.x; G < total; G += gridDim.x) {
    const uint64_t c = G / op.groups;
    const uint64_t g = G - c * op.groups;
    const ChunkAddrs ca = compress_addrs(a, op, ep, c, src_elem_bytes);
    if (src_elem_bytes == 0) {
      for (uint32_t r = threadIdx.x; r < a.peers; r += blockDim.x) {
        const float s = scale_at<true>(ca.src + (uint64_t)r * a.peer_stride, sp, g);
        bad |= !(s > 0.0f && s <= 3.40282347e38f);
      }
    }
    float inv8_old = 0.0f;
    if (a.err_storage == 2u && a.reset == 0u) {
      inv8_old = scale_at<false>(ca.err, ep, g);
      bad |= !(inv8_old > 0.0f && inv8_old <= 3.40282347e38f);
    }
    const uint64_t start = g * a.group_len;
    const uint64_t glen = min((uint64_t)a.group_len, a.len - start);
    for (uint64_t j = threadIdx.x; j < glen; j += blockDim.x) {
      float e_old;
      const float x = x_at<Src>(a, ca, sp, ep, g, j, start + j, inv8_old, e_old);
      bad |= !F32::is_finite_bits(__float_as_uint(x));
    }
  }
  if (bad) set_status(a.status);
}

// mirrors adamant_core::feedback::ef_compress_chunk (and quant::quantize_group when there is no
// error buffer), one group per block iteration:
//   1. e_old ; 2. x = base + e_old ; 3. absmax, scale, inv_scale, q, x_hat ;
//   4. e_new = error_elem(x, x_hat, e_old) ; 5. f32: e = e_new ; 8-bit: absmax8/scale8 of the
//   group's e_new, e = Q8(e_new).
// x, x_hat and e_new are recomputed identically in each pass. An element's old 8-bit code is
// read by the thread that overwrites it, before it does; the old 8-bit scale is read by every
// thread at the start of the group and replaced by thread 0 after the group's last barrier.
template <class Src>
__device__ __forceinline__ void compress_body(const QuantArgs& a, uint64_t src_elem_bytes) {
  __shared__ uint32_t sh[ADAMANT_LANES];
  __shared__ uint32_t bcast;
  if (flag_is_set(a.status)) return;
  const Packing op = packing(a.len, a.group_len, a.bits);
  const Packing sp = packing(a.len, a.group_len, a.src_bits);
  const Packing ep = packing(a.len, a.group_len, 8u);
  const uint64_t total = (uint64_t)a.chunks * op.groups;
  for (uint64_t G = blockIdx.x; G < total; G += gridDim.x) {
    const uint64_t c = G / op.groups;
    const uint64_t g = G - c * op.groups;
    const ChunkAddrs ca = compress_addrs(a, op, ep, c, src_elem_bytes);
    const uint64_t start = g * a.group_len;
    const uint64_t glen = min((uint64_t)a.group_len, a.len - start);
    const bool int8_err = a.err_storage == 2u;
    const float inv8_old = (int8_err && a.reset == 0u) ? scale_at<false>(ca.err, ep, g) : 0.0f;

    // Pass 1: absmax of x.
    uint32_t m = 0u;
    for (uint64_t j = threadIdx.x; j < glen; j += blockDim.x) {
      float e_old;
      const float x = x_at<Src>(a, ca, sp, ep, g, j, start + j, inv8_old, e_old);
      m = max(m, __float_as_uint(x) & 0x7FFFFFFFu);
    }
    m = block_max_bits(m, sh, &bcast);
    float scale, inv;
    group_scale(m, a.bits, scale, inv);

    // Pass 2 (8-bit errors): absmax of e_new.
    float scale8 = 1.0f, inv8 = 1.0f;
    if (int8_err) {
      uint32_t m8 = 0u;
      for (uint64_t j = threadIdx.x; j < glen; j += blockDim.x) {
        float e_old;
        const float x = x_at<Src>(a, ca, sp, ep, g, j, start + j, inv8_old, e_old);
        const float x_hat = dequantize_elem(quantize_elem(x, scale, a.bits), inv);
        m8 = max(m8, __float_as_uint(error_elem(a, x, x_hat, e_old)) & 0x7FFFFFFFu);
      }
      m8 = block_max_bits(m8, sh, &bcast);
      group_scale(m8, 8u, scale8, inv8);
    }

    // Pass 3: codes and errors, two elements per thread step.
    const uint64_t code_base = ca.out + g * op.group_code_bytes;
    for (uint64_t p = threadIdx.x; 2ull * p < glen; p += blockDim.x) {
      int32_t q[2] = {0, 0};
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const uint64_t j = 2ull * p + h;
        if (j >= glen) break;
        const uint64_t i = start + j;
        float e_old;
        const float x = x_at<Src>(a, ca, sp, ep, g, j, i, inv8_old, e_old);
        q[h] = quantize_elem(x, scale, a.bits);
        if (a.err_storage != 0u) {
          const float e_new = error_elem(a, x, dequantize_elem(q[h], inv), e_old);
          if (a.err_storage == 1u) {
            __stwb(global_ptr<float>(ca.err) + i, e_new);
          } else {
            store_byte(ca.err + g * ep.group_code_bytes + j,
                       (uint32_t)quantize_elem(e_new, scale8, 8u) & 0xFFu);
          }
        }
        if (a.bits == 8u) store_byte(code_base + j, (uint32_t)q[h] & 0xFFu);
      }
      // mirrors adamant_core::quant::pack_nibbles: even element high, odd element low.
      if (a.bits != 8u) store_byte(code_base + p, (((uint32_t)q[0] & 0xFu) << 4) | ((uint32_t)q[1] & 0xFu));
    }
    // Every thread has read the old 8-bit scale (before the barriers above).
    if (threadIdx.x == 0) {
      __stwb(global_ptr<float>(ca.out + op.scales_offset + 4ull * g), inv);
      if (int8_err) __stwb(global_ptr<float>(ca.err + ep.scales_offset + 4ull * g), inv8);
      if (g + 1 == op.groups) {
        for (uint64_t b = op.code_bytes; b < op.scales_offset; ++b) store_byte(ca.out + b, 0u);
        if (int8_err)
          for (uint64_t b = ep.code_bytes; b < ep.scales_offset; ++b) store_byte(ca.err + b, 0u);
      }
    }
  }
}

// Pre-scan of a decompress launch: mirrors adamant_core::quant::dequantize_reduce's checks:
// every peer's scale finite and positive (check_scales); for a group whose f64 bound
// sum_r H*inv_scale_r (rank order) reaches 2^127 (fold_may_overflow), every element's
// fold / divisor finite.
__device__ __forceinline__ void decompress_check_body(const QuantArgs& a) {
  __shared__ uint32_t sh_may;
  if (flag_is_set(a.status)) return;
  const Packing sp = packing(a.len, a.group_len, a.src_bits);
  const uint64_t total = (uint64_t)a.chunks * sp.groups;
  const double h = a.src_bits == 8u ? 128.0 : 8.0;
  bool bad = false;
  for (uint64_t G = blockIdx.x; G < total; G += gridDim.x) {
    const uint64_t c = G / sp.groups;
    const uint64_t g = G - c * sp.groups;
    const uint64_t src = a.src + c * a.src_chunk_stride;
    for (uint32_t r = threadIdx.x; r < a.peers; r += blockDim.x) {
      const float s = scale_at<true>(src + (uint64_t)r * a.peer_stride, sp, g);
      bad |= !(s > 0.0f && s <= 3.40282347e38f);
    }
    if (threadIdx.x == 0) {
      double bound = 0.0;
      for (uint32_t r = 0; r < a.peers; ++r) {
        const float s = scale_at<true>(src + (uint64_t)r * a.peer_stride, sp, g);
        // formula:begin
        bound = __dadd_rn(bound, __dmul_rn((double)s, h));
        // formula:end
      }
      sh_may = bound >= 1.7014118346046923e38 ? 1u : 0u;
    }
    __syncthreads();
    const bool may = sh_may != 0u;
    __syncthreads();
    if (may) {
      const uint64_t start = g * a.group_len;
      const uint64_t glen = min((uint64_t)a.group_len, a.len - start);
      for (uint64_t j = threadIdx.x; j < glen; j += blockDim.x) {
        const float v = PackedSource::at(a, src, sp, g, j, start + j);
        bad |= !F32::is_finite_bits(__float_as_uint(v));
      }
    }
  }
  if (bad) set_status(a.status);
}

// mirrors adamant_core::quant::dequantize_reduce (loco::decompress_reduce, decompress_sum,
// feedback::ef_decompress, quant::dequantize with one peer: +0.0 + deQ = deQ, never -0.0):
// out[c*len + i] = fold_r(deQ_r[i]) [/ divisor].
__device__ __forceinline__ void decompress_body(const QuantArgs& a) {
  if (flag_is_set(a.status)) return;
  const Packing sp = packing(a.len, a.group_len, a.src_bits);
  const uint64_t total = (uint64_t)a.chunks * sp.groups;
  for (uint64_t G = blockIdx.x; G < total; G += gridDim.x) {
    const uint64_t c = G / sp.groups;
    const uint64_t g = G - c * sp.groups;
    const uint64_t src = a.src + c * a.src_chunk_stride;
    const uint64_t start = g * a.group_len;
    const uint64_t glen = min((uint64_t)a.group_len, a.len - start);
    float* out = global_ptr<float>(a.out) + c * a.len + start;
    for (uint64_t j = threadIdx.x; j < glen; j += blockDim.x)
      __stwb(out + j, PackedSource::at(a, src, sp, g, j, start + j));
  }
}

#define ADAMANT_QUANT_GRAD_ENTRIES(gn, G)                                                      \
  extern "C" __global__ void __launch_bounds__(ADAMANT_QUANT_BLOCK, 1)                            \
      adamant_quant_check_##gn(QuantArgs a) {                                                  \
    check_body<GradSource<G> >(a, sizeof(typename G::Bits));                                  \
  }                                                                                            \
  extern "C" __global__ void __launch_bounds__(ADAMANT_QUANT_BLOCK, 1)                            \
      adamant_quant_compress_##gn(QuantArgs a) {                                               \
    compress_body<GradSource<G> >(a, sizeof(typename G::Bits));                               \
  }

ADAMANT_QUANT_GRAD_ENTRIES(f32, F32)
ADAMANT_QUANT_GRAD_ENTRIES(bf16, BF16)
ADAMANT_QUANT_GRAD_ENTRIES(f16, F16)

extern "C" __global__ void __launch_bounds__(ADAMANT_QUANT_BLOCK, 1)
    adamant_quant_check_packed(QuantArgs a) {
  check_body<PackedSource>(a, 0);
}
extern "C" __global__ void __launch_bounds__(ADAMANT_QUANT_BLOCK, 1)
    adamant_quant_compress_packed(QuantArgs a) {
  compress_body<PackedSource>(a, 0);
}
extern "C" __global__ void __launch_bounds__(ADAMANT_QUANT_BLOCK, 1)
    adamant_quant_decompress_check(QuantArgs a) {
  decompress_check_body(a);
}
extern "C" __global__ void __launch_bounds__(ADAMANT_QUANT_BLOCK, 1)
    adamant_quant_decompress(QuantArgs a) {
  decompress_body(a);
}
