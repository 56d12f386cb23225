// Per-step scalars on the device by the contract's f64 recipe, so `lr` and `step` can live in
// device memory (CUDA graphs, jax.jit). Every f64 operation is an explicit round-to-nearest
// intrinsic; f64 `* - / sqrt` are correctly rounded on every GPU and CPU, so these give the
// host's bits.
// mirrors adamant_core::scalars (numeric contract v1).
#pragma once
#include <stdint.h>
#include "store.cuh"

// mirrors adamant_core::scalars::pow_u64: left-to-right square-and-multiply over the bits of t.
__device__ __forceinline__ double pow_u64(double base, uint64_t t) {
  double r = 1.0;
  if (t == 0) return r;
  int top = 63 - __clzll((long long)t);
  for (int i = top; i >= 0; --i) {
    // formula:begin
    r = __dmul_rn(r, r);
    if ((t >> i) & 1ull) r = __dmul_rn(r, base);
    // formula:end
  }
  return r;
}

// mirrors adamant_core::scalars::bias_correction: 1 - beta^t.
__device__ __forceinline__ double bias_correction(double beta, uint64_t t) {
  // formula:begin
  return __dsub_rn(1.0, pow_u64(beta, t));
  // formula:end
}

// mirrors adamant_core::scalars::sqrt_f64 (correctly rounded).
__device__ __forceinline__ double sqrt_f64(double x) { return __dsqrt_rn(x); }

// mirrors adamant_core::scalars::to_f32 (round to nearest even).
__device__ __forceinline__ float to_f32(double x) { return __double2float_rn(x); }

// A 32-bit flag word as PyTorch's `found_inf` (f32 0.0 / 1.0) or an integer (0 / nonzero):
// set when any bit but the sign bit is set.
__device__ __forceinline__ bool flag_is_set(uint64_t found_inf) {
  if (found_inf == 0) return false;
  uint32_t w = __ldca(global_ptr<const unsigned int>(found_inf));
  return (w & 0x7FFFFFFFu) != 0u;
}

// The f32 at a device address, or 1.0 when the address is 0 (no loss scale / no clipping).
__device__ __forceinline__ float scalar_or_one(uint64_t addr) {
  return addr == 0 ? 1.0f : __ldca(global_ptr<const float>(addr));
}

// mirrors adamant_core::step::GradPrep::apply: g = (g / grad_scale) * clip_coef, each
// operation skipped when its operand is exactly 1 (x/1 = x*1 = x for every non-NaN x, and a
// NaN stays NaN and is canonical on store), as core's fast path skips the identity.
__device__ __forceinline__ float grad_prep(float g, float grad_scale, float clip_coef) {
  // formula:begin
  if (grad_scale != 1.0f) g = __fdiv_rn(g, grad_scale);
  if (clip_coef != 1.0f) g = __fmul_rn(g, clip_coef);
  // formula:end
  return g;
}

// Store a parameter: nearest-even, or stochastic for bf16 when asked.
// mirrors adamant_core::step::store_param
template <class P>
__device__ __forceinline__ uint32_t store_param(float x, bool sr, uint64_t seed, uint64_t t,
                                                uint64_t index) {
  if (P::STOCHASTIC && sr) return P::narrow_stochastic(x, stochastic_bits(seed, t, index));
  return P::narrow(x);
}
