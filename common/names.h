// common/names.h: "did you mean" for every reader of names (config keys, rule names).
//
//   std::string_view hint = rl::common::NearestName("lerning_rate", {"learning_rate", "beta"});
//   // hint == "learning_rate"
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

}  // namespace rl::common
