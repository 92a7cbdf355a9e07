#include "rollout/stop_strings.h"

#include <algorithm>

namespace rl::rollout {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings)
    : stop_strings_(std::move(stop_strings)) {
  for (const std::string& s : stop_strings_) longest_ = std::max(longest_, s.size());
}

std::optional<StopStringMatch> StopStringMatcher::FindNew(std::string_view text,
                                                          size_t old_size) const {
  if (longest_ == 0 || text.size() <= old_size) return std::nullopt;
  // A match ending after old_size starts no earlier than old_size - (longest - 1).
  size_t window = old_size >= longest_ ? old_size - (longest_ - 1) : 0;
  std::optional<StopStringMatch> best;
  for (size_t i = 0; i < stop_strings_.size(); ++i) {
    const std::string& s = stop_strings_[i];
    if (s.empty()) continue;
    for (size_t pos = text.find(s, window); pos != std::string_view::npos;
         pos = text.find(s, pos + 1)) {
      if (pos + s.size() <= old_size) continue;  // ended before the append: seen earlier
      bool better = !best || pos < best->begin ||
                    (pos == best->begin && pos + s.size() > best->end);
      if (better) best = StopStringMatch{pos, pos + s.size(), i};
      break;
    }
  }
  return best;
}

}  // namespace rl::rollout
