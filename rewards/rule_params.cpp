// RuleParams: typed, strict reading of a rule's `params`.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/names.h"
#include "rewards/rule.h"

namespace rl::rewards {

RuleParams::RuleParams(const nlohmann::json& params) : params_(params) {}

const nlohmann::json* RuleParams::Find(std::string_view key) {
  known_.emplace_back(key);
  if (!params_.is_object()) return nullptr;
  auto it = params_.find(key);
  return it == params_.end() ? nullptr : &*it;
}

void RuleParams::Fail(std::string_view key, std::string_view expected) {
  if (error_) return;
  error_ = SpecError{std::string(key), std::string(expected)};
}

double RuleParams::Number(std::string_view key, double default_value) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return default_value;
  if (!value->is_number() || !std::isfinite(value->get<double>())) {
    Fail(key, "expected a number");
    return default_value;
  }
  return value->get<double>();
}

int64_t RuleParams::Integer(std::string_view key, int64_t default_value) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return default_value;
  if (value->is_number_integer()) return value->get<int64_t>();
  if (value->is_number_float()) {
    double d = value->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      return static_cast<int64_t>(d);
    }
  }
  Fail(key, "expected an integer");
  return default_value;
}

bool RuleParams::Bool(std::string_view key, bool default_value) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return default_value;
  if (!value->is_boolean()) {
    Fail(key, "expected true or false");
    return default_value;
  }
  return value->get<bool>();
}

std::string RuleParams::String(std::string_view key, std::string default_value) {
  const nlohmann::json* value = Find(key);
  if (value == nullptr) return default_value;
  if (!value->is_string()) {
    Fail(key, "expected a string");
    return default_value;
  }
  return value->get<std::string>();
}

double RuleParams::RequiredNumber(std::string_view key) {
  if (params_.is_object() && params_.contains(key)) return Number(key, 0);
  known_.emplace_back(key);
  Fail(key, "missing; expected a number");
  return 0;
}

int64_t RuleParams::RequiredInteger(std::string_view key) {
  if (params_.is_object() && params_.contains(key)) return Integer(key, 0);
  known_.emplace_back(key);
  Fail(key, "missing; expected an integer");
  return 0;
}

bool RuleParams::Finish(SpecError* error) {
  if (!error_ && !params_.is_object() && !params_.is_null()) {
    error_ = SpecError{"", "expected a mapping of parameters"};
  }
  // An unknown key is checked first: it is usually a misspelling behind a "missing" error.
  if (params_.is_object()) {
    std::vector<std::string_view> known(known_.begin(), known_.end());
    for (const auto& [key, value] : params_.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      if (known.empty()) {
        error_ = SpecError{key, "unknown parameter; this rule takes none"};
      } else {
        error_ = SpecError{key, "unknown parameter; " + common::DidYouMean(key, known, "valid")};
      }
      break;
    }
  }
  if (!error_) return true;
  if (error != nullptr) *error = *error_;
  return false;
}

}  // namespace rl::rewards
