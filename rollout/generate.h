// rollout/generate.h: batched sampling from a Qwen2 policy with a preallocated KV cache.
//
//   rl::rollout::SamplingParams params;
//   params.temperature = 1.0; params.max_new_tokens = 256; params.seed = 7;
//   params.eos_ids = {151645};  params.stop_strings = {"</answer>"};
//   std::vector<rl::rollout::SequenceRequest> rows = {{tokenizer.Encode(prompt), 0, 0}, ...};
//   std::vector<rl::rollout::Completion> out =
//       rl::rollout::Generate(*model, tokenizer, rows, params,
//                             [](const rl::rollout::Completion& c) { /* finished now */ });
//
// How a batch runs: prompts are left-padded to the longest; each row's first real token has
// position 0 and padding is masked out of every attention (so a row's tokens do not depend
// on what it is batched with, up to float rounding). One prefill fills the KV cache, then
// one decode step per new token. A row finishes when it emits an EOS id (finish "stop"),
// when its decoded text contains a stop string ("stop"), or after max_new_tokens ("length").
// A finished row is handed to `on_finished` at once and stops being sampled; its cache slot
// is masked out of the remaining steps.
//
// What a Completion holds, precisely:
//   token_ids  every sampled token, including the EOS id or the token that completed a stop
//              string (the trainer scores exactly these tokens);
//   logprobs   one per token id: log_softmax(logits / temperature) of that token, before
//              top-k / top-p / min-p (see sampling.h);
//   text       the tokens decoded incrementally (special tokens dropped unless
//              params.skip_special_tokens is false). After a stop string it ends with the stop
//              string (params.include_stop_string) or just before it; bytes that the last
//              token decoded to beyond the stop string are cut, so the text can be shorter
//              than Decode(token_ids).
//
// Randomness: row r draws from stream (prompt_index, sample_index) of params.seed, so
// the same request samples the same tokens in any batch and with any thread count, up to
// float rounding of the logits (see sampling.h).
//
// Errors: std::invalid_argument for bad params or requests (message names the field or row);
// rl::model::ModelError / c10::Error from the model pass through; std::runtime_error when the
// logits are not finite. Thread safety: Generate may run concurrently on the same model from
// several threads (the model is only read); each call owns its cache.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rollout/sampling.h"

namespace rl::model {
class DecoderImpl;
}
namespace rl::text {
class Tokenizer;
}

namespace rl::rollout {

enum class FinishReason { kStop, kLength };
std::string_view ToString(FinishReason reason);  // "stop" or "length"

struct Completion {
  int64_t prompt_index = 0;
  int64_t sample_index = 0;
  std::vector<int32_t> token_ids;  // generated tokens only (no prompt)
  std::vector<float> logprobs;     // logprobs[i] belongs to token_ids[i]
  std::string text;
  FinishReason finish_reason = FinishReason::kLength;
};

struct SequenceRequest {
  std::vector<int32_t> prompt_ids;  // must not be empty
  int64_t prompt_index = 0;         // copied into the Completion; with sample_index, picks
  int64_t sample_index = 0;         // the row's random stream
};

using CompletionCallback = std::function<void(const Completion&)>;

// Samples one completion per request, all in one batch. Returns them in request order;
// `on_finished` (optional) sees each one the moment it finishes, on the calling thread.
std::vector<Completion> Generate(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                                 std::span<const SequenceRequest> requests,
                                 const SamplingParams& params,
                                 const CompletionCallback& on_finished = {});

}  // namespace rl::rollout
