// trainer/grpo.h: the GRPO loop. One call to Step() is one step of the algorithm, and
// grpo.cpp's functions are these steps in this order:
//
//   1. sample   G completions for each of grpo.prompts_per_step prompts (rollout engine);
//   2. score    each completion the moment it finishes (in process, or the reward server;
//               trainer/scoring.h);                                           SampleBatch
//   3. advantages, group-relative (trainer/grpo_loss.h), with DAPO's dynamic sampling when on
//               (trainer/dynamic_sampling.h);                                 SampleBatch
//   4. log-probs of the sampling policy (when the batch is reused: μ > 1 or mini-batches) and
//               of the frozen reference (when beta > 0), without gradient;  ComputeFrozenLogprobs
//   5. loss and update: μ passes over the batch, each cut into mini-batches (one AdamW step
//               each: UpdateMiniBatch) and micro-batches (gradient accumulation:
//               AccumulateGradients), clipped, non-finite skipped;           Optimize
//   6. metrics, from tallies kept apart from the algorithm (SampleStats, UpdateTallies).
//
//   GrpoTrainer trainer(config, policy, reference, prompts, score, world);   // World(): one process
//   while (trainer.step() < config.grpo.steps) {
//     nlohmann::ordered_json metrics = trainer.Step();   // TRL's metric names
//   }
//
// Unscorable completions (a rule could not score them; the reward reports no total) take no
// part in the loss and do not move their group's mean; they are counted in the metrics. They
// are never scored as 0.
//
// With LoRA (policy.lora) only the adapters are trained, and the KL reference is the frozen base
// itself (the policy with adapters disabled).
//
// With rollout.dtype bfloat16 the completions are sampled by a bf16 copy of the policy (adapters
// merged into it). The loss's old log-probs are the trained policy's (recomputed or detached),
// so the copy changes which completions are drawn, not the ratio; with
// grpo.rollout_importance_sampling_correction each token's policy term is also weighted by
// exp(old log-prob − the sampler's log-prob), bounded as grpo.rollout_importance_sampling_mode
// says (TRL's vllm_importance_sampling_correction; sampling/* metrics).
//
// With grpo.sync_ref_model the reference becomes α·policy + (1 − α)·reference after every
// grpo.ref_model_sync_steps-th optimizer update (TR-DPO, as TRL's SyncRefModelCallback).
//
// Data parallelism (trainer/distributed.h): every rank draws the same prompts and samples and
// scores its share of the groups (a group never spans ranks; each sequence draws from the
// random stream of its global prompt index, so the completions are those one process would
// sample). Each round's rewards, lengths and rule scores are summed into one table on every
// rank, so that dynamic sampling's selection, the advantages (scale_rewards: batch included)
// and the metrics are those of one process. Each rank computes the loss of its rows normalised
// by the mini-batch totals of all ranks (sequences, tokens), and the gradients are summed over
// the ranks before clipping: every rank applies the same update. A rank's mini-batch k is the
// k-th part of its own rows; with grpo.num_mini_batches 1 the update is one process's.
//
// Determinism: step s samples with seed f(run.seed, s, round), draws prompts from a seeded
// epoch order and updates in a fixed order, so on CPU a run restored from a checkpoint
// (State/Restore) continues exactly as the uninterrupted run.
// Thread safety: one trainer per policy; Step() is not reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/optim/adamw.h>

#include "rl/data/dataset.h"
#include "rl/data/sampler.h"
#include "rollout/rollout.h"
#include "trainer/completion_log.h"
#include "trainer/config.h"
#include "trainer/distributed.h"
#include "trainer/optimizer.h"
#include "trainer/policy.h"
#include "trainer/scoring.h"

namespace rl::trainer {

class GrpoTrainer {
 public:
  // `reference` may be null when beta is 0 or the policy has LoRA adapters (then the reference
  // is the policy with its adapters disabled). `score` must be thread-safe. The trainer
  // keeps references to everything it is given.
  GrpoTrainer(const TrainConfig& config, Policy& policy, Policy* reference,
              std::span<const data::Example> prompts, ScoreFn score, const World& world);

  nlohmann::ordered_json Step();

  int64_t step() const { return step_; }
  torch::optim::AdamW& optimizer() { return optimizer_; }
  // The model completions are sampled with: the policy itself or, with rollout.dtype bfloat16,
  // a bf16 copy of it that exists only while a Step() samples (its score function runs then);
  // null between steps.
  const model::DecoderImpl* sampling_model() const {
    if (config_.rollout.dtype == Precision::kFloat32) return policy_.model.get();
    return sampling_copy_ ? sampling_copy_.get() : nullptr;
  }
  // What this rank sampled in the last Step() (with several ranks: its share of the groups),
  // in sampling order, with the advantages of the completions whose group joined the batch.
  const std::vector<CompletionRecord>& completions() const { return completions_; }
  // What a checkpoint must hold besides the weights and optimizer moments.
  nlohmann::json State() const;
  void Restore(const nlohmann::json& state);

 private:
  struct Batch;
  struct UpdateTallies;
  using Rows = std::pair<int64_t, int64_t>;  // [first, second) of the batch

  std::vector<Prompt> DrawPrompts();
  Batch SampleBatch(nlohmann::ordered_json& metrics);
  void SkipUpdate(nlohmann::ordered_json& metrics);
  void ComputeFrozenLogprobs(Batch& batch, nlohmann::ordered_json& metrics);
  void Optimize(const Batch& batch, nlohmann::ordered_json& metrics);
  void UpdateMiniBatch(const Batch& batch, Rows mini, bool first_pass, UpdateTallies& tallies);
  double AccumulateGradients(const Batch& batch, Rows mini, bool first_pass, UpdateTallies& tallies,
                             bool* finite);
  torch::Tensor FrozenLogprobs(model::DecoderImpl& model, const Batch& batch) const;
  std::vector<Rows> MiniBatches(const Batch& batch) const;
  std::vector<Rows> MicroBatches(Rows mini) const;
  int64_t UpdatesPerStep() const;

  const TrainConfig& config_;
  const World& world_;
  Policy& policy_;
  Policy* reference_;
  std::span<const data::Example> prompts_;
  ScoreFn score_;
  BaseKeptInBf16 base_in_bf16_;   // LoRA with bf16 training and sampling
  rollout::RolloutOptions rollout_options_;
  model::Decoder sampling_copy_{nullptr};  // null unless rollout.dtype is bfloat16 and a step samples
  data::EpochSampler sampler_;
  std::vector<torch::Tensor> parameters_;
  GradientSum gradient_sum_;  // over the ranks, overlapped with the last backward of an update
  InPlaceAdamW optimizer_;
  NonFiniteGuard guard_;
  int64_t step_ = 0;
  int64_t updates_ = 0;
  double num_tokens_ = 0;
  std::vector<CompletionRecord> completions_;  // the last step's
};

}  // namespace rl::trainer
