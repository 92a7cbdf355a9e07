// UTF-8, read one way everywhere: the tokenizer, its stream decoder and the BPE trainer, the
// verifier's input check and the configuration readers' character check.
// Pure functions; safe for concurrent use.
#ifndef RL_COMMON_UTF8_H_
#define RL_COMMON_UTF8_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace rl::common::utf8 {

// What starts at s[pos]: `length` bytes forming a well-formed character (complete == true), or
// the longest prefix of one (complete == false; length 0 when s[pos] can start no character).
struct Scan {
  size_t length;
  bool complete;
};
Scan ScanAt(std::string_view s, size_t pos);

// Whether s is well-formed UTF-8 throughout (no overlongs, surrogates or code points above
// U+10FFFF: Table 3-7 of the Unicode standard).
bool IsValid(std::string_view s);

// Appends s to *out, replacing every maximal ill-formed subsequence by U+FFFD (the Unicode
// "substitution of maximal subparts" practice, as Rust's from_utf8_lossy). With
// hold_incomplete_tail, a trailing prefix of a character that more bytes could still complete
// is not consumed. Returns the number of bytes of s consumed.
size_t AppendLossy(std::string_view s, std::string* out, bool hold_incomplete_tail);

// Appends the UTF-8 encoding of code point cp (which must be a Unicode scalar value).
void AppendCodePoint(char32_t cp, std::string* out);

// Decodes the well-formed character at s[pos] (the caller checked it with ScanAt).
char32_t DecodeAt(std::string_view s, size_t pos, size_t length);

}  // namespace rl::common::utf8

#endif  // RL_COMMON_UTF8_H_
