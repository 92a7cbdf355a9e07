// The composite reward with every rule, on arbitrary samples.
// Input: selector byte (spec variant) | completion_tokens (decimal; absent when not a number)
//        | NUL | prompt | NUL | completion | NUL | gold (the rest; absent when the input ends
//        before it).
// Promises checked (rewards/reward.h): Score never throws; one component per rule in spec
// order; no rule fails as a bug (kRuleError); a total exactly when every rule scored or the
// spec says on_unscorable: zero, finite, and equal to the weighted sum of the components;
// ScoreBatch gives what Score gives; StripSpecialTokens returns a prefix of the completion.
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rewards/reward.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using rl::fuzz::Require;
using rl::rewards::Reward;
using rl::rewards::RewardResult;
using rl::rewards::Sample;
using rl::rewards::ScoreStatus;

// Every rule, three ways: the shipped defaults with open tags; renamed tags, a prefilled
// think, case-insensitive tags, chars as the cosine's unit, lenient math and on_unscorable
// zero; no prefilled think, multiple choice and unigrams.
constexpr std::array<const char*, 3> kSpecs = {
    R"(
special_tokens: ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"]
rules:
  - {name: format.think_answer, weight: 1}
  - {name: format.tags, weight: 0.5}
  - {name: format.tag_count, weight: 0.5}
  - {name: format.boxed, weight: 0.5}
  - {name: length.soft_overlong, weight: 1, params: {max_length: 64, cache_length: 16}}
  - {name: repetition.ngram, weight: 1}
  - {name: reasoning.steps, weight: 1}
  - {name: accuracy.math, weight: 1}
  - {name: length.cosine, weight: 1, params: {max_len: 32}}
)",
    R"(
special_tokens: ["<eos>", "</s>"]
tags: {think: reasoning, answer: final}
prefilled_think: always
on_unscorable: zero
math: {precision: 2, strict: false, interval_accepts_inequality: true,
       number_accepts_percent: true, extraction: [boxed, answer_tag, number]}
rules:
  - {name: format.think_answer, weight: 2, params: {case_sensitive: false}}
  - {name: format.tags, weight: -1, params: {case_sensitive: false}}
  - {name: format.tag_count, weight: 1}
  - {name: format.boxed, weight: 1}
  - {name: length.soft_overlong, weight: 0.5, params: {max_length: 1, cache_length: 1}}
  - {name: repetition.ngram, weight: 1, params: {ngram_size: 2, max_penalty: -2}}
  - {name: reasoning.steps, weight: 1, params: {target_steps: 1}}
  - {name: accuracy.math, weight: 1, params: {correct: 2, incorrect: -1}}
  - {name: length.cosine, weight: 1, params: {max_len: 100, unit: chars, min_value_wrong: -2,
                                              max_value_wrong: 0, min_value_correct: 0,
                                              max_value_correct: 3}}
)",
    R"(
prefilled_think: never
math: {choices: [A, B, C, D], choices_ignore_case: true, extraction: [anchor, math_env]}
rules:
  - {name: length.cosine, weight: 1, params: {max_len: 4096}}
  - {name: accuracy.math, weight: 1}
  - {name: repetition.ngram, weight: 1, params: {ngram_size: 1, max_penalty: 0}}
  - {name: reasoning.steps, weight: 1, params: {target_steps: 100}}
  - {name: length.soft_overlong, weight: 1, params: {max_length: 9223372036854775807,
                                                     cache_length: 9223372036854775807}}
  - {name: format.boxed, weight: 1}
  - {name: format.tag_count, weight: 1}
  - {name: format.tags, weight: 1}
  - {name: format.think_answer, weight: 1}
)"};

std::vector<std::unique_ptr<Reward>> MakeRewards() {
  std::vector<std::unique_ptr<Reward>> rewards;
  for (const char* spec : kSpecs) {
    std::string error;
    rewards.push_back(Reward::FromYamlText(spec, &error, "reward_fuzz"));
    if (rewards.back() == nullptr) {
      std::fprintf(stderr, "reward_fuzz: a built-in spec is refused: %s\n", error.c_str());
      std::abort();
    }
    Require(rewards.back()->rule_names().size() == 9, "each spec enables all nine rules");
  }
  return rewards;
}

std::optional<int64_t> ParseTokens(std::string_view text) {
  int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

bool AnyBudgetHit(const RewardResult& result) {
  for (const auto& c : result.components) {
    if (c.status == ScoreStatus::kBudgetExceeded) return true;
  }
  return false;
}

void CheckResult(const Reward& reward, const RewardResult& result, bool zero_unscorable) {
  Require(result.components.size() == reward.rule_names().size(), "one component per rule");
  double sum = 0;
  bool all_ok = true;
  for (size_t i = 0; i < result.components.size(); ++i) {
    const auto& c = result.components[i];
    Require(c.rule == reward.rule_names()[i], "components in spec order");
    Require(c.status != ScoreStatus::kRuleError, "no rule fails unexpectedly (kRuleError)");
    Require(std::isfinite(c.value), "a component's value is finite");
    Require(c.status == ScoreStatus::kOk || c.value == 0, "an unscorable component counts 0");
    Require(c.status == ScoreStatus::kOk || !c.detail.empty(), "an unscorable rule says why");
    all_ok = all_ok && c.status == ScoreStatus::kOk;
    sum += c.weight * c.value;
  }
  Require(all_ok == (result.status == ScoreStatus::kOk), "status is ok exactly when all are");
  Require(result.total.has_value() == (all_ok || zero_unscorable),
          "a total exactly when every rule scored or on_unscorable is zero");
  if (result.total) {
    Require(std::isfinite(*result.total), "the total is finite");
    Require(*result.total == sum, "the total is the weighted sum of the components");
  }
}

bool SameResult(const RewardResult& a, const RewardResult& b) {
  if (a.total != b.total || a.status != b.status || a.components.size() != b.components.size()) {
    return false;
  }
  for (size_t i = 0; i < a.components.size(); ++i) {
    if (a.components[i].value != b.components[i].value ||
        a.components[i].status != b.components[i].status) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<Reward>> rewards = MakeRewards();
  rl::fuzz::FuzzInput input(data, size);
  const Reward& reward = *rewards[input.Byte() % rewards.size()];
  Sample sample;
  sample.completion_tokens = ParseTokens(input.Next().value_or(""));
  sample.prompt = input.Next().value_or("");
  sample.completion = input.Next().value_or("");
  sample.gold = input.Rest();

  const std::string_view stripped = reward.StripSpecialTokens(sample.completion);
  Require(sample.completion.substr(0, stripped.size()) == stripped,
          "StripSpecialTokens returns a prefix of the completion");

  const RewardResult result = reward.Score(sample);
  CheckResult(reward, result, reward.spec()["on_unscorable"] == "zero");
  const std::vector<RewardResult> batch = reward.ScoreBatch({&sample, 1}, /*threads=*/1);
  Require(batch.size() == 1, "ScoreBatch answers one result per sample");
  Require(AnyBudgetHit(result) || AnyBudgetHit(batch[0]) || SameResult(result, batch[0]),
          "ScoreBatch gives what Score gives");
  return 0;
}
