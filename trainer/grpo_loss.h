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
//   in.entropy = ...;       // [B,T] per-token entropy (top_entropy_quantile < 1, entropy_coef > 0)
//   in.rollout_weights = RolloutImportanceWeights(old, sampler, mask, is_options).weights;
//   PolicyLoss loss = ComputePolicyLoss(in, loss_options);
//   loss.loss.backward();
//
// The per-token objective is TRL's (trl/trainer/grpo_trainer.py, GRPOTrainer._compute_loss):
//   −min(ρ·A, clip(ρ, 1−ε, 1+ε_high)·A) · m_H · w  +  β·KL
// with ρ = exp(logπ − logπ_old) and KL the k3 estimator exp(d) − d − 1, d = logπ_ref − logπ,
// where d is clamped to ±kl_log_ratio_clamp so that one extreme token cannot blow up the loss
// (k3 is ≥ 0 for every d, so the clamped value stays non-negative and finite). Variants:
//   importance_sampling_level sequence (GSPO): ρ is one value per sequence,
//             exp(mean over its tokens of logπ − logπ_old), gradient through that mean;
//   delta (INTELLECT-2): the unclipped branch's ρ is capped at delta, bounding the loss of a
//             negative-advantage token whose ratio runs away;
//   cispo (MiniMax-M1): −min(ρ, ε_high)·A·logπ with the weight detached: clipped tokens keep
//             their gradient, only its size is bounded;
//   m_H (top_entropy_quantile q < 1): 1 on the tokens whose entropy is at least the (1 − q)
//             quantile of the batch's masked tokens' entropies, 0 elsewhere (HighEntropyMask);
//   w (rollout_weights): the detached sampler/trainer importance weights
//             (RolloutImportanceWeights), TRL's vllm_importance_sampling_correction;
//   entropy_coef c > 0: the loss is lowered by c × the mean per-token entropy (of the m_H tokens
//             when q < 1), whatever the loss_type normalises by.
//
// Normalisation (loss_type):
//   grpo    : mean over each sequence's tokens, then mean over sequences
//   bnpo    : mean over the micro-batch's tokens, then mean over the micro-batches
//   dapo    : sum over all tokens / number of tokens in the batch
//   cispo   : as dapo
//   dr_grpo : sum over all tokens / (sequences × max_completion_length)
// When an optimizer step is split into micro-batches, pass the whole step's sequence and token
// counts in `total_sequences` / `total_tokens` so the micro-batch losses add up to the loss of
// the whole batch. bnpo is the one that does not: TRL normalises each micro-batch by its own
// tokens and averages over the gradient-accumulation steps (and processes), which is what
// tells it apart from dapo; pass the step's micro-batch count (over every rank) in
// `micro_batches`. The entropy bonus of grpo, bnpo and dr_grpo is averaged the same way (TRL
// divides it by the accumulation steps); that of dapo and cispo is divided by total_tokens.
//
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>

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
  ImportanceSamplingLevel importance_sampling_level = ImportanceSamplingLevel::kToken;
  double epsilon_low = 0.2;
  double epsilon_high = 0.2;    // cispo: the cap of the detached weight (ε_max)
  std::optional<double> delta;  // cap of the unclipped branch's ratio; unset: none
  double beta = 0.0;
  double kl_log_ratio_clamp = 10.0;
  double top_entropy_quantile = 1.0;  // 1: every token trains
  double entropy_coef = 0.0;
  int64_t max_completion_length = 0;  // dr_grpo's constant; 0: the mask's width T
  int64_t total_sequences = 0;        // 0: this batch's B
  double total_tokens = 0;            // 0: this batch's mask sum
  int64_t micro_batches = 0;          // bnpo and the grpo/bnpo/dr_grpo entropy bonus; 0: 1
};

struct PolicyLossInputs {
  at::Tensor logprobs;      // [B,T], requires grad
  at::Tensor old_logprobs;  // [B,T] or undefined
  at::Tensor ref_logprobs;  // [B,T] or undefined (needed when beta > 0)
  at::Tensor advantages;    // [B]
  at::Tensor mask;          // [B,T]
  // [B,T] entropy of each position's distribution; needed when top_entropy_quantile < 1 or
  // entropy_coef > 0 (the bonus's gradient flows through it), otherwise unused.
  at::Tensor entropy;
  // [B,T] or [B,1] detached weights multiplying the policy term (RolloutImportanceWeights),
  // or undefined.
  at::Tensor rollout_weights;
};

struct PolicyLoss {
  at::Tensor loss;  // scalar, differentiable w.r.t. logprobs (and entropy when entropy_coef > 0)
  // Metrics over this batch (detached doubles). The ratio metrics are means over its tokens,
  // or over its sequences (those with a token in the mask) at importance_sampling_level
  // sequence; `ratio_count` is that count, to weigh batches together.
  double kl = 0;              // token mean; 0 when beta == 0 and no reference was given
  double clip_ratio_low = 0;  // ρ < 1−ε with A < 0
  double clip_ratio_high = 0; // ρ > 1+ε_high with A > 0
  double clip_ratio_region = 0;
  double cispo_clip_ratio = 0;  // ρ > ε_high with A > 0 (the cispo weight capped)
  double ratio_count = 0;
  // The smallest share of low-clipped tokens of one sequence of the batch, and the largest of
  // high-clipped (TRL's clip_ratio/low_min, high_max per micro-batch); none without a sequence.
  std::optional<double> clip_ratio_low_min, clip_ratio_high_max;
  double tokens = 0;          // mask sum
};

// The k3 KL estimator per token with the log-ratio clamped (same shape as the inputs).
at::Tensor KlK3(const at::Tensor& logprobs, const at::Tensor& ref_logprobs, double log_ratio_clamp);

// 1 (in mask's dtype) on the masked tokens whose entropy is at least the (1 − top_quantile)
// quantile, linearly interpolated, of the entropies of all masked tokens of the batch; 0
// elsewhere and on padding (TRL: GRPOTrainer.get_high_entropy_mask). All 0 without a masked token.
at::Tensor HighEntropyMask(const at::Tensor& entropy, const at::Tensor& mask, double top_quantile);

// Min, max, sum and count of a set of values, mergeable across batches and ranks.
struct ValueRange {
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  double sum = 0, count = 0;

  void Merge(const ValueRange& other);
  double mean() const { return count > 0 ? sum / count : 0.0; }
};

struct RolloutImportanceOptions {
  RolloutIsMode mode = RolloutIsMode::kTokenTruncate;
  double clip_max = 3.0;
  std::optional<double> clip_min;  // unset: no lower bound
};

struct RolloutImportance {
  // exp(logπ_old − logπ_sampler) per token ([B,T], 1 on padding), or of the sequence's summed
  // difference ([B,1]), then clamped (truncate) or set to 0 outside [clip_min, clip_max] (mask).
  at::Tensor weights;
  ValueRange weight;     // the weights over the masked tokens (sequence modes: the sequences with one)
  ValueRange logp_diff;  // |logπ_old − logπ_sampler| over the masked tokens
};

// The rollout engine samples with other arithmetic than the loss's forward (a bf16 copy of the
// policy, another kernel), so its tokens come from a slightly different distribution; these
// weights correct the policy gradient for it (TRL: GRPOTrainer._generate_and_score_completions,
// vllm_importance_sampling_*). Inputs [B,T], all without gradient.
RolloutImportance RolloutImportanceWeights(const at::Tensor& old_logprobs, const at::Tensor& sampler_logprobs,
                                           const at::Tensor& mask, const RolloutImportanceOptions& options);

PolicyLoss ComputePolicyLoss(const PolicyLossInputs& inputs, const PolicyLossOptions& options);

}  // namespace rl::trainer
