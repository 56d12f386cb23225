// Lion update kernels, single and multi-tensor, every storage combination.
// Entry points: adamant_lion_<param>_<grad>_<state>. Parameters (adamant_cuda::args::LionArgs):
// (table, one, count, total_chunks, lr, step, grad_scale, found_inf, hyper)
#include "multi_tensor.cuh"
#include "scalars.cuh"
#include "store.cuh"

// Hyper-parameters by value (40 bytes, align 8). Layout: adamant_cuda::args::LionHyper.
struct LionHyper {
  double beta1;         //  0
  double beta2;         //  8
  double weight_decay;  // 16
  uint64_t sr_seed;     // 24
  uint32_t stochastic;  // 32
  uint32_t reserved;    // 36: 0
};

// mirrors adamant_core::rules::lion::LionScalars
struct LionScalars {
  float decay, lr, beta1, one_minus_beta1, beta2, one_minus_beta2;
};

// mirrors adamant_core::rules::lion::LionConfig::scalars (numeric contract v1)
__device__ __forceinline__ LionScalars lion_scalars(const LionHyper& h, double lr) {
  LionScalars k;
  // formula:begin
  k.decay = to_f32(__dsub_rn(1.0, __dmul_rn(lr, h.weight_decay)));
  k.lr = to_f32(lr);
  k.beta1 = to_f32(h.beta1);
  k.one_minus_beta1 = to_f32(__dsub_rn(1.0, h.beta1));
  k.beta2 = to_f32(h.beta2);
  k.one_minus_beta2 = to_f32(__dsub_rn(1.0, h.beta2));
  // formula:end
  return k;
}

// mirrors adamant_core::rules::lion::sign: 1 for x > 0, -1 for x < 0, +0 for +-0, NaN for NaN.
__device__ __forceinline__ float lion_sign(float x) {
  return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : (x == 0.0f ? 0.0f : x));
}

// mirrors adamant_core::rules::lion::lion_elem (numeric contract v1)
//   1. p = p * decay
//   2. c = beta1*exp_avg + one_minus_beta1*g
//   3. p = p - lr*sign(c)
//   4. exp_avg = beta2*exp_avg + one_minus_beta2*g
__device__ __forceinline__ void lion_elem(float& p, float g, float& m, const LionScalars& k) {
  // formula:begin
  float q = __fmul_rn(p, k.decay);
  float c = __fadd_rn(__fmul_rn(k.beta1, m), __fmul_rn(k.one_minus_beta1, g));
  p = __fsub_rn(q, __fmul_rn(k.lr, lion_sign(c)));
  m = __fadd_rn(__fmul_rn(k.beta2, m), __fmul_rn(k.one_minus_beta2, g));
  // formula:end
}

template <class P, class G, class S>
__device__ __forceinline__ void lion_body(const TensorEntry* table, const TensorEntry& one,
                                          uint32_t count, uint64_t total_chunks, uint64_t lr_addr,
                                          uint64_t step_addr, uint64_t grad_scale_addr,
                                          uint64_t found_inf_addr, const LionHyper& h) {
  if (flag_is_set(found_inf_addr)) return;
  __shared__ LionScalars shared_k;
  const uint64_t t = (uint64_t)__ldca(global_ptr<const unsigned long long>(step_addr)) + 1ull;
  if (threadIdx.x == 0) {
    double lr = (double)__ldca(global_ptr<const float>(lr_addr));
    shared_k = lion_scalars(h, lr);
  }
  __syncthreads();
  const LionScalars k = shared_k;
  const float grad_scale = scalar_or_one(grad_scale_addr);
  const bool sr = h.stochastic != 0;
  auto one_elem = [&](const TensorEntry& e, float clip, uint64_t i) {
    float g = grad_prep(G::widen(load1<G, true>(e.grad, i)), grad_scale, clip);
    float p = P::widen(load1<P, false>(e.param, i));
    float m = S::widen(load1<S, false>(e.state0, i));
    lion_elem(p, g, m, k);
    store1<P>(e.param, i, store_param<P>(p, sr, h.sr_seed, t, e.sr_index_offset + i));
    store1<S>(e.state0, i, S::narrow(m));
  };
  auto vec8 = [&](const TensorEntry& e, float clip, uint64_t i) {
    uint32_t pb[8], gb[8], mb[8];
    load8<G, true>(e.grad, i, gb);
    load8<P, false>(e.param, i, pb);
    load8<S, false>(e.state0, i, mb);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float g = grad_prep(G::widen(gb[j]), grad_scale, clip);
      float p = P::widen(pb[j]);
      float m = S::widen(mb[j]);
      lion_elem(p, g, m, k);
      pb[j] = store_param<P>(p, sr, h.sr_seed, t, e.sr_index_offset + i + j);
      mb[j] = S::narrow(m);
    }
    store8<P>(e.param, i, pb);
    store8<S>(e.state0, i, mb);
  };
  for_each_element(table, one, count, total_chunks, vec8, one_elem);
}

#define ADAMANT_LION_ENTRY(pn, P, gn, G, sn, S)                                                 \
  extern "C" __global__ void __launch_bounds__(ADAMANT_BLOCK) adamant_lion_##pn##_##gn##_##sn( \
      const TensorEntry* table, TensorEntry one, uint32_t count, uint64_t total_chunks,         \
      uint64_t lr, uint64_t step, uint64_t grad_scale, uint64_t found_inf, LionHyper hyper) {   \
    lion_body<P, G, S>(table, one, count, total_chunks, lr, step, grad_scale, found_inf, hyper); \
  }

#define ADAMANT_LION_STATES(pn, P, gn, G) \
  ADAMANT_LION_ENTRY(pn, P, gn, G, f32, F32) ADAMANT_LION_ENTRY(pn, P, gn, G, bf16, BF16)
#define ADAMANT_LION_GRADS(pn, P)                                          \
  ADAMANT_LION_STATES(pn, P, f32, F32) ADAMANT_LION_STATES(pn, P, bf16, BF16) \
  ADAMANT_LION_STATES(pn, P, f16, F16)

ADAMANT_LION_GRADS(f32, F32)
ADAMANT_LION_GRADS(bf16, BF16)
ADAMANT_LION_GRADS(f16, F16)
