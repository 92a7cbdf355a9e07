// common/names.h: "did you mean" for every reader of names (config keys, rule names,
// parameters), worded one way.
//
//   std::string_view hint = rl::common::NearestName("lerning_rate", {"learning_rate", "beta"});
//   // hint == "learning_rate"
//   rl::common::DidYouMean("lerning_rate", names, "valid keys");
//   // "did you mean 'learning_rate'? (valid keys: learning_rate, beta)"
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

namespace rl::common {

// Levenshtein distance: single-character insertions, deletions and substitutions.
int64_t EditDistance(std::string_view a, std::string_view b);

// The candidate closest to `name` by edit distance (the first of equals); empty when there are
// no candidates.
std::string_view NearestName(std::string_view name, std::span<const std::string_view> candidates);
std::string_view NearestName(std::string_view name, std::span<const std::string> candidates);

// "a, b, c".
std::string JoinNames(std::span<const std::string_view> names);
std::string JoinNames(std::span<const std::string> names);

// "did you mean 'nearest'? (LABEL: every candidate)", the hint after an unknown name.
std::string DidYouMean(std::string_view name, std::span<const std::string_view> candidates,
                       std::string_view label);
std::string DidYouMean(std::string_view name, std::span<const std::string> candidates,
                       std::string_view label);

}  // namespace rl::common
