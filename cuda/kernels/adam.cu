// Adam / AdamW update kernels, single and multi-tensor, every storage combination.
// Entry points: adamant_adam_<param>_<grad>_<state>, param/grad in {f32, bf16, f16},
// state in {f32, bf16}. Parameters (adamant_cuda::args::AdamArgs documents the layout):
//   (table, one, count, total_chunks, lr, step, grad_scale, found_inf, hyper)
#include "multi_tensor.cuh"
#include "scalars.cuh"
#include "store.cuh"

// Hyper-parameters by value (48 bytes, align 8). Layout: adamant_cuda::args::AdamHyper.
struct AdamHyper {
  double beta1;         //  0
  double beta2;         //  8
  double eps;           // 16
  double weight_decay;  // 24
  uint64_t sr_seed;     // 32: stochastic rounding seed (used when `stochastic` != 0)
  uint32_t decoupled;   // 40: 1 AdamW, 0 Adam (L2)
  uint32_t stochastic;  // 44: 1 rounds bf16 parameters stochastically
};

// mirrors adamant_core::rules::adam::AdamScalars
struct AdamScalars {
  float decay, weight_decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
      bias_correction2_sqrt, eps;
};

// mirrors adamant_core::rules::adam::AdamConfig::scalars (numeric contract v1), with
// lr = the f32 learning rate widened to f64 and t = step + 1.
__device__ __forceinline__ AdamScalars adam_scalars(const AdamHyper& h, double lr, uint64_t t) {
  AdamScalars k;
  // formula:begin
  double bc1 = bias_correction(h.beta1, t);
  double bc2 = bias_correction(h.beta2, t);
  k.decay = h.decoupled ? to_f32(__dsub_rn(1.0, __dmul_rn(lr, h.weight_decay))) : 1.0f;
  k.weight_decay = h.decoupled ? 0.0f : to_f32(h.weight_decay);
  k.beta1 = to_f32(h.beta1);
  k.one_minus_beta1 = to_f32(__dsub_rn(1.0, h.beta1));
  k.beta2 = to_f32(h.beta2);
  k.one_minus_beta2 = to_f32(__dsub_rn(1.0, h.beta2));
  k.step_size = to_f32(__ddiv_rn(lr, bc1));
  k.bias_correction2_sqrt = to_f32(sqrt_f64(bc2));
  k.eps = to_f32(h.eps);
  // formula:end
  return k;
}

// mirrors adamant_core::rules::adam::adam_elem (numeric contract v1)
//   1. if weight_decay != 0: g = g + weight_decay*p
//   2. p = p * decay
//   3. exp_avg    = beta1*exp_avg + one_minus_beta1*g
//   4. exp_avg_sq = beta2*exp_avg_sq + one_minus_beta2*(g*g)
//   5. denom = sqrt(exp_avg_sq)/bias_correction2_sqrt + eps
//   6. p = p - step_size*(exp_avg/denom)
__device__ __forceinline__ void adam_elem(float& p, float grad, float& m, float& v,
                                          const AdamScalars& k) {
  // formula:begin
  float g = grad;
  if (k.weight_decay != 0.0f) g = __fadd_rn(g, __fmul_rn(k.weight_decay, p));
  float q = __fmul_rn(p, k.decay);
  m = __fadd_rn(__fmul_rn(k.beta1, m), __fmul_rn(k.one_minus_beta1, g));
  v = __fadd_rn(__fmul_rn(k.beta2, v), __fmul_rn(k.one_minus_beta2, __fmul_rn(g, g)));
  float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(v), k.bias_correction2_sqrt), k.eps);
  p = __fsub_rn(q, __fmul_rn(k.step_size, __fdiv_rn(m, denom)));
  // formula:end
}

template <class P, class G, class S>
__device__ __forceinline__ void adam_body(const TensorEntry* table, const TensorEntry& one,
                                          uint32_t count, uint64_t total_chunks, uint64_t lr_addr,
                                          uint64_t step_addr, uint64_t grad_scale_addr,
                                          uint64_t found_inf_addr, const AdamHyper& h) {
  // A skipped step (found_inf set) writes nothing; the decision is uniform over the grid.
  if (flag_is_set(found_inf_addr)) return;
  __shared__ AdamScalars shared_k;
  const uint64_t t = (uint64_t)__ldca(global_ptr<const unsigned long long>(step_addr)) + 1ull;
  if (threadIdx.x == 0) {
    double lr = (double)__ldca(global_ptr<const float>(lr_addr));
    shared_k = adam_scalars(h, lr, t);
  }
  __syncthreads();
  const AdamScalars k = shared_k;
  const float grad_scale = scalar_or_one(grad_scale_addr);
  const bool sr = h.stochastic != 0;
  auto one_elem = [&](const TensorEntry& e, float clip, uint64_t i) {
    float g = grad_prep(G::widen(load1<G, true>(e.grad, i)), grad_scale, clip);
    float p = P::widen(load1<P, false>(e.param, i));
    float m = S::widen(load1<S, false>(e.state0, i));
    float v = S::widen(load1<S, false>(e.state1, i));
    adam_elem(p, g, m, v, k);
    store1<P>(e.param, i, store_param<P>(p, sr, h.sr_seed, t, e.sr_index_offset + i));
    store1<S>(e.state0, i, S::narrow(m));
    store1<S>(e.state1, i, S::narrow(v));
  };
  auto vec8 = [&](const TensorEntry& e, float clip, uint64_t i) {
    uint32_t pb[8], gb[8], mb[8], vb[8];
    load8<G, true>(e.grad, i, gb);
    load8<P, false>(e.param, i, pb);
    load8<S, false>(e.state0, i, mb);
    load8<S, false>(e.state1, i, vb);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float g = grad_prep(G::widen(gb[j]), grad_scale, clip);
      float p = P::widen(pb[j]);
      float m = S::widen(mb[j]);
      float v = S::widen(vb[j]);
      adam_elem(p, g, m, v, k);
      pb[j] = store_param<P>(p, sr, h.sr_seed, t, e.sr_index_offset + i + j);
      mb[j] = S::narrow(m);
      vb[j] = S::narrow(v);
    }
    store8<P>(e.param, i, pb);
    store8<S>(e.state0, i, mb);
    store8<S>(e.state1, i, vb);
  };
  for_each_element(table, one, count, total_chunks, vec8, one_elem);
}

#define ADAMANT_ADAM_ENTRY(pn, P, gn, G, sn, S)                                                 \
  extern "C" __global__ void __launch_bounds__(ADAMANT_BLOCK) adamant_adam_##pn##_##gn##_##sn( \
      const TensorEntry* table, TensorEntry one, uint32_t count, uint64_t total_chunks,         \
      uint64_t lr, uint64_t step, uint64_t grad_scale, uint64_t found_inf, AdamHyper hyper) {   \
    adam_body<P, G, S>(table, one, count, total_chunks, lr, step, grad_scale, found_inf, hyper); \
  }

#define ADAMANT_ADAM_STATES(pn, P, gn, G) \
  ADAMANT_ADAM_ENTRY(pn, P, gn, G, f32, F32) ADAMANT_ADAM_ENTRY(pn, P, gn, G, bf16, BF16)
#define ADAMANT_ADAM_GRADS(pn, P)                                          \
  ADAMANT_ADAM_STATES(pn, P, f32, F32) ADAMANT_ADAM_STATES(pn, P, bf16, BF16) \
  ADAMANT_ADAM_STATES(pn, P, f16, F16)

ADAMANT_ADAM_GRADS(f32, F32)
ADAMANT_ADAM_GRADS(bf16, BF16)
ADAMANT_ADAM_GRADS(f16, F16)
