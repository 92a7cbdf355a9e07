#include "trainer/grpo_loss.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include <ATen/ATen.h>

namespace rl::trainer {

GroupAdvantages ComputeGroupAdvantages(const at::Tensor& rewards, int64_t group_size,
                                       const AdvantageOptions& options) {
  if (group_size < 1 || rewards.dim() != 1 || rewards.size(0) % group_size != 0) {
    throw std::invalid_argument("ComputeGroupAdvantages: rewards must be a 1-D tensor whose size (" +
                                std::to_string(rewards.numel()) + ") is a multiple of the group size (" +
                                std::to_string(group_size) + ")");
  }
  at::Tensor r = rewards.to(at::kDouble);
  if (!at::isfinite(r).all().item<bool>()) {
    throw std::invalid_argument("ComputeGroupAdvantages: a reward is not finite");
  }
  at::Tensor grouped = r.view({-1, group_size});  // [P,G]
  GroupAdvantages out;
  out.group_mean = grouped.mean(1);
  out.group_std = group_size > 1 ? grouped.std(1, /*unbiased=*/true) : at::zeros_like(out.group_mean);

  at::Tensor baseline;
  if (options.rloo && group_size > 1) {
    baseline = (grouped.sum(1, /*keepdim=*/true) - grouped) / static_cast<double>(group_size - 1);
  } else {
    baseline = out.group_mean.unsqueeze(1);
  }
  at::Tensor advantages = grouped - baseline;  // [P,G]
  switch (options.scale_rewards) {
    case ScaleRewards::kGroup:
      advantages = advantages / (out.group_std.unsqueeze(1) + options.eps);
      break;
    case ScaleRewards::kBatch: {
      double batch_std = r.numel() > 1 ? r.std(/*unbiased=*/true).item<double>() : 0.0;
      advantages = advantages / (batch_std + options.eps);
      break;
    }
    case ScaleRewards::kNone:
      break;
  }
  // A group whose rewards are all equal carries no signal: its advantages are exactly 0 even
  // under RLOO (where r − mean(others) is already 0) and whatever the scaling.
  at::Tensor zero_std = ZeroStdGroups(out);
  advantages = advantages.masked_fill(zero_std.unsqueeze(1), 0.0);
  out.advantages = advantages.reshape({-1});
  out.frac_reward_zero_std = zero_std.to(at::kDouble).mean().item<double>();
  return out;
}

at::Tensor ZeroStdGroups(const GroupAdvantages& advantages) { return advantages.group_std <= kZeroStdTolerance; }

at::Tensor KlK3(const at::Tensor& logprobs, const at::Tensor& ref_logprobs, double log_ratio_clamp) {
  at::Tensor d = (ref_logprobs - logprobs).clamp(-log_ratio_clamp, log_ratio_clamp);
  return at::exp(d) - d - 1.0;
}

at::Tensor HighEntropyMask(const at::Tensor& entropy, const at::Tensor& mask, double top_quantile) {
  at::NoGradGuard no_grad;
  const at::Tensor in_mask = mask > 0;
  const at::Tensor values = entropy.detach().masked_select(in_mask).to(at::kDouble);
  if (values.numel() == 0) return at::zeros_like(mask);
  const double threshold = at::quantile(values, 1.0 - top_quantile).item<double>();
  return ((entropy.detach() >= threshold) & in_mask).to(mask.scalar_type());
}

void ValueRange::Merge(const ValueRange& other) {
  min = std::min(min, other.min);
  max = std::max(max, other.max);
  sum += other.sum;
  count += other.count;
}

namespace {

// The range of `values` where `select` is true.
ValueRange RangeOf(const at::Tensor& values, const at::Tensor& select) {
  const at::Tensor picked = values.masked_select(select).to(at::kDouble);
  ValueRange range;
  if (picked.numel() == 0) return range;
  range.min = picked.min().item<double>();
  range.max = picked.max().item<double>();
  range.sum = picked.sum().item<double>();
  range.count = static_cast<double>(picked.numel());
  return range;
}

bool IsSequenceMode(RolloutIsMode mode) {
  return mode == RolloutIsMode::kSequenceTruncate || mode == RolloutIsMode::kSequenceMask;
}

}  // namespace

RolloutImportance RolloutImportanceWeights(const at::Tensor& old_logprobs, const at::Tensor& sampler_logprobs,
                                           const at::Tensor& mask, const RolloutImportanceOptions& options) {
  if (old_logprobs.sizes() != sampler_logprobs.sizes() || mask.sizes() != old_logprobs.sizes()) {
    throw std::invalid_argument("RolloutImportanceWeights: expected old and sampler log-probs and mask of one shape [B,T]");
  }
  at::NoGradGuard no_grad;
  const at::Tensor difference = (old_logprobs - sampler_logprobs) * mask;  // 0 on padding: weight 1
  const bool sequence = IsSequenceMode(options.mode);
  at::Tensor weights = at::exp(sequence ? difference.sum(1, /*keepdim=*/true) : difference);
  const double low = options.clip_min.value_or(-std::numeric_limits<double>::infinity());
  if (options.mode == RolloutIsMode::kTokenTruncate || options.mode == RolloutIsMode::kSequenceTruncate) {
    weights = weights.clamp(low, options.clip_max);
  } else {
    weights = weights.masked_fill((weights < low) | (weights > options.clip_max), 0.0);
  }
  RolloutImportance out;
  const at::Tensor in_mask = mask > 0;
  out.weight = RangeOf(weights, sequence ? in_mask.any(1, /*keepdim=*/true) : in_mask);
  out.logp_diff = RangeOf(difference.abs(), in_mask);
  out.weights = weights;
  return out;
}

namespace {

// ρ per token [B,T], or GSPO's per sequence [B,1]: exp of the mean log-ratio over its tokens.
at::Tensor ImportanceRatio(const at::Tensor& log_ratio, const at::Tensor& mask, ImportanceSamplingLevel level) {
  if (level == ImportanceSamplingLevel::kToken) return at::exp(log_ratio);
  return at::exp((log_ratio * mask).sum(1, /*keepdim=*/true) / mask.sum(1, /*keepdim=*/true).clamp_min(1.0));
}

// The policy term per token before masking: cispo's, or the clipped surrogate with delta's cap.
// Returns the ratio the clip metrics read (after delta's cap, as TRL reads it).
at::Tensor PolicyTerm(const at::Tensor& ratio, const at::Tensor& logprobs, const at::Tensor& advantages,
                      const PolicyLossOptions& options, at::Tensor* metric_ratio) {
  if (options.loss_type == LossType::kCispo) {
    *metric_ratio = ratio;
    return -ratio.clamp_max(options.epsilon_high).detach() * advantages * logprobs;
  }
  const at::Tensor clipped = ratio.clamp(1.0 - options.epsilon_low, 1.0 + options.epsilon_high);
  const at::Tensor capped = options.delta ? ratio.clamp_max(*options.delta) : ratio;
  *metric_ratio = capped;
  return -at::min(capped * advantages, clipped * advantages);
}

// The masked per-token loss [B,T] reduced as loss_type says (see the header).
at::Tensor Normalise(const at::Tensor& masked, const at::Tensor& mask, const PolicyLossOptions& options,
                     double total_sequences, double total_tokens, double micro_batches) {
  switch (options.loss_type) {
    case LossType::kGrpo:
      return (masked.sum(1) / mask.sum(1).clamp_min(1.0)).sum() / total_sequences;
    case LossType::kBnpo:
      return masked.sum() / mask.sum().clamp_min(1.0) / micro_batches;
    case LossType::kDapo:
    case LossType::kCispo:
      return masked.sum() / total_tokens;
    case LossType::kDrGrpo: {
      const int64_t length = options.max_completion_length > 0 ? options.max_completion_length : mask.size(1);
      return masked.sum() / (total_sequences * static_cast<double>(length));
    }
  }
  throw std::logic_error("ComputePolicyLoss: unknown loss_type");
}

// The mean per-token entropy of the `effective` tokens, scaled as TRL scales it so that the
// micro-batches' terms add up to the step's mean whatever loss_type normalises by.
at::Tensor EntropyBonus(const at::Tensor& entropy, const at::Tensor& effective, LossType loss_type,
                        double total_tokens, double micro_batches) {
  const at::Tensor sum = (entropy * effective).sum();
  if (loss_type == LossType::kDapo || loss_type == LossType::kCispo) return sum / total_tokens;
  return sum / effective.sum().clamp_min(1.0) / micro_batches;
}

// Clip metrics over the tokens (or, at sequence level, the sequences) that count.
void ClipMetrics(const at::Tensor& ratio, const at::Tensor& advantages, const at::Tensor& mask,
                 const PolicyLossOptions& options, PolicyLoss& out) {
  at::NoGradGuard no_grad;
  const bool per_sequence = options.importance_sampling_level == ImportanceSamplingLevel::kSequence;
  const at::Tensor has_tokens = mask.sum(1, /*keepdim=*/true) > 0;                              // [B,1]
  const at::Tensor weight = per_sequence ? has_tokens.to(mask.scalar_type()) : mask;           // [B,1] or [B,T]
  out.ratio_count = weight.sum().item<double>();
  auto mean = [&](const at::Tensor& flag) {
    return out.ratio_count > 0 ? (flag.to(weight.scalar_type()) * weight).sum().item<double>() / out.ratio_count : 0.0;
  };
  // Each sequence's share of flagged tokens, over the sequences with tokens.
  auto per_row = [&](const at::Tensor& flag) {
    return (flag.to(weight.scalar_type()) * weight).sum(1, true) / weight.sum(1, true).clamp_min(1.0);
  };
  const at::Tensor low = (ratio < 1.0 - options.epsilon_low) & (advantages < 0);
  const at::Tensor high = (ratio > 1.0 + options.epsilon_high) & (advantages > 0);
  out.clip_ratio_low = mean(low);
  out.clip_ratio_high = mean(high);
  out.clip_ratio_region = mean(low | high);
  out.cispo_clip_ratio = mean((ratio > options.epsilon_high) & (advantages > 0));
  if (has_tokens.any().item<bool>()) {
    out.clip_ratio_low_min = per_row(low).masked_select(has_tokens).min().item<double>();
    out.clip_ratio_high_max = per_row(high).masked_select(has_tokens).max().item<double>();
  }
}

void CheckInputs(const PolicyLossInputs& in, const PolicyLossOptions& options) {
  if (in.logprobs.dim() != 2 || in.mask.sizes() != in.logprobs.sizes() ||
      in.advantages.dim() != 1 || in.advantages.size(0) != in.logprobs.size(0)) {
    throw std::invalid_argument("ComputePolicyLoss: expected logprobs and mask [B,T], advantages [B]");
  }
  if (options.beta > 0 && !in.ref_logprobs.defined()) {
    throw std::invalid_argument("ComputePolicyLoss: beta > 0 needs ref_logprobs");
  }
  if ((options.top_entropy_quantile < 1 || options.entropy_coef > 0) &&
      (!in.entropy.defined() || in.entropy.sizes() != in.logprobs.sizes())) {
    throw std::invalid_argument("ComputePolicyLoss: top_entropy_quantile < 1 or entropy_coef > 0 needs entropy [B,T]");
  }
}

}  // namespace

PolicyLoss ComputePolicyLoss(const PolicyLossInputs& in, const PolicyLossOptions& options) {
  CheckInputs(in, options);
  const at::Tensor mask = in.mask.to(in.logprobs.scalar_type());
  const at::Tensor old = in.old_logprobs.defined() ? in.old_logprobs : in.logprobs.detach();
  const at::Tensor advantages = in.advantages.to(in.logprobs.scalar_type()).unsqueeze(1);  // [B,1]

  const at::Tensor ratio = ImportanceRatio(in.logprobs - old, mask, options.importance_sampling_level);
  at::Tensor metric_ratio;
  at::Tensor per_token = PolicyTerm(ratio, in.logprobs, advantages, options, &metric_ratio);
  at::Tensor effective = mask;  // the tokens the policy term (and the entropy bonus) train on
  if (options.top_entropy_quantile < 1) {
    effective = mask * HighEntropyMask(in.entropy, mask, options.top_entropy_quantile);
    per_token = per_token * effective;
  }
  if (in.rollout_weights.defined()) per_token = per_token * in.rollout_weights;
  at::Tensor kl;
  if (in.ref_logprobs.defined()) kl = KlK3(in.logprobs, in.ref_logprobs, options.kl_log_ratio_clamp);
  if (options.beta > 0) per_token = per_token + options.beta * kl;

  PolicyLoss out;
  const double tokens = mask.sum().item<double>();
  const double total_sequences =
      static_cast<double>(options.total_sequences > 0 ? options.total_sequences : in.logprobs.size(0));
  const double total_tokens = options.total_tokens > 0 ? options.total_tokens : std::max(tokens, 1.0);
  const double micro_batches = static_cast<double>(std::max<int64_t>(options.micro_batches, 1));
  out.loss = Normalise(per_token * mask, mask, options, total_sequences, total_tokens, micro_batches);
  if (options.entropy_coef > 0) {
    out.loss = out.loss - options.entropy_coef * EntropyBonus(in.entropy, effective, options.loss_type,
                                                              total_tokens, micro_batches);
  }

  ClipMetrics(metric_ratio, advantages, mask, options, out);
  at::NoGradGuard no_grad;
  out.kl = kl.defined() && tokens > 0 ? (kl * mask).sum().item<double>() / tokens : 0.0;
  out.tokens = tokens;
  return out;
}

}  // namespace rl::trainer
