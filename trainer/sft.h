// trainer/sft.h: supervised fine-tuning on prompt → response pairs, the loss on the response.
//
//   SftSummary s = RunSft(policy, config, examples, [](const nlohmann::json& line) { log(line); });
//
// Each example becomes RenderPrompt(prompt) followed by response + EOS token; the
// cross-entropy is averaged over the response and EOS tokens of the batch (prompt tokens are
// context only). Batches are drawn in seeded epochs (run.seed), the optimizer is AdamW with
// sft.* settings and schedule, gradients are clipped to sft.max_grad_norm, and a non-finite
// update is skipped (counted; the run stops after grpo.max_nonfinite_steps of them).
// Sequences longer than sft.max_length tokens are cut from the right.
// Thread safety: trains `policy` in place; one call at a time.
#pragma once

#include <functional>
#include <span>

#include <nlohmann/json_fwd.hpp>

#include "rl/data/dataset.h"
#include "trainer/config.h"

namespace rl::trainer {

struct Policy;  // trainer/policy.h

struct SftSummary {
  int64_t steps = 0;
  double first_loss = 0;
  double last_loss = 0;  // mean over the last 10% of steps
  double seconds = 0;
};

using MetricsSink = std::function<void(const nlohmann::json&)>;

// Throws std::invalid_argument when an example has no response.
SftSummary RunSft(Policy& policy, const TrainConfig& config, std::span<const data::Example> examples,
                  const MetricsSink& on_step);

}  // namespace rl::trainer
