#include "trainer/group_rewards.h"

#include <cmath>
#include <utility>

namespace rl::trainer {
double RewardStd(std::span<const double> values) {
  if (values.size() < 2) return 0.0;
  double sum = 0;
  for (double v : values) sum += v;
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return std::sqrt(squares / static_cast<double>(values.size() - 1));
}

GroupRewards::GroupRewards(std::vector<std::optional<double>> values) : values_(std::move(values)) {
  for (const std::optional<double>& v : values_) {
    if (v) scored_.push_back(*v);
  }
}

double GroupRewards::Mean() const {
  if (scored_.empty()) return 0.0;
  double sum = 0;
  for (double v : scored_) sum += v;
  return sum / static_cast<double>(scored_.size());
}

}  // namespace rl::trainer
