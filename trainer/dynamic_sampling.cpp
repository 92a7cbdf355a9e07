#include "trainer/dynamic_sampling.h"

#include <algorithm>
#include <cmath>

#include "trainer/grpo_loss.h"

namespace rl::trainer {

double RewardStd(std::span<const double> rewards) {
  double sum = 0, scored = 0;
  for (double r : rewards) {
    if (!std::isnan(r)) sum += r, ++scored;
  }
  if (scored < 2) return 0.0;
  const double mean = sum / scored;
  double squares = 0;
  for (double r : rewards) {
    if (!std::isnan(r)) squares += (r - mean) * (r - mean);
  }
  return std::sqrt(squares / (scored - 1));
}

bool HasRewardSignal(std::span<const double> rewards) {
  const auto scored = std::count_if(rewards.begin(), rewards.end(), [](double r) { return !std::isnan(r); });
  return scored >= 2 && !IsZeroStd(RewardStd(rewards));
}

GroupSelector::GroupSelector(const GrpoSection& grpo)
    : capacity_(grpo.prompts_per_step),
      drop_zero_std_(grpo.dynamic_sampling),
      max_rounds_(grpo.dynamic_sampling ? grpo.dynamic_sampling_max_rounds : 1) {}

std::vector<size_t> GroupSelector::Offer(std::span<const std::vector<double>> groups) {
  std::vector<size_t> taken;
  for (size_t g = 0; g < groups.size(); ++g) {
    const bool signal = HasRewardSignal(groups[g]);
    ++seen_;
    zero_std_ += !signal;
    if ((drop_zero_std_ && !signal) || kept_ >= capacity_) continue;
    taken.push_back(g);
    ++kept_;
  }
  ++rounds_;
  return taken;
}

}  // namespace rl::trainer
