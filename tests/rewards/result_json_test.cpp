// RewardResult's one wire form: ToJson, and RewardResultFromJson reading it back.
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rewards/reward.h"

using rl::rewards::Reward;
using rl::rewards::RewardResult;
using rl::rewards::ScoreStatus;

namespace {

std::unique_ptr<Reward> R1() {
  std::string error;
  auto reward = Reward::FromYamlText(
      "rules:\n  - {name: format.think_answer, weight: 1}\n  - {name: accuracy.math, weight: 1}\n", &error);
  REQUIRE(reward != nullptr);
  return reward;
}

}  // namespace

TEST_CASE("a scored result: written, then read back the same", "[rewards][json]") {
  auto reward = R1();
  rl::rewards::Sample sample;
  sample.completion = "<think>1+1</think><answer>2</answer>";
  sample.gold = "2";
  const RewardResult r = reward->Score(sample);
  const nlohmann::ordered_json j = rl::rewards::ToJson(r);
  CHECK(j.dump() == R"({"reward":2.0,"status":"ok","verdict":"correct","extracted":"2",)"
                    R"("components":{"format.think_answer":1.0,"accuracy.math":1.0}})");
  std::string error;
  const std::optional<RewardResult> back = rl::rewards::RewardResultFromJson(j, &error);
  REQUIRE(back.has_value());
  CHECK(back->total == r.total);
  CHECK(back->status == ScoreStatus::kOk);
  REQUIRE(back->answer_check.has_value());
  CHECK(back->answer_check->verdict == rl::rewards::math::Verdict::kCorrect);
  CHECK(back->answer_check->extracted == "2");
  REQUIRE(back->components.size() == 2);
  CHECK(back->components[1].rule == "accuracy.math");
  CHECK(back->components[1].value == 1.0);
  CHECK(rl::rewards::ToJson(*back) == j);
}

TEST_CASE("an unscorable result keeps its status and detail both ways", "[rewards][json]") {
  auto reward = R1();
  rl::rewards::Sample sample;
  sample.completion = "<think>x</think><answer>2</answer>";  // no gold
  const nlohmann::ordered_json j = rl::rewards::ToJson(reward->Score(sample));
  CHECK(j["reward"].is_null());
  CHECK(j["status"] == "missing_gold");
  CHECK(j["components"]["accuracy.math"].is_null());
  CHECK_THAT(j["detail"].get<std::string>(), Catch::StartsWith("accuracy.math: "));
  std::string error;
  const std::optional<RewardResult> back = rl::rewards::RewardResultFromJson(j, &error);
  REQUIRE(back.has_value());
  CHECK_FALSE(back->total.has_value());
  CHECK(back->components[1].status == ScoreStatus::kMissingGold);
  CHECK(back->components[1].detail == "the sample has no gold answer");
  CHECK(rl::rewards::ToJson(*back) == j);
}

TEST_CASE("what is not a result is refused by key", "[rewards][json]") {
  std::string error;
  using nlohmann::ordered_json;
  CHECK_FALSE(rl::rewards::RewardResultFromJson(ordered_json::array(), &error));
  CHECK(error == "expected an object");
  CHECK_FALSE(rl::rewards::RewardResultFromJson(ordered_json{{"reward", "1"}}, &error));
  CHECK_THAT(error, Catch::StartsWith("reward:"));
  CHECK_FALSE(rl::rewards::RewardResultFromJson(
      ordered_json{{"reward", 1}, {"status", "fine"}, {"components", ordered_json::object()}}, &error));
  CHECK_THAT(error, Catch::StartsWith("status:"));
  CHECK_FALSE(rl::rewards::RewardResultFromJson(
      ordered_json{{"reward", 1}, {"status", "ok"}, {"verdict", "maybe"}, {"components", ordered_json::object()}},
      &error));
  CHECK_THAT(error, Catch::StartsWith("verdict:"));
  CHECK_FALSE(rl::rewards::RewardResultFromJson(ordered_json{{"reward", 1}, {"status", "ok"}}, &error));
  CHECK_THAT(error, Catch::StartsWith("components:"));
  CHECK_FALSE(rl::rewards::RewardResultFromJson(
      ordered_json{{"reward", 1}, {"status", "ok"}, {"components", {{"a", "x"}}}}, &error));
  CHECK(error == "components.a: expected a number or null");
}
