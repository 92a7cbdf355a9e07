// trainer/group_rewards.h: the rewards of one group — the G completions of one prompt — as the
// dynamic-sampling selector, the metrics and the advantages read them.
//
//   GroupRewards group({1.0, std::nullopt, 0.5});   // the second could not be scored
//   group.scored()      == {1.0, 0.5}
//   group.Mean(), group.Std(), group.HasSignal()    // over the scored ones
//
// A completion the reward could not score has no value (never 0, never NaN): it takes no part
// in the group's mean, std or signal, and the trainer masks it out of the loss.
// Thread safety: a plain value.
#pragma once

#include <optional>
#include <span>
#include <vector>

namespace rl::trainer {

// The unbiased standard deviation (as torch.std) of `values`; 0 with fewer than two.
double RewardStd(std::span<const double> values);

// Whether a group whose rewards have standard deviation `std` counts as all equal: within
// float rounding of 0, as TRL's torch.isclose(std, 0) (three rewards of 0.1 have std ~1e-17).
// Such a group gets zero advantages, and dynamic sampling drops it (trainer/dynamic_sampling.h).
inline constexpr double kZeroStdTolerance = 1e-8;  // torch.isclose's default atol (std >= 0)
inline bool IsZeroStd(double std) { return std <= kZeroStdTolerance; }

class GroupRewards {
 public:
  GroupRewards() = default;
  explicit GroupRewards(std::vector<std::optional<double>> values);

  // One per completion, in sample order; empty where the reward could not be computed.
  std::span<const std::optional<double>> values() const { return values_; }
  // The scored values, in order.
  std::span<const double> scored() const { return scored_; }

  double Mean() const;  // of the scored values; 0 when none is
  double Std() const { return RewardStd(scored_); }
  // Whether the group can move the policy: at least two scored rewards, not all equal.
  bool HasSignal() const { return scored_.size() >= 2 && !IsZeroStd(Std()); }

 private:
  std::vector<std::optional<double>> values_;
  std::vector<double> scored_;
};

}  // namespace rl::trainer
