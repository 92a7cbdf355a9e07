// trainer/sft.h: supervised fine-tuning on prompt → response pairs, the loss on the response.
//
//   World world;   // one process; or World::Join(spec, timeout): data-parallel over the ranks
//   SftSummary s = RunSft(policy, config, examples, [](const nlohmann::json& line) { log(line); }, world);
//
// Each example becomes RenderPrompt(prompt) followed by response + EOS token; the
// cross-entropy is averaged over the response and EOS tokens of the batch (prompt tokens are
// context only). Batches are drawn in seeded epochs (run.seed), the optimizer is AdamW with
// sft.* settings and schedule, gradients are clipped to sft.max_grad_norm, and a non-finite
// update is skipped (counted; the run stops after grpo.max_nonfinite_steps of them).
// Sequences longer than sft.max_length tokens are cut from the right.
//
// Data parallelism (trainer/distributed.h): every rank draws the same global batch of
// sft.batch_size examples and takes its share of the rows; the token count that normalises the
// loss, the loss and the gradients are summed over the ranks before clipping and the update,
// so every rank applies the update one process would (up to the order of float additions) and
// the policies stay equal. Every rank calls on_step with the same, global, figures.
// Thread safety: trains `policy` in place; one call at a time.
#pragma once

#include <functional>
#include <span>

#include <nlohmann/json_fwd.hpp>

#include "rl/data/dataset.h"
#include "trainer/config.h"

namespace rl::trainer {

struct Policy;  // trainer/policy.h
class World;    // trainer/distributed.h

struct SftSummary {
  int64_t steps = 0;
  double first_loss = 0;
  double last_loss = 0;  // mean over the last 10% of steps
  double seconds = 0;
};

using MetricsSink = std::function<void(const nlohmann::json&)>;

// Throws std::invalid_argument when an example has no response, or when sft.batch_size is
// smaller than the number of ranks; a failed collective throws std::runtime_error.
SftSummary RunSft(Policy& policy, const TrainConfig& config, std::span<const data::Example> examples,
                  const MetricsSink& on_step, const World& world);

}  // namespace rl::trainer
