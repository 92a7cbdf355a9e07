// trainer/grpo_loss.h: the arithmetic of GRPO as pure tensor functions.
//
// One GRPO update, in the order the trainer calls these:
//
//   // rewards [P*G] (G completions of each of P prompts, grouped contiguously)
//   GroupAdvantages adv = ComputeGroupAdvantages(rewards, /*group_size=*/G, options);
//   // adv.advantages [P*G]; adv.frac_reward_zero_std for the metrics
//
//   PolicyLossInputs in;
//   in.logprobs = ...;      // [B,T] log π_θ(token) at the sampling temperature, with grad
//   in.old_logprobs = ...;  // [B,T] of the policy that sampled (undefined: logprobs.detach())
//   in.ref_logprobs = ...;  // [B,T] of the frozen reference (undefined when beta == 0)
//   in.advantages = ...;    // [B]
//   in.mask = ...;          // [B,T] 1 on completion tokens that count, 0 on padding
//   PolicyLoss loss = ComputePolicyLoss(in, loss_options);
//   loss.loss.backward();
//
// The per-token objective is TRL's: −min(ρ·A, clip(ρ, 1−ε, 1+ε_high)·A) + β·KL, with
// ρ = exp(logπ − logπ_old) and KL the k3 estimator exp(d) − d − 1, d = logπ_ref − logπ,
// where d is clamped to ±kl_log_ratio_clamp so that one extreme token cannot blow up the loss
// (k3 is ≥ 0 for every d, so the clamped value stays non-negative and finite).
//
// Normalisation (loss_type):
//   grpo    : mean over each sequence's tokens, then mean over sequences
//   dapo    : sum over all tokens / number of tokens in the batch
//   dr_grpo : sum over all tokens / (sequences × max_completion_length)
// When an optimizer step is split into micro-batches, pass the whole step's sequence and token
// counts in `total_sequences` / `total_tokens` so the micro-batch losses add up to the loss of
// the whole batch.
//
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "trainer/config.h"
#include "trainer/group_rewards.h"

namespace rl::trainer {

struct AdvantageOptions {
  ScaleRewards scale_rewards = ScaleRewards::kGroup;
  bool rloo = false;   // baseline: mean of the group's other G−1 rewards
  double eps = 1e-4;   // added to the std before dividing
};

struct GroupAdvantages {
  at::Tensor advantages;       // [P*G] float64
  at::Tensor group_mean;       // [P] float64
  at::Tensor group_std;        // [P] float64 (unbiased, as torch.std)
  double frac_reward_zero_std = 0;  // share of groups whose rewards are all equal
};

// rewards: [P*G] floating, groups contiguous. Throws std::invalid_argument when the size is
// not a multiple of group_size or a reward is not finite.
GroupAdvantages ComputeGroupAdvantages(const at::Tensor& rewards, int64_t group_size,
                                       const AdvantageOptions& options);

// IsZeroStd (trainer/group_rewards.h) of every group: [P] bool.
at::Tensor ZeroStdGroups(const GroupAdvantages& advantages);

struct PolicyLossOptions {
  LossType loss_type = LossType::kDapo;
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;
  double beta = 0.0;
  double kl_log_ratio_clamp = 10.0;
  int64_t max_completion_length = 0;  // dr_grpo's constant; 0: the mask's width T
  int64_t total_sequences = 0;        // 0: this batch's B
  double total_tokens = 0;            // 0: this batch's mask sum
};

struct PolicyLossInputs {
  at::Tensor logprobs;      // [B,T], requires grad
  at::Tensor old_logprobs;  // [B,T] or undefined
  at::Tensor ref_logprobs;  // [B,T] or undefined (needed when beta > 0)
  at::Tensor advantages;    // [B]
  at::Tensor mask;          // [B,T]
};

struct PolicyLoss {
  at::Tensor loss;  // scalar, differentiable w.r.t. logprobs
  // Masked token means over this batch (detached doubles, for metrics).
  double kl = 0;              // 0 when beta == 0 and no reference was given
  double clip_ratio_low = 0;  // ρ < 1−ε with A < 0
  double clip_ratio_high = 0; // ρ > 1+ε_high with A > 0
  double clip_ratio_region = 0;
  double tokens = 0;          // mask sum
};

// The k3 KL estimator per token with the log-ratio clamped (same shape as the inputs).
at::Tensor KlK3(const at::Tensor& logprobs, const at::Tensor& ref_logprobs, double log_ratio_clamp);

PolicyLoss ComputePolicyLoss(const PolicyLossInputs& inputs, const PolicyLossOptions& options);

}  // namespace rl::trainer
