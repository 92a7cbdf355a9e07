// trainer/dynamic_sampling.h: which sampled groups make up a GRPO step's batch.
//
// Without dynamic sampling a step samples one round of grpo.prompts_per_step prompts and keeps
// every group. With it (DAPO, Yu et al. 2025), a group without reward signal is dropped — its
// advantages are all zero, so it adds no gradient and only dilutes the batch — and further
// rounds of prompts are sampled until the batch holds prompts_per_step groups or
// grpo.dynamic_sampling_max_rounds rounds were sampled. A group has no signal when its scored
// rewards are all equal (IsZeroStd, the test the advantages use) or fewer than two of its
// completions could be scored (GroupRewards::HasSignal).
//
//   GroupSelector selector(config.grpo);
//   while (!selector.done()) {
//     std::vector<GroupRewards> rewards = SampleRound();  // one per group
//     for (size_t g : selector.Offer(rewards)) AppendToBatch(g);
//   }
//   // selector.rounds(), kept(), zero_std() / seen() for the metrics
//
// Thread safety: a plain value, one per step.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "trainer/config.h"
#include "trainer/group_rewards.h"

namespace rl::trainer {

class GroupSelector {
 public:
  explicit GroupSelector(const GrpoSection& grpo);

  // Takes one sampling round's groups and returns the indices of those that join the batch,
  // in order. Groups beyond the batch size are not taken.
  std::vector<size_t> Offer(std::span<const GroupRewards> groups);

  // The batch is full, or no round is left to sample.
  bool done() const { return kept_ >= capacity_ || rounds_ >= max_rounds_; }

  int64_t rounds() const { return rounds_; }
  int64_t kept() const { return kept_; }          // groups in the batch
  int64_t seen() const { return seen_; }          // groups sampled, kept or not
  int64_t zero_std() const { return zero_std_; }  // sampled groups without signal

 private:
  int64_t capacity_;
  bool drop_zero_std_;
  int64_t max_rounds_;
  int64_t rounds_ = 0, kept_ = 0, seen_ = 0, zero_std_ = 0;
};

}  // namespace rl::trainer
