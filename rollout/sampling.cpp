#include "rollout/sampling.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include <ATen/ATen.h>

namespace rl::rollout {

std::string SamplingParams::Check() const {
  if (!std::isfinite(temperature) || temperature < 0)
    return "temperature must be a finite number >= 0 (0 means greedy), got " +
           std::to_string(temperature);
  if (top_k < 0) return "top_k must be >= 0 (0 disables it), got " + std::to_string(top_k);
  if (!(top_p > 0 && top_p <= 1))
    return "top_p must lie in (0, 1] (1 disables it), got " + std::to_string(top_p);
  if (!(min_p >= 0 && min_p < 1))
    return "min_p must lie in [0, 1) (0 disables it), got " + std::to_string(min_p);
  if (max_new_tokens < 1)
    return "max_new_tokens must be >= 1, got " + std::to_string(max_new_tokens);
  for (int64_t id : eos_ids)
    if (id < 0) return "eos_ids must be token ids >= 0, got " + std::to_string(id);
  for (const std::string& s : stop_strings)
    if (s.empty()) return "stop_strings must not contain an empty string";
  return "";
}

namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

double CounterUniform(uint64_t seed, uint64_t stream, uint64_t step) {
  uint64_t x = SplitMix64(SplitMix64(SplitMix64(seed) ^ stream) ^ step);
  return static_cast<double>(x >> 11) * 0x1.0p-53;  // 53 random bits -> [0, 1)
}

at::Tensor FilterTopK(const at::Tensor& logits, int64_t top_k) {
  if (top_k <= 0 || top_k >= logits.size(-1)) return logits;
  at::Tensor kth = std::get<0>(logits.topk(top_k, -1)).narrow(-1, top_k - 1, 1);
  return logits.masked_fill(logits < kth, kNegInf);
}

at::Tensor FilterTopP(const at::Tensor& logits, double top_p) {
  if (top_p >= 1) return logits;
  auto [sorted, order] = logits.sort(-1, /*descending=*/true);
  // Probability mass strictly before each token, in float64: a float32 running sum over a
  // 150k vocabulary drifts enough to move the cut.
  at::Tensor probs = sorted.softmax(-1).to(at::kDouble);
  at::Tensor mass_before = probs.cumsum(-1) - probs;
  at::Tensor remove_sorted = mass_before >= top_p;  // the first token has 0 before it: kept
  at::Tensor remove = at::zeros_like(remove_sorted).scatter(-1, order, remove_sorted);
  return logits.masked_fill(remove, kNegInf);
}

at::Tensor FilterMinP(const at::Tensor& logits, double min_p) {
  if (min_p <= 0) return logits;
  at::Tensor probs = logits.softmax(-1);
  at::Tensor threshold = std::get<0>(probs.max(-1, /*keepdim=*/true)) * min_p;
  return logits.masked_fill(probs < threshold, kNegInf);
}

namespace {

// Throws unless every row has a finite maximum (catches NaN, +inf and all -inf rows).
void CheckLogits(const at::Tensor& logits) {
  at::Tensor row_max = std::get<0>(logits.max(-1));
  if (!row_max.isfinite().all().item<bool>())
    throw std::runtime_error(
        "sampling: logits hold NaN or +inf, or a row has no finite value (the model "
        "diverged or its weights are corrupt)");
}

// Inverse-CDF draw: the first token whose cumulative probability exceeds u * total.
at::Tensor DrawFromFiltered(const at::Tensor& filtered, std::span<const double> uniforms) {
  at::Tensor cdf = filtered.softmax(-1).to(at::kDouble).cumsum(-1);  // [B, V]
  at::Tensor total = cdf.narrow(-1, cdf.size(-1) - 1, 1);             // [B, 1]
  at::Tensor u = at::tensor(at::ArrayRef<double>(uniforms.data(), uniforms.size()),
                            at::TensorOptions().dtype(at::kDouble))
                     .to(cdf.device())
                     .unsqueeze(-1);
  // Strictly below the total, so the chosen token always has positive probability.
  at::Tensor target = at::minimum(u * total, total * (1 - 1e-12));
  return (cdf <= target).sum(-1).to(at::kLong);
}

}  // namespace

SampledTokens SampleTokens(const at::Tensor& logits, const SamplingParams& params,
                           std::span<const double> uniforms) {
  if (std::string error = params.Check(); !error.empty())
    throw std::invalid_argument("sampling: " + error);
  if (logits.dim() != 2)
    throw std::invalid_argument("sampling: logits must be [B, V], got " +
                                std::to_string(logits.dim()) + " dimensions");
  if (static_cast<int64_t>(uniforms.size()) != logits.size(0))
    throw std::invalid_argument("sampling: " + std::to_string(uniforms.size()) +
                                " uniforms for " + std::to_string(logits.size(0)) + " rows");
  at::Tensor x = logits.to(at::kFloat);
  CheckLogits(x);
  SampledTokens out;
  if (params.temperature == 0) {
    out.tokens = x.argmax(-1);
    out.logprobs = x.log_softmax(-1).gather(-1, out.tokens.unsqueeze(-1)).squeeze(-1);
    return out;
  }
  at::Tensor scaled = x / params.temperature;
  at::Tensor filtered =
      FilterMinP(FilterTopP(FilterTopK(scaled, params.top_k), params.top_p), params.min_p);
  out.tokens = DrawFromFiltered(filtered, uniforms);
  out.logprobs = scaled.log_softmax(-1).gather(-1, out.tokens.unsqueeze(-1)).squeeze(-1);
  return out;
}

}  // namespace rl::rollout
