#include "trainer/grpo_loss.h"

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

PolicyLoss ComputePolicyLoss(const PolicyLossInputs& in, const PolicyLossOptions& options) {
  if (in.logprobs.dim() != 2 || in.mask.sizes() != in.logprobs.sizes() ||
      in.advantages.dim() != 1 || in.advantages.size(0) != in.logprobs.size(0)) {
    throw std::invalid_argument("ComputePolicyLoss: expected logprobs and mask [B,T], advantages [B]");
  }
  if (options.beta > 0 && !in.ref_logprobs.defined()) {
    throw std::invalid_argument("ComputePolicyLoss: beta > 0 needs ref_logprobs");
  }
  const int64_t batch = in.logprobs.size(0);
  at::Tensor mask = in.mask.to(in.logprobs.scalar_type());
  at::Tensor old = in.old_logprobs.defined() ? in.old_logprobs : in.logprobs.detach();
  at::Tensor advantages = in.advantages.to(in.logprobs.scalar_type()).unsqueeze(1);  // [B,1]

  at::Tensor ratio = at::exp(in.logprobs - old);
  at::Tensor clipped = ratio.clamp(1.0 - options.epsilon_low, 1.0 + options.epsilon_high);
  at::Tensor per_token = -at::min(ratio * advantages, clipped * advantages);
  at::Tensor kl;
  if (in.ref_logprobs.defined()) kl = KlK3(in.logprobs, in.ref_logprobs, options.kl_log_ratio_clamp);
  if (options.beta > 0) per_token = per_token + options.beta * kl;

  PolicyLoss out;
  at::Tensor masked = per_token * mask;
  const double tokens = mask.sum().item<double>();
  const double total_sequences =
      static_cast<double>(options.total_sequences > 0 ? options.total_sequences : batch);
  const double total_tokens = options.total_tokens > 0 ? options.total_tokens : std::max(tokens, 1.0);
  switch (options.loss_type) {
    case LossType::kGrpo:
      out.loss = (masked.sum(1) / mask.sum(1).clamp_min(1.0)).sum() / total_sequences;
      break;
    case LossType::kDapo:
      out.loss = masked.sum() / total_tokens;
      break;
    case LossType::kDrGrpo: {
      const int64_t length =
          options.max_completion_length > 0 ? options.max_completion_length : in.logprobs.size(1);
      out.loss = masked.sum() / (total_sequences * static_cast<double>(length));
      break;
    }
  }

  // Metrics: token means over this batch, detached.
  at::NoGradGuard no_grad;
  auto masked_mean = [&](const at::Tensor& t) {
    return tokens > 0 ? (t.to(mask.scalar_type()) * mask).sum().item<double>() / tokens : 0.0;
  };
  at::Tensor low = (ratio < 1.0 - options.epsilon_low) & (advantages < 0);
  at::Tensor high = (ratio > 1.0 + options.epsilon_high) & (advantages > 0);
  out.clip_ratio_low = masked_mean(low);
  out.clip_ratio_high = masked_mean(high);
  out.clip_ratio_region = masked_mean(low | high);
  out.kl = kl.defined() ? masked_mean(kl) : 0.0;
  out.tokens = tokens;
  return out;
}

}  // namespace rl::trainer
