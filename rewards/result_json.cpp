// RewardResult's wire form (reward.h): ToJson and its inverse.
#include <string>

#include <nlohmann/json.hpp>

#include "rewards/reward.h"

namespace rl::rewards {
namespace {

using nlohmann::ordered_json;

std::optional<ScoreStatus> ParseStatus(std::string_view name) {
  for (ScoreStatus status : {ScoreStatus::kOk, ScoreStatus::kMissingGold, ScoreStatus::kMissingTokenCount,
                             ScoreStatus::kInvalidGold, ScoreStatus::kBudgetExceeded, ScoreStatus::kRuleError}) {
    if (ToString(status) == name) return status;
  }
  return std::nullopt;
}

std::optional<math::Verdict> ParseVerdict(std::string_view name) {
  using math::Verdict;
  for (Verdict verdict : {Verdict::kCorrect, Verdict::kIncorrect, Verdict::kNoAnswer, Verdict::kUnparseableAnswer,
                          Verdict::kInvalidGold, Verdict::kBudgetExceeded}) {
    if (math::ToString(verdict) == name) return verdict;
  }
  return std::nullopt;
}

// The string at `key`, or empty when it is null or absent; false when it is something else.
bool OptionalString(const ordered_json& j, const char* key, std::string* out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  *out = it->get<std::string>();
  return true;
}

bool ReadComponents(const ordered_json& components, RewardResult& result, const std::string& detail,
                    std::string* error) {
  for (const auto& [rule, value] : components.items()) {
    RuleScore score;
    score.rule = rule;
    if (value.is_number()) {
      score.value = value.get<double>();
    } else if (value.is_null()) {
      // "detail" is "<first unscored rule>: <why>"; that rule gets back its own words.
      const std::string prefix = rule + ": ";
      score.status = result.status;
      score.detail = detail.rfind(prefix, 0) == 0 ? detail.substr(prefix.size()) : detail;
    } else {
      *error = "components." + rule + ": expected a number or null";
      return false;
    }
    result.components.push_back(std::move(score));
  }
  return true;
}

}  // namespace

ordered_json ToJson(const RewardResult& result) {
  ordered_json components = ordered_json::object();
  std::string detail;
  for (const RuleScore& c : result.components) {
    components[c.rule] = c.status == ScoreStatus::kOk ? ordered_json(c.value) : ordered_json(nullptr);
    if (c.status != ScoreStatus::kOk && detail.empty()) detail = c.rule + ": " + c.detail;
  }
  const auto& check = result.answer_check;
  ordered_json out = {{"reward", result.total ? ordered_json(*result.total) : ordered_json(nullptr)},
                      {"status", ToString(result.status)},
                      {"verdict", check ? ordered_json(math::ToString(check->verdict)) : ordered_json(nullptr)},
                      {"extracted", check ? ordered_json(check->extracted) : ordered_json(nullptr)},
                      {"components", std::move(components)}};
  if (result.status != ScoreStatus::kOk) out["detail"] = detail;
  return out;
}

std::optional<RewardResult> RewardResultFromJson(const ordered_json& j, std::string* error) {
  if (!j.is_object()) return *error = "expected an object", std::nullopt;
  RewardResult result;
  const auto reward = j.find("reward");
  if (reward == j.end() || !(reward->is_number() || reward->is_null())) {
    return *error = "reward: expected a number or null", std::nullopt;
  }
  if (reward->is_number()) result.total = reward->get<double>();
  std::string status, verdict, detail;
  if (!OptionalString(j, "status", &status) || !ParseStatus(status)) {
    return *error = "status: expected one of ok, missing_gold, missing_token_count, invalid_gold, "
                    "budget_exceeded, rule_error",
           std::nullopt;
  }
  result.status = *ParseStatus(status);
  if (!OptionalString(j, "verdict", &verdict) || (!verdict.empty() && !ParseVerdict(verdict))) {
    return *error = "verdict: expected a verdict name or null", std::nullopt;
  }
  if (!verdict.empty()) {
    result.answer_check.emplace();
    result.answer_check->verdict = *ParseVerdict(verdict);
    if (!OptionalString(j, "extracted", &result.answer_check->extracted)) {
      return *error = "extracted: expected a string or null", std::nullopt;
    }
  }
  if (!OptionalString(j, "detail", &detail)) return *error = "detail: expected a string", std::nullopt;
  const auto components = j.find("components");
  if (components == j.end() || !components->is_object()) {
    return *error = "components: expected an object of rule -> number or null", std::nullopt;
  }
  if (!ReadComponents(*components, result, detail, error)) return std::nullopt;
  return result;
}

}  // namespace rl::rewards
