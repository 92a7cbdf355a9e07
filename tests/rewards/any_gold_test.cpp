// rewards/any_gold.h: a completion scored against several acceptable gold answers, the best
// result counting (BestOfGolds's order), and the batch form matching the one-sample form.
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "rewards/any_gold.h"
#include "tests/rewards/test_util.h"

using namespace rl::rewards;
using namespace rl::rewards::testing;

namespace {

constexpr std::string_view kHalf = "<think>1/2</think><answer>\\boxed{0.5}</answer>";

std::unique_ptr<Reward> R1() {
  return MakeReward(
      "rules:\n"
      "  - {name: format.think_answer, weight: 1}\n"
      "  - {name: accuracy.math, weight: 1, params: {correct: 1, incorrect: 0}}\n");
}

Sample Completion(std::string_view completion) {
  Sample sample;
  sample.completion = completion;
  return sample;
}

// The canonical gold the answer check compared against: which gold a result belongs to.
std::string GoldOf(const RewardResult& r) {
  REQUIRE(r.answer_check.has_value());
  return r.answer_check->gold_canonical;
}

std::string CanonicalGold(const Reward& reward, std::string_view gold) {
  Sample sample = Completion(kHalf);
  sample.gold = gold;
  return GoldOf(reward.Score(sample));
}

RewardResult WithTotal(std::optional<double> total, ScoreStatus status = ScoreStatus::kOk) {
  RewardResult r;
  r.total = total;
  r.status = status;
  return r;
}

}  // namespace

TEST_CASE("any_gold: the correct gold counts wherever it is in the list", "[any_gold]") {
  auto reward = R1();
  std::vector<std::string_view> golds = {"3", "7", "\\frac{1}{2}"};
  RewardResult r = ScoreAnyGold(*reward, Completion(kHalf), golds);
  CHECK(r.status == ScoreStatus::kOk);
  CHECK(*r.total == 2);
  CHECK(r.answer_check->verdict == math::Verdict::kCorrect);
  CHECK(GoldOf(r) == CanonicalGold(*reward, "\\frac{1}{2}"));
}

TEST_CASE("any_gold: among equally good golds the first one wins", "[any_gold]") {
  auto reward = R1();
  // Both are right; the result is the first's, so it is reproducible whatever the scoring order.
  std::vector<std::string_view> golds = {"0.5", "\\frac{1}{2}"};
  REQUIRE(CanonicalGold(*reward, "0.5") != CanonicalGold(*reward, "\\frac{1}{2}"));
  CHECK(GoldOf(ScoreAnyGold(*reward, Completion(kHalf), golds)) == CanonicalGold(*reward, "0.5"));
  std::vector<std::string_view> reversed = {"\\frac{1}{2}", "0.5"};
  CHECK(GoldOf(ScoreAnyGold(*reward, Completion(kHalf), reversed)) ==
        CanonicalGold(*reward, "\\frac{1}{2}"));
  // Equally wrong: the first gold's result too.
  std::vector<std::string_view> wrong = {"3", "7"};
  RewardResult r = ScoreAnyGold(*reward, Completion(kHalf), wrong);
  CHECK(*r.total == 1);
  CHECK(r.answer_check->verdict == math::Verdict::kIncorrect);
  CHECK(GoldOf(r) == CanonicalGold(*reward, "3"));
}

TEST_CASE("any_gold: with equal totals a correct verdict beats an incorrect one", "[any_gold]") {
  // A spec that pays the same for right and wrong answers: the total cannot decide.
  auto reward = MakeReward(
      "rules:\n  - {name: accuracy.math, weight: 1, params: {correct: 1, incorrect: 1}}\n");
  std::vector<std::string_view> golds = {"3", "0.5"};
  RewardResult r = ScoreAnyGold(*reward, Completion(kHalf), golds);
  CHECK(*r.total == 1);
  CHECK(r.answer_check->verdict == math::Verdict::kCorrect);
  CHECK(GoldOf(r) == CanonicalGold(*reward, "0.5"));
}

TEST_CASE("any_gold: no gold matching scores as incorrect, not unscorable", "[any_gold]") {
  auto reward = R1();
  std::vector<std::string_view> golds = {"3", "7"};
  RewardResult r = ScoreAnyGold(*reward, Completion(kHalf), golds);
  CHECK(r.status == ScoreStatus::kOk);
  REQUIRE(r.total.has_value());
  CHECK(*r.total == 1);  // the format only
  CHECK(r.components[1].value == 0);
}

TEST_CASE("any_gold: an unreadable gold among readable ones is passed over", "[any_gold]") {
  auto reward = R1();
  for (std::vector<std::string_view> golds :
       {std::vector<std::string_view>{"\\frac{", "0.5"}, std::vector<std::string_view>{"0.5", "x="},
        std::vector<std::string_view>{"\\frac{", "7"}}) {
    INFO(golds[0] << " | " << golds[1]);
    RewardResult r = ScoreAnyGold(*reward, Completion(kHalf), golds);
    CHECK(r.status == ScoreStatus::kOk);
    REQUIRE(r.total.has_value());
    // A wrong but readable gold still gives a total: the invalid one does not win by default.
    CHECK(*r.total == (golds[1] == "7" ? 1 : 2));
  }
}

TEST_CASE("any_gold: when every gold is unreadable the first one's result says why",
          "[any_gold]") {
  auto reward = R1();
  std::vector<std::string_view> golds = {"x=", "\\frac{"};
  RewardResult r = ScoreAnyGold(*reward, Completion(kHalf), golds);
  CHECK(r.status == ScoreStatus::kInvalidGold);
  CHECK_FALSE(r.total.has_value());
  Sample first = Completion(kHalf);
  first.gold = golds[0];
  Sample second = Completion(kHalf);
  second.gold = golds[1];
  CHECK(r.components[1].detail == reward->Score(first).components[1].detail);
  CHECK(r.components[1].detail != reward->Score(second).components[1].detail);
}

TEST_CASE("any_gold: an empty list scores the sample without a gold", "[any_gold]") {
  auto reward = R1();
  Sample sample = Completion(kHalf);
  sample.gold = "0.5";  // ignored: the list is the gold
  RewardResult r = ScoreAnyGold(*reward, sample, {});
  CHECK(r.status == ScoreStatus::kMissingGold);
  CHECK_FALSE(r.total.has_value());
  CHECK(r.components[0].status == ScoreStatus::kOk);
  CHECK(r.components[1].status == ScoreStatus::kMissingGold);
  // A spec without a rule that needs a gold scores it as usual.
  auto format_only = OneRule("format.think_answer");
  RewardResult f = ScoreAnyGold(*format_only, Completion(kHalf), {});
  CHECK(f.status == ScoreStatus::kOk);
  CHECK(*f.total == 1);
}

TEST_CASE("any_gold: sample.gold is ignored in favour of the list", "[any_gold]") {
  auto reward = R1();
  Sample sample = Completion(kHalf);
  sample.gold = "0.5";
  std::vector<std::string_view> golds = {"7"};
  CHECK(*ScoreAnyGold(*reward, sample, golds).total == 1);
}

TEST_CASE("any_gold: BestOfGolds's order", "[any_gold]") {
  // A result with a total beats one without, even a lower total.
  std::vector<RewardResult> results;
  results.push_back(WithTotal(std::nullopt, ScoreStatus::kBudgetExceeded));
  results.push_back(WithTotal(-1));
  CHECK(*BestOfGolds(std::move(results)).total == -1);
  // The highest total, wherever it is.
  results = {WithTotal(0.5), WithTotal(2), WithTotal(1)};
  CHECK(*BestOfGolds(std::move(results)).total == 2);
  // None with a total: the first.
  results = {WithTotal(std::nullopt, ScoreStatus::kInvalidGold),
             WithTotal(std::nullopt, ScoreStatus::kBudgetExceeded)};
  CHECK(BestOfGolds(std::move(results)).status == ScoreStatus::kInvalidGold);
  CHECK_THROWS_AS(BestOfGolds({}), std::invalid_argument);
}

TEST_CASE("any_gold: the batch form gives the one-sample results on any thread count",
          "[any_gold]") {
  auto reward = R1();
  const std::vector<std::string_view> completions = {
      kHalf, "<think>t</think><answer>7</answer>", "no tags, answer 3", kHalf, kHalf};
  const std::vector<std::vector<std::string_view>> golds = {
      {"3", "0.5"}, {"7"}, {"\\frac{", "3"}, {}, {"x=", "\\frac{"}};
  std::vector<Sample> samples;
  for (std::string_view c : completions) samples.push_back(Completion(c));
  std::vector<RewardResult> expected;
  for (size_t i = 0; i < samples.size(); ++i) {
    expected.push_back(ScoreAnyGold(*reward, samples[i], golds[i]));
  }
  for (int threads : {1, 3, 0}) {
    INFO("threads " << threads);
    std::vector<RewardResult> batch = ScoreBatchAnyGold(*reward, samples, golds, threads);
    REQUIRE(batch.size() == expected.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      INFO("sample " << i);
      CHECK(ToJson(batch[i]) == ToJson(expected[i]));
    }
  }
  CHECK(ScoreBatchAnyGold(*reward, samples, golds)[0].answer_check->verdict ==
        math::Verdict::kCorrect);
  CHECK(ScoreBatchAnyGold(*reward, samples, golds)[3].status == ScoreStatus::kMissingGold);
  CHECK(ScoreBatchAnyGold(*reward, samples, golds)[4].status == ScoreStatus::kInvalidGold);
  const std::vector<std::vector<std::string_view>> too_few(golds.begin(), golds.end() - 1);
  CHECK_THROWS_AS(ScoreBatchAnyGold(*reward, samples, too_few), std::invalid_argument);
}
