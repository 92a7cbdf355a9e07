// Format rules: format.think_answer, format.tags, format.tag_count, format.boxed.
//
// The tag structure is checked in two steps that must both pass: one memchr-driven pass over
// the text counts every tag occurrence (RE2 cannot say "exactly once"), then an anchored RE2
// with dot matching newline checks the overall shape. Both work on bytes (RE2 in Latin-1
// mode), so the broken UTF-8 of a truncated completion is matched by `.` like any text.
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "rewards/rule.h"

namespace rl::rewards {
namespace {

enum TagIndex { kThinkOpen = 0, kThinkClose = 1, kAnswerOpen = 2, kAnswerClose = 3 };
constexpr size_t kNotFound = std::string_view::npos;

struct TagScan {
  std::array<int, 4> count{};
  std::array<size_t, 4> first{kNotFound, kNotFound, kNotFound, kNotFound};
};

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool HasNonSpace(std::string_view s) {
  for (char c : s) {
    if (!IsSpace(c)) return true;
  }
  return false;
}

// Finds the four tags of a TagNames; every '<' is located with memchr, so text without
// angle brackets costs one memchr pass.
class TagMatcher {
 public:
  TagMatcher(const TagNames& names, bool case_sensitive) : case_sensitive_(case_sensitive) {
    tags_ = {"<" + names.think + ">", "</" + names.think + ">", "<" + names.answer + ">",
             "</" + names.answer + ">"};
    if (!case_sensitive_) {
      for (std::string& tag : tags_) {
        for (char& c : tag) c = AsciiLower(c);
      }
    }
  }

  TagScan Scan(std::string_view text) const {
    TagScan scan;
    const char* begin = text.data();
    const char* end = begin + text.size();
    for (const char* p = begin; p < end;) {
      p = static_cast<const char*>(std::memchr(p, '<', static_cast<size_t>(end - p)));
      if (p == nullptr) break;
      std::string_view rest(p, static_cast<size_t>(end - p));
      size_t advance = 1;
      for (int i = 0; i < 4; ++i) {
        if (!StartsWith(rest, tags_[i])) continue;
        if (scan.count[i]++ == 0) scan.first[i] = static_cast<size_t>(p - begin);
        advance = tags_[i].size();
        break;
      }
      p += advance;
    }
    return scan;
  }

  const std::string& tag(int index) const { return tags_[index]; }

 private:
  bool StartsWith(std::string_view text, const std::string& tag) const {
    if (text.size() < tag.size()) return false;
    if (case_sensitive_) return std::memcmp(text.data(), tag.data(), tag.size()) == 0;
    for (size_t i = 0; i < tag.size(); ++i) {
      if (AsciiLower(text[i]) != tag[i]) return false;
    }
    return true;
  }

  std::array<std::string, 4> tags_;
  bool case_sensitive_;
};

RE2::Options RegexOptions(bool case_sensitive) {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingLatin1);
  options.set_dot_nl(true);  // DOTALL: a thought may span lines
  options.set_case_sensitive(case_sensitive);
  options.set_log_errors(false);
  return options;
}

// format.think_answer: 1 when the completion is exactly
//   ws <think> … </think> ws <answer> non-empty </answer> ws
// with one of each tag (no nesting, nothing after </answer>); with a prefilled think the
// completion starts inside the thought and must not open it again.
class ThinkAnswerRule final : public Rule {
 public:
  ThinkAnswerRule(const TagNames& names, bool case_sensitive)
      : matcher_(names, case_sensitive),
        // FullMatch anchors both ends: no MULTILINE `$` that would let text follow </answer>.
        full_(Pattern(true), RegexOptions(case_sensitive)),
        prefilled_(Pattern(false), RegexOptions(case_sensitive)) {}

  bool ok() const { return full_.ok() && prefilled_.ok(); }

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    const std::string_view text = input.completion;
    TagScan scan = matcher_.Scan(text);
    const int expected_open = input.prefilled_think ? 0 : 1;
    if (scan.count[kThinkOpen] != expected_open || scan.count[kThinkClose] != 1 ||
        scan.count[kAnswerOpen] != 1 || scan.count[kAnswerClose] != 1) {
      return {0};
    }
    if (!InOrder(scan, input.prefilled_think)) return {0};
    const size_t answer_begin = scan.first[kAnswerOpen] + matcher_.tag(kAnswerOpen).size();
    if (!HasNonSpace(text.substr(answer_begin, scan.first[kAnswerClose] - answer_begin)))
      return {0};
    // With one of each tag, the bodies between them cannot change whether `.*` matches, so
    // the shape is checked on the text with the two bodies cut out (RE2 reads ~50 bytes
    // instead of the whole thought).
    std::string skeleton;
    if (!input.prefilled_think) {
      skeleton.append(text.substr(0, scan.first[kThinkOpen] + matcher_.tag(kThinkOpen).size()));
    }
    skeleton.append(text.substr(scan.first[kThinkClose], answer_begin - scan.first[kThinkClose]));
    skeleton.append(text.substr(scan.first[kAnswerClose]));
    const RE2& shape = input.prefilled_think ? prefilled_ : full_;
    return {RE2::FullMatch(skeleton, shape) ? 1.0 : 0.0};
  }

 private:
  static bool InOrder(const TagScan& scan, bool prefilled_think) {
    return (prefilled_think || scan.first[kThinkOpen] < scan.first[kThinkClose]) &&
           scan.first[kThinkClose] < scan.first[kAnswerOpen] &&
           scan.first[kAnswerOpen] < scan.first[kAnswerClose];
  }

  std::string Pattern(bool with_open_think) const {
    std::string pattern = R"(\s*)";
    if (with_open_think) pattern += RE2::QuoteMeta(matcher_.tag(kThinkOpen));
    pattern += ".*" + RE2::QuoteMeta(matcher_.tag(kThinkClose)) + R"(\s*)" +
               RE2::QuoteMeta(matcher_.tag(kAnswerOpen)) + ".*" +
               RE2::QuoteMeta(matcher_.tag(kAnswerClose)) + R"(\s*)";
    return pattern;
  }

  TagMatcher matcher_;
  RE2 full_;
  RE2 prefilled_;
};

// format.tags (R1-Onevision): 0.25 for each tag that occurs exactly once and is in the right
// order relative to every other tag that occurs exactly once. A prefilled think counts as an
// opening tag before the completion.
class TagsRule final : public Rule {
 public:
  TagsRule(const TagNames& names, bool case_sensitive) : matcher_(names, case_sensitive) {}

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    TagScan scan = matcher_.Scan(input.completion);
    std::array<int64_t, 4> position{};
    for (int i = 0; i < 4; ++i) position[i] = static_cast<int64_t>(scan.first[i]);
    if (input.prefilled_think) {
      scan.count[kThinkOpen] += 1;
      position[kThinkOpen] = -1;
    }
    double value = 0;
    for (int i = 0; i < 4; ++i) {
      if (scan.count[i] != 1) continue;
      bool in_order = true;
      for (int j = 0; j < 4; ++j) {
        if (j == i || scan.count[j] != 1) continue;
        if ((i < j) != (position[i] < position[j])) in_order = false;
      }
      if (in_order) value += 0.25;
    }
    return {value};
  }

 private:
  TagMatcher matcher_;
};

size_t CountOccurrences(std::string_view text, std::string_view needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != kNotFound; at = text.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

// format.tag_count (open-r1): 0.25 for each of "<think>\n", "\n</think>\n", "\n<answer>\n",
// "\n</answer>" that occurs exactly once. CRLF line ends count as "\n"; a prefilled think is
// the "<think>\n" that ended the prompt.
class TagCountRule final : public Rule {
 public:
  explicit TagCountRule(const TagNames& names)
      : needles_{"<" + names.think + ">\n", "\n</" + names.think + ">\n",
                 "\n<" + names.answer + ">\n", "\n</" + names.answer + ">"} {}

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    std::string_view text = input.completion;
    std::string normalized;
    if (input.prefilled_think || text.find('\r') != kNotFound) {
      if (input.prefilled_think) normalized = needles_[kThinkOpen];
      normalized.reserve(normalized.size() + text.size());
      for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
        normalized.push_back(text[i]);
      }
      text = normalized;
    }
    double value = 0;
    for (const std::string& needle : needles_) {
      if (CountOccurrences(text, needle) == 1) value += 0.25;
    }
    return {value};
  }

 private:
  std::array<std::string, 4> needles_;
};

// True when `text` holds \boxed{…} or \fbox{…} with balanced braces and non-blank content.
// One pass with a stack of open braces, so adversarial text full of unclosed boxes stays linear.
bool HasBalancedBox(std::string_view text) {
  std::vector<size_t> box_braces;  // positions of the '{' that open a box argument
  for (std::string_view command : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    for (size_t at = text.find(command); at != kNotFound; at = text.find(command, at + 1)) {
      size_t i = at + command.size();
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
      if (i < text.size() && text[i] == '{') box_braces.push_back(i);
    }
  }
  if (box_braces.empty()) return false;
  std::sort(box_braces.begin(), box_braces.end());
  std::vector<std::pair<size_t, bool>> open_braces;  // position, opens a box
  size_t next_box = 0;
  for (size_t i = box_braces.front(); i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;  // an escaped brace \{ or \} is content, not structure
    } else if (text[i] == '{') {
      bool box = next_box < box_braces.size() && box_braces[next_box] == i;
      if (box) ++next_box;
      open_braces.emplace_back(i, box);
    } else if (text[i] == '}' && !open_braces.empty()) {
      auto [open, box] = open_braces.back();
      open_braces.pop_back();
      if (box && HasNonSpace(text.substr(open + 1, i - open - 1))) return true;
    }
  }
  return false;
}

// format.boxed: 1 when the answer block holds a brace-balanced \boxed{…} or \fbox{…}. The
// answer block runs from the last opening answer tag to the next closing one (or the end);
// a completion without an answer tag is searched whole.
class BoxedRule final : public Rule {
 public:
  explicit BoxedRule(const TagNames& names)
      : answer_open_("<" + names.answer + ">"), answer_close_("</" + names.answer + ">") {}

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    std::string_view block = input.completion;
    size_t open = block.rfind(answer_open_);
    if (open != kNotFound) {
      block.remove_prefix(open + answer_open_.size());
      block = block.substr(0, block.find(answer_close_));
    }
    return {HasBalancedBox(block) ? 1.0 : 0.0};
  }

 private:
  std::string answer_open_;
  std::string answer_close_;
};

}  // namespace

std::unique_ptr<Rule> MakeFormatThinkAnswerRule(const nlohmann::json& params,
                                                const RuleContext& context, SpecError* error) {
  RuleParams reader(params);
  bool case_sensitive = reader.Bool("case_sensitive", true);
  if (!reader.Finish(error)) return nullptr;
  auto rule = std::make_unique<ThinkAnswerRule>(context.tags, case_sensitive);
  if (!rule->ok()) {
    *error = {"", "could not compile the tag pattern for tags '" + context.tags.think + "', '" +
                      context.tags.answer + "'"};
    return nullptr;
  }
  return rule;
}

std::unique_ptr<Rule> MakeFormatTagsRule(const nlohmann::json& params, const RuleContext& context,
                                         SpecError* error) {
  RuleParams reader(params);
  bool case_sensitive = reader.Bool("case_sensitive", true);
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<TagsRule>(context.tags, case_sensitive);
}

std::unique_ptr<Rule> MakeFormatTagCountRule(const nlohmann::json& params,
                                             const RuleContext& context, SpecError* error) {
  RuleParams reader(params);
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<TagCountRule>(context.tags);
}

std::unique_ptr<Rule> MakeFormatBoxedRule(const nlohmann::json& params, const RuleContext& context,
                                          SpecError* error) {
  RuleParams reader(params);
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<BoxedRule>(context.tags);
}

}  // namespace rl::rewards
