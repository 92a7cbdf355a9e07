// rollout/stop_strings.h: finding stop strings in text that grows a few bytes at a time.
//
//   rl::rollout::StopStringMatcher matcher({"</answer>", "\n\nUser:"});
//   std::string text;
//   for (...) {
//     size_t old_size = text.size();
//     text += decoder.Push(token);
//     if (auto hit = matcher.FindNew(text, old_size)) { text.resize(hit->end); break; }
//   }
//
// FindNew only looks at the bytes that can hold a match ending in the newly appended part, so
// a whole generation costs O(length × longest stop string) rather than O(length²). A match
// that straddles old and new bytes is found. When several stop strings match, the one that
// starts first wins (then the longest).
//
// Thread safety: immutable after construction; FindNew may be called from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rl::rollout {

struct StopStringMatch {
  size_t begin = 0;  // byte offset of the stop string in the text
  size_t end = 0;    // one past its last byte
  size_t index = 0;  // which stop string (index into the constructor's list)
};

class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  // The earliest stop string in `text` that ends after byte `old_size` (the length of the
  // text before the latest append); nothing when none does or the list is empty.
  std::optional<StopStringMatch> FindNew(std::string_view text, size_t old_size) const;

  bool empty() const { return stop_strings_.empty(); }

 private:
  std::vector<std::string> stop_strings_;
  size_t longest_ = 0;
};

}  // namespace rl::rollout
