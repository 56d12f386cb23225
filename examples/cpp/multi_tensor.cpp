// Several tensors of a model stepped through adamant.hpp: global-norm clipping over all
// gradients (two-phase partials/combine), AdamW over three tensors (one with bf16 weights and
// f32 moments) in one multi-tensor call, and Lion over the output head. Then a second model
// with Adam-mini (head, row, per-element and explicit-segment blocks) over four tensors,
// clipped per tensor by AdaGC (coefficients before the step, thresholds committed after it),
// and LoCo's 4-bit gradient compression around a (simulated) all-to-all.
//
// Prints one line per step with FNV-1a hashes of every buffer; the Rust test
// ffi/tests/examples.rs computes the same lines with adamant's Rust API.
// Build with CMake: find_package(adamant) + target_link_libraries(app adamant::adamant).
#include <adamant.hpp>

#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

std::uint64_t lcg_state = 0x9E3779B97F4A7C15ULL;
float next_value() {
  lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
  auto k = static_cast<std::uint32_t>(lcg_state >> 40);
  return (static_cast<float>(k) / 16777216.0f) * 2.0f - 1.0f;
}

template <class T>
std::uint64_t fnv1a(const std::vector<T>& v) {
  const auto* p = reinterpret_cast<const unsigned char*>(v.data());
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < v.size() * sizeof(T); ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

// bf16 storage of a value produced by next_value(): exact (the value has at most 8
// significant bits only by chance), so round to nearest even by bits like adamant does.
adamant::bf16 to_bf16(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  std::uint32_t lsb = (b >> 16) & 1u;
  return adamant::bf16{static_cast<std::uint16_t>((b + 0x7FFFu + lsb) >> 16)};
}


// Adam-mini over four tensors (heads, rows with bf16 weights, per-element without weight
// decay, explicit segments), clipped per tensor by AdaGC across its warm-up boundary.
void run_adam_mini_adagc() {
  const std::size_t q_n = 4608, mlp_n = 4800, ln_n = 64, fused_n = 160;
  std::vector<float> q(q_n), ln(ln_n, 1.0f), fused(fused_n);
  std::vector<adamant::bf16> mlp(mlp_n);
  for (auto& x : q) x = next_value() * 0.02f;
  for (auto& x : mlp) x = to_bf16(next_value() * 0.05f);
  for (auto& x : fused) x = next_value() * 0.02f;
  const adamant_block_segment segs[] = {{128, 64}, {32, 0}};
  const adamant_block_layout layouts[] = {
      adamant::block_layout(ADAMANT_BLOCK_KIND_HEADS, 512),
      adamant::block_layout(ADAMANT_BLOCK_KIND_ROWS, 96),
      adamant::block_layout(ADAMANT_BLOCK_KIND_ELEMENT, 0, false),
      adamant::block_layout(segs)};
  const std::size_t numel[] = {q_n, mlp_n, ln_n, fused_n};
  std::size_t state_len[4];
  for (int i = 0; i < 4; ++i)
    adamant::check(adamant::adam_mini_state_len(layouts[i], numel[i], state_len[i]));
  std::vector<float> g_q(q_n), g_ln(ln_n), g_fused(fused_n);
  std::vector<adamant::bf16> g_mlp(mlp_n);
  std::vector<float> m_q(q_n), m_mlp(mlp_n), m_ln(ln_n), m_fused(fused_n);
  std::vector<float> v_q(state_len[0]), v_mlp(state_len[1]), v_ln(state_len[2]),
      v_fused(state_len[3]);

  adamant_adam_mini_config mini = adamant_adam_mini_config_default();
  mini.beta2 = 0.95;
  mini.weight_decay = 0.1;
  adamant_adagc_config adagc = adamant_adagc_config_default();
  adagc.t_start = 2;
  std::size_t gamma_len = 0;
  adamant::check(adamant::adagc_gamma_len(adagc, 4, gamma_len));
  std::vector<float> gamma(gamma_len), sums(4), coefs(4);
  std::uint64_t step = 0, clip_step = 0;
  for (int iter = 0; iter < 6; ++iter) {
    for (auto& x : g_q) x = next_value();
    for (auto& x : g_mlp) x = to_bf16(next_value() * (iter == 4 ? 40.0f : 2.0f));
    for (auto& x : g_ln) x = next_value() * 0.1f;
    for (auto& x : g_fused) x = next_value() * 0.5f;
    const adamant_const_tensor grads[] = {
        adamant::const_tensor(g_q), adamant::const_tensor(g_mlp), adamant::const_tensor(g_ln),
        adamant::const_tensor(g_fused)};
    for (int i = 0; i < 4; ++i)
      adamant::check(adamant::reduce(grads[i], ADAMANT_REDUCE_OP_SUM_SQ, sums[i]));
    float norm = 0.0f;
    adamant::check(adamant::adagc_coefs(adagc, clip_step, sums, gamma, coefs, norm));
    adamant_step_options options = adamant_step_options_default();
    options.lr = 1e-3;
    const adamant_tensor params[] = {adamant::tensor(q), adamant::tensor(mlp),
                                     adamant::tensor(ln), adamant::tensor(fused)};
    const adamant_tensor exp_avgs[] = {adamant::tensor(m_q), adamant::tensor(m_mlp),
                                       adamant::tensor(m_ln), adamant::tensor(m_fused)};
    const adamant_tensor exp_avg_sqs[] = {adamant::tensor(v_q), adamant::tensor(v_mlp),
                                          adamant::tensor(v_ln), adamant::tensor(v_fused)};
    adamant::check(adamant::adam_mini_step_multi(mini, options, step, layouts, params, grads,
                                                 exp_avgs, exp_avg_sqs, coefs));
    adamant::check(adamant::adagc_commit(adagc, clip_step, sums, gamma));
    std::uint32_t norm_bits;
    std::memcpy(&norm_bits, &norm, sizeof norm_bits);
    std::printf("mini %d steps %" PRIu64 " %" PRIu64 " norm %08x coefs %016" PRIx64
                " gamma %016" PRIx64 " p %016" PRIx64 " %016" PRIx64 " %016" PRIx64
                " %016" PRIx64 " m %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64
                " v %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\n",
                iter, step, clip_step, static_cast<unsigned>(norm_bits), fnv1a(coefs),
                fnv1a(gamma), fnv1a(q), fnv1a(mlp), fnv1a(ln), fnv1a(fused), fnv1a(m_q),
                fnv1a(m_mlp), fnv1a(m_ln), fnv1a(m_fused), fnv1a(v_q), fnv1a(v_mlp),
                fnv1a(v_ln), fnv1a(v_fused));
  }
}


// LoCo over 4 ranks, one hop: compress (4-bit codes, 8-bit error buffer), then the final
// reduction of the chunks this rank would receive (here every rank sent the same bytes).
void run_loco() {
  adamant_loco_config loco = adamant_loco_config_default();
  loco.group_len = 64;
  const std::size_t len = 4 * 300, world = 4;
  adamant_loco_sizes sizes{};
  adamant::check(adamant::loco_layout_sizes(loco, len, world, 1, sizes));
  std::vector<float> grad(len), avg(sizes.shard_len);
  std::vector<std::uint8_t> err(sizes.error_len), packed(sizes.compress_len), received;
  std::uint64_t step = 0;
  for (int iter = 0; iter < 3; ++iter) {
    for (auto& x : grad) x = next_value() * 0.5f;
    adamant::check(adamant::loco_compress(loco, step, world, 1, adamant::const_tensor(grad),
                                          adamant::span<std::uint8_t>(err), packed));
    // Chunk 0 of every rank arrives at rank 0.
    received.clear();
    for (std::size_t r = 0; r < world; ++r)
      received.insert(received.end(), packed.begin(), packed.begin() + sizes.chunk_len);
    adamant::check(adamant::loco_decompress_reduce(loco, len, world, 1, received, avg));
    std::printf("loco %d step %" PRIu64 " packed %016" PRIx64 " err %016" PRIx64
                " avg %016" PRIx64 "\n",
                iter, step, fnv1a(packed), fnv1a(err), fnv1a(avg));
  }
}

}  // namespace

int main() {
  // An embedding, a norm weight, an MLP weight in bf16, and an output head.
  const std::size_t wte_n = 5000, ln_n = 64, mlp_n = 4097, head_n = 3000;
  std::vector<float> wte(wte_n), ln(ln_n, 1.0f), head(head_n);
  std::vector<adamant::bf16> mlp(mlp_n);
  for (auto& x : wte) x = next_value() * 0.02f;
  for (auto& x : mlp) x = to_bf16(next_value() * 0.05f);
  for (auto& x : head) x = next_value() * 0.02f;
  std::vector<float> g_wte(wte_n), g_ln(ln_n), g_head(head_n);
  std::vector<adamant::bf16> g_mlp(mlp_n);
  std::vector<float> m_wte(wte_n), v_wte(wte_n), m_ln(ln_n), v_ln(ln_n), m_mlp(mlp_n),
      v_mlp(mlp_n), m_head(head_n);

  adamant_adam_config adamw = adamant_adamw_config_default();
  adamw.beta2 = 0.95;
  adamw.weight_decay = 0.1;
  adamant_lion_config lion = adamant_lion_config_default();
  lion.weight_decay = 0.01;

  std::uint64_t adamw_step = 0, lion_step = 0;
  try {
    for (int iter = 0; iter < 5; ++iter) {
      for (auto& x : g_wte) x = next_value();
      for (auto& x : g_ln) x = next_value() * 0.1f;
      for (auto& x : g_mlp) x = to_bf16(next_value() * 3.0f);
      for (auto& x : g_head) x = next_value();

      // Global norm over every gradient, whatever its dtype.
      const adamant_const_tensor grads_all[] = {
          adamant::const_tensor(g_wte), adamant::const_tensor(g_ln),
          adamant::const_tensor(g_mlp), adamant::const_tensor(g_head)};
      std::vector<float> partials(adamant::tile_count(grads_all));
      adamant::check(adamant::reduce_partials(grads_all, ADAMANT_REDUCE_OP_SUM_SQ, partials));
      float sum_sq = 0.0f, coef = 1.0f, norm = 0.0f;
      adamant::check(adamant::reduce_combine(partials, sum_sq));
      adamant::check(adamant::clip_coef_global_norm(sum_sq, 1.0f, 1e-6f, coef, norm));

      adamant_step_options options = adamant_step_options_default();
      options.lr = 1e-3;
      options.has_clip_coef = 1;
      options.clip_coef = coef;

      const adamant_tensor params[] = {adamant::tensor(wte), adamant::tensor(ln),
                                       adamant::tensor(mlp)};
      const adamant_const_tensor grads[] = {grads_all[0], grads_all[1], grads_all[2]};
      const adamant_tensor exp_avgs[] = {adamant::tensor(m_wte), adamant::tensor(m_ln),
                                         adamant::tensor(m_mlp)};
      const adamant_tensor exp_avg_sqs[] = {adamant::tensor(v_wte), adamant::tensor(v_ln),
                                            adamant::tensor(v_mlp)};
      adamant::check(adamant::adamw_step_multi(adamw, options, adamw_step, params, grads,
                                               exp_avgs, exp_avg_sqs));
      options.lr = 1e-4;
      adamant::check(adamant::lion_step(lion, options, lion_step, adamant::tensor(head),
                                        grads_all[3], adamant::tensor(m_head)));

      std::uint32_t norm_bits;
      std::memcpy(&norm_bits, &norm, sizeof norm_bits);
      std::printf("iter %d steps %" PRIu64 " %" PRIu64 " norm %08x wte %016" PRIx64
                  " ln %016" PRIx64 " mlp %016" PRIx64 " head %016" PRIx64 " m %016" PRIx64
                  " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " v %016" PRIx64 " %016" PRIx64
                  " %016" PRIx64 "\n",
                  iter, adamw_step, lion_step, static_cast<unsigned>(norm_bits), fnv1a(wte),
                  fnv1a(ln), fnv1a(mlp), fnv1a(head), fnv1a(m_wte), fnv1a(m_ln), fnv1a(m_mlp),
                  fnv1a(m_head), fnv1a(v_wte), fnv1a(v_ln), fnv1a(v_mlp));
    }
    run_adam_mini_adagc();
    run_loco();
    // A deliberate error, reported as an exception: mismatched lengths, nothing written.
    std::vector<float> short_grad(wte_n - 1);
    try {
      adamant::check(adamant::adamw_step(adamw, adamant_step_options_default(), adamw_step,
                                         adamant::tensor(wte), adamant::const_tensor(short_grad),
                                         adamant::tensor(m_wte), adamant::tensor(v_wte)));
      std::fprintf(stderr, "expected an error\n");
      return 1;
    } catch (const adamant::error& e) {
      if (e.code() != adamant::status::length_mismatch) return 1;
      std::printf("error %s wte %016" PRIx64 "\n", e.what(), fnv1a(wte));
    }
  } catch (const adamant::error& e) {
    std::fprintf(stderr, "adamant: %s\n", e.what());
    return 1;
  }
  return 0;
}
