#include "rollout/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>

#include "common/random.h"

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
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0)
    return "repetition_penalty must be a finite number > 0 (1 disables it), got " +
           std::to_string(repetition_penalty);
  if (max_new_tokens < 1)
    return "max_new_tokens must be >= 1, got " + std::to_string(max_new_tokens);
  for (int64_t id : eos_ids)
    if (id < 0) return "eos_ids must be token ids >= 0, got " + std::to_string(id);
  for (const std::string& s : stop_strings)
    if (s.empty()) return "stop_strings must not contain an empty string";
  if (first_stream < 0) return "first_stream must be >= 0, got " + std::to_string(first_stream);
  return "";
}

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

double CounterUniform(uint64_t seed, uint64_t stream, uint64_t step) {
  using common::SplitMix64Hash;
  uint64_t x = SplitMix64Hash(SplitMix64Hash(SplitMix64Hash(seed) ^ stream) ^ step);
  return static_cast<double>(x >> 11) * 0x1.0p-53;  // 53 random bits -> [0, 1)
}

at::Tensor FilterTopK(const at::Tensor& logits, int64_t top_k) {
  if (top_k <= 0 || top_k >= logits.size(-1)) return logits;
  at::Tensor kth = std::get<0>(logits.topk(top_k, -1)).narrow(-1, top_k - 1, 1);
  return logits.masked_fill(logits < kth, kNegInf);
}

namespace {

// The smallest probability top-p keeps in one row: walking the probabilities in descending
// order, the one at which the running mass first reaches top_p (ties with it are kept too).
// A weighted quickselect finds it in expected O(V) without sorting the row. `p` is scratch.
float TopPThreshold(std::vector<float>& p, double top_p) {
  size_t lo = 0, hi = p.size();
  double need = top_p;
  while (true) {
    // Deterministic pivot: the median of the first, middle and last candidates.
    float a = p[lo], b = p[lo + (hi - lo) / 2], c = p[hi - 1];
    float pivot = std::max(std::min(a, b), std::min(std::max(a, b), c));
    if (std::isnan(pivot)) return pivot;  // garbage in: filter nothing rather than loop
    auto gt_end = std::partition(p.begin() + lo, p.begin() + hi, [&](float x) { return x > pivot; });
    auto eq_end = std::partition(gt_end, p.begin() + hi, [&](float x) { return x == pivot; });
    double above = 0;
    for (auto it = p.begin() + lo; it != gt_end; ++it) above += *it;
    if (above >= need) {  // the threshold lies strictly above the pivot
      hi = static_cast<size_t>(gt_end - p.begin());
      continue;
    }
    double ties = static_cast<double>(eq_end - gt_end) * pivot;
    bool rest_empty = eq_end == p.begin() + hi;
    if (above + ties >= need || rest_empty) return pivot;
    need -= above + ties;  // everything at or above the pivot is kept; look below it
    lo = static_cast<size_t>(eq_end - p.begin());
  }
}

}  // namespace

at::Tensor FilterTopP(const at::Tensor& logits, double top_p) {
  if (top_p >= 1) return logits;
  at::Tensor probs = logits.softmax(-1).to(at::kFloat);
  at::Tensor rows = probs.reshape({-1, probs.size(-1)}).to(at::kCPU).contiguous();
  const int64_t count = rows.size(0), vocab = rows.size(1);
  at::Tensor thresholds = at::empty({count, 1}, at::kFloat);
  std::vector<float> scratch(static_cast<size_t>(vocab));
  for (int64_t r = 0; r < count; ++r) {
    const float* row = rows.data_ptr<float>() + r * vocab;
    scratch.assign(row, row + vocab);
    thresholds.data_ptr<float>()[r] = TopPThreshold(scratch, top_p);
  }
  at::Tensor threshold = thresholds.to(probs.device()).view(
      [&] { auto shape = probs.sizes().vec(); shape.back() = 1; return shape; }());
  return logits.masked_fill(probs < threshold, kNegInf);
}

at::Tensor FilterMinP(const at::Tensor& logits, double min_p) {
  if (min_p <= 0) return logits;
  at::Tensor probs = logits.softmax(-1);
  at::Tensor threshold = std::get<0>(probs.max(-1, /*keepdim=*/true)) * min_p;
  return logits.masked_fill(probs < threshold, kNegInf);
}

at::Tensor ApplyRepetitionPenalty(const at::Tensor& logits, double penalty,
                                  std::span<const TokenHistory> history) {
  if (penalty == 1) return logits;
  if (static_cast<int64_t>(history.size()) != logits.size(0))
    throw std::invalid_argument("sampling: repetition_penalty needs one token history per row, got " +
                                std::to_string(history.size()) + " for " +
                                std::to_string(logits.size(0)) + " rows");
  const int64_t vocab = logits.size(1);
  std::vector<int64_t> rows, columns;
  for (size_t b = 0; b < history.size(); ++b) {
    for (std::span<const int32_t> part : {history[b].prompt, history[b].generated}) {
      for (int32_t id : part) {
        if (id < 0 || id >= vocab)
          throw std::invalid_argument("sampling: token id " + std::to_string(id) +
                                      " in a repetition history is outside [0, " +
                                      std::to_string(vocab) + ")");
        rows.push_back(static_cast<int64_t>(b));
        columns.push_back(id);
      }
    }
  }
  if (rows.empty()) return logits;
  // A token seen twice is penalised once: the same value is written to its entry twice.
  const at::Tensor r = at::tensor(rows).to(logits.device()), c = at::tensor(columns).to(logits.device());
  const at::Tensor seen = logits.index({r, c});
  const at::Tensor penalised = at::where(seen < 0, seen * penalty, seen / penalty);
  return logits.index_put({r, c}, penalised);
}

namespace {

// Throws unless every row's log-sum-exp is finite: NaN, +inf and all -inf rows all show there.
void CheckLogSumExp(const at::Tensor& log_sum_exp) {
  if (!log_sum_exp.isfinite().all().item<bool>())
    throw std::runtime_error(
        "sampling: logits hold NaN or +inf, or a row has no finite value (the model "
        "diverged or its weights are corrupt)");
}

// The first token whose cumulative probability exceeds u * total. Sums run in float64 in
// one fixed order, so the result depends on nothing but the row and u.
int64_t InvertCdf(const float* probs, int64_t vocab, double u) {
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) total += probs[i];
  const double target = u * total;
  double mass = 0;
  int64_t last = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    if (!(probs[i] > 0)) continue;  // removed by a filter: never drawn
    mass += probs[i];
    last = i;
    if (mass > target) return i;
  }
  return last;  // u * total rounded up to the total: the last token with mass
}

// One inverse-CDF draw per row of softmax(filtered), on the CPU: a plain loop over a row costs
// less than the several full-vocabulary tensor passes a cumsum-based draw needs.
at::Tensor DrawFromFiltered(const at::Tensor& filtered, std::span<const double> uniforms) {
  at::Tensor probs = filtered.softmax(-1).to(at::kCPU).contiguous();
  const int64_t rows = probs.size(0), vocab = probs.size(1);
  at::Tensor tokens = at::empty({rows}, at::kLong);
  const float* data = probs.data_ptr<float>();
  int64_t* out = tokens.data_ptr<int64_t>();
  for (int64_t b = 0; b < rows; ++b) out[b] = InvertCdf(data + b * vocab, vocab, uniforms[b]);
  return tokens.to(filtered.device());
}

}  // namespace

SampledTokens SampleTokens(const at::Tensor& logits, const SamplingParams& params,
                           std::span<const double> uniforms, std::span<const TokenHistory> history) {
  if (std::string error = params.Check(); !error.empty())
    throw std::invalid_argument("sampling: " + error);
  if (logits.dim() != 2)
    throw std::invalid_argument("sampling: logits must be [B, V], got " +
                                std::to_string(logits.dim()) + " dimensions");
  if (static_cast<int64_t>(uniforms.size()) != logits.size(0))
    throw std::invalid_argument("sampling: " + std::to_string(uniforms.size()) +
                                " uniforms for " + std::to_string(logits.size(0)) + " rows");
  const bool greedy = params.temperature == 0;
  const at::Tensor penalised = ApplyRepetitionPenalty(logits.to(at::kFloat), params.repetition_penalty, history);
  at::Tensor scaled = greedy ? penalised : penalised / params.temperature;
  at::Tensor log_sum_exp = scaled.logsumexp(-1);  // [B]
  CheckLogSumExp(log_sum_exp);
  SampledTokens out;
  if (greedy) {
    out.tokens = scaled.argmax(-1);
  } else {
    at::Tensor filtered =
        FilterMinP(FilterTopP(FilterTopK(scaled, params.top_k), params.top_p), params.min_p);
    out.tokens = DrawFromFiltered(filtered, uniforms);
  }
  // log_softmax at the chosen token, without materialising log_softmax over the vocabulary.
  out.logprobs = scaled.gather(-1, out.tokens.unsqueeze(-1)).squeeze(-1) - log_sum_exp;
  return out;
}

}  // namespace rl::rollout
