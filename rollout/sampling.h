// rollout/sampling.h: turning next-token logits into sampled tokens, reproducibly.
//
//   rl::rollout::SamplingParams params;
//   params.temperature = 0.7; params.top_p = 0.95; params.seed = 42;
//   if (std::string error = params.Check(); !error.empty()) throw std::invalid_argument(error);
//
//   // logits: [B, V] float32, one row per sequence; uniforms: one draw per row.
//   std::vector<double> uniforms = {rl::rollout::CounterUniform(params.seed, stream, step), ...};
//   rl::rollout::SampledTokens next = rl::rollout::SampleTokens(logits, params, uniforms);
//   // next.tokens [B] int64, next.logprobs [B] float32
//
// The pipeline, in the order Hugging Face transformers applies its logits processors and warpers:
//   0. repetition_penalty p (CTRL's, transformers' RepetitionPenaltyLogitsProcessor): the logit of
//      every token the row has seen (its prompt and what it generated so far) is divided by p
//      when positive and multiplied by p when negative; p > 1 discourages repeats;
//   1. divide the logits by the temperature (0 means greedy: argmax, no randomness);
//   2. top_k: keep the k largest logits (ties with the k-th are kept too);
//   3. top_p: keep the smallest set of most probable tokens whose probability reaches top_p
//      (the most probable token is always kept, and so are ties with the last one kept);
//   4. min_p: drop tokens whose probability is below min_p times the most probable one's;
//   5. draw one token from the renormalised survivors by inverting their CDF at a uniform
//      (sums in float64, on the CPU; no step sorts the vocabulary).
//
// Log-probabilities: `logprobs` is log_softmax(logits / temperature) of the chosen token,
// computed BEFORE the top-k / top-p / min-p filters. That is the quantity a policy-gradient
// trainer recomputes (TRL divides the logits by the sampling temperature and applies no
// filter), so the sampler's logprobs and the trainer's agree on the same weights. With
// temperature 0 (greedy) the logprob is taken at temperature 1. A repetition penalty is
// included (the logits it changed are the ones divided by the temperature), as vLLM's
// processed_logprobs that TRL asks for: the penalty changes the distribution tokens are drawn
// from, and an importance-sampling correction against the trainer must see that.
//
// Randomness: no generator state. Each draw is a pure function of (seed, stream, step), where
// a caller gives every sequence its own stream (e.g. prompt index and sample index). A
// sequence therefore samples the same tokens whatever batch it shares, whatever the thread
// count, as long as its logits are the same.
//
// Thread safety: every function here is pure and may be called from any number of threads.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace rl::rollout {

struct SamplingParams {
  double temperature = 1.0;   // 0: greedy decoding
  int64_t top_k = 0;          // 0: no top-k filter
  double top_p = 1.0;         // 1: no nucleus filter; in (0, 1]
  double min_p = 0.0;         // 0: no min-p filter; in [0, 1)
  double repetition_penalty = 1.0;  // > 0; 1: none
  int64_t max_new_tokens = 256;
  std::vector<int64_t> eos_ids;           // generation stops after emitting one of these
  std::vector<std::string> stop_strings;  // generation stops once the text contains one
  // When a stop string ends generation, whether the returned text keeps it (transformers'
  // behaviour; what R1-style rewards need when the stop string is "</answer>") or is cut
  // just before it (vLLM's default).
  bool include_stop_string = true;
  // Whether the completion's text leaves out special tokens (an EOS such as <|im_end|>);
  // token ids always keep them.
  bool skip_special_tokens = true;
  uint64_t seed = 0;
  // The random stream of prompt i is that of prompt first_stream + i: a rank sampling its share
  // of a global batch passes the global index of its first prompt, so that it draws the
  // completions one process sampling the whole batch would.
  int64_t first_stream = 0;

  // Empty when the parameters are usable; otherwise a message naming the first bad field
  // and the range it must lie in.
  std::string Check() const;
};

// A uniform double in [0, 1) that depends only on its three arguments (a counter-based
// generator: SplitMix64 finalisers chained over seed, stream and step).
double CounterUniform(uint64_t seed, uint64_t stream, uint64_t step);

// Filters over float32 logits [B, V] (any leading shape works, the last axis is the vocabulary).
// Each returns a copy where removed entries are -inf; a disabled filter (k <= 0 or k >= V,
// p >= 1, min_p <= 0) returns the input unchanged.
at::Tensor FilterTopK(const at::Tensor& logits, int64_t top_k);
at::Tensor FilterTopP(const at::Tensor& logits, double top_p);
at::Tensor FilterMinP(const at::Tensor& logits, double min_p);

// The tokens one row has seen: its prompt and what it generated so far (repetition_penalty).
struct TokenHistory {
  std::span<const int32_t> prompt, generated;
};

// Step 0 above on float32 logits [B, V]: a copy with each row's seen tokens penalised (each
// token once, however often it occurs). Returns the input unchanged when penalty is 1.
// Throws std::invalid_argument when history.size() != B or a token id is outside [0, V).
at::Tensor ApplyRepetitionPenalty(const at::Tensor& logits, double penalty, std::span<const TokenHistory> history);

struct SampledTokens {
  at::Tensor tokens;    // [B] int64
  at::Tensor logprobs;  // [B] float32, log_softmax(logits / temperature) at `tokens`
};

// Samples one token per row of `logits` ([B, V] float32) with uniforms[b] as row b's draw and
// history[b] as the tokens row b has seen (read only when repetition_penalty != 1).
// Throws std::invalid_argument when the params fail Check(), uniforms.size() != B, or a
// repetition penalty is asked for without one history per row, and std::runtime_error when a
// row of logits holds NaN or no finite value.
SampledTokens SampleTokens(const at::Tensor& logits, const SamplingParams& params,
                           std::span<const double> uniforms, std::span<const TokenHistory> history = {});

}  // namespace rl::rollout
