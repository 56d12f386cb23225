// SGD (momentum, dampening, Nesterov, L2 weight decay) update kernels, single and
// multi-tensor, every storage combination. With momentum == 0 the state buffer is not touched
// (state0 may be 0). Entry points: adamant_sgd_<param>_<grad>_<state>. Parameters
// (adamant_cuda::args::SgdArgs): (table, one, count, total_chunks, lr, step, grad_scale,
// found_inf, hyper)
#include "multi_tensor.cuh"
#include "scalars.cuh"
#include "store.cuh"

// Hyper-parameters by value (40 bytes, align 8). Layout: adamant_cuda::args::SgdHyper.
struct SgdHyper {
  double momentum;      //  0
  double dampening;     //  8
  double weight_decay;  // 16
  uint64_t sr_seed;     // 24
  uint32_t nesterov;    // 32
  uint32_t stochastic;  // 36
};

// mirrors adamant_core::rules::sgd::SgdScalars
struct SgdScalars {
  float lr, weight_decay, momentum, one_minus_dampening;
  uint32_t first_step, nesterov;
};

// mirrors adamant_core::rules::sgd::SgdConfig::scalars (numeric contract v1)
__device__ __forceinline__ SgdScalars sgd_scalars(const SgdHyper& h, double lr, uint64_t t) {
  SgdScalars k;
  // formula:begin
  k.lr = to_f32(lr);
  k.weight_decay = to_f32(h.weight_decay);
  k.momentum = to_f32(h.momentum);
  k.one_minus_dampening = to_f32(__dsub_rn(1.0, h.dampening));
  // formula:end
  k.first_step = t == 1ull ? 1u : 0u;
  k.nesterov = h.nesterov;
  return k;
}

// mirrors adamant_core::rules::sgd::sgd_elem (numeric contract v1)
//   1. if weight_decay != 0: g = g + weight_decay*p
//   2. if momentum != 0:
//        buf = first_step ? g : momentum*buf + one_minus_dampening*g
//        g   = nesterov ? g + momentum*buf : buf
//   3. p = p - lr*g
__device__ __forceinline__ void sgd_elem(float& p, float grad, float& buf, const SgdScalars& k) {
  // formula:begin
  float g = grad;
  if (k.weight_decay != 0.0f) g = __fadd_rn(g, __fmul_rn(k.weight_decay, p));
  if (k.momentum != 0.0f) {
    buf = k.first_step != 0u ? g
                             : __fadd_rn(__fmul_rn(k.momentum, buf), __fmul_rn(k.one_minus_dampening, g));
    g = k.nesterov != 0u ? __fadd_rn(g, __fmul_rn(k.momentum, buf)) : buf;
  }
  p = __fsub_rn(p, __fmul_rn(k.lr, g));
  // formula:end
}

template <class P, class G, class S>
__device__ __forceinline__ void sgd_body(const TensorEntry* table, const TensorEntry& one,
                                         uint32_t count, uint64_t total_chunks, uint64_t lr_addr,
                                         uint64_t step_addr, uint64_t grad_scale_addr,
                                         uint64_t found_inf_addr, const SgdHyper& h) {
  if (flag_is_set(found_inf_addr)) return;
  __shared__ SgdScalars shared_k;
  const uint64_t t = (uint64_t)__ldca(global_ptr<const unsigned long long>(step_addr)) + 1ull;
  if (threadIdx.x == 0) {
    double lr = (double)__ldca(global_ptr<const float>(lr_addr));
    shared_k = sgd_scalars(h, lr, t);
  }
  __syncthreads();
  const SgdScalars k = shared_k;
  const float grad_scale = scalar_or_one(grad_scale_addr);
  const bool sr = h.stochastic != 0;
  const bool with_buf = k.momentum != 0.0f;
  auto one_elem = [&](const TensorEntry& e, float clip, uint64_t i) {
    float g = grad_prep(G::widen(load1<G, true>(e.grad, i)), grad_scale, clip);
    float p = P::widen(load1<P, false>(e.param, i));
    float b = with_buf ? S::widen(load1<S, false>(e.state0, i)) : 0.0f;
    sgd_elem(p, g, b, k);
    store1<P>(e.param, i, store_param<P>(p, sr, h.sr_seed, t, e.sr_index_offset + i));
    if (with_buf) store1<S>(e.state0, i, S::narrow(b));
  };
  auto vec8 = [&](const TensorEntry& e, float clip, uint64_t i) {
    uint32_t pb[8], gb[8], bb[8] = {0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u};
    load8<G, true>(e.grad, i, gb);
    load8<P, false>(e.param, i, pb);
    if (with_buf) load8<S, false>(e.state0, i, bb);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float g = grad_prep(G::widen(gb[j]), grad_scale, clip);
      float p = P::widen(pb[j]);
      float b = with_buf ? S::widen(bb[j]) : 0.0f;
      sgd_elem(p, g, b, k);
      pb[j] = store_param<P>(p, sr, h.sr_seed, t, e.sr_index_offset + i + j);
      bb[j] = S::narrow(b);
    }
    store8<P>(e.param, i, pb);
    if (with_buf) store8<S>(e.state0, i, bb);
  };
  for_each_element(table, one, count, total_chunks, vec8, one_elem);
}

#define ADAMANT_SGD_ENTRY(pn, P, gn, G, sn, S)                                                 \
  extern "C" __global__ void __launch_bounds__(ADAMANT_BLOCK) adamant_sgd_##pn##_##gn##_##sn( \
      const TensorEntry* table, TensorEntry one, uint32_t count, uint64_t total_chunks,        \
      uint64_t lr, uint64_t step, uint64_t grad_scale, uint64_t found_inf, SgdHyper hyper) {   \
    sgd_body<P, G, S>(table, one, count, total_chunks, lr, step, grad_scale, found_inf, hyper); \
  }

#define ADAMANT_SGD_STATES(pn, P, gn, G) \
  ADAMANT_SGD_ENTRY(pn, P, gn, G, f32, F32) ADAMANT_SGD_ENTRY(pn, P, gn, G, bf16, BF16)
#define ADAMANT_SGD_GRADS(pn, P)                                         \
  ADAMANT_SGD_STATES(pn, P, f32, F32) ADAMANT_SGD_STATES(pn, P, bf16, BF16) \
  ADAMANT_SGD_STATES(pn, P, f16, F16)

ADAMANT_SGD_GRADS(f32, F32)
ADAMANT_SGD_GRADS(bf16, BF16)
ADAMANT_SGD_GRADS(f16, F16)
