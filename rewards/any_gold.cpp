#include "rewards/any_gold.h"

#include <stdexcept>
#include <utility>

namespace rl::rewards {
namespace {

bool SaysCorrect(const RewardResult& r) {
  return r.answer_check && r.answer_check->verdict == math::Verdict::kCorrect;
}

// Whether `a` is a better result than `b` for the same completion (BestOfGolds's order).
bool Better(const RewardResult& a, const RewardResult& b) {
  if (a.total.has_value() != b.total.has_value()) return a.total.has_value();
  if (a.total && *a.total != *b.total) return *a.total > *b.total;
  return SaysCorrect(a) && !SaysCorrect(b);
}

}  // namespace

RewardResult BestOfGolds(std::vector<RewardResult> per_gold) {
  if (per_gold.empty()) throw std::invalid_argument("BestOfGolds: no result to choose from");
  size_t best = 0;
  for (size_t i = 1; i < per_gold.size(); ++i) {
    if (Better(per_gold[i], per_gold[best])) best = i;
  }
  return std::move(per_gold[best]);
}

RewardResult ScoreAnyGold(const Reward& reward, Sample sample,
                          std::span<const std::string_view> golds) {
  if (golds.empty()) {
    sample.gold.reset();
    return reward.Score(sample);
  }
  std::vector<RewardResult> per_gold;
  per_gold.reserve(golds.size());
  for (std::string_view gold : golds) {
    sample.gold = gold;
    per_gold.push_back(reward.Score(sample));
  }
  return BestOfGolds(std::move(per_gold));
}

std::vector<RewardResult> ScoreBatchAnyGold(const Reward& reward, std::span<const Sample> samples,
                                            std::span<const std::vector<std::string_view>> golds,
                                            int threads) {
  if (golds.size() != samples.size()) {
    throw std::invalid_argument("ScoreBatchAnyGold: golds and samples differ in length");
  }
  // One flat batch of (sample, gold) pairs, so that ScoreBatch balances the work over its
  // threads whatever the number of golds per sample; first[i] is sample i's first pair.
  std::vector<Sample> pairs;
  std::vector<size_t> first(samples.size() + 1);
  for (size_t i = 0; i < samples.size(); ++i) {
    first[i] = pairs.size();
    Sample s = samples[i];
    s.gold.reset();
    if (golds[i].empty()) pairs.push_back(s);
    for (std::string_view gold : golds[i]) {
      s.gold = gold;
      pairs.push_back(s);
    }
  }
  first[samples.size()] = pairs.size();
  std::vector<RewardResult> scored = reward.ScoreBatch(pairs, threads);
  std::vector<RewardResult> results;
  results.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    std::vector<RewardResult> per_gold(std::make_move_iterator(scored.begin() + first[i]),
                                       std::make_move_iterator(scored.begin() + first[i + 1]));
    results.push_back(BestOfGolds(std::move(per_gold)));
  }
  return results;
}

}  // namespace rl::rewards
