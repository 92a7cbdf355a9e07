// Which sampled groups make up a GRPO batch, with rewards chosen by hand.
#include <cmath>
#include <optional>
#include <vector>

#include <catch2/catch.hpp>

#include "trainer/dynamic_sampling.h"

using rl::trainer::GroupRewards;
using rl::trainer::GroupSelector;
using rl::trainer::GrpoSection;
using rl::trainer::RewardStd;
using Groups = std::vector<GroupRewards>;

namespace {

constexpr std::nullopt_t kUnscored = std::nullopt;

Groups G(std::initializer_list<std::vector<std::optional<double>>> groups) {
  Groups out;
  for (const auto& g : groups) out.emplace_back(g);
  return out;
}

bool HasRewardSignal(std::vector<std::optional<double>> rewards) {
  return GroupRewards(std::move(rewards)).HasSignal();
}

GrpoSection Dynamic(int64_t prompts_per_step, int64_t max_rounds) {
  GrpoSection grpo;
  grpo.prompts_per_step = prompts_per_step;
  grpo.dynamic_sampling = true;
  grpo.dynamic_sampling_max_rounds = max_rounds;
  return grpo;
}

}  // namespace

TEST_CASE("reward signal: two scored rewards that differ", "[dynamic]") {
  CHECK(HasRewardSignal({0, 1, 0}));
  CHECK(HasRewardSignal({1, kUnscored, 0.5}));
  CHECK_FALSE(HasRewardSignal({1, 1, 1}));
  // Equal rewards whose float mean is not exact: the std is ~1e-17, not 0, yet no signal.
  CHECK(RewardStd(std::vector<double>{0.1, 0.1, 0.1}) > 0.0);
  CHECK_FALSE(HasRewardSignal({0.1, 0.1, 0.1}));
  CHECK_FALSE(HasRewardSignal({1, kUnscored, kUnscored}));  // one scored reward
  CHECK_FALSE(HasRewardSignal({kUnscored, kUnscored}));
  // sqrt(((0-1)² + (2-1)²) / 1), the unscorable one skipped
  CHECK(GroupRewards({0, kUnscored, 2}).Std() == Approx(std::sqrt(2.0)));
  CHECK(GroupRewards({0, kUnscored, 2}).Mean() == 1.0);
}

TEST_CASE("dynamic sampling keeps groups with signal until the batch is full", "[dynamic]") {
  GroupSelector selector(Dynamic(/*prompts_per_step=*/3, /*max_rounds=*/5));
  CHECK(selector.Offer(G({{1, 1}, {0, 1}, {2, 2}})) == std::vector<size_t>{1});
  CHECK_FALSE(selector.done());
  CHECK(selector.Offer(G({{0, 0}, {1, kUnscored}, {0.5, 0.5}})).empty());
  CHECK_FALSE(selector.done());
  // Three groups with signal, room for two.
  CHECK(selector.Offer(G({{0, 1}, {1, 1}, {1, 0}, {0, 2}})) == std::vector<size_t>{0, 2});
  CHECK(selector.done());
  CHECK(selector.rounds() == 3);
  CHECK(selector.kept() == 3);
  CHECK(selector.seen() == 10);
  CHECK(selector.zero_std() == 6);
}

TEST_CASE("dynamic sampling stops after max_rounds with what it has", "[dynamic]") {
  GroupSelector selector(Dynamic(/*prompts_per_step=*/2, /*max_rounds=*/2));
  CHECK(selector.Offer(G({{1, 1}, {1, 1}})).empty());
  CHECK_FALSE(selector.done());
  CHECK(selector.Offer(G({{0, 1}, {1, 1}})) == std::vector<size_t>{0});
  CHECK(selector.done());
  CHECK(selector.kept() == 1);
  CHECK(selector.zero_std() == 3);
}

TEST_CASE("without dynamic sampling one round, every group kept", "[dynamic]") {
  GrpoSection grpo = Dynamic(/*prompts_per_step=*/2, /*max_rounds=*/4);
  grpo.dynamic_sampling = false;
  GroupSelector selector(grpo);
  CHECK(selector.Offer(G({{1, 1}, {0, 1}})) == std::vector<size_t>{0, 1});
  CHECK(selector.done());
  CHECK(selector.rounds() == 1);
  CHECK(selector.zero_std() == 1);
}
