#include "common/names.h"

#include <algorithm>
#include <vector>

namespace rl::common {

int64_t EditDistance(std::string_view a, std::string_view b) {
  // One row of the dynamic-programming table at a time.
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t above = row[j];
      row[j] = std::min({above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

namespace {

template <class Name>
std::string_view Nearest(std::string_view name, std::span<const Name> candidates) {
  std::string_view best;
  int64_t best_distance = INT64_MAX;
  for (std::string_view candidate : candidates) {
    const int64_t distance = EditDistance(name, candidate);
    if (distance < best_distance) best_distance = distance, best = candidate;
  }
  return best;
}

template <class Name>
std::string Join(std::span<const Name> names) {
  std::string joined;
  for (std::string_view name : names) {
    if (!joined.empty()) joined += ", ";
    joined += name;
  }
  return joined;
}

}  // namespace

std::string_view NearestName(std::string_view name, std::span<const std::string_view> candidates) {
  return Nearest(name, candidates);
}

std::string_view NearestName(std::string_view name, std::span<const std::string> candidates) {
  return Nearest(name, candidates);
}

std::string JoinNames(std::span<const std::string_view> names) { return Join(names); }
std::string JoinNames(std::span<const std::string> names) { return Join(names); }

std::string DidYouMean(std::string_view name, std::span<const std::string_view> candidates,
                       std::string_view label) {
  return "did you mean '" + std::string(NearestName(name, candidates)) + "'? (" + std::string(label) +
         ": " + JoinNames(candidates) + ")";
}

std::string DidYouMean(std::string_view name, std::span<const std::string> candidates,
                       std::string_view label) {
  return "did you mean '" + std::string(NearestName(name, candidates)) + "'? (" + std::string(label) +
         ": " + JoinNames(candidates) + ")";
}

}  // namespace rl::common
