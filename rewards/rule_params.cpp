// RuleParams: typed, strict reading of a rule's `params`; NearestName for "did you mean".
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "rewards/rule.h"

namespace rl::rewards {

std::string_view NearestName(std::string_view name, std::span<const std::string_view> candidates) {
  std::string_view best;
  size_t best_distance = SIZE_MAX;
  std::vector<size_t> row;
  for (std::string_view candidate : candidates) {
    // Levenshtein distance, one row at a time.
    row.resize(candidate.size() + 1);
    for (size_t j = 0; j <= candidate.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= name.size(); ++i) {
      size_t diagonal = row[0];
      row[0] = i;
      for (size_t j = 1; j <= candidate.size(); ++j) {
        size_t above = row[j];
        size_t substitution = diagonal + (name[i - 1] == candidate[j - 1] ? 0 : 1);
        row[j] = std::min({above + 1, row[j - 1] + 1, substitution});
        diagonal = above;
      }
    }
    if (row[candidate.size()] < best_distance) {
      best_distance = row[candidate.size()];
      best = candidate;
    }
  }
  return best;
}

RuleParams::RuleParams(const nlohmann::json& params) : params_(params) {}

const nlohmann::json* RuleParams::Find(std::string_view key) {
  known_.emplace_back(key);
  if (!params_.is_object()) return nullptr;
  auto it = params_.find(key);
  return it == params_.end() ? nullptr : &*it;
}

void RuleParams::Fail(std::string_view key, std::string_view expected) {
  if (!error_.empty()) return;
  error_ = "key '" + std::string(key) + "': " + std::string(expected);
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

bool RuleParams::Finish(std::string* error) {
  if (error_.empty() && !params_.is_object() && !params_.is_null()) {
    error_ = "expected a mapping of parameters";
  }
  // An unknown key is checked first: it is usually a misspelling behind a "missing" error.
  if (params_.is_object()) {
    std::vector<std::string_view> known(known_.begin(), known_.end());
    for (const auto& [key, value] : params_.items()) {
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      if (known.empty()) {
        error_ = "key '" + key + "': unknown parameter; this rule takes none";
      } else {
        std::string valid;
        for (std::string_view name : known)
          valid += (valid.empty() ? "" : ", ") + std::string(name);
        error_ = "key '" + key + "': unknown parameter; did you mean '" +
                 std::string(NearestName(key, known)) + "'? (valid: " + valid + ")";
      }
      break;
    }
  }
  if (error_.empty()) return true;
  if (error != nullptr) *error = error_;
  return false;
}

}  // namespace rl::rewards
