#include "trainer/dynamic_sampling.h"

namespace rl::trainer {

GroupSelector::GroupSelector(const GrpoSection& grpo)
    : capacity_(grpo.prompts_per_step),
      drop_zero_std_(grpo.dynamic_sampling),
      max_rounds_(grpo.dynamic_sampling ? grpo.dynamic_sampling_max_rounds : 1) {}

std::vector<size_t> GroupSelector::Offer(std::span<const GroupRewards> groups) {
  std::vector<size_t> taken;
  for (size_t g = 0; g < groups.size(); ++g) {
    const bool signal = groups[g].HasSignal();
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
