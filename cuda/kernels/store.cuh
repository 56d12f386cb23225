// Storage types on the device: exact widening to f32, round-to-nearest-even narrowing by
// integer bit operations, canonical NaNs, and stochastic rounding of bf16 parameters.
// mirrors adamant_core::store (numeric contract v1), function for function.
#pragma once
#include <stdint.h>

#define ADAMANT_CANONICAL_NAN_F32 0x7FFFFFFFu
#define ADAMANT_CANONICAL_NAN_BF16 ((uint16_t)0x7FFF)
#define ADAMANT_CANONICAL_NAN_F16 ((uint16_t)0x7FFF)

// mirrors adamant_core::store::canonicalize_f32
__device__ __forceinline__ uint32_t canonicalize_f32_bits(uint32_t x) {
  return (x & 0x7FFFFFFFu) > 0x7F800000u ? ADAMANT_CANONICAL_NAN_F32 : x;
}

// mirrors adamant_core::store::bf16_bits_to_f32_bits
__device__ __forceinline__ uint32_t bf16_bits_to_f32_bits(uint32_t h) { return h << 16; }

// mirrors adamant_core::store::f32_bits_to_bf16_bits
__device__ __forceinline__ uint32_t f32_bits_to_bf16_bits(uint32_t x) {
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return ADAMANT_CANONICAL_NAN_BF16;
  uint32_t lsb = (x >> 16) & 1u;
  return (x + (0x7FFFu + lsb)) >> 16;
}

// mirrors adamant_core::store::f32_bits_to_bf16_bits_stochastic
__device__ __forceinline__ uint32_t f32_bits_to_bf16_bits_stochastic(uint32_t x, uint32_t r16) {
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return ADAMANT_CANONICAL_NAN_BF16;
  return (x + (r16 & 0xFFFFu)) >> 16;
}

// mirrors adamant_core::store::f16_bits_to_f32_bits
__device__ __forceinline__ uint32_t f16_bits_to_f32_bits(uint32_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  if (exp == 0x1Fu) return sign | 0x7F800000u | (man << 13);
  if (exp != 0u) return sign | ((exp + 112u) << 23) | (man << 13);
  if (man == 0u) return sign;
  uint32_t shift = (uint32_t)__clz(man) - 21u;  // 1..=10
  return sign | ((113u - shift) << 23) | (((man << shift) & 0x3FFu) << 13);
}

// mirrors adamant_core::store::f32_bits_to_f16_bits
__device__ __forceinline__ uint32_t f32_bits_to_f16_bits(uint32_t x) {
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return ADAMANT_CANONICAL_NAN_F16;
  if (a >= 0x477FF000u) return sign | 0x7C00u;
  if (a >= 0x38800000u) {
    uint32_t r = a - 0x38000000u;
    uint32_t lsb = (r >> 13) & 1u;
    return sign | ((r + 0x0FFFu + lsb) >> 13);
  }
  if (a <= 0x33000000u) return sign;
  uint32_t exp = a >> 23;  // 102..=112
  uint32_t man = (a & 0x7FFFFFu) | 0x800000u;
  uint32_t shift = 126u - exp;  // 14..=24
  uint32_t q = man >> shift;
  uint32_t rem = man & ((1u << shift) - 1u);
  uint32_t half = 1u << (shift - 1u);
  uint32_t up = (rem > half || (rem == half && (q & 1u) == 1u)) ? 1u : 0u;
  return sign | (q + up);
}

// mirrors adamant_core::store::stochastic_bits (64-bit wrapping integer arithmetic only)
__device__ __forceinline__ uint32_t stochastic_bits(uint64_t seed, uint64_t step, uint64_t index) {
  uint64_t z = seed + step * 0x9E3779B97F4A7C15ull + index * 0xD1B54A32D192ED03ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (uint32_t)(z >> 48);
}

// The element types, as tags. `Bits` is the stored word; `widen`/`narrow`/`narrow_stochastic`/
// `is_finite_bits` mirror adamant_core::store::Element for f32, bf16 and f16.
struct F32 {
  typedef uint32_t Bits;
  static const bool STOCHASTIC = false;
  __device__ static __forceinline__ float widen(uint32_t b) { return __uint_as_float(b); }
  __device__ static __forceinline__ uint32_t narrow(float x) {
    return canonicalize_f32_bits(__float_as_uint(x));
  }
  __device__ static __forceinline__ uint32_t narrow_stochastic(float x, uint32_t) { return narrow(x); }
  __device__ static __forceinline__ bool is_finite_bits(uint32_t b) {
    return (b & 0x7F800000u) != 0x7F800000u;
  }
};

struct BF16 {
  typedef uint16_t Bits;
  static const bool STOCHASTIC = true;
  __device__ static __forceinline__ float widen(uint32_t b) {
    return __uint_as_float(bf16_bits_to_f32_bits(b));
  }
  __device__ static __forceinline__ uint32_t narrow(float x) {
    return f32_bits_to_bf16_bits(__float_as_uint(x));
  }
  __device__ static __forceinline__ uint32_t narrow_stochastic(float x, uint32_t r16) {
    return f32_bits_to_bf16_bits_stochastic(__float_as_uint(x), r16);
  }
  __device__ static __forceinline__ bool is_finite_bits(uint32_t b) {
    return (b & 0x7F80u) != 0x7F80u;
  }
};

struct F16 {
  typedef uint16_t Bits;
  static const bool STOCHASTIC = false;
  __device__ static __forceinline__ float widen(uint32_t b) {
    return __uint_as_float(f16_bits_to_f32_bits(b));
  }
  __device__ static __forceinline__ uint32_t narrow(float x) {
    return f32_bits_to_f16_bits(__float_as_uint(x));
  }
  __device__ static __forceinline__ uint32_t narrow_stochastic(float x, uint32_t) { return narrow(x); }
  __device__ static __forceinline__ bool is_finite_bits(uint32_t b) {
    return (b & 0x7C00u) != 0x7C00u;
  }
};

// Scalar and 8-wide (128-bit for 16-bit types, 2x128-bit for f32) access to a buffer of T at a
// raw device address. `NC` reads through the read-only (non-coherent) path: only for
// buffers the launch never writes (gradients, inputs of reductions).
// Buffers are global memory. `__ldca` / `__stwb` spell the default-cached `ld.global.ca` /
// `st.global.wb`, which keeps the PTX in the global state space rather than generic accesses
// through addresses read from a table.
template <class X>
__device__ __forceinline__ X* global_ptr(uint64_t addr) {
  return reinterpret_cast<X*>(addr);
}

template <class T, bool NC>
__device__ __forceinline__ uint32_t load1(uint64_t base, uint64_t i) {
  const typename T::Bits* p = global_ptr<const typename T::Bits>(base) + i;
  return NC ? (uint32_t)__ldg(p) : (uint32_t)__ldca(p);
}

template <class T>
__device__ __forceinline__ void store1(uint64_t base, uint64_t i, uint32_t b) {
  __stwb(global_ptr<typename T::Bits>(base) + i, (typename T::Bits)b);
}

// 8 elements starting at `i` (a multiple of 8; `base` 16-byte aligned).
template <class T, bool NC>
__device__ __forceinline__ void load8(uint64_t base, uint64_t i, uint32_t out[8]) {
  if (sizeof(typename T::Bits) == 4) {
    const uint4* p = global_ptr<const uint4>(base + 4 * i);
    uint4 a = NC ? __ldg(p) : __ldca(p);
    uint4 b = NC ? __ldg(p + 1) : __ldca(p + 1);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else {
    const uint4* p = global_ptr<const uint4>(base + 2 * i);
    uint4 a = NC ? __ldg(p) : __ldca(p);
    out[0] = a.x & 0xFFFFu; out[1] = a.x >> 16; out[2] = a.y & 0xFFFFu; out[3] = a.y >> 16;
    out[4] = a.z & 0xFFFFu; out[5] = a.z >> 16; out[6] = a.w & 0xFFFFu; out[7] = a.w >> 16;
  }
}

template <class T>
__device__ __forceinline__ void store8(uint64_t base, uint64_t i, const uint32_t in[8]) {
  if (sizeof(typename T::Bits) == 4) {
    uint4* p = global_ptr<uint4>(base + 4 * i);
    __stwb(p, make_uint4(in[0], in[1], in[2], in[3]));
    __stwb(p + 1, make_uint4(in[4], in[5], in[6], in[7]));
  } else {
    uint4* p = global_ptr<uint4>(base + 2 * i);
    __stwb(p, make_uint4(in[0] | (in[1] << 16), in[2] | (in[3] << 16), in[4] | (in[5] << 16),
                         in[6] | (in[7] << 16)));
  }
}
