// adamant.h and adamant.hpp from C++17 (-Wall -Wextra -Wpedantic -Werror): the scoped status
// enum matches the C values, views carry the right dtype, the exception path and the
// status-only path both work. Prints "ok N checks".
#include <adamant.hpp>

#include <cstdio>
#include <vector>

static int checks = 0, failures = 0;
#define CHECK(cond)                                                              \
  do {                                                                           \
    ++checks;                                                                    \
    if (!(cond)) {                                                               \
      ++failures;                                                                \
      std::fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);   \
    }                                                                            \
  } while (0)

int main() {
  static_assert(sizeof(adamant_tensor) == 3 * sizeof(void*), "view layout");
  static_assert(static_cast<std::uint32_t>(adamant::status::no_cuda_driver) ==
                    ADAMANT_STATUS_NO_CUDA_DRIVER,
                "status values");
  std::vector<float> p(10, 1.0f), g(10, 0.5f), m(10), v(10);
  std::vector<adamant::bf16> pb(10, adamant::bf16{0x3F80});
  CHECK(adamant::tensor(pb).dtype == ADAMANT_DTYPE_BF16);
  CHECK(adamant::const_tensor(g).dtype == ADAMANT_DTYPE_F32);
  std::uint64_t step = 0;
  auto cfg = adamant_adamw_config_default();
  auto opt = adamant_step_options_default();
  CHECK(adamant::adamw_step(cfg, opt, step, adamant::tensor(p), adamant::const_tensor(g),
                            adamant::tensor(m), adamant::tensor(v)) == adamant::status::ok);
  CHECK(step == 1 && p[0] != 1.0f);
  // bf16 params with f32 states (lr large enough to move a bf16 value near 1).
  opt.lr = 0.1;
  CHECK(adamant::adamw_step(cfg, opt, step, adamant::tensor(pb), adamant::const_tensor(g),
                            adamant::tensor(m), adamant::tensor(v)) == adamant::status::ok);
  CHECK(step == 2 && pb[0].bits != 0x3F80);
  // Mismatched array counts are caught before the C call.
  const adamant_tensor ps[] = {adamant::tensor(p)};
  const adamant_const_tensor gs[] = {adamant::const_tensor(g), adamant::const_tensor(g)};
  CHECK(adamant::adamw_step_multi(cfg, opt, step, ps, gs, ps, ps) ==
        adamant::status::length_mismatch);
  CHECK(step == 2);
  bool threw = false;
  try {
    adamant::check(adamant::status::overlap);
  } catch (const adamant::error& e) {
    threw = e.code() == adamant::status::overlap;
  }
  CHECK(threw);
  CHECK(adamant::skipped(adamant::status::skipped_found_inf));
  CHECK(adamant::numeric_contract_version() == ADAMANT_NUMERIC_CONTRACT_VERSION);
  if (failures) {
    std::fprintf(stderr, "%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok %d checks\n", checks);
  return 0;
}
