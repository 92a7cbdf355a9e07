// Helpers shared by the reward tests: build a Reward from YAML, score one completion.
#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <string>

#include "rewards/reward.h"

namespace rl::rewards::testing {

inline std::unique_ptr<Reward> MakeReward(const std::string& yaml) {
  std::string error;
  std::unique_ptr<Reward> reward = Reward::FromYamlText(yaml, &error, "test spec");
  INFO(error);
  REQUIRE(reward != nullptr);
  return reward;
}

// A reward with one rule (and optional params in YAML flow syntax).
inline std::unique_ptr<Reward> OneRule(const std::string& name, const std::string& params = "{}",
                                       const std::string& extra = "") {
  return MakeReward(extra + "rules:\n  - {name: " + name + ", params: " + params + "}\n");
}

inline RewardResult ScoreText(const Reward& reward, std::string_view completion,
                              std::string_view prompt = "",
                              std::optional<int64_t> tokens = std::nullopt,
                              std::optional<std::string_view> gold = std::nullopt) {
  Sample sample;
  sample.prompt = prompt;
  sample.completion = completion;
  sample.completion_tokens = tokens;
  sample.gold = gold;
  return reward.Score(sample);
}

// The value of the first (only) rule; requires status ok.
inline double Value(const Reward& reward, std::string_view completion, std::string_view prompt = "",
                    std::optional<int64_t> tokens = std::nullopt) {
  RewardResult result = ScoreText(reward, completion, prompt, tokens);
  REQUIRE(result.components.size() >= 1);
  INFO(result.components[0].detail);
  REQUIRE(result.components[0].status == ScoreStatus::kOk);
  return result.components[0].value;
}

}  // namespace rl::rewards::testing
