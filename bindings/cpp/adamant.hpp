// adamant.hpp: a thin C++17 layer over the C ABI in adamant.h.
//
// Value types only: views over memory the caller owns (no RAII, nothing allocated or freed
// here or in the library). Every call returns an adamant::status; adamant::check() turns a
// non-ok status into an adamant::error exception (define ADAMANT_HPP_NO_EXCEPTIONS to drop
// it). Step calls take the step counter by reference and advance it only on success.
// SPDX-License-Identifier: MIT OR Apache-2.0
#ifndef ADAMANT_HPP
#define ADAMANT_HPP

#include <adamant.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>
#if !defined(ADAMANT_HPP_NO_EXCEPTIONS)
#include <stdexcept>
#endif

namespace adamant {

/// adamant_status as a scoped enum (same values; never renumbered).
enum class status : std::uint32_t {
  ok = ADAMANT_STATUS_OK,
  null_pointer = ADAMANT_STATUS_NULL_POINTER,
  length_mismatch = ADAMANT_STATUS_LENGTH_MISMATCH,
  misaligned = ADAMANT_STATUS_MISALIGNED,
  overlap = ADAMANT_STATUS_OVERLAP,
  invalid_enum = ADAMANT_STATUS_INVALID_ENUM,
  invalid_config = ADAMANT_STATUS_INVALID_CONFIG,
  unsupported_dtype = ADAMANT_STATUS_UNSUPPORTED_DTYPE,
  skipped_found_inf = ADAMANT_STATUS_SKIPPED_FOUND_INF,
  skipped_non_finite = ADAMANT_STATUS_SKIPPED_NON_FINITE,
  step_overflow = ADAMANT_STATUS_STEP_OVERFLOW,
  length_too_large = ADAMANT_STATUS_LENGTH_TOO_LARGE,
  panic = ADAMANT_STATUS_PANIC,
  cuda_error = ADAMANT_STATUS_CUDA_ERROR,
  no_cuda_driver = ADAMANT_STATUS_NO_CUDA_DRIVER,
};

/// A static description of a status (never null).
inline const char* to_string(status s) noexcept {
  return adamant_status_string(static_cast<std::uint32_t>(s));
}

/// Whether a status is one of the two "step skipped" outcomes (nothing written, not a bug).
inline bool skipped(status s) noexcept {
  return s == status::skipped_found_inf || s == status::skipped_non_finite;
}

#if !defined(ADAMANT_HPP_NO_EXCEPTIONS)
/// Thrown by check() for a non-ok status.
class error : public std::runtime_error {
 public:
  explicit error(status s) : std::runtime_error(to_string(s)), code_(s) {}
  status code() const noexcept { return code_; }

 private:
  status code_;
};

/// Throw adamant::error unless `s` is ok.
inline void check(status s) {
  if (s != status::ok) throw error(s);
}
#endif

/// Storage of one bfloat16 / IEEE half value (bits only; adamant does the arithmetic).
struct bf16 {
  std::uint16_t bits;
};
struct f16 {
  std::uint16_t bits;
};

/// The adamant_dtype of an element type.
template <class T>
struct dtype_of;
template <>
struct dtype_of<float> : std::integral_constant<std::uint32_t, ADAMANT_DTYPE_F32> {};
template <>
struct dtype_of<bf16> : std::integral_constant<std::uint32_t, ADAMANT_DTYPE_BF16> {};
template <>
struct dtype_of<f16> : std::integral_constant<std::uint32_t, ADAMANT_DTYPE_F16> {};

/// A pointer and a length (C++17 has no std::span).
template <class T>
class span {
 public:
  constexpr span() noexcept = default;
  constexpr span(T* data, std::size_t size) noexcept : data_(data), size_(size) {}
  template <class U, class A,
            class = std::enable_if_t<std::is_same<std::remove_const_t<T>, U>::value>>
  span(std::vector<U, A>& v) noexcept : data_(v.data()), size_(v.size()) {}
  template <class U, class A,
            class = std::enable_if_t<std::is_const<T>::value &&
                                     std::is_same<std::remove_const_t<T>, U>::value>>
  span(const std::vector<U, A>& v) noexcept : data_(v.data()), size_(v.size()) {}
  template <std::size_t N>
  constexpr span(T (&a)[N]) noexcept : data_(a), size_(N) {}
  template <class U, std::size_t N,
            class = std::enable_if_t<std::is_same<std::remove_const_t<T>, U>::value>>
  constexpr span(std::array<U, N>& a) noexcept : data_(a.data()), size_(N) {}
  constexpr T* data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A writable view of a buffer of float, bf16 or f16.
template <class T>
adamant_tensor tensor(span<T> s) noexcept {
  static_assert(!std::is_const<T>::value, "a writable view needs non-const elements");
  return adamant_tensor{static_cast<void*>(s.data()), dtype_of<T>::value, s.size()};
}
template <class T>
adamant_tensor tensor(std::vector<T>& v) noexcept {
  return tensor(span<T>(v));
}

/// A read-only view (gradients, reduction inputs).
template <class T>
adamant_const_tensor const_tensor(span<const T> s) noexcept {
  return adamant_const_tensor{static_cast<const void*>(s.data()), dtype_of<T>::value, s.size()};
}
template <class T>
adamant_const_tensor const_tensor(const std::vector<T>& v) noexcept {
  return const_tensor(span<const T>(v));
}

namespace detail {
inline status from_c(adamant_status s) noexcept { return static_cast<status>(s); }
template <class A, class B>
bool same_size(const A& a, const B& b) noexcept {
  return a.size() == b.size();
}
}  // namespace detail

// ---- AdamW / Adam -------------------------------------------------------------------------

/// One AdamW step over one tensor (see adamant_adamw_step); `step` advances on success.
inline status adamw_step(const adamant_adam_config& config, const adamant_step_options& options,
                         std::uint64_t& step, adamant_tensor param, adamant_const_tensor grad,
                         adamant_tensor exp_avg, adamant_tensor exp_avg_sq) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(
      adamant_adamw_step(&config, &options, step, param, grad, exp_avg, exp_avg_sq, &next));
  if (s == status::ok) step = next;
  return s;
}

/// One Adam (L2) step over one tensor (see adamant_adam_step).
inline status adam_step(const adamant_adam_config& config, const adamant_step_options& options,
                        std::uint64_t& step, adamant_tensor param, adamant_const_tensor grad,
                        adamant_tensor exp_avg, adamant_tensor exp_avg_sq) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(
      adamant_adam_step(&config, &options, step, param, grad, exp_avg, exp_avg_sq, &next));
  if (s == status::ok) step = next;
  return s;
}

/// One AdamW step over many tensors, all validated before any is written.
inline status adamw_step_multi(const adamant_adam_config& config,
                               const adamant_step_options& options, std::uint64_t& step,
                               span<const adamant_tensor> params,
                               span<const adamant_const_tensor> grads,
                               span<const adamant_tensor> exp_avgs,
                               span<const adamant_tensor> exp_avg_sqs,
                               span<const float> clip_coefs = {}) noexcept {
  if (!detail::same_size(params, grads) || !detail::same_size(params, exp_avgs) ||
      !detail::same_size(params, exp_avg_sqs))
    return status::length_mismatch;
  if (clip_coefs.size() != 0 && !detail::same_size(params, clip_coefs))
    return status::length_mismatch;
  std::uint64_t next = 0;
  status s = detail::from_c(
      clip_coefs.size() == 0
          ? adamant_adamw_step_multi(&config, &options, step, params.data(), grads.data(),
                                     exp_avgs.data(), exp_avg_sqs.data(), params.size(), &next)
          : adamant_adamw_step_multi_clip(&config, &options, step, params.data(), grads.data(),
                                          exp_avgs.data(), exp_avg_sqs.data(), clip_coefs.data(),
                                          params.size(), &next));
  if (s == status::ok) step = next;
  return s;
}

/// One Adam (L2) step over many tensors.
inline status adam_step_multi(const adamant_adam_config& config,
                              const adamant_step_options& options, std::uint64_t& step,
                              span<const adamant_tensor> params,
                              span<const adamant_const_tensor> grads,
                              span<const adamant_tensor> exp_avgs,
                              span<const adamant_tensor> exp_avg_sqs,
                              span<const float> clip_coefs = {}) noexcept {
  if (!detail::same_size(params, grads) || !detail::same_size(params, exp_avgs) ||
      !detail::same_size(params, exp_avg_sqs))
    return status::length_mismatch;
  if (clip_coefs.size() != 0 && !detail::same_size(params, clip_coefs))
    return status::length_mismatch;
  std::uint64_t next = 0;
  status s = detail::from_c(
      clip_coefs.size() == 0
          ? adamant_adam_step_multi(&config, &options, step, params.data(), grads.data(),
                                    exp_avgs.data(), exp_avg_sqs.data(), params.size(), &next)
          : adamant_adam_step_multi_clip(&config, &options, step, params.data(), grads.data(),
                                         exp_avgs.data(), exp_avg_sqs.data(), clip_coefs.data(),
                                         params.size(), &next));
  if (s == status::ok) step = next;
  return s;
}

// ---- SGD and Lion -------------------------------------------------------------------------

/// One SGD step over one tensor (`momentum_buffer` empty without momentum).
inline status sgd_step(const adamant_sgd_config& config, const adamant_step_options& options,
                       std::uint64_t& step, adamant_tensor param, adamant_const_tensor grad,
                       adamant_tensor momentum_buffer) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(
      adamant_sgd_step(&config, &options, step, param, grad, momentum_buffer, &next));
  if (s == status::ok) step = next;
  return s;
}

/// One SGD step over many tensors.
inline status sgd_step_multi(const adamant_sgd_config& config, const adamant_step_options& options,
                             std::uint64_t& step, span<const adamant_tensor> params,
                             span<const adamant_const_tensor> grads,
                             span<const adamant_tensor> momentum_buffers,
                             span<const float> clip_coefs = {}) noexcept {
  if (!detail::same_size(params, grads) || !detail::same_size(params, momentum_buffers))
    return status::length_mismatch;
  if (clip_coefs.size() != 0 && !detail::same_size(params, clip_coefs))
    return status::length_mismatch;
  std::uint64_t next = 0;
  status s = detail::from_c(
      clip_coefs.size() == 0
          ? adamant_sgd_step_multi(&config, &options, step, params.data(), grads.data(),
                                   momentum_buffers.data(), params.size(), &next)
          : adamant_sgd_step_multi_clip(&config, &options, step, params.data(), grads.data(),
                                        momentum_buffers.data(), clip_coefs.data(), params.size(),
                                        &next));
  if (s == status::ok) step = next;
  return s;
}

/// One Lion step over one tensor.
inline status lion_step(const adamant_lion_config& config, const adamant_step_options& options,
                        std::uint64_t& step, adamant_tensor param, adamant_const_tensor grad,
                        adamant_tensor exp_avg) noexcept {
  std::uint64_t next = 0;
  status s =
      detail::from_c(adamant_lion_step(&config, &options, step, param, grad, exp_avg, &next));
  if (s == status::ok) step = next;
  return s;
}

/// One Lion step over many tensors.
inline status lion_step_multi(const adamant_lion_config& config,
                              const adamant_step_options& options, std::uint64_t& step,
                              span<const adamant_tensor> params,
                              span<const adamant_const_tensor> grads,
                              span<const adamant_tensor> exp_avgs,
                              span<const float> clip_coefs = {}) noexcept {
  if (!detail::same_size(params, grads) || !detail::same_size(params, exp_avgs))
    return status::length_mismatch;
  if (clip_coefs.size() != 0 && !detail::same_size(params, clip_coefs))
    return status::length_mismatch;
  std::uint64_t next = 0;
  status s = detail::from_c(
      clip_coefs.size() == 0
          ? adamant_lion_step_multi(&config, &options, step, params.data(), grads.data(),
                                    exp_avgs.data(), params.size(), &next)
          : adamant_lion_step_multi_clip(&config, &options, step, params.data(), grads.data(),
                                         exp_avgs.data(), clip_coefs.data(), params.size(), &next));
  if (s == status::ok) step = next;
  return s;
}

// ---- Reductions, clipping, schedules --------------------------------------------------------

/// Number of partials of `n` elements (one per 4096-element tile).
inline std::size_t tile_count(std::size_t n) noexcept { return adamant_reduce_tile_count(n); }

/// Total partials of a list of tensors (the length adamant::reduce_partials needs).
inline std::size_t tile_count(span<const adamant_const_tensor> xs) noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) n += adamant_reduce_tile_count(xs.data()[i].len);
  return n;
}

/// Phase one: the canonical per-tile partials of every tensor, concatenated, into `out`.
inline status reduce_partials(span<const adamant_const_tensor> xs, adamant_reduce_op op,
                              span<float> out) noexcept {
  return detail::from_c(adamant_reduce_partials_multi(
      xs.data(), xs.size(), static_cast<std::uint32_t>(op), out.data(), out.size()));
}

/// Phase two: reduce gathered partials (global tile order) to one value.
inline status reduce_combine(span<const float> partials, float& result) noexcept {
  return detail::from_c(adamant_reduce_combine(partials.data(), partials.size(), &result));
}

/// The canonical sum or sum of squares of one tensor.
inline status reduce(adamant_const_tensor x, adamant_reduce_op op, float& result) noexcept {
  return detail::from_c(adamant_reduce(x, static_cast<std::uint32_t>(op), &result));
}

/// Global-norm clip coefficient min(max_norm / (sqrt(sum_sq) + eps), 1).
inline status clip_coef_global_norm(float sum_sq, float max_norm, float eps, float& clip_coef,
                                    float& norm) noexcept {
  return detail::from_c(adamant_clip_coef_global_norm(sum_sq, max_norm, eps, &clip_coef, &norm));
}

/// The learning rate after `count` applied steps.
inline status schedule_lr(const adamant_schedule& schedule, std::uint64_t count,
                          double& lr) noexcept {
  return detail::from_c(adamant_schedule_lr(&schedule, count, &lr));
}

// ---- Adam-mini -----------------------------------------------------------------------------

/// A block layout of kind Element, Rows, Heads or Tensor (`block_len` for Rows/Heads).
inline adamant_block_layout block_layout(adamant_block_kind kind, std::size_t block_len = 0,
                                         bool weight_decay = true) noexcept {
  return adamant_block_layout{static_cast<std::uint32_t>(kind), block_len, nullptr, 0,
                              weight_decay ? 1u : 0u};
}

/// An explicit layout over `segments` (borrowed: keep them alive while the layout is used).
inline adamant_block_layout block_layout(span<const adamant_block_segment> segments,
                                         bool weight_decay = true) noexcept {
  return adamant_block_layout{ADAMANT_BLOCK_KIND_SEGMENTS, 0, segments.data(), segments.size(),
                              weight_decay ? 1u : 0u};
}

/// The exp_avg_sq length of a tensor of `numel` elements under `layout`.
inline status adam_mini_state_len(const adamant_block_layout& layout, std::size_t numel,
                                  std::size_t& len) noexcept {
  return detail::from_c(adamant_adam_mini_state_len(&layout, numel, &len));
}

/// One Adam-mini step over one tensor (see adamant_adam_mini_step).
inline status adam_mini_step(const adamant_adam_mini_config& config,
                             const adamant_step_options& options, std::uint64_t& step,
                             const adamant_block_layout& layout, adamant_tensor param,
                             adamant_const_tensor grad, adamant_tensor exp_avg,
                             adamant_tensor exp_avg_sq) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(adamant_adam_mini_step(&config, &options, step, &layout, param, grad,
                                                   exp_avg, exp_avg_sq, &next));
  if (s == status::ok) step = next;
  return s;
}

/// One Adam-mini step over many tensors; `clip_coefs` empty (use `options`) or one per tensor
/// (from adamant::adagc_coefs).
inline status adam_mini_step_multi(const adamant_adam_mini_config& config,
                                   const adamant_step_options& options, std::uint64_t& step,
                                   span<const adamant_block_layout> layouts,
                                   span<const adamant_tensor> params,
                                   span<const adamant_const_tensor> grads,
                                   span<const adamant_tensor> exp_avgs,
                                   span<const adamant_tensor> exp_avg_sqs,
                                   span<const float> clip_coefs = {}) noexcept {
  if (!detail::same_size(params, grads) || !detail::same_size(params, exp_avgs) ||
      !detail::same_size(params, exp_avg_sqs) || !detail::same_size(params, layouts) ||
      (clip_coefs.size() != 0 && !detail::same_size(params, clip_coefs)))
    return status::length_mismatch;
  std::uint64_t next = 0;
  status s = detail::from_c(adamant_adam_mini_step_multi(
      &config, &options, step, layouts.data(), params.data(), grads.data(), exp_avgs.data(),
      exp_avg_sqs.data(), clip_coefs.size() ? clip_coefs.data() : nullptr, params.size(), &next));
  if (s == status::ok) step = next;
  return s;
}

/// Sharded phase one: per-tile partials of the prepared squares of this rank's block piece.
inline status adam_mini_partials(const adamant_step_options& options, adamant_const_tensor grad,
                                 span<float> out) noexcept {
  return detail::from_c(adamant_adam_mini_partials(&options, grad, out.data(), out.size()));
}

/// Sharded phase three: this rank's piece of a block, from the block's combined `sum_sq`.
inline status adam_mini_block_step(const adamant_adam_mini_config& config,
                                   const adamant_step_options& options, std::uint64_t& step,
                                   float sum_sq, std::uint64_t count, std::uint64_t index_offset,
                                   bool weight_decay, adamant_tensor param,
                                   adamant_const_tensor grad, adamant_tensor exp_avg,
                                   adamant_tensor exp_avg_sq) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(adamant_adam_mini_block_step(
      &config, &options, step, sum_sq, count, index_offset, weight_decay ? 1u : 0u, param, grad,
      exp_avg, exp_avg_sq, &next));
  if (s == status::ok) step = next;
  return s;
}

// ---- AdaGC -------------------------------------------------------------------------------------

/// Length of AdaGC's gamma buffer for `n_tensors` tensors.
inline status adagc_gamma_len(const adamant_adagc_config& config, std::size_t n_tensors,
                              std::size_t& len) noexcept {
  return detail::from_c(adamant_adagc_gamma_len(&config, n_tensors, &len));
}

/// AdaGC phase one: per-tensor clip coefficients (writes no state).
inline status adagc_coefs(const adamant_adagc_config& config, std::uint64_t step,
                          span<const float> tensor_sums, span<const float> gamma,
                          span<float> coefs, float& global_norm) noexcept {
  if (!detail::same_size(tensor_sums, coefs)) return status::length_mismatch;
  return detail::from_c(adamant_adagc_coefs(&config, step, tensor_sums.data(),
                                            tensor_sums.size(), gamma.data(), gamma.size(),
                                            coefs.data(), &global_norm));
}

/// AdaGC phase two, after the optimizer applied the step: new thresholds; `step` advances.
inline status adagc_commit(const adamant_adagc_config& config, std::uint64_t& step,
                           span<const float> tensor_sums, span<float> gamma) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(adamant_adagc_commit(&config, step, tensor_sums.data(),
                                                 tensor_sums.size(), gamma.data(), gamma.size(),
                                                 &next));
  if (s == status::ok) step = next;
  return s;
}

// ---- Compression (quantizer, LoCo) ------------------------------------------------------------

/// Bytes of the packed form of `len` elements (groups of `group_len`, `bits` 4 or 8).
inline status quant_packed_len(std::size_t len, std::size_t group_len, std::uint32_t bits,
                               std::size_t& packed_len) noexcept {
  return detail::from_c(adamant_quant_packed_len(len, group_len, bits, &packed_len));
}

/// Quantize `x` into `packed` (exactly quant_packed_len bytes).
inline status quantize(adamant_const_tensor x, std::size_t group_len, std::uint32_t bits,
                       span<std::uint8_t> packed) noexcept {
  return detail::from_c(adamant_quantize(x, group_len, bits, packed.data(), packed.size()));
}

/// Decode `packed` into `out`.
inline status dequantize(span<const std::uint8_t> packed, std::size_t group_len,
                         std::uint32_t bits, span<float> out) noexcept {
  return detail::from_c(adamant_dequantize(packed.data(), packed.size(), group_len, bits,
                                           out.data(), out.size()));
}

/// Every buffer length of a LoCo tensor of `len` elements over `world` ranks on `nodes` nodes.
inline status loco_layout_sizes(const adamant_loco_config& config, std::size_t len,
                                std::size_t world, std::size_t nodes,
                                adamant_loco_sizes& sizes) noexcept {
  return detail::from_c(adamant_loco_layout_sizes(&config, len, world, nodes, &sizes));
}

/// LoCo compress with an f32 error buffer (config.error_int8 == 0); `step` advances.
inline status loco_compress(const adamant_loco_config& config, std::uint64_t& step,
                            std::size_t world, std::size_t nodes, adamant_const_tensor grad,
                            span<float> err, span<std::uint8_t> packed) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(adamant_loco_compress(&config, step, world, nodes, grad, err.data(),
                                                  err.size(), packed.data(), packed.size(),
                                                  &next));
  if (s == status::ok) step = next;
  return s;
}

/// LoCo compress with an 8-bit error buffer (config.error_int8 == 1); `step` advances.
inline status loco_compress(const adamant_loco_config& config, std::uint64_t& step,
                            std::size_t world, std::size_t nodes, adamant_const_tensor grad,
                            span<std::uint8_t> err, span<std::uint8_t> packed) noexcept {
  std::uint64_t next = 0;
  status s = detail::from_c(adamant_loco_compress(&config, step, world, nodes, grad, err.data(),
                                                  err.size(), packed.data(), packed.size(),
                                                  &next));
  if (s == status::ok) step = next;
  return s;
}

/// LoCo's final reduction: this rank's averaged shard from the received chunks.
inline status loco_decompress_reduce(const adamant_loco_config& config, std::size_t len,
                                     std::size_t world, std::size_t nodes,
                                     span<const std::uint8_t> received,
                                     span<float> out) noexcept {
  return detail::from_c(adamant_loco_decompress_reduce(
      &config, len, world, nodes, received.data(), received.size(), out.data(), out.size()));
}

/// The library's version string; compare with ADAMANT_VERSION_STRING.
inline const char* version() noexcept { return adamant_version(); }
/// The numeric contract the library implements; compare with ADAMANT_NUMERIC_CONTRACT_VERSION.
inline std::uint32_t numeric_contract_version() noexcept {
  return adamant_numeric_contract_version();
}

}  // namespace adamant

#endif  // ADAMANT_HPP
