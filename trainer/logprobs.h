// trainer/logprobs.h: prompt + completion batches and per-token log-probabilities.
//
//   TokenBatch batch = MakeTokenBatch(prompt_ids, completion_ids);   // one row per sequence
//   CompletionLogprobs lp = ComputeCompletionLogprobs(*model, batch, /*temperature=*/1.0,
//                                                     /*chunk=*/64, /*with_entropy=*/true);
//   // lp.logprobs [B,C]: log softmax(logits / temperature) of each completion token
//
// Layout (the rollout engine's): prompts are left-padded to the longest prompt P, so every
// completion starts at column P, and completions are right-padded to the longest C. Each
// row's first real token has position 0; padding is masked out of attention. The logits that
// predict completion token j come from hidden position P − 1 + j.
//
// Memory: the model runs once over [B, P+C] for the hidden states; the [.., V] logits are
// then made `chunk` completion positions at a time and never kept: the backward pass recomputes
// them chunk by chunk (a hand-written gradient of log-softmax and entropy), so neither a pass
// without gradient nor one with it holds more than B × chunk × V logits at once (the vocabulary
// of real models is ~150k). The products run in the model's compute dtype (mixed precision:
// DecoderImpl::SetComputeDtype), the log-softmax in float32: bf16 logits on an AVX-512 CPU go
// through the fused kernels of rl/model/bf16_fused.h, which never write them out in
// float32, other logits through LibTorch's operations.
//
// Thread safety: pure functions; the model is only read.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include <torch/types.h>

namespace rl::model {
class DecoderImpl;
}

namespace rl::trainer {

struct TokenBatch {
  torch::Tensor input_ids;        // [B, P+C] int64
  torch::Tensor positions;        // [B, P+C] int64
  torch::Tensor key_mask;         // [B, P+C] bool
  torch::Tensor completion_ids;   // [B, C] int64 (0 on padding)
  torch::Tensor completion_mask;  // [B, C] float32, 1 on real completion tokens
  int64_t prompt_width = 0;       // P
};

// Throws std::invalid_argument when the spans differ in length, a prompt is empty, or every
// completion is empty.
TokenBatch MakeTokenBatch(std::span<const std::vector<int32_t>> prompts,
                          std::span<const std::vector<int32_t>> completions);

// Rows `rows` of `batch` (e.g. a micro-batch), trimmed to the widths they need.
TokenBatch SelectRows(const TokenBatch& batch, const torch::Tensor& rows);

struct CompletionLogprobs {
  torch::Tensor logprobs;  // [B, C] float32, 0 on padding
  torch::Tensor entropy;   // [B, C] float32, 0 on padding (differentiable like logprobs), or undefined
};

// Mixed precision (bf16 products, rl/model/decoder.h's SetComputeDtype) and activation
// checkpointing for a training stage's log-prob passes and backward passes, on `model` for
// this object's lifetime (grpo./sft.train_dtype and gradient_checkpointing):
//
//   { TrainingPasses passes(*policy.model, /*bf16=*/true, /*gradient_checkpointing=*/true);
//     ... ComputeCompletionLogprobs(...), loss.backward() ... }   // sampling and evaluation
//                                                                 // run outside it
class TrainingPasses {
 public:
  TrainingPasses(model::DecoderImpl& model, bool bf16, bool gradient_checkpointing);
  ~TrainingPasses();  // the model computes in its own dtype again, without checkpointing
  TrainingPasses(const TrainingPasses&) = delete;
  TrainingPasses& operator=(const TrainingPasses&) = delete;

 private:
  model::DecoderImpl& model_;
};

// temperature <= 0 is read as 1 (greedy sampling reports log-probs at temperature 1).
// Differentiable when called with grad mode on. Throws std::invalid_argument when a completion
// token id is outside the model's vocabulary.
CompletionLogprobs ComputeCompletionLogprobs(model::DecoderImpl& model, const TokenBatch& batch,
                                             double temperature, int64_t chunk, bool with_entropy);

}  // namespace rl::trainer
