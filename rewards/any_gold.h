// rewards/any_gold.h: scoring a completion against several acceptable gold answers.
//
// Datasets often list more than one right answer ("1/2" and "0.5", or the two roots of a
// quadratic written separately): verl's ground_truth, a /get_reward label or a Python answer
// may be such a list. The completion is scored against each gold in turn and the best result
// counts:
//
//   std::vector<std::string_view> golds = {"\\frac{1}{2}", "0.5"};
//   rl::rewards::RewardResult r = rl::rewards::ScoreAnyGold(*reward, sample, golds);
//
// "Best" is BestOfGolds: the highest total; among equal totals the one whose answer check says
// correct, then the earliest gold. A result without a total (that gold could not be read, a
// budget ran out) loses to any result with one, so one unreadable gold among readable ones does
// not make the sample unscorable; when every gold is unscorable the first gold's result
// reports why. An empty list scores the sample with no gold (kMissingGold for rules that need
// one). The format rules give the same value against every gold, so "best" is decided by the
// answer check and the rules that read it (accuracy.math, length.cosine).
//
// Like Reward::Score, these never throw, but for a caller's mistake (std::invalid_argument: an
// empty `per_gold`, `golds` and `samples` of different lengths). Thread safety is the Reward's.
#pragma once

#include <span>
#include <string_view>
#include <vector>

#include "rewards/reward.h"

namespace rl::rewards {

// The result that counts among one completion's results against several golds (see above).
// `per_gold` must not be empty.
RewardResult BestOfGolds(std::vector<RewardResult> per_gold);

// Scores `sample` against each of `golds` (sample.gold is ignored) and returns BestOfGolds.
RewardResult ScoreAnyGold(const Reward& reward, Sample sample,
                          std::span<const std::string_view> golds);

// ScoreAnyGold for many samples, golds[i] belonging to samples[i], every (sample, gold) pair
// scored in parallel by Reward::ScoreBatch on up to `threads` threads (0: all cores). The
// results do not depend on the thread count.
std::vector<RewardResult> ScoreBatchAnyGold(const Reward& reward, std::span<const Sample> samples,
                                            std::span<const std::vector<std::string_view>> golds,
                                            int threads = 0);

}  // namespace rl::rewards
