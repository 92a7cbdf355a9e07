#include "common/utf8.h"

#include <cstdint>

namespace rl::common::utf8 {
namespace {

// Table 3-7 of the Unicode standard: the lead byte fixes the length and the range allowed for
// the second byte (which excludes overlongs, surrogates and code points above U+10FFFF).
struct LeadRule {
  size_t length;
  uint8_t second_lo, second_hi;
};

LeadRule RuleFor(uint8_t b) {
  if (b < 0x80) return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF) return {2, 0x80, 0xBF};
  if (b == 0xE0) return {3, 0xA0, 0xBF};
  if (b == 0xED) return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF) return {3, 0x80, 0xBF};
  if (b == 0xF0) return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3) return {4, 0x80, 0xBF};
  if (b == 0xF4) return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

}  // namespace

Scan ScanAt(std::string_view s, size_t pos) {
  const LeadRule rule = RuleFor(static_cast<uint8_t>(s[pos]));
  if (rule.length == 0) return {0, false};
  for (size_t i = 1; i < rule.length; ++i) {
    if (pos + i >= s.size()) return {i, false};
    const uint8_t b = static_cast<uint8_t>(s[pos + i]);
    const uint8_t lo = i == 1 ? rule.second_lo : 0x80;
    const uint8_t hi = i == 1 ? rule.second_hi : 0xBF;
    if (b < lo || b > hi) return {i, false};
  }
  return {rule.length, true};
}

bool IsValid(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const Scan scan = ScanAt(s, pos);
    if (!scan.complete) return false;
    pos += scan.length;
  }
  return true;
}

size_t AppendLossy(std::string_view s, std::string* out, bool hold_incomplete_tail) {
  size_t pos = 0;
  while (pos < s.size()) {
    const Scan scan = ScanAt(s, pos);
    if (scan.complete) {
      out->append(s.substr(pos, scan.length));
      pos += scan.length;
      continue;
    }
    if (hold_incomplete_tail && scan.length > 0 && pos + scan.length == s.size()) break;
    out->append("\xEF\xBF\xBD");
    pos += scan.length == 0 ? 1 : scan.length;
  }
  return pos;
}

void AppendCodePoint(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t DecodeAt(std::string_view s, size_t pos, size_t length) {
  const uint8_t lead = static_cast<uint8_t>(s[pos]);
  if (length == 1) return lead;
  char32_t cp = lead & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  return cp;
}

}  // namespace rl::common::utf8
