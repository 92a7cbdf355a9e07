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
// How a batch runs (continuous batching): at most `max_batch` sequences decode together, one
// KV-cache row ("slot") each; the other requests wait, in order. Each decode step feeds every
// running slot one token. A row finishes when it emits an EOS id (finish "stop"), when its
// decoded text contains a stop string ("stop"), or after max_new_tokens ("length"); it is
// handed to `on_finished` at once and the next waiting request takes its slot, so a finished
// row costs no decoding. Identical prompts (a GRPO group) are prefilled once, kept until the
// last request with that prompt has entered, and copied into each slot.
//
// The cache layout: keys and values are [slots, kv_heads, capacity, head_dim] with one length
// L shared by every slot (a decode step writes column L of all of them) and a key mask
// [slots, capacity] saying which columns hold a slot's own tokens. Positions are per row: a
// row's first prompt token has position 0 whatever its column (rotary positions are in the
// keys), so a row's tokens do not depend on what it is batched with, up to float rounding. A
// request entering at length L has its prompt's P prefilled keys copied into columns
// [L - P, L), everything before them masked; its tokens then go to columns L, L + 1, ...
// The cache must hold at least the longest prompt before the copy, and max_new_tokens more
// columns after it: when L + max_new_tokens would pass the capacity, the columns before the
// oldest running row's first token are dropped (every row moves left by as many columns,
// mask alike), and when L is shorter than the prompt every row moves right. A running row
// spans at most longest prompt + max_new_tokens columns, so a capacity of longest prompt +
// 2 * max_new_tokens always makes room (longest prompt + max_new_tokens when every request
// fits at once, as in static batching). Once no request waits and at most half the slots run,
// the free slots are dropped from the cache.
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
// Randomness: row r draws from stream (prompt_index, sample_index) of params.seed, its k-th
// token from counter k, so the same request samples the same tokens in any batch, in any slot,
// at any step it enters and with any thread count, up to float rounding of the logits (see
// sampling.h): continuous and static batching give the same completions.
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

// Samples one completion per request with at most `max_batch` decoding at once (0: all of
// them in one batch). Returns them in request order; `on_finished` (optional) sees each one
// the moment it finishes, on the calling thread.
std::vector<Completion> Generate(model::DecoderImpl& model, const text::Tokenizer& tokenizer,
                                 std::span<const SequenceRequest> requests,
                                 const SamplingParams& params,
                                 const CompletionCallback& on_finished = {}, int64_t max_batch = 0);

}  // namespace rl::rollout
