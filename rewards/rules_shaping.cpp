// Shaping rules: length.soft_overlong (DAPO), repetition.ngram and reasoning.steps (open-r1).
#include <re2/re2.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "rewards/rule.h"

namespace rl::rewards {
namespace {

// length.soft_overlong (DAPO): 0 up to max_length - cache_length tokens, then linearly down
// to -1 at max_length, and -1 beyond. Needs the completion's token count.
class SoftOverlongRule final : public Rule {
 public:
  SoftOverlongRule(int64_t max_length, int64_t cache_length)
      : max_length_(max_length), cache_length_(cache_length) {}

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    const std::optional<int64_t>& tokens = input.sample.completion_tokens;
    if (!tokens) {
      return {0, ScoreStatus::kMissingTokenCount, "length.soft_overlong needs completion_tokens"};
    }
    if (*tokens < 0) {
      return {0, ScoreStatus::kMissingTokenCount,
              "completion_tokens is negative (" + std::to_string(*tokens) + ")"};
    }
    const int64_t free_length = max_length_ - cache_length_;
    if (*tokens <= free_length) return {0};
    if (*tokens > max_length_) return {-1};
    return {static_cast<double>(free_length - *tokens) / static_cast<double>(cache_length_)};
  }

 private:
  int64_t max_length_;
  int64_t cache_length_;
};

// Length of the multi-byte Unicode space starting at text[i] (lead byte >= 0xc2), else 0.
size_t UnicodeSeparatorLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) {
    return k < text.size() ? static_cast<unsigned char>(text[k]) : 0;
  };
  const unsigned char c = byte(i), c1 = byte(i + 1), c2 = byte(i + 2);
  switch (c) {
    case 0xc2: return (c1 == 0x85 || c1 == 0xa0) ? 2 : 0;
    case 0xe1: return (c1 == 0x9a && c2 == 0x80) ? 3 : 0;
    case 0xe3: return (c1 == 0x80 && c2 == 0x80) ? 3 : 0;
    case 0xe2:
      if (c1 == 0x80) {
        return ((c2 >= 0x80 && c2 <= 0x8a) || c2 == 0xa8 || c2 == 0xa9 || c2 == 0xaf) ? 3 : 0;
      }
      return (c1 == 0x81 && c2 == 0x9f) ? 3 : 0;
    default: return 0;
  }
}

// The length in bytes of the separator that starts at text[i], 0 when there is none. The
// separators are those of Python's str.split(): ASCII whitespace, \x1c-\x1f, and the Unicode
// spaces U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.
inline size_t SeparatorLength(std::string_view text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return (c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f)) ? 1 : 0;
  return c < 0xc2 ? 0 : UnicodeSeparatorLength(text, i);
}

unsigned char AsciiLower(unsigned char c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

bool SameWordIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(static_cast<unsigned char>(a[i])) !=
        AsciiLower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// repetition.ngram (open-r1): words are the lower-cased, whitespace-separated pieces;
// value = (1 - distinct n-grams / all n-grams) * max_penalty, 0 for fewer than n words.
// Lower-casing is ASCII-only.
class RepetitionNgramRule final : public Rule {
 public:
  RepetitionNgramRule(int64_t ngram_size, double max_penalty)
      : ngram_size_(static_cast<size_t>(ngram_size)), max_penalty_(max_penalty) {}

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    std::vector<std::string_view> words;
    std::vector<uint64_t> word_hashes;
    SplitWords(input.completion, &words, &word_hashes);
    if (words.size() < ngram_size_) return {0};
    const size_t total = words.size() - ngram_size_ + 1;
    // Open addressing over n-gram start indices; a hash match is confirmed word by word, so
    // the count is exact.
    size_t capacity = 16;
    while (capacity < 2 * total) capacity *= 2;
    const size_t mask = capacity - 1;
    std::vector<uint32_t> slots(capacity, 0);  // 0: empty, else start index + 1
    std::vector<uint64_t> gram_hashes(total);
    size_t distinct = 0;
    for (size_t start = 0; start < total; ++start) {
      uint64_t h = 0;
      for (size_t k = 0; k < ngram_size_; ++k)
        h = (h ^ word_hashes[start + k]) * 0x9e3779b97f4a7c15ULL;
      gram_hashes[start] = h;
      for (size_t i = (h >> 17) & mask;; i = (i + 1) & mask) {
        if (slots[i] == 0) {
          slots[i] = static_cast<uint32_t>(start + 1);
          ++distinct;
          break;
        }
        const size_t other = slots[i] - 1;
        if (gram_hashes[other] == h && SameNgram(words, other, start)) break;
      }
    }
    double scaling = 1.0 - static_cast<double>(distinct) / static_cast<double>(total);
    return {scaling * max_penalty_};
  }

 private:
  bool SameNgram(const std::vector<std::string_view>& words, size_t a, size_t b) const {
    for (size_t k = 0; k < ngram_size_; ++k) {
      if (!SameWordIgnoringCase(words[a + k], words[b + k])) return false;
    }
    return true;
  }

  static void SplitWords(std::string_view text, std::vector<std::string_view>* words,
                         std::vector<uint64_t>* hashes) {
    size_t i = 0;
    while (i < text.size()) {
      for (size_t n; i < text.size() && (n = SeparatorLength(text, i)) > 0;) i += n;
      if (i == text.size()) break;
      size_t begin = i;
      uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the lower-cased bytes
      while (i < text.size() && SeparatorLength(text, i) == 0) {
        h = (h ^ AsciiLower(static_cast<unsigned char>(text[i]))) * 0x100000001b3ULL;
        ++i;
      }
      words->push_back(text.substr(begin, i - begin));
      hashes->push_back(h);
    }
  }

  size_t ngram_size_;
  double max_penalty_;
};

// reasoning.steps (open-r1): counts "Step N:", numbered-list markers "N." at the start of
// any line, "-" or "*" bullets after a newline, and "First,", "Second,", "Next,",
// "Finally,"; value = min(1, count / target_steps).
class ReasoningStepsRule final : public Rule {
 public:
  explicit ReasoningStepsRule(int64_t target_steps)
      : target_steps_(static_cast<double>(target_steps)),
        marker_(R"((?m)(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,))", Options()) {}

  bool ok() const { return marker_.ok(); }

  RuleOutcome Score(const RuleInput& input, SampleScratch&) const override {
    const re2::StringPiece text(input.completion.data(), input.completion.size());
    re2::StringPiece match;
    size_t position = 0;
    int64_t count = 0;
    // Match() with a start position keeps the whole text as context, so `^` still means
    // "after a newline" rather than "where the search resumed".
    while (position < text.size() &&
           marker_.Match(text, position, text.size(), RE2::UNANCHORED, &match, 1)) {
      ++count;
      position =
          static_cast<size_t>(match.data() - text.data()) + std::max<size_t>(match.size(), 1);
    }
    return {std::min(1.0, static_cast<double>(count) / target_steps_)};
  }

 private:
  static RE2::Options Options() {
    RE2::Options options;
    options.set_encoding(RE2::Options::EncodingLatin1);
    options.set_log_errors(false);
    return options;
  }

  double target_steps_;
  RE2 marker_;
};

}  // namespace

std::unique_ptr<Rule> MakeLengthSoftOverlongRule(const nlohmann::json& params, const RuleContext&,
                                                 SpecError* error) {
  RuleParams reader(params);
  const int64_t max_length = reader.RequiredInteger("max_length");
  const int64_t cache_length = reader.RequiredInteger("cache_length");
  if (max_length <= 0) reader.Fail("max_length", "expected a positive integer (tokens)");
  if (cache_length <= 0 || cache_length > max_length) {
    reader.Fail("cache_length", "expected an integer in [1, max_length] (tokens)");
  }
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<SoftOverlongRule>(max_length, cache_length);
}

std::unique_ptr<Rule> MakeRepetitionNgramRule(const nlohmann::json& params, const RuleContext&,
                                              SpecError* error) {
  RuleParams reader(params);
  const int64_t ngram_size = reader.Integer("ngram_size", 3);
  const double max_penalty = reader.Number("max_penalty", -1.0);
  if (ngram_size < 1 || ngram_size > 64)
    reader.Fail("ngram_size", "expected an integer in [1, 64]");
  if (max_penalty > 0) reader.Fail("max_penalty", "expected a number <= 0 (it is a penalty)");
  if (!reader.Finish(error)) return nullptr;
  return std::make_unique<RepetitionNgramRule>(ngram_size, max_penalty);
}

std::unique_ptr<Rule> MakeReasoningStepsRule(const nlohmann::json& params, const RuleContext&,
                                             SpecError* error) {
  RuleParams reader(params);
  const int64_t target_steps = reader.Integer("target_steps", 3);
  if (target_steps < 1) reader.Fail("target_steps", "expected a positive integer");
  if (!reader.Finish(error)) return nullptr;
  auto rule = std::make_unique<ReasoningStepsRule>(target_steps);
  if (!rule->ok()) {
    *error = {"", "could not compile the step-marker pattern"};
    return nullptr;
  }
  return rule;
}

}  // namespace rl::rewards
