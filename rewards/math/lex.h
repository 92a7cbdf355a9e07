// rewards/math/lex.h: the character classes and scans shared by the answer extractor
// (text.cpp) and the parser's lexer (parse.cpp), so that a digit, a word, a brace group and a
// thousands group mean the same on both sides of the verifier (not a public header).
//
// ASCII only, on purpose: both read text that normalisation has already turned into ASCII
// LaTeX, and a locale must not change a verdict.
#pragma once

#include <string>
#include <string_view>

namespace rl::rewards::math::internal {

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
inline bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f'; }
inline char LowerChar(char c) { return IsAlpha(c) && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerChar(c);
  return out;
}

// Position just past the brace group that opens at s[open] == '{', or npos when it never
// closes. Escaped braces \{ and \} do not count.
inline size_t MatchBrace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string_view::npos;
}

// Whether a thousands group starts at s[at]: the separator, exactly three digits, no fourth
// ("7,425,000" has two after its head "7").
inline bool IsThousandsGroup(std::string_view s, size_t at, char separator) {
  return at + 3 < s.size() && s[at] == separator && IsDigit(s[at + 1]) && IsDigit(s[at + 2]) &&
         IsDigit(s[at + 3]) && (at + 4 >= s.size() || !IsDigit(s[at + 4]));
}

}  // namespace rl::rewards::math::internal
